//! `bpftool btf dump file FILE` (raw format), byte for byte as bpftool 7.1
//! prints it.

use std::fmt::Write;

use crate::model::btf::{int_bits, int_encoding, int_offset, Btf, TypeData, TypeId};
use crate::model::btf::{BTF_INT_BOOL, BTF_INT_CHAR, BTF_INT_SIGNED};

/// The raw dump of every type, one `[id] KIND 'name' ...` entry per type.
pub fn dump_raw(btf: &Btf) -> String {
    let mut out = String::with_capacity(btf.types.len() * 64);
    for id in 1..btf.types.len() {
        dump_type(btf, TypeId(id as u32), &mut out);
    }
    out
}

/// bpftool's `btf_str`: `(anon)` for offset 0, `(invalid)` when unresolvable.
/// The rest of an ENUM or ENUM64 line and one line per value (name
/// offset, value as the enum's signedness reads it).
fn enum_values(
    out: &mut String,
    btf: &Btf,
    signed: &str,
    size: u32,
    values: impl ExactSizeIterator<Item = (u32, i128)>,
    suffix: &str,
) -> std::fmt::Result {
    let _ = write!(out, " encoding={signed} size={size} vlen={}", values.len());
    for (off, v) in values {
        let _ = write!(out, "\n\t'{}' val={v}{suffix}", name(btf, off));
    }
    Ok(())
}

fn name(btf: &Btf, off: u32) -> std::borrow::Cow<'_, str> {
    if off == 0 {
        return "(anon)".into();
    }
    match btf.name_bytes(off) {
        Ok(b) => String::from_utf8_lossy(b),
        Err(_) => "(invalid)".into(),
    }
}

fn int_enc(enc: u8) -> &'static str {
    match enc {
        0 => "(none)",
        BTF_INT_SIGNED => "SIGNED",
        BTF_INT_CHAR => "CHAR",
        BTF_INT_BOOL => "BOOL",
        _ => "UNKN",
    }
}

/// Appends one type's entry (with its trailing newline) to `out`.
pub fn dump_type(btf: &Btf, id: TypeId, out: &mut String) {
    let Some(t) = btf.get(id) else {
        return;
    };
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        "[{}] {} '{}'",
        id.0,
        t.kind().name(),
        name(btf, t.name_off)
    );
    let signed = if t.kind_flag { "SIGNED" } else { "UNSIGNED" };
    let _ = match &t.data {
        TypeData::Int { size, data } => write!(
            out,
            " size={} bits_offset={} nr_bits={} encoding={}",
            size,
            int_offset(*data),
            int_bits(*data),
            int_enc(int_encoding(*data))
        ),
        TypeData::Ptr(r)
        | TypeData::Const(r)
        | TypeData::Volatile(r)
        | TypeData::Restrict(r)
        | TypeData::Typedef(r)
        | TypeData::TypeTag(r) => write!(out, " type_id={}", r.0),
        TypeData::Array {
            elem,
            index,
            nelems,
        } => write!(
            out,
            " type_id={} index_type_id={} nr_elems={}",
            elem.0, index.0, nelems
        ),
        TypeData::Struct { size, members } | TypeData::Union { size, members } => {
            let _ = write!(out, " size={} vlen={}", size, members.len());
            for m in members {
                let (off, bits) = if t.kind_flag {
                    (m.offset & 0xff_ffff, m.offset >> 24)
                } else {
                    (m.offset, 0)
                };
                let _ = write!(
                    out,
                    "\n\t'{}' type_id={} bits_offset={}",
                    name(btf, m.name_off),
                    m.type_id.0,
                    off
                );
                if bits != 0 {
                    let _ = write!(out, " bitfield_size={bits}");
                }
            }
            Ok(())
        }
        TypeData::Enum { size, values } => {
            // bpftool prints a signed enum's values as signed.
            let vals = values.iter().map(|v| match t.kind_flag {
                true => (v.name_off, i128::from(v.val as i32)),
                false => (v.name_off, i128::from(v.val)),
            });
            enum_values(out, btf, signed, *size, vals, "")
        }
        TypeData::Enum64 { size, values } => {
            let vals = values.iter().map(|v| match t.kind_flag {
                true => (v.name_off, i128::from(v.val as i64)),
                false => (v.name_off, i128::from(v.val)),
            });
            let suffix = if t.kind_flag { "LL" } else { "ULL" };
            enum_values(out, btf, signed, *size, vals, suffix)
        }
        TypeData::Fwd => write!(
            out,
            " fwd_kind={}",
            if t.kind_flag { "union" } else { "struct" }
        ),
        TypeData::Func { proto, linkage } => {
            let l = linkage_str(*linkage as u32);
            write!(out, " type_id={} linkage={l}", proto.0)
        }
        TypeData::FuncProto { ret, params } => {
            let _ = write!(out, " ret_type_id={} vlen={}", ret.0, params.len());
            for p in params {
                let _ = write!(
                    out,
                    "\n\t'{}' type_id={}",
                    name(btf, p.name_off),
                    p.type_id.0
                );
            }
            Ok(())
        }
        TypeData::Var { type_id, linkage } => {
            let l = linkage_str(*linkage);
            write!(out, " type_id={}, linkage={l}", type_id.0)
        }
        TypeData::Datasec { size, vars } => {
            let _ = write!(out, " size={} vlen={}", size, vars.len());
            for v in vars {
                let _ = write!(
                    out,
                    "\n\ttype_id={} offset={} size={}",
                    v.type_id.0, v.offset, v.size
                );
                if let Some(vt) = btf.get(v.type_id) {
                    let _ = write!(out, " ({} '{}')", vt.kind().name(), name(btf, vt.name_off));
                }
            }
            Ok(())
        }
        TypeData::Float { size } => write!(out, " size={size}"),
        TypeData::DeclTag {
            target,
            component_idx,
        } => write!(out, " type_id={} component_idx={}", target.0, component_idx),
        TypeData::Void => Ok(()),
    };
    out.push('\n');
}

