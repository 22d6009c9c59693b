//! Questions about types that follow references: names for messages,
//! modifier and typedef stripping, sizes, lookups by name, and decoded
//! views of members, DATASEC variables and signatures.

use super::{Btf, Kind, TypeData, TypeId, MAX_CHAIN};
use crate::error::{Error, Result};

/// A decoded struct/union member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberInfo<'a> {
    /// Its name (empty when anonymous).
    pub name: &'a str,
    /// Its type.
    pub type_id: TypeId,
    /// Its offset in bits.
    pub bit_offset: u32,
    /// 0 when the member is not a bitfield.
    pub bitfield_size: u32,
}

/// A variable of a DATASEC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatasecVar<'a> {
    /// The VAR's (or FUNC's) name.
    pub name: &'a str,
    /// The VAR (or FUNC, for `.ksyms`) type id.
    pub var_id: TypeId,
    /// The VAR's own type.
    pub type_id: TypeId,
    /// Offset in the section, in bytes.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
}

impl Btf {
    /// `[id] KIND 'name'`, for error messages.
    pub fn describe(&self, id: TypeId) -> String {
        super::describe_in(self, id.0)
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
        super::size_of_in(self, id.0)
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
    /// The return type.
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
