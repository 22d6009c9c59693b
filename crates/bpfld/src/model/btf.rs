//! BTF: the type graph of an object or of a raw BTF file
//! (`include/uapi/linux/btf.h`).
//!
//! Types live in a `Vec` indexed by [`TypeId`] (index 0 is `void`, kept as a
//! placeholder so ids index directly). Names stay string-table offsets so
//! that linking and deduplication can add types and strings; [`Btf::name`]
//! resolves them. The raw string table and the header layout are kept so
//! that writing an unmodified model gives back the original bytes.

use super::Endian;
use crate::error::{Error, Result};

/// `BTF_MAGIC`, as the first two bytes read in the file's byte order.
pub const BTF_MAGIC: u16 = 0xeb9f;
/// Size of `struct btf_header`.
pub const BTF_HEADER_LEN: u32 = 24;

/// Upper bound on reference-chain walks. A validated BTF has no cycles
/// through typedefs/modifiers/arrays, but models built with
/// [`Btf::add_type`] are not validated, so every walk is bounded.
const MAX_CHAIN: usize = 1 << 16;

/// A BTF type id; 0 is `void`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct TypeId(pub u32);

impl TypeId {
    pub const VOID: TypeId = TypeId(0);
}

impl std::fmt::Display for TypeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// `BTF_KIND_*` numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    Void = 0,
    Int = 1,
    Ptr = 2,
    Array = 3,
    Struct = 4,
    Union = 5,
    Enum = 6,
    Fwd = 7,
    Typedef = 8,
    Volatile = 9,
    Const = 10,
    Restrict = 11,
    Func = 12,
    FuncProto = 13,
    Var = 14,
    Datasec = 15,
    Float = 16,
    DeclTag = 17,
    TypeTag = 18,
    Enum64 = 19,
}

impl Kind {
    pub fn from_raw(k: u32) -> Option<Kind> {
        use Kind::*;
        Some(match k {
            1 => Int,
            2 => Ptr,
            3 => Array,
            4 => Struct,
            5 => Union,
            6 => Enum,
            7 => Fwd,
            8 => Typedef,
            9 => Volatile,
            10 => Const,
            11 => Restrict,
            12 => Func,
            13 => FuncProto,
            14 => Var,
            15 => Datasec,
            16 => Float,
            17 => DeclTag,
            18 => TypeTag,
            19 => Enum64,
            _ => return None,
        })
    }

    /// The name bpftool prints (`UNKNOWN` for void).
    pub fn name(self) -> &'static str {
        use Kind::*;
        match self {
            Void => "UNKNOWN",
            Int => "INT",
            Ptr => "PTR",
            Array => "ARRAY",
            Struct => "STRUCT",
            Union => "UNION",
            Enum => "ENUM",
            Fwd => "FWD",
            Typedef => "TYPEDEF",
            Volatile => "VOLATILE",
            Const => "CONST",
            Restrict => "RESTRICT",
            Func => "FUNC",
            FuncProto => "FUNC_PROTO",
            Var => "VAR",
            Datasec => "DATASEC",
            Float => "FLOAT",
            DeclTag => "DECL_TAG",
            TypeTag => "TYPE_TAG",
            Enum64 => "ENUM64",
        }
    }
}

/// `BTF_INT_*` encoding bits.
pub const BTF_INT_SIGNED: u8 = 1;
pub const BTF_INT_CHAR: u8 = 2;
pub const BTF_INT_BOOL: u8 = 4;

/// `BTF_FUNC_*` linkage of a FUNC (stored in its vlen).
pub const BTF_FUNC_STATIC: u16 = 0;
pub const BTF_FUNC_GLOBAL: u16 = 1;
pub const BTF_FUNC_EXTERN: u16 = 2;

/// `BTF_VAR_*` linkage of a VAR.
pub const BTF_VAR_STATIC: u32 = 0;
pub const BTF_VAR_GLOBAL_ALLOCATED: u32 = 1;
pub const BTF_VAR_GLOBAL_EXTERN: u32 = 2;