/// The `bpftool -j btf dump file FILE` document: `{"types": [...]}` with
/// bpftool's field names per kind.
pub fn dump_json(btf: &Btf) -> serde_json::Value {
    use serde_json::{json, Value};
    let types: Vec<Value> = btf
        .iter()
        .map(|(id, t)| {
            let mut o = serde_json::Map::new();
            o.insert("id".into(), json!(id.0));
            o.insert("kind".into(), json!(t.kind().name()));
            o.insert("name".into(), json!(name(btf, t.name_off)));
            let signed = if t.kind_flag { "SIGNED" } else { "UNSIGNED" };
            let mut put = |k: &str, v: Value| {
                o.insert(k.into(), v);
            };
            match &t.data {
                TypeData::Int { size, data } => {
                    put("size", json!(size));
                    put("bits_offset", json!(int_offset(*data)));
                    put("nr_bits", json!(int_bits(*data)));
                    put("encoding", json!(int_enc(int_encoding(*data))));
                }
                TypeData::Ptr(r)
                | TypeData::Const(r)
                | TypeData::Volatile(r)
                | TypeData::Restrict(r)
                | TypeData::Typedef(r)
                | TypeData::TypeTag(r) => put("type_id", json!(r.0)),
                TypeData::Array {
                    elem,
                    index,
                    nelems,
                } => {
                    put("type_id", json!(elem.0));
                    put("index_type_id", json!(index.0));
                    put("nr_elems", json!(nelems));
                }
                TypeData::Struct { size, members } | TypeData::Union { size, members } => {
                    put("size", json!(size));
                    put("vlen", json!(members.len()));
                    let ms: Vec<Value> = members
                        .iter()
                        .map(|m| {
                            let (off, bits) = if t.kind_flag {
                                (m.offset & 0xff_ffff, m.offset >> 24)
                            } else {
                                (m.offset, 0)
                            };
                            let mut v = json!({"name": name(btf, m.name_off), "type_id": m.type_id.0, "bits_offset": off});
                            if bits != 0 {
                                v["bitfield_size"] = json!(bits);
                            }
                            v
                        })
                        .collect();
                    put("members", Value::Array(ms));
                }
                TypeData::Enum { size, values } => {
                    put("encoding", json!(signed));
                    put("size", json!(size));
                    put("vlen", json!(values.len()));
                    let vs: Vec<Value> = values
                        .iter()
                        .map(|v| {
                            // bpftool 7.1 widens the s32 field with its
                            // sign even for UNSIGNED enums; match it.
                            let val = if t.kind_flag {
                                json!(v.val as i32)
                            } else {
                                json!(v.val as i32 as i64 as u64)
                            };
                            json!({"name": name(btf, v.name_off), "val": val})
                        })
                        .collect();
                    put("values", Value::Array(vs));
                }
                TypeData::Enum64 { size, values } => {
                    put("encoding", json!(signed));
                    put("size", json!(size));
                    put("vlen", json!(values.len()));
                    let vs: Vec<Value> = values
                        .iter()
                        .map(|v| {
                            let val = if t.kind_flag {
                                json!(v.val as i64)
                            } else {
                                json!(v.val)
                            };
                            json!({"name": name(btf, v.name_off), "val": val})
                        })
                        .collect();
                    put("values", Value::Array(vs));
                }
                TypeData::Fwd => put(
                    "fwd_kind",
                    json!(if t.kind_flag { "union" } else { "struct" }),
                ),
                TypeData::Func { proto, linkage } => {
                    put("type_id", json!(proto.0));
                    put("linkage", json!(linkage_str(*linkage as u32)));
                }
                TypeData::FuncProto { ret, params } => {
                    put("ret_type_id", json!(ret.0));
                    put("vlen", json!(params.len()));
                    let ps: Vec<Value> = params
                        .iter()
                        .map(|p| json!({"name": name(btf, p.name_off), "type_id": p.type_id.0}))
                        .collect();
                    put("params", Value::Array(ps));
                }
                TypeData::Var { type_id, linkage } => {
                    put("type_id", json!(type_id.0));
                    put("linkage", json!(linkage_str(*linkage)));
                }
                TypeData::Datasec { size, vars } => {
                    put("size", json!(size));
                    put("vlen", json!(vars.len()));
                    let vs: Vec<Value> = vars
                        .iter()
                        .map(|v| json!({"type_id": v.type_id.0, "offset": v.offset, "size": v.size}))
                        .collect();
                    put("vars", Value::Array(vs));
                }
                TypeData::Float { size } => put("size", json!(size)),
                TypeData::DeclTag {
                    target,
                    component_idx,
                } => {
                    put("type_id", json!(target.0));
                    put("component_idx", json!(component_idx));
                }
                TypeData::Void => {}
            }
            Value::Object(o)
        })
        .collect();
    json!({ "types": types })
}

/// FUNC and VAR linkage names as bpftool prints them.
fn linkage_str(l: u32) -> &'static str {
    match l {
        0 => "static",
        1 => "global",
        2 => "extern",
        _ => "(unknown)",
    }
}
