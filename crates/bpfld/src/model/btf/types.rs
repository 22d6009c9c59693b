//! The types themselves: ids, `BTF_KIND_*` kinds, the per-kind data and
//! the walks over the ids and string offsets one type holds.

/// A BTF type id; 0 is `void`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct TypeId(pub u32);

impl TypeId {
    /// Id 0: `void`.
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
    /// `void` (id 0 only).
    Void = 0,
    /// `BTF_KIND_INT`.
    Int = 1,
    /// `BTF_KIND_PTR`.
    Ptr = 2,
    /// `BTF_KIND_ARRAY`.
    Array = 3,
    /// `BTF_KIND_STRUCT`.
    Struct = 4,
    /// `BTF_KIND_UNION`.
    Union = 5,
    /// `BTF_KIND_ENUM`.
    Enum = 6,
    /// `BTF_KIND_FWD`.
    Fwd = 7,
    /// `BTF_KIND_TYPEDEF`.
    Typedef = 8,
    /// `BTF_KIND_VOLATILE`.
    Volatile = 9,
    /// `BTF_KIND_CONST`.
    Const = 10,
    /// `BTF_KIND_RESTRICT`.
    Restrict = 11,
    /// `BTF_KIND_FUNC`.
    Func = 12,
    /// `BTF_KIND_FUNC_PROTO`.
    FuncProto = 13,
    /// `BTF_KIND_VAR`.
    Var = 14,
    /// `BTF_KIND_DATASEC`.
    Datasec = 15,
    /// `BTF_KIND_FLOAT`.
    Float = 16,
    /// `BTF_KIND_DECL_TAG`.
    DeclTag = 17,
    /// `BTF_KIND_TYPE_TAG`.
    TypeTag = 18,
    /// `BTF_KIND_ENUM64`.
    Enum64 = 19,
}

impl Kind {
    /// The kind of raw kind number `k` (1 to 19; 0 is no kind a type can have).
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
/// Encoding: a character type.
pub const BTF_INT_CHAR: u8 = 2;
/// Encoding: a boolean.
pub const BTF_INT_BOOL: u8 = 4;

/// `BTF_FUNC_*` linkage of a FUNC (stored in its vlen).
pub const BTF_FUNC_STATIC: u16 = 0;
/// Linkage: a global function.
pub const BTF_FUNC_GLOBAL: u16 = 1;
/// Linkage: an extern function.
pub const BTF_FUNC_EXTERN: u16 = 2;

/// `BTF_VAR_*` linkage of a VAR.
pub const BTF_VAR_STATIC: u32 = 0;
/// Linkage: a global variable defined here.
pub const BTF_VAR_GLOBAL_ALLOCATED: u32 = 1;
/// Linkage: an extern variable.
pub const BTF_VAR_GLOBAL_EXTERN: u32 = 2;

/// `struct btf_member`. `offset` is raw: with the owner's kind_flag set it
/// is `bitfield_size << 24 | bit_offset`, else a plain bit offset; use
/// [`super::Btf::members`] for the decoded view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Member {
    /// Offset of the member's name in the string table.
    pub name_off: u32,
    /// The member's type.
    pub type_id: TypeId,
    /// Raw offset (see above).
    pub offset: u32,
}

/// `struct btf_enum`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EnumValue {
    /// Offset of the enumerator's name in the string table.
    pub name_off: u32,
    /// Its value (as the enum's signedness says).
    pub val: u32,
}

/// `struct btf_enum64`, the two halves joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Enum64Value {
    /// Offset of the enumerator's name in the string table.
    pub name_off: u32,
    /// Its value (as the enum's signedness says).
    pub val: u64,
}

/// `struct btf_param`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Param {
    /// Offset of the parameter's name in the string table (0: unnamed).
    pub name_off: u32,
    /// The parameter's type (void for a trailing `...`).
    pub type_id: TypeId,
}

/// `struct btf_var_secinfo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VarSecinfo {
    /// The VAR (or FUNC, for `.ksyms`) placed in the section.
    pub type_id: TypeId,
    /// Its offset in the section, in bytes.
    pub offset: u32,
    /// Its size in bytes.
    pub size: u32,
}

