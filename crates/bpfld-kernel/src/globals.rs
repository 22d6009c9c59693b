//! `--set VAR=VALUE`: a global variable's new initial value, encoded by its
//! BTF type, checked to fit, and handed to aya before the maps of global
//! data are created (`.rodata` is then frozen with it, so the verifier
//! sees the value as a constant and prunes the branches it rules out).

use bpfld::model::btf::{Btf, TypeData, TypeId};
use bpfld::model::object::{Object, SectionKind, SymbolPlace};

use crate::error::{Error, ErrorKind, Result};

/// One global to set: its symbol name and its bytes (exactly its size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalValue {
    pub name: String,
    pub bytes: Vec<u8>,
}

fn bad(msg: String) -> Error {
    Error::new(ErrorKind::Object, msg)
}

/// Encodes `VAR=VALUE` settings against `object` (an ELF eBPF object).
/// VALUE is decimal or 0x-hex for integers (negative for signed ones),
/// `true`/`false` for bools, an enumerator name for enums, a string for
/// char arrays (it must leave room for the NUL).
pub fn encode_globals(object: &[u8], sets: &[String]) -> Result<Vec<GlobalValue>> {
    if sets.is_empty() {
        return Ok(Vec::new());
    }
    let obj = bpfld::Object::parse(object).map_err(|e| bad(e.to_string()))?;
    let Some(btf) = &obj.btf else {
        return Err(bad(
            "--set needs the object's BTF to find variables, and it has none".into(),
        ));
    };
    let globals = data_vars(&obj, btf);
    sets.iter()
        .map(|s| {
            let (name, value) = s
                .split_once('=')
                .ok_or_else(|| bad(format!("--set {s}: expected VAR=VALUE")))?;
            let Some((ty, sym_size)) = globals
                .iter()
                .find(|(n, _, _)| n == name)
                .map(|(_, t, z)| (*t, *z))
            else {
                let mut names: Vec<&str> = globals.iter().map(|(n, _, _)| n.as_str()).collect();
                names.sort();
                return Err(bad(if names.is_empty() {
                    format!("--set {s}: no global variable named '{name}': the object has none")
                } else {
                    format!(
                        "--set {s}: no global variable named '{name}'; the object's globals are: {}",
                        names.join(", ")
                    )
                }));
            };
            let bytes = encode(btf, ty, value)
                .map_err(|why| bad(format!("--set {s}: {why}")))?;
            if bytes.len() as u64 != sym_size {
                return Err(bad(format!(
                    "--set {s}: '{name}' is {sym_size} bytes in the symbol table but its type is {}",
                    bytes.len()
                )));
            }
            Ok(GlobalValue {
                name: name.to_string(),
                bytes,
            })
        })
        .collect()
}

/// (name, type, symbol size) of every variable of the global data sections.
fn data_vars(obj: &Object, btf: &Btf) -> Vec<(String, TypeId, u64)> {
    let mut out = Vec::new();
    for sec in &obj.sections {
        if !matches!(
            sec.kind,
            SectionKind::Data | SectionKind::Rodata | SectionKind::Bss
        ) {
            continue;
        }
        let Some(ds) = btf.find_datasec(&sec.name) else {
            continue;
        };
        for v in btf.datasec_vars(ds).unwrap_or_default() {
            let Some(sym) = obj
                .symbols
                .iter()
                .find(|s| s.place == SymbolPlace::Section(sec.id) && s.name == v.name)
            else {
                continue;
            };
            out.push((v.name.to_string(), v.type_id, sym.size));
        }
    }
    out
}

fn parse_int(text: &str) -> std::result::Result<i128, String> {
    let t = text.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let v = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(h) => i128::from_str_radix(h, 16),
        None => digits.parse::<i128>(),
    }
    .map_err(|_| format!("'{text}' is not a number (decimal or 0x-hex)"))?;
    Ok(if neg { -v } else { v })
}

fn int_bytes(v: i128, size: u32, signed: bool) -> std::result::Result<Vec<u8>, String> {
    let bits = size * 8;
    let (min, max) = if signed {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    } else {
        (0, (1i128 << bits) - 1)
    };
    if v < min || v > max {
        return Err(format!(
            "{v} does not fit {}{bits} ({min}..={max})",
            if signed { "s" } else { "u" }
        ));
    }
    // Host byte order, as the kernel reads the map.
    Ok(v.to_le_bytes()[..size as usize].to_vec())
}

/// One `--map-update NAME KEY=VALUE`, encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapUpdate {
    pub map: String,
    pub key: Vec<u8>,
    /// One CPU's value; per-CPU maps get it on every CPU.
    pub value: Vec<u8>,
    /// The setting as given, for messages.
    pub text: String,
}

