//! BTF writer: the model back to bytes, in the model's byte order.
//!
//! An unmodified model read from bytes is written back identically: header
//! fields (including a longer header's extra bytes) and the raw string table
//! are kept, and a non-standard section placement is reproduced while the
//! section sizes are unchanged.

use crate::bail;
use crate::error::Result;
use crate::model::btf::{Btf, TypeData, BTF_HEADER_LEN, BTF_MAGIC};

/// The encoded type section.
pub fn types_to_bytes(btf: &Btf) -> Vec<u8> {
    let e = btf.endian;
    let len: usize = btf.types.iter().map(|t| t.encoded_len()).sum();
    let mut out = Vec::with_capacity(len);
    let put = |out: &mut Vec<u8>, v: u32| out.extend_from_slice(&e.u32_bytes(v));
    for t in btf.types.iter().skip(1) {
        let d = &t.data;
        let size_or_type = match (t.size_field(), d) {
            (Some(size), _) => size,
            (None, TypeData::FuncProto { ret, .. }) => ret.0,
            _ => t.ref_type().map_or(0, |r| r.0),
        };
        let info =
            (t.kind_flag as u32) << 31 | (t.kind() as u32) << 24 | (t.vlen() as u32 & 0xffff);
        put(&mut out, t.name_off);
        put(&mut out, info);
        put(&mut out, size_or_type);
        match d {
            TypeData::Int { data, .. } => put(&mut out, *data),
            TypeData::Var { linkage, .. } => put(&mut out, *linkage),
            TypeData::DeclTag { component_idx, .. } => put(&mut out, *component_idx as u32),
            TypeData::Array {
                elem,
                index,
                nelems,
            } => {
                put(&mut out, elem.0);
                put(&mut out, index.0);
                put(&mut out, *nelems);
            }
            TypeData::Struct { members, .. } | TypeData::Union { members, .. } => {
                for m in members {
                    put(&mut out, m.name_off);
                    put(&mut out, m.type_id.0);
                    put(&mut out, m.offset);
                }
            }
            TypeData::Enum { values, .. } => {
                for v in values {
                    put(&mut out, v.name_off);
                    put(&mut out, v.val);
                }
            }
            TypeData::Enum64 { values, .. } => {
                for v in values {
                    put(&mut out, v.name_off);
                    put(&mut out, v.val as u32);
                    put(&mut out, (v.val >> 32) as u32);
                }
            }
            TypeData::FuncProto { params, .. } => {
                for p in params {
                    put(&mut out, p.name_off);
                    put(&mut out, p.type_id.0);
                }
            }
            TypeData::Datasec { vars, .. } => {
                for v in vars {
                    put(&mut out, v.type_id.0);
                    put(&mut out, v.offset);
                    put(&mut out, v.size);
                }
            }
            _ => {}
        }
    }
    out
}

/// Like [`to_bytes`], for models built or changed in memory: checks first
/// that every type is encodable (vlen at most 65535) and that the result is
/// valid BTF (references, names, no reference cycles), as the reader would.
pub fn try_to_bytes(btf: &Btf) -> Result<Vec<u8>> {
    for (id, t) in btf.iter() {
        let over = match &t.data {
            TypeData::Func { .. } | TypeData::Void => false,
            _ => t.vlen() > 0xffff,
        };
        if over {
            bail!(
                "type {}: {} entries do not fit BTF's 16-bit vlen",
                btf.describe(id),
                t.vlen()
            );
        }
    }
    crate::read::btf::validate(btf)?;
    Ok(to_bytes(btf))
}

/// The whole BTF blob (header, types, strings). The model is assumed
/// encodable (see [`try_to_bytes`]): a vlen above 65535 is truncated.
pub fn to_bytes(btf: &Btf) -> Vec<u8> {
    let e = btf.endian;
    let types = types_to_bytes(btf);
    let strings = &btf.strings;
    // A longer header is kept only with its extra bytes; otherwise 24.
    let hdr_len = if btf.hdr_len as usize == BTF_HEADER_LEN as usize + btf.hdr_extra.len() {
        btf.hdr_len
    } else {
        BTF_HEADER_LEN
    };
    let (type_off, str_off, data) = match &btf.raw_layout {
        Some(l) if l.type_len as usize == types.len() && l.str_len as usize == strings.len() => {
            let mut data = l.data.clone();
            let fits = overwrite(&mut data, l.type_off, &types)
                && overwrite(&mut data, l.str_off, strings);
            if fits {
                (l.type_off, l.str_off, data)
            } else {
                standard(types, strings)
            }
        }
        _ => standard(types, strings),
    };
    let mut out = Vec::with_capacity(hdr_len as usize + data.len());
    out.extend_from_slice(&e.u16_bytes(BTF_MAGIC));
    out.push(btf.version);
    out.push(btf.flags);
    out.extend_from_slice(&e.u32_bytes(hdr_len));
    out.extend_from_slice(&e.u32_bytes(type_off));
    out.extend_from_slice(&e.u32_bytes(types_len(btf)));
    out.extend_from_slice(&e.u32_bytes(str_off));
    out.extend_from_slice(&e.u32_bytes(strings.len() as u32));
    if hdr_len > BTF_HEADER_LEN {
        out.extend_from_slice(&btf.hdr_extra);
    }
    out.extend_from_slice(&data);
    out
}

fn types_len(btf: &Btf) -> u32 {
    btf.types.iter().map(|t| t.encoded_len()).sum::<usize>() as u32
}

/// Types at offset 0, strings right after.
fn standard(mut data: Vec<u8>, strings: &[u8]) -> (u32, u32, Vec<u8>) {
    let type_len = data.len() as u32;
    data.extend_from_slice(strings);
    (0, type_len, data)
}

/// Copies `src` into `dst` at `off` when it fits.
fn overwrite(dst: &mut [u8], off: u32, src: &[u8]) -> bool {
    let end = (off as usize).checked_add(src.len());
    match end.and_then(|end| dst.get_mut(off as usize..end)) {
        Some(d) => {
            d.copy_from_slice(src);
            true
        }
        None => false,
    }
}