/// `struct btf_member`. `offset` is raw: with the owner's kind_flag set it
/// is `bitfield_size << 24 | bit_offset`, else a plain bit offset; use
/// [`Btf::members`] for the decoded view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Member {
    pub name_off: u32,
    pub type_id: TypeId,
    pub offset: u32,
}

/// `struct btf_enum`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EnumValue {
    pub name_off: u32,
    pub val: u32,
}

/// `struct btf_enum64`, the two halves joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Enum64Value {
    pub name_off: u32,
    pub val: u64,
}

/// `struct btf_param`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Param {
    pub name_off: u32,
    pub type_id: TypeId,
}

/// `struct btf_var_secinfo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VarSecinfo {
    pub type_id: TypeId,
    pub offset: u32,
    pub size: u32,
}

/// What a type holds, per kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TypeData {
    /// Placeholder for id 0; never written.
    Void,
    /// `data` is the raw trailing u32 (encoding << 24 | offset << 16 | bits).
    Int {
        size: u32,
        data: u32,
    },
    Ptr(TypeId),
    Array {
        elem: TypeId,
        index: TypeId,
        nelems: u32,
    },
    Struct {
        size: u32,
        members: Vec<Member>,
    },
    Union {
        size: u32,
        members: Vec<Member>,
    },
    /// Signed when the type's kind_flag is set.
    Enum {
        size: u32,
        values: Vec<EnumValue>,
    },
    /// A union forward declaration when the type's kind_flag is set.
    Fwd,
    Typedef(TypeId),
    Volatile(TypeId),
    Const(TypeId),
    Restrict(TypeId),
    /// `linkage` is the vlen field (`BTF_FUNC_*`).
    Func {
        proto: TypeId,
        linkage: u16,
    },
    FuncProto {
        ret: TypeId,
        params: Vec<Param>,
    },
    Var {
        type_id: TypeId,
        linkage: u32,
    },
    Datasec {
        size: u32,
        vars: Vec<VarSecinfo>,
    },
    Float {
        size: u32,
    },
    /// `component_idx` -1 tags the target itself, else member/param index.
    DeclTag {
        target: TypeId,
        component_idx: i32,
    },
    TypeTag(TypeId),
    /// Signed when the type's kind_flag is set.
    Enum64 {
        size: u32,
        values: Vec<Enum64Value>,
    },
}

/// One BTF type: the common `struct btf_type` fields plus kind data.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BtfType {
    pub name_off: u32,
    pub kind_flag: bool,
    pub data: TypeData,
}

impl BtfType {
    pub fn new(name_off: u32, kind_flag: bool, data: TypeData) -> Self {
        BtfType {
            name_off,
            kind_flag,
            data,
        }
    }

    pub fn kind(&self) -> Kind {
        use TypeData as D;
        match &self.data {
            D::Void => Kind::Void,
            D::Int { .. } => Kind::Int,
            D::Ptr(_) => Kind::Ptr,
            D::Array { .. } => Kind::Array,
            D::Struct { .. } => Kind::Struct,
            D::Union { .. } => Kind::Union,
            D::Enum { .. } => Kind::Enum,
            D::Fwd => Kind::Fwd,
            D::Typedef(_) => Kind::Typedef,
            D::Volatile(_) => Kind::Volatile,
            D::Const(_) => Kind::Const,
            D::Restrict(_) => Kind::Restrict,
            D::Func { .. } => Kind::Func,
            D::FuncProto { .. } => Kind::FuncProto,
            D::Var { .. } => Kind::Var,
            D::Datasec { .. } => Kind::Datasec,
            D::Float { .. } => Kind::Float,
            D::DeclTag { .. } => Kind::DeclTag,
            D::TypeTag(_) => Kind::TypeTag,
            D::Enum64 { .. } => Kind::Enum64,
        }
    }

