//! The `.BTF` of an object as libbpf hands it to the kernel
//! (`BPF_BTF_LOAD`), so that tests and the corpus run can check that the
//! kernel accepts what bpfld writes.
//!
//! Only the rewrites libbpf itself makes at load time on a current kernel
//! are applied, because the kernel refuses extern declarations by design
//! and the loader resolves them itself:
//!
//! - `.ksyms` externs: each DATASEC entry becomes 4 bytes at offset
//!   `4 * index` (the section `4 * count`); a VAR becomes an allocated
//!   global `int`; a FUNC (kfunc) becomes a global FUNC whose unnamed
//!   parameters are named `dummy_ksym`, and its DATASEC entry points to a
//!   VAR `dummy_ksym` appended for that purpose.
//! - `.kconfig` externs: each VAR becomes an allocated global, laid out in
//!   the `.kconfig` map the way libbpf lays it out (descending alignment,
//!   then ascending size, then name), and the section gets that size.
//! - The entries of both DATASECs are then sorted by offset.
//!
//! Nothing else is changed: DATASEC sizes and variable offsets of other
//! sections are not filled in from the ELF (a linked object must carry
//! them), hidden global functions are not made static, nothing is
//! sanitized for older kernels. The only other difference is the byte
//! order, which is the host's (little-endian), as libbpf converts it.
//! An object libbpf would refuse to open (an extern outside `.kconfig` and
//! `.ksyms`, an extern with no BTF, a `.kconfig` extern of a type libbpf
//! cannot fill) is an error naming the extern.

use crate::bail;
use crate::error::{Error, Result};
use crate::model::btf::{
    int_bits, int_encoding, Btf, BtfType, Kind, TypeData, TypeId, BTF_FUNC_EXTERN, BTF_FUNC_GLOBAL,
    BTF_VAR_GLOBAL_ALLOCATED, BTF_VAR_GLOBAL_EXTERN,
};
use crate::model::object::{Binding, Object, SymbolKind};
use crate::model::Endian;

const KCONFIG: &str = ".kconfig";
const KSYMS: &str = ".ksyms";
/// The name libbpf gives the VAR standing in for kfuncs and their unnamed
/// parameters.
const DUMMY_KSYM: &str = "dummy_ksym";
/// `BTF_INT_BOOL`.
const BTF_INT_BOOL: u8 = 4;

pub use crate::model::btf::KernelBtf;

/// The `.BTF` of `obj`, rewritten as libbpf does before loading it (see
/// the module documentation); `Object::kernel_btf` is its public name.
pub fn kernel_btf_of(obj: &Object) -> Result<KernelBtf> {
    let Some(btf) = &obj.btf else {
        bail!("the object has no .BTF section");
    };
    let mut btf = btf.clone();
    let mut rewrites = Vec::new();

    // Every extern symbol must name a BTF VAR or FUNC declared extern,
    // inside the `.kconfig` or `.ksyms` DATASEC; libbpf refuses others.
    let mut externs: Vec<(String, TypeId, bool)> = Vec::new(); // name, BTF id, in .kconfig
    for sym in &obj.symbols {
        let is_extern = sym.is_extern()
            && matches!(sym.binding, Binding::Global | Binding::Weak)
            && sym.kind == SymbolKind::NoType
            && !sym.name.is_empty();
        if !is_extern {
            continue;
        }
        let id = extern_btf_id(&btf, &sym.name)?;
        let sec = datasec_of(&btf, id).ok_or_else(|| {
            Error::new(format!(
                "extern '{}' ({}) is in no DATASEC: libbpf loads only `.kconfig` and `.ksyms` externs",
                sym.name,
                btf.describe(id)
            ))
        })?;
        let sec_name = btf.type_name(sec).to_string();
        let in_kconfig = match sec_name.as_str() {
            KCONFIG => true,
            KSYMS => false,
            other => bail!(
                "extern '{}' is in DATASEC '{other}': libbpf loads only `.kconfig` and `.ksyms` externs",
                sym.name
            ),
        };
        if in_kconfig && btf.ty(id)?.kind() == Kind::Func {
            bail!(
                "extern function '{}' in `.kconfig`: libbpf refuses it",
                sym.name
            );
        }
        externs.push((btf.type_name(id).to_string(), id, in_kconfig));
    }

    if let Some(sec) = btf.find_datasec(KSYMS) {
        rewrite_ksyms(&mut btf, sec, &externs, &mut rewrites)?;
    }
    if let Some(sec) = btf.find_datasec(KCONFIG) {
        rewrite_kconfig(&mut btf, sec, &externs, &mut rewrites)?;
    }

    let types = btf.type_count() - 1;
    let native = btf.endian == Endian::Little;
    let bytes = if rewrites.is_empty() && native {
        crate::write::btf::to_bytes(&btf)
    } else {
        // A changed model is laid out anew (header, types, strings).
        btf.endian = Endian::Little;
        btf.raw_layout = None;
        crate::write::btf::to_bytes(&btf)
    };
    if !native {
        rewrites.push("byte order changed to the host's".into());
    }
    Ok(KernelBtf {
        bytes,
        types,
        rewrites,
    })
}

