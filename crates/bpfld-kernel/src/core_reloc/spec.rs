//! Relocation kinds and access specifications: the parsed form of a
//! record's access string against the object's BTF, and its match in a
//! candidate target type (libbpf's rules: named members are found by name,
//! through anonymous struct/union members; array indices must be in bounds
//! unless the array is a flexible one).

use bpfld::model::btf::{Btf, BtfType, Member, TypeData, TypeId};

use super::compat::{essential, fields_are_compat, types_are_compat, types_match};
use super::R;

/// libbpf's limit on the depth of an access (`BPF_CORE_SPEC_MAX_LEN`).
const MAX_SPEC_LEN: usize = 64;

/// `enum bpf_core_relo_kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum RelKind {
    FieldByteOffset,
    FieldByteSize,
    FieldExists,
    FieldSigned,
    FieldLshiftU64,
    FieldRshiftU64,
    TypeIdLocal,
    TypeIdTarget,
    TypeExists,
    TypeSize,
    EnumvalExists,
    EnumvalValue,
    TypeMatches,
}

impl RelKind {
    pub(crate) fn from_raw(k: u32) -> Option<RelKind> {
        use RelKind::*;
        Some(match k {
            0 => FieldByteOffset,
            1 => FieldByteSize,
            2 => FieldExists,
            3 => FieldSigned,
            4 => FieldLshiftU64,
            5 => FieldRshiftU64,
            6 => TypeIdLocal,
            7 => TypeIdTarget,
            8 => TypeExists,
            9 => TypeSize,
            10 => EnumvalExists,
            11 => EnumvalValue,
            12 => TypeMatches,
            _ => return None,
        })
    }

    /// libbpf's short name of the kind (what its messages print).
    pub(crate) fn name(self) -> &'static str {
        use RelKind::*;
        match self {
            FieldByteOffset => "byte_off",
            FieldByteSize => "byte_sz",
            FieldExists => "field_exists",
            FieldSigned => "signed",
            FieldLshiftU64 => "lshift_u64",
            FieldRshiftU64 => "rshift_u64",
            TypeIdLocal => "local_type_id",
            TypeIdTarget => "target_type_id",
            TypeExists => "type_exists",
            TypeSize => "type_size",
            EnumvalExists => "enumval_exists",
            EnumvalValue => "enumval_value",
            TypeMatches => "type_matches",
        }
    }

    pub(crate) fn is_field(self) -> bool {
        use RelKind::*;
        matches!(
            self,
            FieldByteOffset
                | FieldByteSize
                | FieldExists
                | FieldSigned
                | FieldLshiftU64
                | FieldRshiftU64
        )
    }

    pub(crate) fn is_type(self) -> bool {
        use RelKind::*;
        matches!(
            self,
            TypeIdLocal | TypeIdTarget | TypeExists | TypeSize | TypeMatches
        )
    }

    pub(crate) fn is_enumval(self) -> bool {
        matches!(self, RelKind::EnumvalExists | RelKind::EnumvalValue)
    }
}

/// One meaningful step of an access: a named member (`name` set) or an
/// array index (the first step indexes the root pointer as an array).
#[derive(Clone, Debug)]
pub(crate) struct Accessor<'a> {
    /// The struct/union (for a member) or the element type (for an index).
    pub(crate) type_id: TypeId,
    pub(crate) idx: u32,
    pub(crate) name: Option<&'a str>,
}

/// An access resolved in one BTF.
#[derive(Clone, Debug)]
pub(crate) struct Spec<'a> {
    pub(crate) btf: &'a Btf,
    pub(crate) root: TypeId,
    /// Every index of the access string, anonymous members included.
    pub(crate) raw: Vec<u32>,
    /// The meaningful steps only.
    pub(crate) acc: Vec<Accessor<'a>>,
    pub(crate) bit_offset: u64,
}

impl<'a> Spec<'a> {
    fn new(btf: &'a Btf, root: TypeId) -> Self {
        Spec {
            btf,
            root,
            raw: Vec::new(),
            acc: Vec::new(),
            bit_offset: 0,
        }
    }

    /// `a.b[2].c`, for messages.
    pub(crate) fn path(&self) -> String {
        let mut s = String::new();
        for (i, a) in self.acc.iter().enumerate() {
            match a.name {
                Some(n) => {
                    s.push('.');
                    s.push_str(n);
                }
                None if i > 0 || a.idx > 0 => s.push_str(&format!("[{}]", a.idx)),
                None => {}
            }
        }
        s
    }
}

/// STRUCT/UNION members.
pub(crate) fn members(t: &BtfType) -> Option<&[Member]> {
    match &t.data {
        TypeData::Struct { members, .. } | TypeData::Union { members, .. } => Some(members),
        _ => None,
    }
}