    /// The `vlen` field as encoded.
    pub fn vlen(&self) -> usize {
        use TypeData as D;
        match &self.data {
            D::Struct { members, .. } | D::Union { members, .. } => members.len(),
            D::Enum { values, .. } => values.len(),
            D::Enum64 { values, .. } => values.len(),
            D::FuncProto { params, .. } => params.len(),
            D::Datasec { vars, .. } => vars.len(),
            D::Func { linkage, .. } => *linkage as usize,
            _ => 0,
        }
    }

    /// The size field of the kinds that carry one (INT, STRUCT, UNION,
    /// ENUM, ENUM64, DATASEC, FLOAT).
    pub fn size_field(&self) -> Option<u32> {
        use TypeData as D;
        match &self.data {
            D::Int { size, .. }
            | D::Struct { size, .. }
            | D::Union { size, .. }
            | D::Enum { size, .. }
            | D::Enum64 { size, .. }
            | D::Datasec { size, .. }
            | D::Float { size } => Some(*size),
            _ => None,
        }
    }

    /// The target of a single-reference kind (PTR, TYPEDEF, modifiers,
    /// TYPE_TAG, FUNC, VAR, DECL_TAG).
    pub fn ref_type(&self) -> Option<TypeId> {
        use TypeData as D;
        match &self.data {
            D::Ptr(t)
            | D::Typedef(t)
            | D::Volatile(t)
            | D::Const(t)
            | D::Restrict(t)
            | D::TypeTag(t) => Some(*t),
            D::Func { proto, .. } => Some(*proto),
            D::Var { type_id, .. } => Some(*type_id),
            D::DeclTag { target, .. } => Some(*target),
            _ => None,
        }
    }

    /// Every type id this type refers to, in encoding order.
    pub fn referenced_ids(&self) -> Vec<TypeId> {
        use TypeData as D;
        match &self.data {
            D::Array { elem, index, .. } => vec![*elem, *index],
            D::Struct { members, .. } | D::Union { members, .. } => {
                members.iter().map(|m| m.type_id).collect()
            }
            D::FuncProto { ret, params } => std::iter::once(*ret)
                .chain(params.iter().map(|p| p.type_id))
                .collect(),
            D::Datasec { vars, .. } => vars.iter().map(|v| v.type_id).collect(),
            _ => self.ref_type().into_iter().collect(),
        }
    }

    /// Encoded size in bytes (`struct btf_type` plus trailing data).
    pub fn encoded_len(&self) -> usize {
        use TypeData as D;
        12 + match &self.data {
            D::Void => return 0,
            D::Int { .. } | D::Var { .. } | D::DeclTag { .. } => 4,
            D::Array { .. } => 12,
            D::Struct { members, .. } | D::Union { members, .. } => 12 * members.len(),
            D::Enum { values, .. } => 8 * values.len(),
            D::Enum64 { values, .. } => 12 * values.len(),
            D::FuncProto { params, .. } => 8 * params.len(),
            D::Datasec { vars, .. } => 12 * vars.len(),
            _ => 0,
        }
    }
}

/// A decoded struct/union member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberInfo<'a> {
    pub name: &'a str,
    pub type_id: TypeId,
    pub bit_offset: u32,
    /// 0 when the member is not a bitfield.
    pub bitfield_size: u32,
}

/// A variable of a DATASEC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatasecVar<'a> {
    pub name: &'a str,
    /// The VAR (or FUNC, for `.ksyms`) type id.
    pub var_id: TypeId,
    /// The VAR's own type.
    pub type_id: TypeId,
    pub offset: u32,
    pub size: u32,
}

/// Placement of the type and string sections when the input did not use
/// the standard layout (types right after the header, strings right after
/// the types, nothing else): the whole data area is kept so writing an
/// unmodified model reproduces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawLayout {
    pub type_off: u32,
    pub type_len: u32,
    pub str_off: u32,
    pub str_len: u32,
    /// Bytes after the header, as found.
    pub data: Vec<u8>,
}

