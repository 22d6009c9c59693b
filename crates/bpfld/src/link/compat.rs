//! Whether an extern's BTF type fits its definition, with libbpf's rules:
//! kinds and names must agree, integers and enums by size, pointers by the
//! shape of what they point to, struct members by name and offset (only
//! where the comparison is exact), function prototypes by parameter count
//! and types. Map definitions must agree field by field.
//! [`check_compatible`] checks one copy of a global against the chosen one
//! and shows both in C when they differ.

use crate::error::{Error, Result};
use crate::model::btf::{Btf, TypeData, TypeId};

use crate::model::map_def::MapDef;

const MAX_DEPTH: usize = 64;

/// `Err` carries the reason, e.g. "parameter counts 1 and 2".
pub fn types_match(a: &Btf, ia: TypeId, b: &Btf, ib: TypeId, exact: bool) -> Result<(), String> {
    walk(a, ia, b, ib, exact, 0)
}

fn kind_name(btf: &Btf, id: TypeId) -> &'static str {
    btf.get(id).map_or("?", |t| t.kind().name())
}

fn walk(a: &Btf, ia: TypeId, b: &Btf, ib: TypeId, exact: bool, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err("types nest too deeply to compare".into());
    }
    let ia = a.resolve(ia).map_err(|e| e.to_string())?;
    let ib = b.resolve(ib).map_err(|e| e.to_string())?;
    let (Some(ta), Some(tb)) = (a.get(ia), b.get(ib)) else {
        return Err("a type id is out of range".into());
    };
    let (na, nb) = (a.type_name(ia), b.type_name(ib));
    let a_fwd = matches!(ta.data, TypeData::Fwd);
    let b_fwd = matches!(tb.data, TypeData::Fwd);
    if !exact && a_fwd != b_fwd {
        if na != nb {
            return Err(format!("forward declaration '{na}' against '{nb}'"));
        }
        let (fwd, other) = if a_fwd { (ta, tb) } else { (tb, ta) };
        let union = fwd.kind_flag;
        return match (&other.data, union) {
            (TypeData::Union { .. }, true) | (TypeData::Struct { .. }, false) => Ok(()),
            _ => Err(format!("forward declaration of '{na}' is of another kind")),
        };
    }
    if ta.kind() != tb.kind() {
        return Err(format!("{} against {}", ta.kind().name(), tb.kind().name()));
    }
    let named = matches!(
        ta.data,
        TypeData::Struct { .. }
            | TypeData::Union { .. }
            | TypeData::Enum { .. }
            | TypeData::Enum64 { .. }
            | TypeData::Fwd
            | TypeData::Func { .. }
            | TypeData::Var { .. }
    );
    if named && na != nb {
        return Err(format!("{} names '{na}' and '{nb}'", kind_name(a, ia)));
    }
    match (&ta.data, &tb.data) {
        (TypeData::Void, _) | (TypeData::Fwd, _) => Ok(()),
        (TypeData::Int { size: x, .. }, TypeData::Int { size: y, .. })
        | (TypeData::Float { size: x }, TypeData::Float { size: y })
        | (TypeData::Enum { size: x, .. }, TypeData::Enum { size: y, .. })
        | (TypeData::Enum64 { size: x, .. }, TypeData::Enum64 { size: y, .. }) => {
            if x == y {
                Ok(())
            } else {
                Err(format!("'{na}' of {x} bytes against '{nb}' of {y}"))
            }
        }
        // Only the shape of what a pointer points to matters.
        (TypeData::Ptr(x), TypeData::Ptr(y)) => walk(a, *x, b, *y, false, depth + 1),
        (TypeData::Array { elem: x, .. }, TypeData::Array { elem: y, .. }) => {
            walk(a, *x, b, *y, exact, depth + 1)
        }
        (
            TypeData::Func {
                proto: x,
                linkage: la,
            },
            TypeData::Func {
                proto: y,
                linkage: lb,
            },
        ) => {
            if (*la == 0) != (*lb == 0) {
                return Err(format!("function '{na}': static against non-static"));
            }
            walk(a, *x, b, *y, exact, depth + 1)
        }
        (
            TypeData::Var {
                type_id: x,
                linkage: la,
            },
            TypeData::Var {
                type_id: y,
                linkage: lb,
            },
        ) => {
            if (*la == 0) != (*lb == 0) {
                return Err(format!("variable '{na}': static against non-static"));
            }
            walk(a, *x, b, *y, exact, depth + 1)
        }
        (TypeData::Struct { members: ma, .. }, TypeData::Struct { members: mb, .. })
        | (TypeData::Union { members: ma, .. }, TypeData::Union { members: mb, .. }) => {
            if !exact {
                return Ok(());
            }
            if ma.len() != mb.len() {
                return Err(format!("'{na}' has {} members and {}", ma.len(), mb.len()));
            }
            for (i, (x, y)) in ma.iter().zip(mb).enumerate() {
                let (nx, ny) = (
                    a.name(x.name_off).unwrap_or(""),
                    b.name(y.name_off).unwrap_or(""),
                );
                if nx != ny {
                    return Err(format!("'{na}' member {i} is '{nx}' and '{ny}'"));
                }
                if x.offset != y.offset {
                    return Err(format!("'{na}' member '{nx}' at different offsets"));
                }
                walk(a, x.type_id, b, y.type_id, exact, depth + 1)?;
            }
            Ok(())
        }
        (
            TypeData::FuncProto {
                ret: ra,
                params: pa,
            },
            TypeData::FuncProto {
                ret: rb,
                params: pb,
            },
        ) => {
            if pa.len() != pb.len() {
                return Err(format!("{} parameters against {}", pa.len(), pb.len()));
            }
            for (i, (x, y)) in pa.iter().zip(pb).enumerate() {
                walk(a, x.type_id, b, y.type_id, exact, depth + 1)
                    .map_err(|e| format!("parameter {}: {e}", i + 1))?;
            }
            walk(a, *ra, b, *rb, exact, depth + 1).map_err(|e| format!("return type: {e}"))
        }
        _ => Err(format!("unsupported kind {}", ta.kind().name())),
    }
}

