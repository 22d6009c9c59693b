//! When a local type and a target type are the same thing, in libbpf's
//! three senses: compatible roots (TYPE_EXISTS, TYPE_SIZE, TYPE_ID_TARGET),
//! compatible fields (the member a field access ends on) and matching
//! types (TYPE_MATCHES, the strictest).

use bpfld::model::btf::{int_encoding, int_offset, Btf, BtfType, Kind, TypeData, TypeId};

use super::spec::{members, name, skip, ty};
use super::R;

/// libbpf's "essential" name: without a `___flavour` suffix (the last
/// `X___Y` separator, X and Y not underscores, ends the name).
pub(crate) fn essential(name: &str) -> &str {
    let b = name.as_bytes();
    if b.len() >= 5 {
        for i in (0..=b.len() - 5).rev() {
            if b[i] != b'_' && &b[i + 1..i + 4] == b"___" && b[i + 4] != b'_' {
                return &name[..i + 1];
            }
        }
    }
    name
}

fn is_any_enum(t: &BtfType) -> bool {
    matches!(t.kind(), Kind::Enum | Kind::Enum64)
}

fn is_composite(t: &BtfType) -> bool {
    matches!(t.kind(), Kind::Struct | Kind::Union)
}

/// Same kind, ENUM and ENUM64 counting as one.
pub(crate) fn kinds_compat(a: &BtfType, b: &BtfType) -> bool {
    a.kind() == b.kind() || (is_any_enum(a) && is_any_enum(b))
}

fn int_data(t: &BtfType) -> u32 {
    match t.data {
        TypeData::Int { data, .. } => data,
        _ => 0,
    }
}

/// Root types of a type-based relocation: names were matched by the
/// candidate search; kinds must agree all the way down through pointers,
/// arrays and function prototypes.
pub(crate) fn types_are_compat(
    local: &Btf,
    mut lid: TypeId,
    targ: &Btf,
    mut tid: TypeId,
    level: i32,
) -> R<bool> {
    if !kinds_compat(ty(local, lid)?, ty(targ, tid)?) {
        return Ok(false);
    }
    for _ in 0..32 {
        let (_, lt) = skip(local, lid)?;
        let (_, tt) = skip(targ, tid)?;
        if !kinds_compat(lt, tt) {
            return Ok(false);
        }
        match (&lt.data, &tt.data) {
            (
                TypeData::Void
                | TypeData::Struct { .. }
                | TypeData::Union { .. }
                | TypeData::Enum { .. }
                | TypeData::Enum64 { .. }
                | TypeData::Fwd,
                _,
            ) => return Ok(true),
            (TypeData::Int { data: a, .. }, TypeData::Int { data: b, .. }) => {
                return Ok(int_offset(*a) == 0 && int_offset(*b) == 0)
            }
            (TypeData::Ptr(a), TypeData::Ptr(b)) => (lid, tid) = (*a, *b),
            (TypeData::Array { elem: a, .. }, TypeData::Array { elem: b, .. }) => {
                (lid, tid) = (*a, *b)
            }
            (
                TypeData::FuncProto {
                    ret: lr,
                    params: lp,
                },
                TypeData::FuncProto {
                    ret: tr,
                    params: tp,
                },
            ) => {
                if lp.len() != tp.len() {
                    return Ok(false);
                }
                for (a, b) in lp.iter().zip(tp) {
                    if level <= 0 {
                        return Err("function prototypes nest too deep".into());
                    }
                    let a = skip(local, a.type_id)?.0;
                    let b = skip(targ, b.type_id)?.0;
                    if !types_are_compat(local, a, targ, b, level - 1)? {
                        return Ok(false);
                    }
                }
                (lid, tid) = (skip(local, *lr)?.0, skip(targ, *tr)?.0);
            }
            _ => return Ok(false),
        }
    }
    Err("types nest too deep".into())
}

/// The member a field access ends on, local against target: any two
/// structs/unions, pointers, floats; enums and forward declarations of the
/// same essential name (or an anonymous one); integers that are not
/// old-style bitfield integers; arrays of compatible elements.
pub(crate) fn fields_are_compat(
    local: &Btf,
    mut lid: TypeId,
    targ: &Btf,
    mut tid: TypeId,
) -> R<bool> {
    for _ in 0..64 {
        let (_, lt) = skip(local, lid)?;
        let (_, tt) = skip(targ, tid)?;
        if is_composite(lt) && is_composite(tt) {
            return Ok(true);
        }
        if !kinds_compat(lt, tt) {
            return Ok(false);
        }
        match (&lt.data, &tt.data) {
            (TypeData::Ptr(_), _) | (TypeData::Float { .. }, _) => return Ok(true),
            (TypeData::Fwd | TypeData::Enum { .. } | TypeData::Enum64 { .. }, _) => {
                let ln = essential(name(local, lt.name_off)?);
                let tn = essential(name(targ, tt.name_off)?);
                return Ok(ln.is_empty() || tn.is_empty() || ln == tn);
            }
            (TypeData::Int { .. }, _) => {
                return Ok(int_offset(int_data(lt)) == 0 && int_offset(int_data(tt)) == 0)
            }
            (TypeData::Array { elem: a, .. }, TypeData::Array { elem: b, .. }) => {
                (lid, tid) = (*a, *b)
            }
            _ => return Ok(false),
        }
    }
    Err("array types nest too deep".into())
}