/// The first VAR or FUNC named `name`, which must be an extern
/// declaration (libbpf takes the first and refuses a definition).
fn extern_btf_id(btf: &Btf, name: &str) -> Result<TypeId> {
    for (id, t) in btf.iter() {
        let extern_linkage = match &t.data {
            TypeData::Var { linkage, .. } => *linkage == BTF_VAR_GLOBAL_EXTERN,
            TypeData::Func { linkage, .. } => *linkage == BTF_FUNC_EXTERN,
            _ => continue,
        };
        if btf.name(t.name_off).ok() != Some(name) {
            continue;
        }
        if !extern_linkage {
            bail!(
                "extern '{name}': its BTF {} is not declared extern",
                btf.describe(id)
            );
        }
        return Ok(id);
    }
    bail!("extern '{name}' has no BTF VAR or FUNC")
}

/// The DATASEC listing type `id`.
fn datasec_of(btf: &Btf, id: TypeId) -> Option<TypeId> {
    btf.iter()
        .find(|(_, t)| match &t.data {
            TypeData::Datasec { vars, .. } => vars.iter().any(|v| v.type_id == id),
            _ => false,
        })
        .map(|(sec, _)| sec)
}

fn datasec_entries(btf: &Btf, sec: TypeId) -> Vec<crate::model::btf::VarSecinfo> {
    match &btf.types[sec.0 as usize].data {
        TypeData::Datasec { vars, .. } => vars.clone(),
        _ => Vec::new(),
    }
}

fn set_datasec(
    btf: &mut Btf,
    sec: TypeId,
    size: u32,
    mut vars: Vec<crate::model::btf::VarSecinfo>,
) {
    // Stable, as the order of equal offsets does not matter to the kernel
    // (it refuses overlaps anyway).
    vars.sort_by_key(|v| v.offset);
    btf.types[sec.0 as usize].data = TypeData::Datasec { size, vars };
}

/// The first 32-bit INT (libbpf's choice for the stand-in variables; void
/// when there is none, which the kernel then refuses, as with libbpf).
fn int32(btf: &Btf) -> TypeId {
    btf.iter()
        .find(|(_, t)| matches!(t.data, TypeData::Int { data, .. } if int_bits(data) == 32))
        .map_or(TypeId::VOID, |(id, _)| id)
}

fn rewrite_ksyms(
    btf: &mut Btf,
    sec: TypeId,
    externs: &[(String, TypeId, bool)],
    rewrites: &mut Vec<String>,
) -> Result<()> {
    let mut vars = datasec_entries(btf, sec);
    let int = int32(btf);
    let has_func = vars
        .iter()
        .any(|v| btf.get(v.type_id).is_some_and(|t| t.kind() == Kind::Func));
    let dummy = if has_func {
        let name_off = btf.add_string(DUMMY_KSYM);
        let id = btf.add_type(BtfType::new(
            name_off,
            false,
            TypeData::Var {
                type_id: int,
                linkage: BTF_VAR_GLOBAL_ALLOCATED,
            },
        ));
        rewrites.push(format!(
            "VAR '{DUMMY_KSYM}' added for the `.ksyms` functions"
        ));
        Some((id, name_off))
    } else {
        None
    };
    for (i, v) in vars.iter_mut().enumerate() {
        let name = btf.type_name(v.type_id).to_string();
        if !externs.iter().any(|(n, _, kconfig)| *n == name && !kconfig) {
            bail!("`.ksyms` entry '{name}' has no extern symbol: libbpf refuses the object");
        }
        let t = btf.ty(v.type_id)?.clone();
        match t.data {
            TypeData::Func { proto, .. } => {
                let (dummy_id, dummy_name) = dummy.expect("added when a FUNC is present");
                if let Some(TypeData::FuncProto { params, .. }) =
                    btf.get_mut(proto).map(|p| &mut p.data)
                {
                    for p in params.iter_mut() {
                        if p.type_id != TypeId::VOID && p.name_off == 0 {
                            p.name_off = dummy_name;
                        }
                    }
                }
                btf.types[v.type_id.0 as usize].data = TypeData::Func {
                    proto,
                    linkage: BTF_FUNC_GLOBAL,
                };
                v.type_id = dummy_id;
                rewrites.push(format!("`.ksyms` FUNC '{name}' made global"));
            }
            TypeData::Var { .. } => {
                btf.types[v.type_id.0 as usize].data = TypeData::Var {
                    type_id: int,
                    linkage: BTF_VAR_GLOBAL_ALLOCATED,
                };
                rewrites.push(format!("`.ksyms` VAR '{name}' made an allocated int"));
            }
            _ => bail!(
                "`.ksyms` entry {} is neither a VAR nor a FUNC",
                btf.describe(v.type_id)
            ),
        }
        v.offset = 4 * i as u32;
        v.size = 4;
    }
    let size = 4 * vars.len() as u32;
    set_datasec(btf, sec, size, vars);
    Ok(())
}