/// A whole BTF blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Btf {
    pub endian: Endian,
    pub version: u8,
    pub flags: u8,
    /// Header length as found (24 unless a newer header).
    pub hdr_len: u32,
    /// Header bytes beyond the 24 known ones, as found.
    pub hdr_extra: Vec<u8>,
    /// `types[0]` is `void`; `types[i]` has id `i`.
    pub types: Vec<BtfType>,
    /// The raw string table (starts and ends with NUL).
    pub strings: Vec<u8>,
    /// Original non-standard section placement, if any.
    pub raw_layout: Option<RawLayout>,
}

impl Default for Btf {
    fn default() -> Self {
        Btf::new(Endian::Little)
    }
}

impl Btf {
    /// An empty BTF: only `void` and the empty string.
    pub fn new(endian: Endian) -> Self {
        Btf {
            endian,
            version: 1,
            flags: 0,
            hdr_len: BTF_HEADER_LEN,
            hdr_extra: Vec::new(),
            types: vec![BtfType::new(0, false, TypeData::Void)],
            strings: vec![0],
            raw_layout: None,
        }
    }

    /// Number of types including `void` (ids are `0..type_count()`).
    pub fn type_count(&self) -> usize {
        self.types.len()
    }

    /// The last valid type id.
    pub fn last_id(&self) -> TypeId {
        TypeId(self.types.len().saturating_sub(1) as u32)
    }

    pub fn get(&self, id: TypeId) -> Option<&BtfType> {
        self.types.get(id.0 as usize)
    }

    pub fn get_mut(&mut self, id: TypeId) -> Option<&mut BtfType> {
        self.types.get_mut(id.0 as usize)
    }

    /// The type `id`, or an error saying it does not exist.
    pub fn ty(&self, id: TypeId) -> Result<&BtfType> {
        self.get(id).ok_or_else(|| {
            Error::new(format!(
                "type id {} beyond the last type {}",
                id.0,
                self.last_id().0
            ))
        })
    }

