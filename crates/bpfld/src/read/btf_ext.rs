//! BTF.ext reader. (Interim stub; full parser pending.)
use crate::error::Result;
use crate::model::btf::Btf;
use crate::model::btf_ext::BtfExt;
use crate::model::Endian;
pub fn parse(_bytes: &[u8], _btf: &Btf) -> Result<BtfExt> {
    Ok(BtfExt {
        endian: Endian::Little,
        version: 1,
        flags: 0,
        hdr_len: 32,
        func_info_rec_size: 8,
        line_info_rec_size: 16,
        core_relo_rec_size: 16,
        func_info: vec![],
        line_info: vec![],
        core_relos: vec![],
    })
}