/// What a type holds, per kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TypeData {
    /// Placeholder for id 0; never written.
    Void,
    /// `data` is the raw trailing u32 (encoding << 24 | offset << 16 | bits).
    Int {
        /// Size in bytes.
        size: u32,
        /// The raw trailing word.
        data: u32,
    },
    /// Pointer to a type.
    Ptr(TypeId),
    /// Array of `nelems` elements.
    Array {
        /// Element type.
        elem: TypeId,
        /// Index type.
        index: TypeId,
        /// Number of elements.
        nelems: u32,
    },
    /// Struct.
    Struct {
        /// Size in bytes.
        size: u32,
        /// Members in declaration order.
        members: Vec<Member>,
    },
    /// Union.
    Union {
        /// Size in bytes.
        size: u32,
        /// Members in declaration order.
        members: Vec<Member>,
    },
    /// Signed when the type's kind_flag is set.
    Enum {
        /// Size in bytes (1, 2, 4 or 8).
        size: u32,
        /// Enumerators in declaration order.
        values: Vec<EnumValue>,
    },
    /// A union forward declaration when the type's kind_flag is set.
    Fwd,
    /// Typedef of a type.
    Typedef(TypeId),
    /// `volatile` qualifier.
    Volatile(TypeId),
    /// `const` qualifier.
    Const(TypeId),
    /// `restrict` qualifier.
    Restrict(TypeId),
    /// `linkage` is the vlen field (`BTF_FUNC_*`).
    Func {
        /// Its FUNC_PROTO.
        proto: TypeId,
        /// `BTF_FUNC_STATIC`, `BTF_FUNC_GLOBAL` or `BTF_FUNC_EXTERN`.
        linkage: u16,
    },
    /// Function signature.
    FuncProto {
        /// Return type (void for none).
        ret: TypeId,
        /// Parameters in order.
        params: Vec<Param>,
    },
    /// Variable.
    Var {
        /// Its type.
        type_id: TypeId,
        /// `BTF_VAR_STATIC`, `BTF_VAR_GLOBAL_ALLOCATED` or `BTF_VAR_GLOBAL_EXTERN`.
        linkage: u32,
    },
    /// Data section (`.data`, `.maps`, ...) and the variables in it.
    Datasec {
        /// Size in bytes (0 until the section's size is known).
        size: u32,
        /// Its variables, by offset.
        vars: Vec<VarSecinfo>,
    },
    /// Floating-point type.
    Float {
        /// Size in bytes.
        size: u32,
    },
    /// `component_idx` -1 tags the target itself, else member/param index.
    DeclTag {
        /// The tagged type.
        target: TypeId,
        /// See above.
        component_idx: i32,
    },
    /// Type tag (`__attribute__((btf_type_tag))`) on a type.
    TypeTag(TypeId),
    /// Signed when the type's kind_flag is set.
    Enum64 {
        /// Size in bytes (1, 2, 4 or 8).
        size: u32,
        /// Enumerators in declaration order.
        values: Vec<Enum64Value>,
    },
}

/// One BTF type: the common `struct btf_type` fields plus kind data.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BtfType {
    /// Offset of the type's name in the string table (0: anonymous).
    pub name_off: u32,
    /// The `kind_flag` bit (meaning depends on the kind).
    pub kind_flag: bool,
    /// The kind and what it holds.
    pub data: TypeData,
}

impl BtfType {
    /// A type from its fields.
    pub fn new(name_off: u32, kind_flag: bool, data: TypeData) -> Self {
        BtfType {
            name_off,
            kind_flag,
            data,
        }
    }

    /// Its `BTF_KIND_*`.
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

/// Accessors for INT's raw data word.
pub fn int_encoding(data: u32) -> u8 {
    ((data >> 24) & 0x0f) as u8
}
/// INT data: offset of the value in bits.
pub fn int_offset(data: u32) -> u32 {
    (data >> 16) & 0xff
}
/// INT data: number of bits.
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