    /// Iterates over `(id, type)` excluding `void`.
    pub fn iter(&self) -> impl Iterator<Item = (TypeId, &BtfType)> {
        self.types
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, t)| (TypeId(i as u32), t))
    }

    /// The string at offset `off` of the string table.
    pub fn name(&self, off: u32) -> Result<&str> {
        let bytes = self.name_bytes(off)?;
        std::str::from_utf8(bytes)
            .map_err(|_| Error::new(format!("BTF string at offset {off} is not UTF-8")))
    }

    /// The raw bytes of the string at offset `off` (without the NUL).
    pub fn name_bytes(&self, off: u32) -> Result<&[u8]> {
        let start = off as usize;
        let Some(rest) = self.strings.get(start..) else {
            return Err(Error::new(format!(
                "string offset {off} beyond the string section of {} bytes",
                self.strings.len()
            )));
        };
        match rest.iter().position(|&b| b == 0) {
            Some(end) => Ok(&rest[..end]),
            None => Err(Error::new(format!(
                "string at offset {off} is not NUL-terminated"
            ))),
        }
    }

    /// The name of type `id` ("" when anonymous or unresolvable).
    pub fn type_name(&self, id: TypeId) -> &str {
        self.get(id)
            .and_then(|t| self.name(t.name_off).ok())
            .unwrap_or("")
    }

    /// Appends `s` to the string table and returns its offset. The empty
    /// string is offset 0. No deduplication (see [`Btf::find_string`]).
    pub fn add_string(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        off
    }

    /// The offset of a string equal to `s` that starts a table entry, if
    /// any (linear scan).
    pub fn find_string(&self, s: &str) -> Option<u32> {
        if s.is_empty() {
            return Some(0);
        }
        let mut off = 0usize;
        for chunk in self.strings.split(|&b| b == 0) {
            if chunk == s.as_bytes() {
                return Some(off as u32);
            }
            off += chunk.len() + 1;
        }
        None
    }

    /// Appends a type and returns its id.
    pub fn add_type(&mut self, t: BtfType) -> TypeId {
        self.types.push(t);
        TypeId(self.types.len() as u32 - 1)
    }

    /// `[id] KIND 'name'`, for error messages.
    pub fn describe(&self, id: TypeId) -> String {
        match self.get(id) {
            Some(t) => {
                let name = match self.name_bytes(t.name_off) {
                    Ok([]) => "(anon)".to_string(),
                    Ok(b) => String::from_utf8_lossy(b).into_owned(),
                    Err(_) => "(invalid)".to_string(),
                };
                format!("[{}] {} '{}'", id.0, t.kind().name(), name)
            }
            None => format!("[{}] (no such type)", id.0),
        }
    }

    /// Follows TYPEDEF, CONST, VOLATILE, RESTRICT and TYPE_TAG to the first
    /// other type (possibly `void`).
    pub fn resolve(&self, id: TypeId) -> Result<TypeId> {
        self.strip(id, true)
    }

    /// Like [`Btf::resolve`] but keeps typedefs: strips only CONST,
    /// VOLATILE, RESTRICT and TYPE_TAG.
    pub fn skip_modifiers(&self, id: TypeId) -> Result<TypeId> {
        self.strip(id, false)
    }

    fn strip(&self, id: TypeId, typedefs: bool) -> Result<TypeId> {
        let mut cur = id;
        for _ in 0..MAX_CHAIN {
            match &self.ty(cur)?.data {
                TypeData::Typedef(n) if typedefs => cur = *n,
                TypeData::Const(n)
                | TypeData::Volatile(n)
                | TypeData::Restrict(n)
                | TypeData::TypeTag(n) => cur = *n,
                _ => return Ok(cur),
            }
        }
        Err(Error::new(format!(
            "type {}: reference chain too long or cyclic",
            self.describe(id)
        )))
    }

    /// Byte size of a value of type `id` (like libbpf's
    /// `btf__resolve_size`): pointers are 8 bytes, arrays multiply.
    pub fn size_of(&self, id: TypeId) -> Result<u64> {
        let mut cur = id;
        let mut mult: u64 = 1;
        for _ in 0..MAX_CHAIN {
            let t = self.ty(cur)?;
            let size = match (&t.data, t.size_field()) {
                (_, Some(size)) => u64::from(size),
                (TypeData::Ptr(_), _) => 8,
                (
                    TypeData::Typedef(n)
                    | TypeData::Const(n)
                    | TypeData::Volatile(n)
                    | TypeData::Restrict(n)
                    | TypeData::TypeTag(n)
                    | TypeData::Var { type_id: n, .. },
                    _,
                ) => {
                    cur = *n;
                    continue;
                }
                (TypeData::Array { elem, nelems, .. }, _) => {
                    mult = mult.checked_mul(*nelems as u64).ok_or_else(|| {
                        Error::new(format!("type {}: array size overflows", self.describe(id)))
                    })?;
                    cur = *elem;
                    continue;
                }
                _ => {
                    return Err(Error::new(format!(
                        "type {} has no size (reached {})",
                        self.describe(id),
                        self.describe(cur)
                    )))
                }
            };
            let total = size.checked_mul(mult).filter(|&v| v <= u32::MAX as u64);
            return total.ok_or_else(|| {
                Error::new(format!(
                    "type {}: size overflows 32 bits",
                    self.describe(id)
                ))
            });
        }
        Err(Error::new(format!(
            "type {}: reference chain too long or cyclic",
            self.describe(id)
        )))
    }

    /// The first type of kind `kind` named `name`.
    pub fn find_by_name(&self, kind: Kind, name: &str) -> Option<TypeId> {
        self.iter()
            .find(|(_, t)| t.kind() == kind && self.name(t.name_off).ok() == Some(name))
            .map(|(id, _)| id)
    }

    /// The DATASEC named `name` (e.g. ".data", ".maps").
    pub fn find_datasec(&self, name: &str) -> Option<TypeId> {
        self.find_by_name(Kind::Datasec, name)
    }

    /// The variables of DATASEC `id`: name, VAR id, VAR's type, offset, size.
    pub fn datasec_vars(&self, id: TypeId) -> Result<Vec<DatasecVar<'_>>> {
        let t = self.ty(id)?;
        let TypeData::Datasec { vars, .. } = &t.data else {
            return Err(Error::new(format!(
                "type {} is not a DATASEC",
                self.describe(id)
            )));
        };
        vars.iter()
            .map(|v| {
                let vt = self.ty(v.type_id)?;
                let type_id = match &vt.data {
                    TypeData::Var { type_id, .. } => *type_id,
                    TypeData::Func { proto, .. } => *proto,
                    _ => v.type_id,
                };
                Ok(DatasecVar {
                    name: self.name(vt.name_off)?,
                    var_id: v.type_id,
                    type_id,
                    offset: v.offset,
                    size: v.size,
                })
            })
            .collect()
    }

    /// Decoded members of STRUCT/UNION `id`.
    pub fn members(&self, id: TypeId) -> Result<Vec<MemberInfo<'_>>> {
        let t = self.ty(id)?;
        let (TypeData::Struct { members, .. } | TypeData::Union { members, .. }) = &t.data else {
            return Err(Error::new(format!(
                "type {} is not a STRUCT or UNION",
                self.describe(id)
            )));
        };
        members
            .iter()
            .map(|m| {
                let (bit_offset, bitfield_size) = if t.kind_flag {
                    (m.offset & 0xff_ffff, m.offset >> 24)
                } else {
                    (m.offset, 0)
                };
                Ok(MemberInfo {
                    name: self.name(m.name_off)?,
                    type_id: m.type_id,
                    bit_offset,
                    bitfield_size,
                })
            })
            .collect()
    }
}

