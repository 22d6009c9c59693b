//! The shape of a type as deduplication sees it: the ids it refers to
//! (in encoding order), the name offsets it holds, and its "shallow" part
//! (everything but referenced ids), compared by [`shallow_eq`] and hashed
//! by [`shallow_hash`]. These are the canonical keys every pass uses.

use super::fxhash::FxHasher;
use crate::error::Result;
use crate::model::btf::{BtfType, Kind, TypeData};
use std::hash::Hasher;

/// Calls `f` with every string offset `t` holds.
pub(super) fn for_each_name(t: &BtfType, mut f: impl FnMut(u32)) {
    use TypeData as D;
    f(t.name_off);
    match &t.data {
        D::Struct { members, .. } | D::Union { members, .. } => {
            members.iter().for_each(|m| f(m.name_off))
        }
        D::Enum { values, .. } => values.iter().for_each(|v| f(v.name_off)),
        D::Enum64 { values, .. } => values.iter().for_each(|v| f(v.name_off)),
        D::FuncProto { params, .. } => params.iter().for_each(|p| f(p.name_off)),
        _ => {}
    }
}

/// Number of referenced ids of `t` (see [`child`]).
#[inline]
pub(super) fn nchildren(t: &BtfType) -> usize {
    use TypeData as D;
    match &t.data {
        D::Array { .. } => 2,
        D::Struct { members, .. } | D::Union { members, .. } => members.len(),
        D::FuncProto { params, .. } => params.len() + 1,
        D::Datasec { vars, .. } => vars.len(),
        D::Ptr(_)
        | D::Typedef(_)
        | D::Volatile(_)
        | D::Const(_)
        | D::Restrict(_)
        | D::TypeTag(_)
        | D::Func { .. }
        | D::Var { .. }
        | D::DeclTag { .. } => 1,
        _ => 0,
    }
}

/// Referenced id number `k` of `t`, in encoding order.
#[inline]
pub(super) fn child(t: &BtfType, k: usize) -> Option<u32> {
    use TypeData as D;
    Some(match &t.data {
        D::Array { elem, index, .. } => match k {
            0 => elem.0,
            1 => index.0,
            _ => return None,
        },
        D::Struct { members, .. } | D::Union { members, .. } => members.get(k)?.type_id.0,
        D::FuncProto { ret, params } => {
            if k == 0 {
                ret.0
            } else {
                params.get(k - 1)?.type_id.0
            }
        }
        D::Datasec { vars, .. } => vars.get(k)?.type_id.0,
        _ if k == 0 => t.ref_type()?.0,
        _ => return None,
    })
}

/// Whether `a` and `b` agree on everything but their referenced ids;
/// `str_eq` compares two name offsets.
pub(super) fn shallow_eq_by(
    a: &BtfType,
    b: &BtfType,
    str_eq: &dyn Fn(u32, u32) -> Result<bool>,
) -> Result<bool> {
    use TypeData as D;
    if a.kind_flag != b.kind_flag || !str_eq(a.name_off, b.name_off)? {
        return Ok(false);
    }
    Ok(match (&a.data, &b.data) {
        (D::Void, D::Void)
        | (D::Fwd, D::Fwd)
        | (D::Ptr(_), D::Ptr(_))
        | (D::Typedef(_), D::Typedef(_))
        | (D::Volatile(_), D::Volatile(_))
        | (D::Const(_), D::Const(_))
        | (D::Restrict(_), D::Restrict(_))
        | (D::TypeTag(_), D::TypeTag(_)) => true,
        (D::Int { size: s1, data: d1 }, D::Int { size: s2, data: d2 }) => s1 == s2 && d1 == d2,
        (D::Float { size: s1 }, D::Float { size: s2 }) => s1 == s2,
        (D::Func { linkage: l1, .. }, D::Func { linkage: l2, .. }) => l1 == l2,
        (D::Array { nelems: n1, .. }, D::Array { nelems: n2, .. }) => n1 == n2,
        (D::Var { linkage: l1, .. }, D::Var { linkage: l2, .. }) => l1 == l2,
        (
            D::DeclTag {
                component_idx: c1, ..
            },
            D::DeclTag {
                component_idx: c2, ..
            },
        ) => c1 == c2,
        (
            D::Struct {
                size: s1,
                members: m1,
            },
            D::Struct {
                size: s2,
                members: m2,
            },
        )
        | (
            D::Union {
                size: s1,
                members: m1,
            },
            D::Union {
                size: s2,
                members: m2,
            },
        ) => s1 == s2 && same_named(m1, m2, |m| (m.name_off, u64::from(m.offset)), str_eq)?,
        (
            D::Enum {
                size: s1,
                values: v1,
            },
            D::Enum {
                size: s2,
                values: v2,
            },
        ) => s1 == s2 && same_named(v1, v2, |v| (v.name_off, u64::from(v.val)), str_eq)?,
        (
            D::Enum64 {
                size: s1,
                values: v1,
            },
            D::Enum64 {
                size: s2,
                values: v2,
            },
        ) => s1 == s2 && same_named(v1, v2, |v| (v.name_off, v.val), str_eq)?,
        (D::FuncProto { params: p1, .. }, D::FuncProto { params: p2, .. }) => {
            same_named(p1, p2, |p| (p.name_off, 0), str_eq)?
        }
        (D::Datasec { size: s1, vars: v1 }, D::Datasec { size: s2, vars: v2 }) => {
            s1 == s2
                && v1.len() == v2.len()
                && v1
                    .iter()
                    .zip(v2)
                    .all(|(x, y)| x.offset == y.offset && x.size == y.size)
        }
        _ => false,
    })
}

