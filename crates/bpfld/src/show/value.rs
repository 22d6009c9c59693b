//! Bytes shown as the BTF type says, the way `bpftool map dump -j` shows
//! them under `"formatted"`: integers as numbers, char arrays holding a
//! string as the string, structs and unions as objects by member name,
//! bitfields as hex strings, enums by enumerator name, DATASECs as
//! `{"SECTION": [{"var": value}, ...]}`. Values are in host byte order
//! (as the kernel returns map contents). What cannot be shown by type
//! (bytes short of the type's size, a broken chain) is a hex string.

use serde_json::{json, Map, Value};

use crate::model::btf::{Btf, TypeData, TypeId};

/// Deeper nesting than this is shown as hex.
const MAX_DEPTH: usize = 32;

/// `bytes` shown as type `id` of `btf`.
pub fn format(btf: &Btf, id: TypeId, bytes: &[u8]) -> Value {
    value(btf, id, bytes, 0)
}

fn hex(bytes: &[u8]) -> Value {
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("0x");
    // Host (little-endian) order: the most significant byte first.
    for b in bytes.iter().rev() {
        s.push_str(&format!("{b:02x}"));
    }
    Value::String(s)
}

fn uint(bytes: &[u8]) -> u128 {
    let mut v = 0u128;
    for (i, b) in bytes.iter().take(16).enumerate() {
        v |= u128::from(*b) << (8 * i);
    }
    v
}

fn sign_extend(v: u128, bits: u32) -> i128 {
    if bits == 0 || bits >= 128 {
        return v as i128;
    }
    let shift = 128 - bits;
    ((v << shift) as i128) >> shift
}

fn value(btf: &Btf, id: TypeId, bytes: &[u8], depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return hex(bytes);
    }
    let Ok(id) = btf.resolve(id) else {
        return hex(bytes);
    };
    let Some(t) = btf.get(id) else {
        return hex(bytes);
    };
    let size = btf.size_of(id).ok().and_then(|s| usize::try_from(s).ok());
    if let Some(s) = size {
        if bytes.len() < s {
            return hex(bytes);
        }
    }
    let own = &bytes[..size.unwrap_or(bytes.len()).min(bytes.len())];
    match &t.data {
        TypeData::Int { size, data } => {
            let encoding = data >> 24;
            let bits = data & 0xff;
            let offset = (data >> 16) & 0xff;
            let raw = uint(&own[..(*size as usize).min(own.len())]) >> offset;
            let raw = if bits < 128 {
                raw & ((1u128 << bits) - 1)
            } else {
                raw
            };
            if encoding & 4 != 0 {
                return Value::Bool(raw != 0);
            }
            if *size > 8 {
                return hex(own);
            }
            if encoding & 1 != 0 {
                json!(sign_extend(raw, bits) as i64)
            } else {
                json!(raw as u64)
            }
        }
        TypeData::Ptr(_) => json!(uint(own) as u64),
        TypeData::Float { size } => match size {
            4 => json!(f32::from_bits(uint(own) as u32)),
            8 => json!(f64::from_bits(uint(own) as u64)),
            _ => hex(own),
        },
        TypeData::Enum { size, values } => {
            let raw = uint(&own[..(*size as usize).min(own.len())]);
            let v = if t.kind_flag {
                sign_extend(raw, size * 8) as i64
            } else {
                raw as i64
            };
            values
                .iter()
                .find(|e| {
                    if t.kind_flag {
                        i64::from(e.val as i32) == v
                    } else {
                        i64::from(e.val) == v
                    }
                })
                .and_then(|e| btf.name(e.name_off).ok())
                .map_or_else(|| json!(v), |n| json!(n))
        }
        TypeData::Enum64 { size, values } => {
            let raw = uint(&own[..(*size as usize).min(own.len())]) as u64;
            values
                .iter()
                .find(|e| e.val == raw)
                .and_then(|e| btf.name(e.name_off).ok())
                .map_or_else(
                    || {
                        if t.kind_flag {
                            json!(raw as i64)
                        } else {
                            json!(raw)
                        }
                    },
                    |n| json!(n),
                )
        }
        TypeData::Array { elem, nelems, .. } => {
            let Ok(esize) = btf.size_of(*elem) else {
                return hex(own);
            };
            let esize = esize as usize;
            if let Some(s) = char_string(btf, *elem, esize, own) {
                return Value::String(s);
            }
            if esize == 0 {
                return Value::Array(Vec::new());
            }
            let n = (*nelems as usize).min(own.len() / esize);
            Value::Array(
                (0..n)
                    .map(|i| value(btf, *elem, &own[i * esize..(i + 1) * esize], depth + 1))
                    .collect(),
            )
        }
        TypeData::Struct { .. } | TypeData::Union { .. } => {
            let mut out = Map::new();
            members(btf, id, own, depth, &mut out);
            Value::Object(out)
        }
        TypeData::Var { type_id, .. } => value(btf, *type_id, bytes, depth + 1),
        TypeData::Datasec { .. } => {
            let name = btf.name(t.name_off).unwrap_or("").to_string();
            let vars = btf.datasec_vars(id).unwrap_or_default();
            let list = vars
                .iter()
                .map(|v| {
                    let start = v.offset as usize;
                    let end = start.saturating_add(v.size as usize);
                    let shown = match bytes.get(start..end) {
                        Some(b) => value(btf, v.type_id, b, depth + 1),
                        None => Value::Null,
                    };
                    json!({ v.name: shown })
                })
                .collect();
            json!({ name: Value::Array(list) })
        }
        _ => hex(own),
    }
}

