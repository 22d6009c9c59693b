//! Kernel names of maps: the kernel keeps 15 bytes, and a new program must
//! not show two maps of one name.

use std::collections::HashSet;

use bpfld::compose::Placed;
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
        rename_map(obj, &name, &new, is_section);
        renames.push((new, name));
    }
    renames
}

/// Renames map `name` of `obj` to `new`: the data section (and its
/// section symbol) when `is_section`, else the `.maps` symbol; and its BTF
/// DATASEC or VAR.
fn rename_map(obj: &mut Object, name: &str, new: &str, is_section: bool) {
    if is_section {
        for s in obj.sections.iter_mut().filter(|s| s.name == name) {
            s.name = new.to_string();
        }
        for s in obj.symbols.iter_mut() {
            if s.kind == SymbolKind::Section && s.name == name {
                s.name = new.to_string();
            }
        }
    } else {
        for s in obj.symbols.iter_mut().filter(|s| s.name == name) {
            s.name = new.to_string();
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
            .filter(|(_, t)| btf.name(t.name_off).ok() == Some(name))
            .map(|(id, _)| id)
            .collect();
        let off = btf.add_string(new);
        for id in ids {
            if let Some(t) = btf.get_mut(id) {
                t.name_off = off;
            }
        }
    }
}

/// Length of a component's tag, in hex digits.
const TAG_LEN: usize = 4;

/// The tag of each component (in `order`), which its maps' kernel names
/// end with: a hash of what makes it that component (its object's
/// canonical path, its program, and which of several alike it is), so it
/// does not change when priorities reorder the components or when the
/// composition is replaced. Tags are distinct within a composition (a
/// collision rehashes, in an order of the identities alone).
pub(super) fn component_tags(order: &[Placed]) -> Vec<String> {
    let file = |p: &Placed| -> String {
        if p.path.is_empty() {
            p.file.clone()
        } else {
            p.path.clone()
        }
    };
    let identity = |i: usize| -> String {
        let p = &order[i];
        let alike = order[..i]
            .iter()
            .filter(|q| file(q) == file(p) && q.program == p.program)
            .count();
        format!("{}\0{}\0{alike}", file(p), p.program)
    };
    let mut ids: Vec<(String, usize)> = (0..order.len()).map(|i| (identity(i), i)).collect();
    ids.sort();
    let mut tags = vec![String::new(); order.len()];
    let mut taken = HashSet::new();
    for (id, i) in ids {
        let tag = (0u32..)
            .map(|salt| {
                let h = format!("{id}\0{salt}")
                    .bytes()
                    .fold(0x811c_9dc5u32, |h, b| {
                        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
                    });
                format!("{:0w$x}", h & 0xffff, w = TAG_LEN)
            })
            .find(|t| !taken.contains(t))
            .unwrap_or_default();
        taken.insert(tag.clone());
        tags[i] = tag;
    }
    tags
}

/// Gives every map of every component a kernel name of its own that stays
/// the same for that component whatever its slot: `.data.compN` becomes
/// `.data.TAG`, `NAME__compN` becomes `NAME_TAG` (NAME shortened to fit
/// 15 bytes, and told apart by a digit if two of one component would be
/// cut alike). Returns the renames as (kernel name, composed name).
pub(super) fn stable_names(obj: &mut Object, order: &[Placed]) -> Vec<(String, String)> {
    let tags = component_tags(order);
    let maps_sec = obj
        .sections
        .iter()
        .find(|s| s.kind == SectionKind::Maps)
        .map(|s| s.id);
    let map_syms: Vec<String> = obj
        .symbols
        .iter()
        .filter(|s| {
            s.kind == SymbolKind::Object
                && maps_sec.is_some_and(|m| s.place == SymbolPlace::Section(m))
        })
        .map(|s| s.name.clone())
        .collect();
    let mut renames = Vec::new();
    for (p, tag) in order.iter().zip(&tags) {
        let data = bpfld::link::own_data_name(&p.slot);
        if obj.sections.iter().any(|s| s.name == data) {
            let new = format!(".data.{tag}");
            rename_map(obj, &data, &new, true);
            renames.push((new, data));
        }
        let suffix = format!("__{}", p.slot);
        let mut mine: Vec<&String> = map_syms.iter().filter(|n| n.ends_with(&suffix)).collect();
        mine.sort();
        let mut taken = HashSet::new();
        for name in mine {
            let base = &name[..name.len() - suffix.len()];
            let tail = format!("_{tag}");
            let new = std::iter::once(with_tail(base, &tail))
                .chain((1..).map(|g| with_tail(base, &format!("{g}{tail}"))))
                .find(|c| !taken.contains(c))
                .unwrap_or_default();
            taken.insert(new.clone());
            rename_map(obj, name, &new, false);
            renames.push((new, name.clone()));
        }
    }
    renames
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(slot: &str, path: &str, program: &str) -> Placed {
        Placed {
            index: 0,
            file: "x.o".into(),
            program: program.into(),
            priority: 50,
            chain: bpfld::compose::ChainActions::DEFAULT,
            slot: slot.into(),
            path: path.into(),
        }
    }

    #[test]
    fn tags_follow_the_component_not_its_slot() {
        let a = placed("comp0", "/d/a.o", "xdp_a");
        let b = placed("comp1", "/d/b.o", "xdp_b");
        let t = component_tags(&[a.clone(), b.clone()]);
        assert_ne!(t[0], t[1]);
        assert!(t.iter().all(|t| t.len() == TAG_LEN), "{t:?}");
        let moved = component_tags(&[
            placed("comp0", "/d/c.o", "xdp_c"),
            placed("comp1", "/d/b.o", "xdp_b"),
            placed("comp2", "/d/a.o", "xdp_a"),
        ]);
        assert_eq!((&moved[2], &moved[1]), (&t[0], &t[1]));
        // The same component twice: two tags, the first one's as alone.
        let twice = component_tags(&[a.clone(), placed("comp1", "/d/a.o", "xdp_a")]);
        assert_eq!(twice[0], t[0]);
        assert_ne!(twice[0], twice[1]);
        // One file spelled two ways, twice: two tags, as for one spelling.
        let spelled = Placed {
            file: "./a.o".into(),
            ..placed("comp1", "/d/a.o", "xdp_a")
        };
        assert_eq!(component_tags(&[a.clone(), spelled]), twice);
        // Another program of the same file is another component.
        assert_ne!(
            component_tags(&[placed("comp0", "/d/a.o", "xdp_z")])[0],
            t[0]
        );
    }

    #[test]
    fn names_are_cut_to_fit_with_their_tail() {
        assert_eq!(
            with_tail("packets_by_length_seen", "_ab12"),
            "packets_by_ab12"
        );
        assert_eq!(with_tail("counter", "_ab12"), "counter_ab12");
        assert_eq!(trunc15("0123456789abcdefgh"), "0123456789abcde");
    }
}
