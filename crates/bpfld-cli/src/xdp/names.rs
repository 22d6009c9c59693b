//! Kernel names of maps: the kernel keeps 15 bytes, and a new program must
//! not show two maps of one name.

use std::collections::HashSet;

use bpfld::model::btf::TypeData;
use bpfld::model::object::{Object, SectionKind, SymbolKind, SymbolPlace};
use bpfld_kernel::xdp::{self as kx, Reuse};

/// The kernel keeps 15 bytes of a map's name.
pub(super) fn trunc15(s: &str) -> String {
    s.chars().take(15).collect()
}

/// `name` shortened so that `tail` fits within the kernel's 15 bytes.
fn with_tail(name: &str, tail: &str) -> String {
    let keep = 15usize.saturating_sub(tail.len()).min(name.chars().count());
    format!("{}{tail}", name.chars().take(keep).collect::<String>())
}

/// Gives every map the new program creates a kernel name no map handed
/// over from the running program has (those keep the name they were
/// created with, e.g. `.data.comp0` for a component now in slot comp1),
/// so `bpftool map list` never shows one program two maps of one name.
/// A renamed map becomes `NAME_1` (or `_2`, ...), shortened to 15 bytes,
/// in the object (section or symbol, and BTF); the renames are returned
/// as (new name, composed name).
pub(super) fn avoid_kept_names(obj: &mut Object, reuse: &Reuse) -> Vec<(String, String)> {
    let kept: Vec<&str> = reuse.maps.iter().map(|(n, _)| n.as_str()).collect();
    let mut taken: HashSet<String> = reuse
        .maps
        .iter()
        .filter_map(|(_, id)| kx::map_by_id(*id).ok().map(|(_, m)| m.name))
        .collect();
    // The maps the new program creates: data sections and `.maps` maps.
    let maps_sec = obj
        .sections
        .iter()
        .find(|s| s.kind == SectionKind::Maps)
        .map(|s| s.id);
    let mut fresh: Vec<(String, bool)> = obj
        .sections
        .iter()
        .filter(|s| {
            matches!(
                s.kind,
                SectionKind::Data | SectionKind::Bss | SectionKind::Rodata
            )
        })
        .map(|s| (s.name.clone(), true))
        .chain(
            obj.symbols
                .iter()
                .filter(|s| {
                    s.kind == SymbolKind::Object
                        && maps_sec.is_some_and(|m| s.place == SymbolPlace::Section(m))
                })
                .map(|s| (s.name.clone(), false)),
        )
        .filter(|(n, _)| !kept.contains(&n.as_str()))
        .collect();
    fresh.sort();
    let mut renames = Vec::new();
    for (name, is_section) in fresh {
        // (Also two fresh names the kernel would cut to the same 15 bytes.)
        if taken.insert(trunc15(&name)) {
            continue;
        }
        let Some(new) = (1..)
            .map(|g| with_tail(&name, &format!("_{g}")))
            .find(|c| !taken.contains(c))
        else {
            continue;
        };
        taken.insert(new.clone());
        if is_section {
            for s in obj.sections.iter_mut().filter(|s| s.name == name) {
                s.name = new.clone();
            }
            for s in obj.symbols.iter_mut() {
                if s.kind == SymbolKind::Section && s.name == name {
                    s.name = new.clone();
                }
            }
        } else {
            for s in obj.symbols.iter_mut().filter(|s| s.name == name) {
                s.name = new.clone();
            }
        }
        if let Some(btf) = &mut obj.btf {
            let ids: Vec<_> = btf
                .iter()
                .filter(|(_, t)| match t.data {
                    TypeData::Datasec { .. } => is_section,
                    TypeData::Var { .. } => !is_section,
                    _ => false,
                })
                .filter(|(_, t)| btf.name(t.name_off).ok() == Some(name.as_str()))
                .map(|(id, _)| id)
                .collect();
            let off = btf.add_string(&new);
            for id in ids {
                if let Some(t) = btf.get_mut(id) {
                    t.name_off = off;
                }
            }
        }
        renames.push((new, name));
    }
    renames
}
