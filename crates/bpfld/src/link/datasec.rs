//! DATASECs: every input's entries recorded with their offsets moved like
//! the data, then one DATASEC per output section rebuilt at the end, each
//! global listed once, where it is defined.

use std::collections::{HashMap, HashSet};

use crate::model::btf::{
    Btf, BtfType, StringTable, TypeData, TypeId, VarSecinfo, BTF_VAR_GLOBAL_ALLOCATED,
};
use crate::model::object::{Object, Section, SectionKind};

use super::pieces::Placement;
use super::Input;

/// `BTF_VAR_EXTERN`: a variable declared, not defined, here.
const BTF_VAR_EXTERN: u32 = 2;

/// Where a DATASEC entry of an input goes: an output section (named once
/// the link is done, since `license` and `version` come last) or a section
/// only the loader knows (`.kconfig`, `.ksyms`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum DsSec {
    Out(usize),
    Named(String),
}

/// One DATASEC entry of an input, with its offset already moved; which of
/// them the output keeps depends on symbol resolution, settled once every
/// input has been added.
#[derive(Debug)]
pub(super) enum DsOp {
    Var {
        input: usize,
        sec: DsSec,
        /// The VAR's id in the merged types.
        var: TypeId,
        offset: u32,
        size: u32,
        /// The DATASEC's own size, for a section without an ELF section.
        eph_size: Option<u32>,
    },
    /// A DATASEC without variables, still written.
    Empty { sec: DsSec, size: u32 },
}

/// Records input `i`'s DATASEC entries (`map`: its type ids to merged
/// ones), offsets moved through `placement`; which of them the output
/// keeps is settled once every input has been added. The VARs of a
/// dropped `license` or `version` copy go to `dropped`.
pub(super) fn record(
    i: usize,
    input: &Input,
    btf: &Btf,
    map: &[TypeId],
    placement: &Placement,
    ops: &mut Vec<DsOp>,
    dropped: &mut Vec<TypeId>,
) {
    for (_, t) in btf.iter() {
        let TypeData::Datasec { vars, size } = &t.data else {
            continue;
        };
        let sec_name = btf.name(t.name_off).unwrap_or("");
        let elf_sec: Option<&Section> = input.object.section_by_name(sec_name);
        let eph_size = if elf_sec.is_none() { Some(*size) } else { None };
        for v in vars {
            let Some(&mapped) = map.get(v.type_id.0 as usize) else {
                continue;
            };
            // clang leaves global variables' offsets at 0 in DATASECs;
            // their symbols know where they are.
            let in_offset = match (btf.get(v.type_id).map(|t| &t.data), elf_sec) {
                (
                    Some(TypeData::Var {
                        linkage: BTF_VAR_GLOBAL_ALLOCATED,
                        ..
                    }),
                    Some(s),
                ) => {
                    let var_name = btf.type_name(v.type_id);
                    input
                        .object
                        .symbols
                        .iter()
                        .find(|sym| {
                            sym.name == var_name
                                && sym.place == crate::model::object::SymbolPlace::Section(s.id)
                        })
                        .map_or(v.offset, |sym| sym.value as u32)
                }
                _ => v.offset,
            };
            let (sec, offset) = match elf_sec {
                Some(s) if is_placed_kind(s) => {
                    match placement.map(i, s.id, u64::from(in_offset)) {
                        Some((o, off)) => (DsSec::Out(o), off as u32),
                        None => {
                            // A later input's `license`: its VAR goes too.
                            if super::symbols::single_index(s.kind).is_some() {
                                dropped.push(mapped);
                            }
                            continue; // or a dropped weak definition
                        }
                    }
                }
                _ => (DsSec::Named(sec_name.to_string()), v.offset),
            };
            ops.push(DsOp::Var {
                input: i,
                sec,
                var: mapped,
                offset,
                size: v.size,
                eph_size,
            });
        }
        // A section that has BTF but no variables still gets a DATASEC.
        if vars.is_empty() {
            let sec = match elf_sec {
                Some(s) if is_placed_kind(s) => match placement.map(i, s.id, 0) {
                    Some((o, _)) => DsSec::Out(o),
                    None => continue,
                },
                _ => DsSec::Named(sec_name.to_string()),
            };
            // Without an ELF section behind it, its own size stands.
            ops.push(DsOp::Empty {
                sec,
                size: eph_size.unwrap_or(0),
            });
        }
    }
}