/// Whether two lists have the same length and, pairwise, the same value
/// and name (`part` gives an element's name offset and value).
fn same_named<T>(
    a: &[T],
    b: &[T],
    part: impl Fn(&T) -> (u32, u64),
    str_eq: &dyn Fn(u32, u32) -> Result<bool>,
) -> Result<bool> {
    if a.len() != b.len() {
        return Ok(false);
    }
    for (x, y) in a.iter().zip(b) {
        let ((nx, vx), (ny, vy)) = (part(x), part(y));
        if vx != vy || !str_eq(nx, ny)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// [`shallow_eq_by`] for types of one BTF whose names are string ids.
#[inline]
pub(super) fn shallow_eq(a: &BtfType, b: &BtfType) -> bool {
    shallow_eq_by(a, b, &|x, y| Ok(x == y)).unwrap_or(false)
}

/// Hash of everything [`shallow_eq`] compares.
pub(super) fn shallow_hash(t: &BtfType, h: &mut FxHasher) {
    use TypeData as D;
    h.write_u8(t.kind() as u8);
    h.write_u8(t.kind_flag as u8);
    h.write_u32(t.name_off);
    match &t.data {
        D::Int { size, data } => {
            h.write_u32(*size);
            h.write_u32(*data);
        }
        D::Float { size } => h.write_u32(*size),
        D::Func { linkage, .. } => h.write_u32(*linkage as u32),
        D::Array { nelems, .. } => h.write_u32(*nelems),
        D::Var { linkage, .. } => h.write_u32(*linkage),
        D::DeclTag { component_idx, .. } => h.write_u32(*component_idx as u32),
        D::Struct { size, members } | D::Union { size, members } => {
            h.write_u32(*size);
            h.write_usize(members.len());
            for m in members {
                h.write_u32(m.name_off);
                h.write_u32(m.offset);
            }
        }
        D::Enum { size, values } => {
            h.write_u32(*size);
            for v in values {
                h.write_u32(v.name_off);
                h.write_u32(v.val);
            }
        }
        D::Enum64 { size, values } => {
            h.write_u32(*size);
            for v in values {
                h.write_u32(v.name_off);
                h.write_u64(v.val);
            }
        }
        D::FuncProto { params, .. } => {
            h.write_usize(params.len());
            for p in params {
                h.write_u32(p.name_off);
            }
        }
        D::Datasec { size, vars } => {
            h.write_u32(*size);
            for v in vars {
                h.write_u32(v.offset);
                h.write_u32(v.size);
            }
        }
        _ => {}
    }
}

pub(super) fn is_enum_fwd(t: &BtfType) -> bool {
    match &t.data {
        TypeData::Enum { values, .. } => values.is_empty(),
        TypeData::Enum64 { values, .. } => values.is_empty(),
        _ => false,
    }
}

pub(super) fn is_prim(k: Kind) -> bool {
    matches!(
        k,
        Kind::Int | Kind::Float | Kind::Enum | Kind::Enum64 | Kind::Fwd
    )
}

pub(super) fn is_composite(k: Kind) -> bool {
    matches!(k, Kind::Struct | Kind::Union)
}