/// A member's bit offset and bitfield size (0: not a bitfield) in `t`.
pub(crate) fn member_bits(t: &BtfType, m: &Member) -> (u32, u32) {
    if t.kind_flag {
        (m.offset & 0xff_ffff, m.offset >> 24)
    } else {
        (m.offset, 0)
    }
}

pub(crate) fn vlen(t: &BtfType) -> usize {
    match &t.data {
        TypeData::Struct { members, .. } | TypeData::Union { members, .. } => members.len(),
        TypeData::Enum { values, .. } => values.len(),
        TypeData::Enum64 { values, .. } => values.len(),
        _ => 0,
    }
}

pub(crate) fn ty(btf: &Btf, id: TypeId) -> R<&BtfType> {
    btf.get(id)
        .ok_or_else(|| format!("type id {} beyond the last type {}", id.0, btf.last_id().0))
}

/// The type behind typedefs and modifiers.
pub(crate) fn skip(btf: &Btf, id: TypeId) -> R<(TypeId, &BtfType)> {
    let id = btf.resolve(id).map_err(|e| e.to_string())?;
    Ok((id, ty(btf, id)?))
}

pub(crate) fn size_of(btf: &Btf, id: TypeId) -> R<u64> {
    btf.size_of(id).map_err(|e| e.to_string())
}

pub(crate) fn name(btf: &Btf, off: u32) -> R<&str> {
    btf.name(off).map_err(|e| e.to_string())
}

/// The name of enumerator `i` of ENUM/ENUM64 `t`.
fn enumerator_name_off(t: &BtfType, i: usize) -> Option<u32> {
    match &t.data {
        TypeData::Enum { values, .. } => values.get(i).map(|v| v.name_off),
        TypeData::Enum64 { values, .. } => values.get(i).map(|v| v.name_off),
        _ => None,
    }
}

fn is_any_enum(t: &BtfType) -> bool {
    matches!(t.data, TypeData::Enum { .. } | TypeData::Enum64 { .. })
}

/// A zero-length array that is the last member of the struct named by the
/// accessor before it.
fn is_flex(btf: &Btf, prev: Option<&Accessor<'_>>, nelems: u32) -> bool {
    let Some(prev) = prev else { return false };
    if prev.name.is_none() || nelems > 0 {
        return false;
    }
    btf.get(prev.type_id)
        .is_some_and(|t| prev.idx as usize + 1 == vlen(t))
}

fn grow(bit_offset: &mut u64, idx: u32, size: u64) -> R<()> {
    *bit_offset = u64::from(idx)
        .checked_mul(size)
        .and_then(|b| b.checked_mul(8))
        .and_then(|b| bit_offset.checked_add(b))
        .ok_or("the access's offset overflows")?;
    Ok(())
}

/// Parses `access` ("0:1:2") for a relocation of `kind` on `root` in the
/// object's BTF.
pub(crate) fn parse_local<'a>(
    btf: &'a Btf,
    root: TypeId,
    kind: RelKind,
    access: &str,
) -> R<Spec<'a>> {
    if access.is_empty() || access.starts_with(':') {
        return Err("malformed access string".into());
    }
    let mut spec = Spec::new(btf, root);
    ty(btf, root)?;
    if kind.is_type() {
        if access != "0" {
            return Err("a type relocation's access string must be \"0\"".into());
        }
        return Ok(spec);
    }
    for part in access.split(':') {
        let i: u32 = part
            .parse()
            .map_err(|_| "malformed access string".to_string())?;
        if spec.raw.len() == MAX_SPEC_LEN {
            return Err(format!("access deeper than {MAX_SPEC_LEN} steps"));
        }
        spec.raw.push(i);
    }
    let (mut id, t) = skip(btf, root)?;
    let first = spec.raw[0];
    if kind.is_enumval() {
        if !is_any_enum(t) || spec.raw.len() > 1 || first as usize >= vlen(t) {
            return Err("not an enumerator of an enum".into());
        }
        let off = enumerator_name_off(t, first as usize).unwrap_or(0);
        spec.acc.push(Accessor {
            type_id: id,
            idx: first,
            name: Some(name(btf, off)?),
        });
        return Ok(spec);
    }
    spec.acc.push(Accessor {
        type_id: id,
        idx: first,
        name: None,
    });
    grow(&mut spec.bit_offset, first, size_of(btf, id)?)?;
    for &idx in &spec.raw.clone()[1..] {
        let (sid, t) = skip(btf, id)?;
        id = sid;
        if let Some(ms) = members(t) {
            let m = ms
                .get(idx as usize)
                .ok_or_else(|| format!("member {idx} of {} does not exist", btf.describe(id)))?;
            spec.bit_offset += u64::from(member_bits(t, m).0);
            if m.name_off != 0 {
                let n = name(btf, m.name_off)?;
                if n.is_empty() {
                    return Err("member with an empty name".into());
                }
                spec.acc.push(Accessor {
                    type_id: id,
                    idx,
                    name: Some(n),
                });
            }
            id = m.type_id;
        } else if let TypeData::Array { elem, nelems, .. } = &t.data {
            let (eid, _) = skip(btf, *elem)?;
            if !is_flex(btf, spec.acc.last(), *nelems) && idx >= *nelems {
                return Err(format!(
                    "index {idx} beyond the {nelems} elements of {}",
                    btf.describe(id)
                ));
            }
            id = eid;
            spec.acc.push(Accessor {
                type_id: id,
                idx,
                name: None,
            });
            grow(&mut spec.bit_offset, idx, size_of(btf, id)?)?;
        } else {
            return Err(format!(
                "the access goes into {}, which has no members or elements",
                btf.describe(id)
            ));
        }
    }
    Ok(spec)
}

