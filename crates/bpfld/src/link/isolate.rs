//! Component instances isolated before the ordinary link: the function
//! that fills an extern is renamed to the extern (so by-name resolution,
//! the BTF signature check and the BTF merge all apply unchanged), every
//! other global gets the instance's suffix (`counter` becomes
//! `counter__slot0`) so nothing merges with the main inputs or with other
//! components by accident, and maps pinned by name or shared on request
//! keep their name. A composed component's writable globals can also be
//! folded into one section of its own ([`own_data_section`]).

use std::collections::{HashMap, HashSet};

use crate::error::{Error, Result};
use crate::model::btf::{TypeData, TypeId};
use crate::model::object::{
    Binding, Object, SectionId, SectionKind, Symbol, SymbolKind, SymbolPlace, Visibility,
};

use super::report::ComponentReport;
use super::Input;

/// A component instance made ready for the ordinary link.
pub struct Prepared {
    pub input: Input,
    /// The resolved functions' symbols (after renaming).
    pub roots: Vec<String>,
    pub report: ComponentReport,
}

/// Renames and marks a component instance. `targets` lists (function,
/// externs it fills) in command-line order; the first extern names the
/// instance and the function.
pub fn prepare(
    c: &Input,
    targets: &[(String, Vec<String>)],
    shared: &HashSet<String>,
) -> Result<Prepared> {
    let label = targets
        .first()
        .and_then(|t| t.1.first())
        .cloned()
        .ok_or_else(|| Error::new(format!("component {} fills no extern", c.name)))?;
    let mut obj = c.object.clone();
    let mut renames: HashMap<String, String> = HashMap::new();
    let mut roots = Vec::new();
    let mut report = ComponentReport {
        component: c.name.clone(),
        label: label.clone(),
        resolved: Vec::new(),
        insns: 0,
        maps: Vec::new(),
        globals: Vec::new(),
        functions: Vec::new(),
        inlining: Vec::new(),
        optimized: None,
    };
    let target_of: HashMap<&str, &str> = targets
        .iter()
        .map(|(f, ex)| (f.as_str(), ex[0].as_str()))
        .collect();
    for (f, ex) in targets {
        for e in ex {
            report.resolved.push((e.clone(), f.clone()));
        }
    }
    let single_kinds = |obj: &Object, s: &Symbol| match s.place {
        SymbolPlace::Section(id) => obj
            .section(id)
            .is_some_and(|sec| matches!(sec.kind, SectionKind::License | SectionKind::Version)),
        _ => false,
    };
    // The component as given: `obj` is its renamed copy.
    let snapshot = &c.object;
    let pinned: HashSet<String> = crate::model::map_def::pinned_by_name(snapshot).collect();
    for s in obj.symbols.iter_mut() {
        if s.id.0 == 0 || matches!(s.kind, SymbolKind::Section | SymbolKind::File) {
            continue;
        }
        if single_kinds(snapshot, s) {
            // The main inputs' license governs; a component's is not linked.
            s.binding = Binding::Local;
            continue;
        }
        if let Some(&ext) = target_of.get(s.name.as_str()) {
            if s.kind == SymbolKind::Func && s.place != SymbolPlace::Undefined {
                renames.insert(s.name.clone(), ext.to_string());
                s.name = ext.to_string();
                s.binding = Binding::Global;
                s.visibility = Visibility::Hidden;
                roots.push(ext.to_string());
                continue;
            }
        }
        if s.binding == Binding::Local || s.place == SymbolPlace::Undefined {
            continue;
        }
        let in_maps = match s.place {
            SymbolPlace::Section(id) => snapshot
                .section(id)
                .is_some_and(|x| x.kind == SectionKind::Maps),
            _ => false,
        };
        if in_maps && (shared.contains(&s.name) || pinned.contains(&s.name)) {
            continue;
        }
        let new = format!("{}__{label}", s.name);
        renames.insert(s.name.clone(), new.clone());
        s.name = new;
    }
    if let Some(btf) = &mut obj.btf {
        // The BTF VARs and FUNCs follow their symbols; a resolved function
        // is non-static so it can be checked against the extern.
        let mut fixes: Vec<(TypeId, u32, bool)> = Vec::new();
        for (id, t) in btf.iter() {
            let is_func = matches!(t.data, TypeData::Func { .. });
            let non_static = match &t.data {
                TypeData::Func { linkage, .. } => *linkage != 0,
                TypeData::Var { linkage, .. } => *linkage != 0,
                _ => continue,
            };
            let Ok(name) = btf.name(t.name_off) else {
                continue;
            };
            let Some(new) = renames.get(name) else {
                continue;
            };
            let is_target = is_func && target_of.contains_key(name);
            if !non_static && !is_target {
                continue;
            }
            let off = btf.find_string(new).unwrap_or(u32::MAX);
            fixes.push((id, off, is_target));
        }
        for (id, off, is_target) in fixes {
            let name = btf.type_name(id).to_string();
            let new = renames[&name].clone();
            let off = if off == u32::MAX {
                btf.add_string(&new)
            } else {
                off
            };
            if let Some(t) = btf.get_mut(id) {
                t.name_off = off;
                if is_target {
                    if let TypeData::Func { linkage, .. } = &mut t.data {
                        *linkage = 1;
                    }
                }
            }
        }
    }
    for s in &snapshot.symbols {
        let Some(new) = renames.get(&s.name) else {
            continue;
        };
        if target_of.contains_key(s.name.as_str()) && s.kind == SymbolKind::Func {
            continue;
        }
        let entry = (s.name.clone(), new.clone());
        let in_kind = |k: SectionKind| match s.place {
            SymbolPlace::Section(id) => snapshot.section(id).is_some_and(|x| x.kind == k),
            _ => false,
        };
        if in_kind(SectionKind::Maps) {
            report.maps.push(entry);
        } else if s.kind == SymbolKind::Func {
            report.functions.push(entry);
        } else {
            report.globals.push(entry);
        }
    }
    Ok(Prepared {
        input: Input {
            name: c.name.clone(),
            object: obj,
        },
        roots,
        report,
    })
}

