//! Types read as they are encoded, whether from the model or from bytes
//! in place: the two traits the listings and the reader's checks go
//! through, so that the model ([`Btf`]) and the listings' view of a file
//! (`read::btf_view`) answer each question with the same code.

use super::{Btf, BtfType, Kind, TypeData, TypeId, MAX_CHAIN};
use crate::error::{Error, Result};

/// One type as encoded: the fields of `struct btf_type` and the words
/// that follow it.
pub trait TypeFields {
    /// Offset of its name in the string table.
    fn name_off(&self) -> u32;
    /// Its kind.
    fn kind(&self) -> Kind;
    /// The `kind_flag` bit.
    fn kind_flag(&self) -> bool;
    /// The size or type word of `struct btf_type`.
    fn size_or_type(&self) -> u32;
    /// The record count (FUNC: the linkage).
    fn vlen(&self) -> usize;
    /// Trailing word `i` as encoded (ENUM64 values: low word first).
    fn word(&self, i: usize) -> u32;
}

/// Types and strings, read by type id and string offset.
pub trait TypeTable {
    /// One type of the table.
    type Ty<'s>: TypeFields
    where
        Self: 's;
    /// Number of types including `void`.
    fn count(&self) -> usize;
    /// The type `id`, if it exists.
    fn at(&self, id: u32) -> Option<Self::Ty<'_>>;
    /// The string at `off` without its NUL, `None` when unresolvable.
    fn str_bytes(&self, off: u32) -> Option<&[u8]>;
    /// Length of the string section in bytes.
    fn strings_len(&self) -> usize;
}

impl TypeFields for &BtfType {
    fn name_off(&self) -> u32 {
        self.name_off
    }
    fn kind(&self) -> Kind {
        BtfType::kind(self)
    }
    fn kind_flag(&self) -> bool {
        self.kind_flag
    }
    fn size_or_type(&self) -> u32 {
        match (self.size_field(), &self.data) {
            (Some(size), _) => size,
            (None, TypeData::FuncProto { ret, .. }) => ret.0,
            _ => self.ref_type().map_or(0, |r| r.0),
        }
    }
    fn vlen(&self) -> usize {
        BtfType::vlen(self)
    }
    fn word(&self, i: usize) -> u32 {
        let pick = |ws: &[u32]| ws.get(i % ws.len()).copied().unwrap_or(0);
        match &self.data {
            TypeData::Int { data, .. } => *data,
            TypeData::Var { linkage, .. } => *linkage,
            TypeData::DeclTag { component_idx, .. } => *component_idx as u32,
            TypeData::Array {
                elem,
                index,
                nelems,
            } => pick(&[elem.0, index.0, *nelems]),
            TypeData::Struct { members, .. } | TypeData::Union { members, .. } => members
                .get(i / 3)
                .map_or(0, |m| pick(&[m.name_off, m.type_id.0, m.offset])),
            TypeData::Enum { values, .. } => {
                values.get(i / 2).map_or(0, |v| pick(&[v.name_off, v.val]))
            }
            TypeData::Enum64 { values, .. } => values.get(i / 3).map_or(0, |v| {
                pick(&[v.name_off, v.val as u32, (v.val >> 32) as u32])
            }),
            TypeData::FuncProto { params, .. } => params
                .get(i / 2)
                .map_or(0, |p| pick(&[p.name_off, p.type_id.0])),
            TypeData::Datasec { vars, .. } => vars
                .get(i / 3)
                .map_or(0, |v| pick(&[v.type_id.0, v.offset, v.size])),
            _ => 0,
        }
    }
}

impl TypeTable for Btf {
    type Ty<'s> = &'s BtfType;
    fn count(&self) -> usize {
        self.types.len()
    }
    fn at(&self, id: u32) -> Option<&BtfType> {
        self.get(TypeId(id))
    }
    fn str_bytes(&self, off: u32) -> Option<&[u8]> {
        self.name_bytes(off).ok()
    }
    fn strings_len(&self) -> usize {
        self.strings.len()
    }
}

/// The one type a kind refers to through `size_or_type`, if any (PTR,
/// TYPEDEF, modifiers, TYPE_TAG, FUNC, VAR, DECL_TAG).
pub(crate) fn ref_type(t: &impl TypeFields) -> Option<u32> {
    use Kind::*;
    match t.kind() {
        Ptr | Typedef | Volatile | Const | Restrict | TypeTag | Func | Var | DeclTag => {
            Some(t.size_or_type())
        }
        _ => None,
    }
}

/// The edge that size and resolve walks follow: modifiers, typedefs,
/// array elements.
pub(crate) fn walk_edge(t: &impl TypeFields) -> Option<u32> {
    use Kind::*;
    match t.kind() {
        Typedef | Const | Volatile | Restrict | TypeTag => Some(t.size_or_type()),
        Array => Some(t.word(0)),
        _ => None,
    }
}

/// `[id] KIND 'name'`, for error messages.
pub(crate) fn describe<T: TypeTable + ?Sized>(table: &T, id: u32) -> String {
    match table.at(id) {
        Some(t) => {
            let name = match table.str_bytes(t.name_off()) {
                Some([]) => "(anon)".to_string(),
                Some(b) => String::from_utf8_lossy(b).into_owned(),
                None => "(invalid)".to_string(),
            };
            format!("[{id}] {} '{name}'", t.kind().name())
        }
        None => format!("[{id}] (no such type)"),
    }
}

/// Byte size of a value of type `id` (like libbpf's
/// `btf__resolve_size`): pointers are 8 bytes, arrays multiply, and the
/// result fits in 32 bits.
pub(crate) fn size_of<T: TypeTable + ?Sized>(table: &T, id: u32) -> Result<u64> {
    use Kind::*;
    let mut cur = id;
    let mut mult: u64 = 1;
    for _ in 0..MAX_CHAIN {
        let Some(t) = table.at(cur) else {
            return Err(Error::new(format!(
                "type id {cur} beyond the last type {}",
                table.count().saturating_sub(1)
            )));
        };
        let size = match t.kind() {
            Int | Struct | Union | Enum | Enum64 | Datasec | Float => u64::from(t.size_or_type()),
            Ptr => 8,
            Typedef | Const | Volatile | Restrict | TypeTag | Var => {
                cur = t.size_or_type();
                continue;
            }
            Array => {
                mult = mult.checked_mul(u64::from(t.word(2))).ok_or_else(|| {
                    Error::new(format!(
                        "type {}: array size overflows",
                        describe(table, id)
                    ))
                })?;
                cur = t.word(0);
                continue;
            }
            _ => {
                return Err(Error::new(format!(
                    "type {} has no size (reached {})",
                    describe(table, id),
                    describe(table, cur)
                )))
            }
        };
        let total = size.checked_mul(mult).filter(|&v| v <= u32::MAX as u64);
        return total.ok_or_else(|| {
            Error::new(format!(
                "type {}: size overflows 32 bits",
                describe(table, id)
            ))
        });
    }
    Err(Error::new(format!(
        "type {}: reference chain too long or cyclic",
        describe(table, id)
    )))
}