/// The match of `local` in candidate `targ_id` of `targ`, or `None` when
/// the candidate does not have the access.
pub(crate) fn match_target<'a>(
    local: &Spec<'_>,
    kind: RelKind,
    targ: &'a Btf,
    targ_id: TypeId,
) -> R<Option<Spec<'a>>> {
    let mut spec = Spec::new(targ, targ_id);
    if kind.is_type() {
        let ok = if kind == RelKind::TypeMatches {
            types_match(local.btf, local.root, targ, targ_id, false, 32)?
        } else {
            types_are_compat(local.btf, local.root, targ, targ_id, 32)?
        };
        return Ok(ok.then_some(spec));
    }
    if kind.is_enumval() {
        let (tid, t) = skip(targ, targ_id)?;
        if !is_any_enum(t) {
            return Ok(None);
        }
        let want = essential(local.acc[0].name.unwrap_or(""));
        for i in 0..vlen(t) {
            let n = name(targ, enumerator_name_off(t, i).unwrap_or(0))?;
            if essential(n) == want {
                spec.acc.push(Accessor {
                    type_id: tid,
                    idx: i as u32,
                    name: Some(n),
                });
                spec.raw.push(i as u32);
                return Ok(Some(spec));
            }
        }
        return Ok(None);
    }
    let mut id = targ_id;
    for (i, lacc) in local.acc.iter().enumerate() {
        let (sid, t) = skip(targ, id)?;
        id = sid;
        if lacc.name.is_some() {
            if !match_member(local.btf, lacc, targ, id, &mut spec, &mut id)? {
                return Ok(None);
            }
            continue;
        }
        if i > 0 {
            let TypeData::Array { elem, nelems, .. } = &t.data else {
                return Ok(None);
            };
            if !is_flex(targ, spec.acc.last(), *nelems) && lacc.idx >= *nelems {
                return Ok(None);
            }
            id = skip(targ, *elem)?.0;
        }
        if spec.raw.len() == MAX_SPEC_LEN {
            return Err(format!("access deeper than {MAX_SPEC_LEN} steps"));
        }
        spec.acc.push(Accessor {
            type_id: id,
            idx: lacc.idx,
            name: None,
        });
        spec.raw.push(lacc.idx);
        grow(&mut spec.bit_offset, lacc.idx, size_of(targ, id)?)?;
    }
    Ok(Some(spec))
}

/// Finds the member `lacc` names in `targ_id` (a struct/union of the
/// target), looking into anonymous members too; on success the member's
/// type is left in `next`.
fn match_member<'a>(
    local: &Btf,
    lacc: &Accessor<'_>,
    targ: &'a Btf,
    targ_id: TypeId,
    spec: &mut Spec<'a>,
    next: &mut TypeId,
) -> R<bool> {
    let (targ_id, t) = skip(targ, targ_id)?;
    let Some(tms) = members(t) else {
        return Ok(false);
    };
    let lt = ty(local, lacc.type_id)?;
    let lm = members(lt)
        .and_then(|ms| ms.get(lacc.idx as usize))
        .ok_or("the local member does not exist")?;
    let lname = lacc.name.unwrap_or("");
    for (i, m) in tms.iter().enumerate() {
        let (bits, _) = member_bits(t, m);
        if spec.raw.len() == MAX_SPEC_LEN {
            return Err(format!("access deeper than {MAX_SPEC_LEN} steps"));
        }
        spec.bit_offset += u64::from(bits);
        spec.raw.push(i as u32);
        let tname = name(targ, m.name_off)?;
        if tname.is_empty() {
            if match_member(local, lacc, targ, m.type_id, spec, next)? {
                return Ok(true);
            }
        } else if tname == lname {
            spec.acc.push(Accessor {
                type_id: targ_id,
                idx: i as u32,
                name: Some(tname),
            });
            *next = m.type_id;
            let ok = fields_are_compat(local, lm.type_id, targ, m.type_id)?;
            if !ok {
                spec.acc.pop();
            }
            return Ok(ok);
        }
        spec.bit_offset -= u64::from(bits);
        spec.raw.pop();
    }
    Ok(false)
}