/// Size and alignment of a `.kconfig` extern's type, for the types libbpf
/// can fill from the kernel configuration (bool, char, integers of 1-8
/// bytes, `enum libbpf_tristate`, char arrays).
fn kconfig_layout(btf: &Btf, var_type: TypeId, name: &str) -> Result<(u32, u32)> {
    let refuse = || {
        Error::new(format!(
            "`.kconfig` extern '{name}' of type {}: libbpf cannot fill that type",
            btf.describe(var_type)
        ))
    };
    let t = btf.resolve(var_type).map_err(|_| refuse())?;
    let ty = btf.ty(t)?;
    let (size, align) = match &ty.data {
        TypeData::Int { size, data } => {
            let enc = int_encoding(*data);
            let ok = if enc & BTF_INT_BOOL != 0 {
                *size == 1
            } else {
                (1..=8).contains(size) && size.is_power_of_two()
            };
            if !ok {
                return Err(refuse());
            }
            (*size, *size)
        }
        TypeData::Enum { size, .. } | TypeData::Enum64 { size, .. } => {
            let ok =
                btf.type_name(t) == "libbpf_tristate" && (ty.kind() == Kind::Enum64 || *size == 4);
            if !ok {
                return Err(refuse());
            }
            (*size, (*size).min(8))
        }
        TypeData::Array { elem, nelems, .. } => {
            let e = btf.resolve(*elem).map_err(|_| refuse())?;
            let is_char = matches!(btf.ty(e)?.data,
                TypeData::Int { size: 1, data } if int_encoding(data) & BTF_INT_BOOL == 0);
            if *nelems == 0 || !is_char {
                return Err(refuse());
            }
            (*nelems, 1)
        }
        _ => return Err(refuse()),
    };
    Ok((size, align))
}

fn rewrite_kconfig(
    btf: &mut Btf,
    sec: TypeId,
    externs: &[(String, TypeId, bool)],
    rewrites: &mut Vec<String>,
) -> Result<()> {
    // Lay out the map: descending alignment, ascending size, then name.
    let mut layout: Vec<(u32, u32, &str, TypeId)> = Vec::new();
    for (name, id, kconfig) in externs.iter().filter(|e| e.2) {
        debug_assert!(*kconfig);
        let TypeData::Var { type_id, .. } = btf.ty(*id)?.data else {
            bail!("`.kconfig` extern '{name}' is not a VAR");
        };
        let (size, align) = kconfig_layout(btf, type_id, name)?;
        layout.push((align, size, name.as_str(), *id));
    }
    layout.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(b.2)));
    let mut offsets: Vec<(&str, u32)> = Vec::new();
    let mut off = 0u32;
    for (align, size, name, _) in &layout {
        let at = off.div_ceil(*align) * align;
        offsets.push((name, at));
        off = at + size;
    }
    let mut vars = datasec_entries(btf, sec);
    for v in vars.iter_mut() {
        let name = btf.type_name(v.type_id).to_string();
        let Some(&(_, at)) = offsets.iter().find(|(n, _)| *n == name) else {
            bail!("`.kconfig` entry '{name}' has no extern symbol: libbpf refuses the object");
        };
        if let TypeData::Var { type_id, .. } = btf.ty(v.type_id)?.data {
            btf.types[v.type_id.0 as usize].data = TypeData::Var {
                type_id,
                linkage: BTF_VAR_GLOBAL_ALLOCATED,
            };
        }
        v.offset = at;
        rewrites.push(format!(
            "`.kconfig` VAR '{name}' made allocated at offset {at}"
        ));
    }
    set_datasec(btf, sec, off, vars);
    Ok(())
}