fn names_match(local: &Btf, loff: u32, targ: &Btf, toff: u32) -> R<bool> {
    let ln = name(local, loff)?;
    let tn = name(targ, toff)?;
    if tn.is_empty() {
        return Ok(ln.is_empty());
    }
    Ok(essential(ln) == essential(tn))
}

fn enumerator_names(t: &BtfType) -> Vec<u32> {
    match &t.data {
        TypeData::Enum { values, .. } => values.iter().map(|v| v.name_off).collect(),
        TypeData::Enum64 { values, .. } => values.iter().map(|v| v.name_off).collect(),
        _ => Vec::new(),
    }
}

/// TYPE_MATCHES: the local type's shape exists in the target: same kinds
/// (a struct/union behind a pointer may be a forward declaration, ENUM
/// and ENUM64 mix), integers of the same size and signedness, arrays of
/// the same length, every local member and enumerator present by name,
/// members matching recursively (only by name and kind behind a pointer).
pub(crate) fn types_match(
    local: &Btf,
    mut lid: TypeId,
    targ: &Btf,
    mut tid: TypeId,
    mut behind_ptr: bool,
    level: i32,
) -> R<bool> {
    if level <= 0 {
        return Err("types nest too deep".into());
    }
    for _ in 0..32 {
        let (_, lt) = skip(local, lid)?;
        let (_, tt) = skip(targ, tid)?;
        if !names_match(local, lt.name_off, targ, tt.name_off)? {
            return Ok(false);
        }
        let (lk, tk) = (lt.kind(), tt.kind());
        match &lt.data {
            TypeData::Void => return Ok(lk == tk),
            TypeData::Fwd => {
                let lf = lt.kind_flag;
                return Ok(if behind_ptr {
                    if lk == tk {
                        lf == tt.kind_flag
                    } else {
                        (tk == Kind::Struct && !lf) || (tk == Kind::Union && lf)
                    }
                } else {
                    lk == tk && lf == tt.kind_flag
                });
            }
            TypeData::Enum { .. } | TypeData::Enum64 { .. } => {
                if !is_any_enum(tt) || lt.size_field() != tt.size_field() {
                    return Ok(false);
                }
                let (ln, tn) = (enumerator_names(lt), enumerator_names(tt));
                if ln.len() > tn.len() {
                    return Ok(false);
                }
                for l in ln {
                    let mut found = false;
                    for &t in &tn {
                        if names_match(local, l, targ, t)? {
                            found = true;
                            break;
                        }
                    }
                    if !found {
                        return Ok(false);
                    }
                }
                return Ok(true);
            }
            TypeData::Struct { .. } | TypeData::Union { .. } => {
                if behind_ptr {
                    if lk == tk {
                        return Ok(true);
                    }
                    return Ok(tk == Kind::Fwd && (lk == Kind::Union) == tt.kind_flag);
                }
                if lk != tk {
                    return Ok(false);
                }
                let (lms, tms) = (members(lt).unwrap_or(&[]), members(tt).unwrap_or(&[]));
                if lms.len() > tms.len() {
                    return Ok(false);
                }
                for lm in lms {
                    let mut found = false;
                    for tm in tms {
                        if !names_match(local, lm.name_off, targ, tm.name_off)? {
                            continue;
                        }
                        if types_match(local, lm.type_id, targ, tm.type_id, behind_ptr, level - 1)?
                        {
                            found = true;
                            break;
                        }
                    }
                    if !found {
                        return Ok(false);
                    }
                }
                return Ok(true);
            }
            TypeData::Int { size: ls, data: ld } => {
                let TypeData::Int { size: ts, data: td } = &tt.data else {
                    return Ok(false);
                };
                const SIGNED: u8 = bpfld::model::btf::BTF_INT_SIGNED;
                return Ok(ls == ts && int_encoding(*ld) & SIGNED == int_encoding(*td) & SIGNED);
            }
            TypeData::Ptr(l) => {
                let TypeData::Ptr(t) = &tt.data else {
                    return Ok(false);
                };
                behind_ptr = true;
                (lid, tid) = (*l, *t);
            }
            TypeData::Array {
                elem: le,
                nelems: ln,
                ..
            } => {
                let TypeData::Array {
                    elem: te,
                    nelems: tn,
                    ..
                } = &tt.data
                else {
                    return Ok(false);
                };
                if ln != tn {
                    return Ok(false);
                }
                (lid, tid) = (*le, *te);
            }
            TypeData::FuncProto {
                ret: lr,
                params: lp,
            } => {
                let TypeData::FuncProto {
                    ret: tr,
                    params: tp,
                } = &tt.data
                else {
                    return Ok(false);
                };
                if lp.len() != tp.len() {
                    return Ok(false);
                }
                for (a, b) in lp.iter().zip(tp) {
                    if !types_match(local, a.type_id, targ, b.type_id, behind_ptr, level - 1)? {
                        return Ok(false);
                    }
                }
                (lid, tid) = (*lr, *tr);
            }
            _ => return Ok(false),
        }
    }
    Err("types nest too deep".into())
}

#[cfg(test)]
mod tests {
    use super::essential;

    #[test]
    fn essential_names_drop_the_last_flavour() {
        assert_eq!(essential("task_struct___mine"), "task_struct");
        assert_eq!(essential("a___b___c"), "a___b");
        assert_eq!(essential("task_struct"), "task_struct");
        // The separator needs a non-underscore on both sides.
        assert_eq!(essential("a____b"), "a____b");
        assert_eq!(essential("___x"), "___x");
        assert_eq!(essential("x___"), "x___");
        assert_eq!(essential(""), "");
    }
}