/// A FUNC's or FUNC_PROTO's signature: return type and named parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature<'a> {
    pub ret: TypeId,
    /// `(name, type)`; a trailing `("", void)` marks a variadic function.
    pub params: Vec<(&'a str, TypeId)>,
}

impl Btf {
    /// The signature of FUNC or FUNC_PROTO `id`.
    pub fn signature(&self, id: TypeId) -> Result<Signature<'_>> {
        let mut t = self.ty(id)?;
        if let TypeData::Func { proto, .. } = &t.data {
            t = self.ty(*proto)?;
        }
        let TypeData::FuncProto { ret, params } = &t.data else {
            return Err(Error::new(format!(
                "type {} is not a FUNC or FUNC_PROTO",
                self.describe(id)
            )));
        };
        Ok(Signature {
            ret: *ret,
            params: params
                .iter()
                .map(|p| Ok((self.name(p.name_off)?, p.type_id)))
                .collect::<Result<_>>()?,
        })
    }
}

/// Accessors for INT's raw data word.
pub fn int_encoding(data: u32) -> u8 {
    ((data >> 24) & 0x0f) as u8
}
pub fn int_offset(data: u32) -> u32 {
    (data >> 16) & 0xff
}
pub fn int_bits(data: u32) -> u32 {
    data & 0xff
}

impl BtfType {
    /// Applies `f` to every type id this type refers to.
    pub fn map_ids(&mut self, mut f: impl FnMut(TypeId) -> TypeId) {
        use TypeData as D;
        match &mut self.data {
            D::Array { elem, index, .. } => {
                *elem = f(*elem);
                *index = f(*index);
            }
            D::Struct { members, .. } | D::Union { members, .. } => {
                for m in members {
                    m.type_id = f(m.type_id);
                }
            }
            D::FuncProto { ret, params } => {
                *ret = f(*ret);
                for p in params {
                    p.type_id = f(p.type_id);
                }
            }
            D::Datasec { vars, .. } => {
                for v in vars {
                    v.type_id = f(v.type_id);
                }
            }
            D::Ptr(t)
            | D::Typedef(t)
            | D::Volatile(t)
            | D::Const(t)
            | D::Restrict(t)
            | D::TypeTag(t) => *t = f(*t),
            D::Func { proto, .. } => *proto = f(*proto),
            D::Var { type_id, .. } => *type_id = f(*type_id),
            D::DeclTag { target, .. } => *target = f(*target),
            D::Void
            | D::Int { .. }
            | D::Enum { .. }
            | D::Enum64 { .. }
            | D::Fwd
            | D::Float { .. } => {}
        }
    }