/// The output's DATASECs, by output section and then the loader's
/// sections (`.kconfig`, `.ksyms`): each global listed once, where it is
/// defined (`defined_in`, by its kept copy), with `cur` and `resolve`
/// naming a merged id's current type and kept copy.
#[allow(clippy::too_many_arguments)]
pub(super) fn rebuild(
    ops: Vec<DsOp>,
    object: &Object,
    out_index: impl Fn(usize) -> usize,
    cur: impl Fn(TypeId) -> TypeId,
    resolve: impl Fn(TypeId) -> TypeId,
    defined_in: &HashMap<TypeId, usize>,
    global_copies: &HashSet<TypeId>,
    strings: &mut StringTable,
) -> Vec<BtfType> {
    let sec_name = |sec: DsSec| match sec {
        DsSec::Out(o) => object
            .sections
            .get(out_index(o) + 1)
            .map(|s| s.name.clone())
            .unwrap_or_default(),
        DsSec::Named(name) => name,
    };
    let mut datasecs: Vec<(String, u32, Vec<VarSecinfo>)> = Vec::new();
    // A global is listed once; every other entry (a static variable of
    // one input, even one whose VAR equals another input's) is its own.
    let mut seen: HashSet<(String, bool, TypeId, u32)> = HashSet::new();
    for op in ops {
        match op {
            DsOp::Var {
                input,
                sec,
                var,
                offset,
                size,
                eph_size,
            } => {
                let current = cur(var);
                let id = resolve(current);
                // A global is listed where it is defined.
                if let Some(&di) = defined_in.get(&id) {
                    if di != input {
                        continue;
                    }
                }
                let name = sec_name(sec);
                let key = if global_copies.contains(&current) {
                    (true, id, 0)
                } else {
                    (false, var, offset)
                };
                if !seen.insert((name.clone(), key.0, key.1, key.2)) {
                    continue;
                }
                let entry = match datasecs.iter().position(|d| d.0 == name) {
                    Some(p) => p,
                    None => {
                        datasecs.push((name, 0, Vec::new()));
                        datasecs.len() - 1
                    }
                };
                if let Some(eph) = eph_size {
                    datasecs[entry].1 = datasecs[entry].1.max(eph);
                }
                datasecs[entry].2.push(VarSecinfo {
                    type_id: id,
                    offset,
                    size,
                });
            }
            DsOp::Empty { sec, size } => {
                let name = sec_name(sec);
                if !datasecs.iter().any(|d| d.0 == name) {
                    datasecs.push((name, size, Vec::new()));
                }
            }
        }
    }
    // Output order: by output section, then the loader's sections.
    let order = |name: &str| {
        object
            .sections
            .iter()
            .position(|s| s.name == name)
            .unwrap_or(usize::MAX)
    };
    datasecs.sort_by_key(|d| order(&d.0));
    let mut new_datasecs = Vec::new();
    for (name, eph_size, mut vars) in datasecs {
        vars.sort_by_key(|v| v.offset);
        let size = match object.sections.iter().find(|s| s.name == name) {
            Some(s) => s.sh_size as u32,
            None => eph_size,
        };
        let name_off = strings.add(name.as_bytes());
        new_datasecs.push(BtfType::new(
            name_off,
            false,
            TypeData::Datasec { size, vars },
        ));
    }
    new_datasecs
}

fn is_placed_kind(s: &Section) -> bool {
    !matches!(
        s.kind,
        SectionKind::Null | SectionKind::Rel | SectionKind::SymTab | SectionKind::StrTab
    )
}

/// Checks that every DATASEC of an output section lists its entries in
/// order, none overlapping the one before and none past the section's end:
/// the kernel refuses anything else ("Invalid offset"), and libbpf then
/// loads the programs without BTF. A failure is a linker bug, reported
/// instead of written. The loader's own sections (`.kconfig`, `.ksyms`)
/// have no ELF section and are laid out by the loader; an extern still
/// unresolved in a partial link (a map declared `extern` in `.maps`) has
/// no storage yet and is skipped (the kernel refuses extern VARs anyway:
/// such an output must be linked again before it loads).
pub(super) fn check_layout(btf: &Btf, object: &Object) -> crate::error::Result<()> {
    for (_, t) in btf.iter() {
        let TypeData::Datasec { vars, size } = &t.data else {
            continue;
        };
        let name = btf.name(t.name_off).unwrap_or("");
        let Some(sec) = object.section_by_name(name) else {
            continue;
        };
        if u64::from(*size) != sec.sh_size {
            crate::bail!(
                "internal error: DATASEC '{name}' has size {size} but its section {} bytes",
                sec.sh_size
            );
        }
        let mut end = 0u64;
        let mut last = "";
        for v in vars {
            if let Some(TypeData::Var {
                linkage: BTF_VAR_EXTERN,
                ..
            }) = btf.get(v.type_id).map(|t| &t.data)
            {
                continue;
            }
            let var = btf.type_name(v.type_id);
            let (start, stop) = (u64::from(v.offset), u64::from(v.offset) + u64::from(v.size));
            if start < end {
                crate::bail!(
                    "internal error: DATASEC '{name}': '{var}' at offset {start} overlaps '{last}', which ends at {end}"
                );
            }
            if stop > u64::from(*size) {
                crate::bail!(
                    "internal error: DATASEC '{name}': '{var}' at offset {start} ({} bytes) lies past the section's {size} bytes",
                    v.size
                );
            }
            end = stop;
            last = var;
        }
    }
    Ok(())
}