/// The largest folded data section accepted: the kernel refuses array map
/// values above `KMALLOC_MAX_SIZE` (4 MiB on x86-64 with 4 KiB pages), and
/// the zero-filled part is allocated here.
const MAX_OWN_DATA: u64 = 4 << 20;

/// The section holding an instance's writable globals: `.data.LABEL`.
pub fn own_data_name(label: &str) -> String {
    format!(".data.{label}")
}

/// Folds every writable data section of a component (`.data`, `.data.*`,
/// `.bss`, `.bss.*`) into one section `.data.LABEL`, so the instance's
/// globals become one map of their own instead of sharing the main
/// inputs' `.data`/`.bss` maps: such a map can be handed to a successor
/// program whole. It is a `.data.*` PROGBITS section (zeros for the BSS
/// part) because libbpf before 1.3 loads no `.bss.*` section. Symbols,
/// relocation addends (section-relative `ld_imm64` immediates) and the
/// BTF DATASECs move with the bytes. `.rodata` is frozen at load and is
/// left to the ordinary merge.
pub fn own_data_section(obj: &mut Object, label: &str) -> Result<()> {
    use crate::model::insn::{BPF_DW, BPF_IMM, BPF_LD};
    const LD_IMM64: u8 = BPF_LD | BPF_IMM | BPF_DW;
    const SHT_PROGBITS: u32 = 1;
    const SHT_NOBITS: u32 = 8;
    const SHF_WRITE_ALLOC: u64 = 0x3;
    // Initialised data first, then the zero-filled sections.
    let mut order: Vec<SectionId> = Vec::new();
    for kind in [SectionKind::Data, SectionKind::Bss] {
        order.extend(obj.sections.iter().filter(|s| s.kind == kind).map(|s| s.id));
    }
    let Some(&target) = order.first() else {
        return Ok(());
    };
    // Where each section starts in the folded one.
    let mut base: HashMap<SectionId, u64> = HashMap::new();
    let mut old_names: Vec<(String, u64)> = Vec::new();
    let mut cursor = 0u64;
    let mut align = 1u64;
    for &id in &order {
        let Some(s) = obj.section(id) else { continue };
        let a = s.sh_addralign.max(1);
        let size = if s.kind == SectionKind::Bss {
            s.sh_size
        } else {
            s.data.len() as u64
        };
        let start = cursor.div_ceil(a).saturating_mul(a);
        cursor = start.saturating_add(size);
        if cursor > MAX_OWN_DATA {
            crate::bail!(
                "writable global variables take {cursor} bytes (through section '{}'), more than one BPF map value can hold ({MAX_OWN_DATA} bytes)",
                s.name
            );
        }
        align = align.max(a);
        base.insert(id, start);
        old_names.push((s.name.clone(), start));
    }
    let mut data = vec![0u8; cursor as usize];
    let mut relocs = Vec::new();
    for &id in &order {
        let Some(s) = obj.sections.get_mut(id.0 as usize) else {
            continue;
        };
        let b = base[&id];
        if s.kind == SectionKind::Data {
            data[b as usize..b as usize + s.data.len()].copy_from_slice(&s.data);
        }
        relocs.extend(s.relocs.drain(..).map(|r| crate::model::object::Reloc {
            offset: r.offset.saturating_add(b),
            ..r
        }));
        if id != target {
            // Emptied: no longer linked (not a data kind, no contents).
            s.kind = SectionKind::Other;
            s.sh_type = SHT_NOBITS;
            s.sh_size = 0;
            s.data.clear();
        }
    }
    let new_name = own_data_name(label);
    if let Some(t) = obj.sections.get_mut(target.0 as usize) {
        t.name = new_name.clone();
        t.kind = SectionKind::Data;
        t.sh_type = SHT_PROGBITS;
        t.sh_flags = SHF_WRITE_ALLOC;
        t.sh_addralign = align;
        t.sh_size = cursor;
        t.data = data;
        relocs.sort_by_key(|r| r.offset);
        t.relocs = relocs;
    }
    // Symbols move with their bytes; a section symbol now names the folded
    // section, so what refers through it gets its section's start added.
    let mut shift_through: HashMap<crate::model::object::SymbolId, u64> = HashMap::new();
    for s in obj.symbols.iter_mut() {
        let SymbolPlace::Section(id) = s.place else {
            continue;
        };
        let Some(&b) = base.get(&id) else { continue };
        s.place = SymbolPlace::Section(target);
        if s.kind == SymbolKind::Section {
            if b != 0 {
                shift_through.insert(s.id, b);
            }
        } else {
            s.value = s.value.saturating_add(b);
        }
    }
    if !shift_through.is_empty() {
        // (Other sections' relocations, such as `.rel.BTF`'s, are not
        // carried over by the link.)
        for sec in obj.sections.iter_mut().filter(|s| s.is_program()) {
            let name = sec.name.clone();
            for r in &sec.relocs {
                let Some(&b) = shift_through.get(&r.symbol) else {
                    continue;
                };
                let Some(insn) = sec
                    .insns
                    .get_mut((r.offset / 8) as usize)
                    .filter(|i| i.code == LD_IMM64)
                else {
                    crate::bail!(
                        "section '{name}' offset {:#x}: a section-relative reference into global data that is not an ld_imm64",
                        r.offset
                    );
                };
                let Some(imm) = u32::try_from(b)
                    .ok()
                    .and_then(|b| (insn.imm as u32).checked_add(b))
                else {
                    crate::bail!(
                        "section '{name}' offset {:#x}: data offset overflows the instruction",
                        r.offset
                    );
                };
                insn.imm = imm as i32;
            }
        }
    }
    // One DATASEC lists every variable at its new offset; the others are
    // left empty under the same name (the link rebuilds DATASECs by name).
    if let Some(btf) = &mut obj.btf {
        let hits: Vec<(TypeId, u64)> = btf
            .iter()
            .filter(|(_, t)| matches!(t.data, TypeData::Datasec { .. }))
            .filter_map(|(id, t)| {
                let n = btf.name(t.name_off).ok()?;
                old_names
                    .iter()
                    .find(|(o, _)| o == n)
                    .map(|&(_, b)| (id, b))
            })
            .collect();
        let name_off = btf.add_string(&new_name);
        let mut merged = Vec::new();
        for &(id, b) in &hits {
            let Some(t) = btf.get_mut(id) else { continue };
            t.name_off = name_off;
            if let TypeData::Datasec { vars, size } = &mut t.data {
                for mut v in vars.drain(..) {
                    v.offset = u32::try_from(u64::from(v.offset) + b).map_err(|_| {
                        Error::new(format!(
                            "BTF DATASEC of global data: variable offset {:#x} beyond the data",
                            v.offset
                        ))
                    })?;
                    merged.push(v);
                }
                *size = 0;
            }
        }
        if let Some(TypeData::Datasec { vars, size }) = hits
            .first()
            .and_then(|h| btf.get_mut(h.0))
            .map(|t| &mut t.data)
        {
            merged.sort_by_key(|v| v.offset);
            *vars = merged;
            *size = cursor as u32;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comp_data() -> Object {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/comp_data.o");
        crate::read::elf::parse(&std::fs::read(path).expect("fixture")).expect("parses")
    }

    #[test]
    fn writable_sections_fold_into_one_with_everything_that_points_there() {
        let mut obj = comp_data();
        own_data_section(&mut obj, "slot3").unwrap();
        let data: Vec<&crate::model::object::Section> = obj
            .sections
            .iter()
            .filter(|s| matches!(s.kind, SectionKind::Data | SectionKind::Bss))
            .collect();
        assert_eq!(data.len(), 1, "one writable section");
        let sec = data[0];
        assert_eq!((sec.name.as_str(), sec.sh_type), (".data.slot3", 1));
        // .data (hits = 1000), .data.custom (custom_hits = 7), then the
        // zeroed .bss (zeroed, static runs).
        let words: Vec<u64> = sec
            .data
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(words, [1000, 7, 0, 0]);
        let at = |name: &str| {
            let s = obj.symbols.iter().find(|s| s.name == name).unwrap();
            assert_eq!(s.place, SymbolPlace::Section(sec.id), "{name}");
            s.value
        };
        assert_eq!(
            [at("hits"), at("custom_hits"), at("zeroed"), at("runs")],
            [0, 8, 16, 24]
        );
        // `runs` is reached through the .bss section symbol: its ld_imm64
        // now carries the offset in the folded section.
        let prog = obj.sections.iter().find(|s| s.name == "xdp").unwrap();
        let via_section: Vec<i32> = prog
            .relocs
            .iter()
            .filter(|r| {
                obj.symbol(r.symbol)
                    .is_some_and(|s| s.kind == SymbolKind::Section)
            })
            .map(|r| prog.insns[(r.offset / 8) as usize].imm)
            .collect();
        assert_eq!(via_section, [24]);
        // One DATASEC with all four, at their new offsets.
        let btf = obj.btf.as_ref().unwrap();
        let id = btf.find_datasec(".data.slot3").unwrap();
        let vars: Vec<(String, u32)> = btf
            .datasec_vars(id)
            .unwrap()
            .iter()
            .map(|v| (v.name.to_string(), v.offset))
            .collect();
        let names: Vec<(&str, u32)> = vars.iter().map(|(n, o)| (n.as_str(), *o)).collect();
        assert_eq!(
            names,
            [
                ("hits", 0),
                ("custom_hits", 8),
                ("zeroed", 16),
                ("runs", 24)
            ]
        );
        assert!(btf.find_datasec(".bss").is_none() && btf.find_datasec(".data").is_none());
    }

    #[test]
    fn a_zero_filled_section_too_big_for_a_map_value_is_an_error() {
        let mut obj = comp_data();
        let bss = obj.sections.iter_mut().find(|s| s.name == ".bss").unwrap();
        bss.sh_size = 1 << 31;
        let e = own_data_section(&mut obj, "slot0").unwrap_err();
        assert!(
            e.to_string()
                .contains("more than one BPF map value can hold (4194304 bytes)"),
            "{e}"
        );
    }
}