    /// Applies `f` to every string offset this type holds (its name and
    /// its members', values' and parameters' names).
    pub fn map_strings(&mut self, mut f: impl FnMut(u32) -> u32) {
        use TypeData as D;
        self.name_off = f(self.name_off);
        match &mut self.data {
            D::Struct { members, .. } | D::Union { members, .. } => {
                for m in members {
                    m.name_off = f(m.name_off);
                }
            }
            D::Enum { values, .. } => {
                for v in values {
                    v.name_off = f(v.name_off);
                }
            }
            D::Enum64 { values, .. } => {
                for v in values {
                    v.name_off = f(v.name_off);
                }
            }
            D::FuncProto { params, .. } => {
                for p in params {
                    p.name_off = f(p.name_off);
                }
            }
            _ => {}
        }
    }
}

/// Interns strings into a BTF string table, each distinct string once.
///
/// The index keeps only offsets, keyed by a hash of the bytes (compared
/// against the table on a hit), not a copy of every string: tables of
/// linked objects hold tens of thousands of source lines.
#[derive(Debug, Default)]
pub struct StringTable {
    pub bytes: Vec<u8>,
    /// Hash of a string's bytes → its first offset.
    offsets: crate::util::fxhash::FxMap<u32, u32>,
    /// Strings whose hash another string already has.
    collided: std::collections::HashMap<Vec<u8>, u32>,
}

/// 32 bits are plenty to tell strings apart in a table (the few that share
/// a hash go to the side map), and halve the index.
fn string_hash(s: &[u8]) -> u32 {
    use std::hash::Hasher;
    let mut h = crate::util::fxhash::FxHasher::default();
    h.write(s);
    h.write_usize(s.len());
    let h = h.finish();
    (h ^ (h >> 32)) as u32
}

impl StringTable {
    /// A table holding what `btf` already has.
    pub fn from_btf(btf: &Btf) -> Self {
        let mut t = StringTable {
            bytes: btf.strings.clone(),
            offsets: Default::default(),
            collided: std::collections::HashMap::new(),
        };
        if t.bytes.is_empty() {
            t.bytes.push(0);
        }
        let mut off = 0usize;
        for chunk in btf.strings.split(|&b| b == 0) {
            if !chunk.is_empty() && t.find(chunk).is_none() {
                t.index(chunk, off as u32);
            }
            off += chunk.len() + 1;
        }
        // The empty string is at 0, as BTF requires.
        let h = string_hash(b"");
        if let Some(&other) = t.offsets.get(&h) {
            let end = t.bytes[other as usize..]
                .iter()
                .position(|&b| b == 0)
                .map_or(t.bytes.len(), |p| other as usize + p);
            let moved = t.bytes[other as usize..end].to_vec();
            t.collided.entry(moved).or_insert(other);
        }
        t.offsets.insert(h, 0);
        t
    }

    /// The offset of `s` when the table holds it.
    fn find(&self, s: &[u8]) -> Option<u32> {
        let off = *self.offsets.get(&string_hash(s))?;
        if s.is_empty() {
            return Some(off);
        }
        let start = off as usize;
        let here = self.bytes.get(start..start + s.len()) == Some(s)
            && self.bytes.get(start + s.len()) == Some(&0);
        if here {
            Some(off)
        } else {
            self.collided.get(s).copied()
        }
    }

    fn index(&mut self, s: &[u8], off: u32) {
        match self.offsets.entry(string_hash(s)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(off);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.collided.entry(s.to_vec()).or_insert(off);
            }
        }
    }

    pub fn add(&mut self, s: &[u8]) -> u32 {
        if let Some(off) = self.find(s) {
            return off;
        }
        let off = self.bytes.len() as u32;
        self.bytes.extend_from_slice(s);
        self.bytes.push(0);
        self.index(s, off);
        off
    }
}