/// Map definitions must agree exactly (libbpf requires a complete extern
/// definition); `Err` names the first field that differs.
pub fn map_defs_match(a: &MapDef, b: &MapDef) -> Result<(), String> {
    // Numbers as numbers, a field left out as "unset" (never Rust's
    // `Some(4)`).
    fn opt(v: Option<impl ToString>) -> String {
        v.map_or_else(|| "unset".to_string(), |v| v.to_string())
    }
    let map_type = |t: u32| {
        crate::model::map_def::map_type_name(t).map_or_else(|| format!("type {t}"), str::to_string)
    };
    let fields: [(&str, String, String); 8] = [
        ("type", map_type(a.map_type), map_type(b.map_type)),
        ("key_size", opt(a.key_size), opt(b.key_size)),
        ("value_size", opt(a.value_size), opt(b.value_size)),
        (
            "max_entries",
            a.max_entries.to_string(),
            b.max_entries.to_string(),
        ),
        (
            "map_flags",
            a.map_flags.to_string(),
            b.map_flags.to_string(),
        ),
        ("numa_node", opt(a.numa_node), opt(b.numa_node)),
        ("pinning", a.pinning.to_string(), b.pinning.to_string()),
        ("map_extra", opt(a.map_extra), opt(b.map_extra)),
    ];
    for (name, x, y) in fields {
        if x != y {
            return Err(format!("{name} {x} against {y}"));
        }
    }
    match (&a.inner, &b.inner) {
        (None, None) => Ok(()),
        (Some(x), Some(y)) => map_defs_match(x, y).map_err(|e| format!("inner map: {e}")),
        _ => Err("only one has an inner map".into()),
    }
}

/// The key and value types of a BTF-defined map's definition struct.
fn map_kv(btf: &Btf, var: TypeId) -> (Option<TypeId>, Option<TypeId>) {
    let Some(TypeData::Var { type_id, .. }) = btf.get(var).map(|t| &t.data) else {
        return (None, None);
    };
    let Ok(st) = btf.resolve(*type_id) else {
        return (None, None);
    };
    let Ok(members) = btf.members(st) else {
        return (None, None);
    };
    let pointee = |name: &str| {
        let m = members.iter().find(|m| m.name == name)?;
        crate::model::map_def::pointee(btf, m.type_id).ok()
    };
    (pointee("key"), pointee("value"))
}

/// Checks one declaration or definition of a global against the chosen
/// one (a definition when `defined`, else the first declaration), with an
/// error that shows both in C syntax.
pub(super) fn check_compatible(
    name: &str,
    (fa, ba, ia): (&str, &Btf, TypeId),
    (fb, bb, ib): (&str, &Btf, TypeId),
    is_map: bool,
    defined: bool,
) -> Result<()> {
    let show = |btf: &Btf, id: TypeId| crate::model::btf::c_type::prototype(btf, id, name);
    let what = if defined { "definition" } else { "declaration" };
    let fail = |why: String| {
        Error::new(format!(
            "'{name}' in {fb} does not match its {what} in {fa} ({why}):\n  {fa}: {}\n  {fb}: {}",
            show(ba, ia),
            show(bb, ib)
        ))
    };
    if is_map {
        let def = |btf: &Btf, id: TypeId| -> Result<crate::model::map_def::MapDef> {
            match btf.get(id).map(|t| &t.data) {
                Some(TypeData::Var { type_id, .. }) => {
                    crate::model::map_def::parse_map_def(btf, *type_id, 0)
                }
                _ => crate::bail!("map '{name}' is not a BTF VAR"),
            }
        };
        let (da, db) = (def(ba, ia)?, def(bb, ib)?);
        map_defs_match(&da, &db).map_err(|w| {
            Error::new(format!(
                "map '{name}' in {fb} does not match its {what} in {fa}: {w}"
            ))
        })?;
        let ((ka, va), (kb, vb)) = (map_kv(ba, ia), map_kv(bb, ib));
        for (kv, x, y) in [("key", ka, kb), ("value", va, vb)] {
            if let (Some(x), Some(y)) = (x, y) {
                types_match(ba, x, bb, y, true).map_err(|w| {
                    Error::new(format!(
                        "map '{name}' in {fb} does not match its {what} in {fa}: {kv} types {} and {} ({w})",
                        crate::model::btf::c_type::type_name(ba, x),
                        crate::model::btf::c_type::type_name(bb, y)
                    ))
                })?;
            }
        }
        return Ok(());
    }
    types_match(ba, ia, bb, ib, true).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_definitions_differ_in_plain_words() {
        let a = MapDef {
            map_type: 6,
            key_size: Some(4),
            ..MapDef::default()
        };
        let e = map_defs_match(
            &a,
            &MapDef {
                map_type: 17,
                ..a.clone()
            },
        )
        .unwrap_err();
        assert_eq!(e, "type percpu_array against xskmap");
        let e = map_defs_match(
            &a,
            &MapDef {
                key_size: Some(8),
                ..a.clone()
            },
        )
        .unwrap_err();
        assert_eq!(e, "key_size 4 against 8");
        let e = map_defs_match(
            &a,
            &MapDef {
                key_size: None,
                ..a.clone()
            },
        )
        .unwrap_err();
        assert_eq!(e, "key_size 4 against unset");
    }
}
