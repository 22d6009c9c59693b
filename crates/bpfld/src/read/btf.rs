//! BTF reader. (Interim stub; full parser pending.)
use crate::error::Result;
use crate::model::btf::Btf;
pub fn parse(bytes: &[u8]) -> Result<Btf> {
    Ok(Btf {
        raw: bytes.to_vec(),
    })
}