impl Btf {
    /// Appends every type of `other` (but its `void`) with ids and string
    /// offsets translated, and returns the map from `other`'s ids to the
    /// new ones (`map[0]` is void). Strings are shared with the ones
    /// already present.
    pub fn append(&mut self, other: &Btf, strings: &mut StringTable) -> Result<Vec<TypeId>> {
        let map = self.append_types(other, strings)?;
        self.strings = strings.bytes.clone();
        Ok(map)
    }

    /// Like [`Btf::append`] but leaves `self.strings` stale: the caller
    /// sets it from `strings` once all inputs are in (linking hundreds of
    /// objects would otherwise copy the table each time).
    pub fn append_types(&mut self, other: &Btf, strings: &mut StringTable) -> Result<Vec<TypeId>> {
        let base = self.types.len() as u32 - 1;
        let n = other.types.len() as u32;
        let map: Vec<TypeId> = (0..n)
            .map(|i| {
                if i == 0 {
                    TypeId::VOID
                } else {
                    TypeId(base + i)
                }
            })
            .collect();
        for (i, t) in other.types.iter().enumerate().skip(1) {
            let mut t = t.clone();
            let mut bad = None;
            t.map_ids(|id| match map.get(id.0 as usize) {
                Some(&m) => m,
                None => {
                    bad = Some(id);
                    id
                }
            });
            if let Some(id) = bad {
                return Err(Error::new(format!(
                    "type {} refers to type {id}, beyond the last type {}",
                    other.describe(TypeId(i as u32)),
                    n - 1
                )));
            }
            let mut bad_str = None;
            t.map_strings(|off| match other.name_bytes(off) {
                Ok(s) => strings.add(s),
                Err(_) => {
                    bad_str = Some(off);
                    0
                }
            });
            if let Some(off) = bad_str {
                return Err(Error::new(format!(
                    "type {}: string offset {off} is outside the string table",
                    other.describe(TypeId(i as u32))
                )));
            }
            self.types.push(t);
        }
        self.raw_layout = None;
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_table_finds_each_string_at_its_first_offset() {
        let mut btf = Btf::new(crate::model::Endian::Little);
        btf.strings = b"\0int\0char\0int\0".to_vec();
        let mut t = StringTable::from_btf(&btf);
        assert_eq!(t.add(b""), 0);
        assert_eq!(t.add(b"int"), 1);
        assert_eq!(t.add(b"char"), 5);
        // New strings go at the end, once.
        let long = t.add(b"long");
        assert_eq!(long, 14);
        assert_eq!(t.add(b"long"), long);
        // A prefix or suffix of a string is a string of its own.
        let i = t.add(b"in");
        assert_eq!(i, 19);
        assert_eq!(t.add(b"nt"), 22);
        assert_eq!(t.bytes, b"\0int\0char\0int\0long\0in\0nt\0".to_vec());
        for k in 0..5000u32 {
            let s = format!("s{k}");
            let off = t.add(s.as_bytes());
            assert_eq!(t.add(s.as_bytes()), off, "{s}");
        }
    }

    #[test]
    fn string_table_strings_sharing_a_hash_stay_apart() {
        // Enough strings that some share a 32-bit hash.
        let mut t = StringTable::from_btf(&Btf::new(crate::model::Endian::Little));
        let offs: Vec<u32> = (0..300_000u32)
            .map(|k| t.add(format!("line {k}").as_bytes()))
            .collect();
        assert!(!t.collided.is_empty(), "no two strings shared a hash");
        for (k, &off) in offs.iter().enumerate() {
            let s = format!("line {k}");
            assert_eq!(t.add(s.as_bytes()), off, "{s}");
            let start = off as usize;
            assert_eq!(&t.bytes[start..start + s.len()], s.as_bytes());
        }
        // And a table rebuilt from the bytes finds the same offsets.
        let mut btf = Btf::new(crate::model::Endian::Little);
        btf.strings = t.bytes.clone();
        let mut again = StringTable::from_btf(&btf);
        for (k, &off) in offs.iter().enumerate().step_by(7) {
            assert_eq!(again.add(format!("line {k}").as_bytes()), off);
        }
        assert_eq!(again.bytes, t.bytes);
    }
}