/// The members of struct/union `id` into `out`; an anonymous member's own
/// members are shown in place.
fn members(btf: &Btf, id: TypeId, bytes: &[u8], depth: usize, out: &mut Map<String, Value>) {
    let Ok(ms) = btf.members(id) else {
        return;
    };
    for m in ms {
        let byte = (m.bit_offset / 8) as usize;
        let shown = if m.bitfield_size > 0 {
            let bit = m.bit_offset % 8;
            let span = ((bit + m.bitfield_size).div_ceil(8) as usize).min(16);
            match bytes.get(byte..byte + span) {
                Some(b) => {
                    let v = (uint(b) >> bit) & ((1u128 << m.bitfield_size.min(127)) - 1);
                    Value::String(format!("{v:#x}"))
                }
                None => Value::Null,
            }
        } else {
            match bytes.get(byte..) {
                Some(b) => value(btf, m.type_id, b, depth + 1),
                None => Value::Null,
            }
        };
        if m.name.is_empty() {
            if let Value::Object(inner) = shown {
                out.extend(inner);
                continue;
            }
        }
        out.insert(m.name.to_string(), shown);
    }
}

/// A char array that holds a string (printable up to a NUL) as the string.
fn char_string(btf: &Btf, elem: TypeId, esize: usize, bytes: &[u8]) -> Option<String> {
    if esize != 1 {
        return None;
    }
    let e = btf.resolve(elem).ok()?;
    let t = btf.get(e)?;
    let TypeData::Int { data, .. } = t.data else {
        return None;
    };
    let is_char = data >> 24 & 2 != 0 || btf.name(t.name_off).ok()? == "char";
    if !is_char {
        return None;
    }
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let s = &bytes[..end];
    if s.iter().all(|b| (0x20..0x7f).contains(b)) {
        Some(String::from_utf8_lossy(s).into_owned())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::btf::{BtfType, Member};

    #[test]
    fn ints_structs_and_strings() {
        let mut btf = Btf::default();
        let int_name = btf.add_string("int");
        let int = btf.add_type(BtfType::new(
            int_name,
            false,
            TypeData::Int {
                size: 4,
                data: (1 << 24) | 32,
            },
        ));
        let char_name = btf.add_string("char");
        let ch = btf.add_type(BtfType::new(
            char_name,
            false,
            TypeData::Int {
                size: 1,
                data: (1 << 24) | 8,
            },
        ));
        let arr = btf.add_type(BtfType::new(
            0,
            false,
            TypeData::Array {
                elem: ch,
                index: int,
                nelems: 4,
            },
        ));
        let a = btf.add_string("a");
        let s = btf.add_string("s");
        let b = btf.add_string("b");
        let st = btf.add_type(BtfType::new(
            0,
            true,
            TypeData::Struct {
                size: 12,
                members: vec![
                    Member {
                        name_off: a,
                        type_id: int,
                        offset: 0,
                    },
                    Member {
                        name_off: s,
                        type_id: arr,
                        offset: 32,
                    },
                    Member {
                        name_off: b,
                        type_id: int,
                        offset: (3 << 24) | 66,
                    },
                ],
            },
        ));
        let bytes = [
            0xfe,
            0xff,
            0xff,
            0xff,
            b'h',
            b'i',
            0,
            0,
            0b0001_0100,
            0,
            0,
            0,
        ];
        assert_eq!(
            format(&btf, st, &bytes),
            json!({"a": -2, "s": "hi", "b": "0x5"})
        );
        // Too few bytes for the type: hex.
        assert_eq!(format(&btf, int, &[1, 2]), json!("0x0201"));
    }
}