/// Encodes `(NAME, KEY=VALUE)` map seeds against `object`: KEY and VALUE
/// are integers (decimal or 0x-hex, enumerator names) when the map's BTF
/// types them as integers, else hex bytes in memory order (an optional
/// 0x prefix; their count is checked against the map when it exists).
pub fn encode_map_updates(object: &[u8], updates: &[(String, String)]) -> Result<Vec<MapUpdate>> {
    if updates.is_empty() {
        return Ok(Vec::new());
    }
    let obj = bpfld::Object::parse(object).map_err(|e| bad(e.to_string()))?;
    let types = obj.btf.as_ref().map(|btf| (btf, map_kv_types(btf)));
    let mut names: Vec<String> = bpfld::model::map_def::map_defs(&obj)
        .map(|defs| defs.into_iter().map(|d| d.name).collect())
        .unwrap_or_default();
    names.extend(
        obj.sections
            .iter()
            .filter(|s| {
                matches!(
                    s.kind,
                    SectionKind::Data | SectionKind::Rodata | SectionKind::Bss
                )
            })
            .map(|s| s.name.clone()),
    );
    names.sort();
    updates
        .iter()
        .map(|(map, kv)| {
            let text = format!("--map-update {map} {kv}");
            if !names.contains(map) {
                return Err(bad(format!(
                    "{text}: no map named '{map}'; the object's maps are: {}",
                    names.join(", ")
                )));
            }
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| bad(format!("{text}: expected KEY=VALUE")))?;
            let typed = types.as_ref().and_then(|(btf, t)| {
                t.iter()
                    .find(|(n, _, _)| n == map)
                    .map(|(_, k, v)| (*btf, *k, *v))
            });
            let enc = |s: &str, id: Option<TypeId>, what: &str| {
                let e = match (typed, id) {
                    (Some((btf, _, _)), Some(id)) if is_integer(btf, id) => encode(btf, id, s),
                    _ => hex_bytes(s),
                };
                e.map_err(|why| bad(format!("{text}: the {what}: {why}")))
            };
            Ok(MapUpdate {
                map: map.clone(),
                key: enc(k, typed.and_then(|t| t.1), "key")?,
                value: enc(v, typed.and_then(|t| t.2), "value")?,
                text,
            })
        })
        .collect()
}

/// (map, key type, value type) of every BTF-defined map.
fn map_kv_types(btf: &Btf) -> Vec<(String, Option<TypeId>, Option<TypeId>)> {
    let mut out = Vec::new();
    let Some(maps) = btf.find_datasec(".maps") else {
        return out;
    };
    let pointee = |id| bpfld::model::map_def::pointee(btf, id).ok();
    for v in btf.datasec_vars(maps).unwrap_or_default() {
        let Ok(def) = btf.resolve(v.type_id) else {
            continue;
        };
        let (mut key, mut value) = (None, None);
        for m in btf.members(def).unwrap_or_default() {
            match m.name {
                "key" => key = pointee(m.type_id),
                "value" => value = pointee(m.type_id),
                _ => {}
            }
        }
        out.push((v.name.to_string(), key, value));
    }
    out
}

fn is_integer(btf: &Btf, id: TypeId) -> bool {
    btf.resolve(id)
        .ok()
        .and_then(|r| btf.get(r))
        .is_some_and(|t| {
            matches!(
                t.data,
                TypeData::Int { size: 1..=8, .. } | TypeData::Enum { .. } | TypeData::Enum64 { .. }
            )
        })
}

fn hex_bytes(s: &str) -> std::result::Result<Vec<u8>, String> {
    let h = s.strip_prefix("0x").unwrap_or(s);
    if h.is_empty() || h.len() % 2 != 0 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "'{s}' is not hex bytes (an even number of hex digits, in memory order)"
        ));
    }
    Ok((0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap_or(0))
        .collect())
}

fn encode(btf: &Btf, id: TypeId, value: &str) -> std::result::Result<Vec<u8>, String> {
    let id = btf.resolve(id).map_err(|e| e.to_string())?;
    let t = btf.ty(id).map_err(|e| e.to_string())?;
    match &t.data {
        TypeData::Int { size, data } if (1..=8).contains(size) => {
            let encoding = data >> 24;
            if encoding & 4 != 0 {
                let b = match value {
                    "true" => 1,
                    "false" => 0,
                    other => parse_int(other)?,
                };
                return int_bytes(b, *size, false);
            }
            int_bytes(parse_int(value)?, *size, encoding & 1 != 0)
        }
        TypeData::Ptr(_) => int_bytes(parse_int(value)?, 8, false),
        TypeData::Enum { size, values } => {
            let v = match values
                .iter()
                .find(|e| btf.name(e.name_off).ok() == Some(value))
            {
                Some(e) if t.kind_flag => i128::from(e.val as i32),
                Some(e) => i128::from(e.val),
                None => parse_int(value)?,
            };
            int_bytes(v, *size, t.kind_flag)
        }
        TypeData::Enum64 { size, values } => {
            let v = match values
                .iter()
                .find(|e| btf.name(e.name_off).ok() == Some(value))
            {
                Some(e) if t.kind_flag => i128::from(e.val as i64),
                Some(e) => i128::from(e.val),
                None => parse_int(value)?,
            };
            int_bytes(v, *size, t.kind_flag)
        }
        TypeData::Array { elem, nelems, .. } => {
            let e = btf.resolve(*elem).map_err(|e| e.to_string())?;
            let is_char = matches!(
                btf.ty(e).map(|t| &t.data),
                Ok(TypeData::Int { size: 1, .. })
            );
            if !is_char {
                return Err(format!(
                    "only integers, enums, bools and char arrays can be set, not {}",
                    btf.describe(id)
                ));
            }
            let n = *nelems as usize;
            if value.len() >= n {
                return Err(format!(
                    "the string is {} bytes; char[{n}] holds at most {} and the NUL",
                    value.len(),
                    n.saturating_sub(1)
                ));
            }
            let mut out = value.as_bytes().to_vec();
            out.resize(n, 0);
            Ok(out)
        }
        _ => Err(format!(
            "only integers, enums, bools and char arrays can be set, not {}",
            btf.describe(id)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_range_checked() {
        assert_eq!(int_bytes(0x1ff, 2, false).unwrap(), vec![0xff, 0x01]);
        assert_eq!(int_bytes(-1, 1, true).unwrap(), vec![0xff]);
        assert!(int_bytes(0x10000, 2, false)
            .unwrap_err()
            .contains("65536 does not fit u16 (0..=65535)"));
        assert!(int_bytes(-1, 4, false).is_err());
        assert_eq!(parse_int("0x10").unwrap(), 16);
        assert_eq!(parse_int("-7").unwrap(), -7);
        assert!(parse_int("ten").is_err());
    }
}
