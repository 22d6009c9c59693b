//! Planning what of the running composition a new one keeps: maps of the
//! components in both (by name) and their writable globals (by layout).

use bpfld::compose::{path_key, xdp_programs, ComponentSpec, Placed};
use bpfld::link::own_data_name;
use bpfld::model::btf::{Btf, TypeData};
use bpfld::Result;
use bpfld_kernel::xdp::{self as kx, Reuse};

use super::names::trunc15;
use super::records::{aliases, datasec, reused_names};
use super::running::Running;

const BPF_MAP_TYPE_ARRAY: u32 = 2;

/// Whether a manifest's file (as the kernel kept it: aya turns '/' in
/// DATASEC names into '.') names `file`.
fn same_file(kept: &str, file: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_graphic())
            .map(|c| if c == '/' { '.' } else { c })
            .collect()
    };
    norm(kept) == norm(file)
}

/// Whether a component of the running composition (`old`) is the new
/// one's `new`: the same program of the same object file, known by its
/// canonical path however the command line spells it (by the spelling
/// only for a program attached before paths were recorded).
pub(super) fn same_component(old: &Placed, new: &Placed) -> bool {
    let same_file = if old.path.is_empty() || new.path.is_empty() {
        same_file(&old.file, &new.file)
    } else {
        old.path == new.path
    };
    same_file && old.program == new.program
}

/// What of the running composition the new one keeps: for each component
/// of the new order also in the old (same file and program), its maps
/// (same name; the definition is checked at load) and the map of its
/// writable globals (same variables at the same offsets).
pub(super) fn plan_reuse(
    old: &Running,
    order: &[Placed],
    new_btf: &Btf,
    shared: &[String],
) -> Result<(Reuse, Vec<(String, String)>)> {
    let mut reuse = Reuse::default();
    let pairs = same_components(old, order);
    let Some(old_btf) = &old.btf else {
        return Ok((reuse, pairs));
    };
    // Each old map under the name the old program knows it by: a map
    // handed over keeps its kernel name from when it was created, so the
    // old program's BTF records the names of those (see REUSE_PREFIX).
    // Maps it created under another name than the composition's (see
    // ALIAS_PREFIX) go by the composition's name.
    let handed = reused_names(old_btf);
    let renamed = aliases(old_btf);
    let mut old_maps = Vec::new();
    for id in &old.info.map_ids {
        if let Ok((_, mut m)) = kx::map_by_id(*id) {
            if let Some((_, n)) = handed.iter().find(|(i, _)| i == id) {
                m.name = n.clone();
            } else if let Some((_, c)) = renamed.iter().find(|(n, _)| trunc15(n) == m.name) {
                m.name = c.clone();
            }
            old_maps.push(m);
        }
    }
    // The old program's name for a section the composition names `sec`.
    let old_section_name = |sec: &str| -> String {
        renamed
            .iter()
            .find(|(_, c)| c == sec)
            .map_or_else(|| sec.to_string(), |(n, _)| n.clone())
    };
    // Maps shared by all components (--share) keep their own name.
    for (name, _, _) in datasec(new_btf, ".maps") {
        if !shared.contains(&name) {
            continue;
        }
        let hits: Vec<_> = old_maps
            .iter()
            .filter(|m| m.name == name || (m.name.len() == 15 && m.name == trunc15(&name)))
            .collect();
        if let [m] = hits[..] {
            reuse.maps.push((name.clone(), m.id));
        }
    }
    for (old_slot, new_slot) in &pairs {
        let new_suffix = format!("__{new_slot}");
        // Maps: `.maps` variables of the new object named NAME__newslot.
        for (name, _, _) in datasec(new_btf, ".maps") {
            let Some(base) = name.strip_suffix(&new_suffix) else {
                continue;
            };
            let old_name = format!("{base}__{old_slot}");
            let hits: Vec<_> = old_maps
                .iter()
                .filter(|m| {
                    m.name == old_name || (m.name.len() == 15 && m.name == trunc15(&old_name))
                })
                .collect();
            if let [m] = hits[..] {
                reuse.maps.push((name.clone(), m.id));
            }
        }
        // Writable globals: the instance's own map `.data.SLOT`, handed
        // over when its variables are laid out alike (same names, offsets
        // and sizes) and the old map is such a data map of that size.
        let (old_sec, new_sec) = (own_data_name(old_slot), own_data_name(new_slot));
        let (olds, news) = (
            datasec(old_btf, &old_section_name(&old_sec)),
            datasec(new_btf, &new_sec),
        );
        let Some(size) = new_btf
            .find_datasec(&new_sec)
            .and_then(|id| new_btf.get(id))
            .and_then(|t| match t.data {
                TypeData::Datasec { size, .. } => Some(size),
                _ => None,
            })
        else {
            continue;
        };
        let base = |vars: &[(String, u32, u32)], slot: &str| -> Vec<(String, u32, u32)> {
            let suffix = format!("__{slot}");
            vars.iter()
                .map(|(n, o, sz)| (n.strip_suffix(&suffix).unwrap_or(n).to_string(), *o, *sz))
                .collect()
        };
        if base(&olds, old_slot) != base(&news, new_slot) {
            continue;
        }
        let hits: Vec<_> = old_maps.iter().filter(|m| m.name == old_sec).collect();
        if let [m] = hits[..] {
            let is_data_map = m.map_type == BPF_MAP_TYPE_ARRAY
                && m.key_size == 4
                && m.max_entries == 1
                && m.value_size == size;
            if is_data_map {
                reuse.maps.push((new_sec, m.id));
            }
        }
    }
    Ok((reuse, pairs))
}

/// Marks each spec that is a component of the running composition with
/// its run position there (`running`), for libxdp's order of ties; each
/// running component is matched once, first spec first.
pub(super) fn mark_running(old: &Running, specs: &mut [ComponentSpec]) {
    let mut used = vec![false; old.manifest.len()];
    for spec in specs {
        let program = match &spec.program {
            Some(p) => p.clone(),
            None => match xdp_programs(&spec.object).as_slice() {
                [(one, _)] => one.clone(),
                _ => continue,
            },
        };
        let new = Placed {
            index: 0,
            file: spec.file.clone(),
            program,
            priority: 0,
            chain: bpfld::compose::ChainActions::NONE,
            slot: String::new(),
            path: path_key(&spec.file),
        };
        if let Some(i) = old
            .manifest
            .iter()
            .enumerate()
            .position(|(i, q)| !used[i] && same_component(q, &new))
        {
            used[i] = true;
            spec.running = Some(i);
        }
    }
}

/// The components of the new order that the running composition has:
/// (old slot, new slot), each old component matched at most once, in
/// order (the same file and program twice pairs up first with first).
pub(super) fn same_components(old: &Running, order: &[Placed]) -> Vec<(String, String)> {
    let mut used = vec![false; old.manifest.len()];
    let mut pairs = Vec::new();
    for p in order {
        if let Some(i) = old
            .manifest
            .iter()
            .enumerate()
            .position(|(i, q)| !used[i] && same_component(q, p))
        {
            used[i] = true;
            pairs.push((old.manifest[i].slot.clone(), p.slot.clone()));
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(file: &str, path: &str, program: &str) -> Placed {
        Placed {
            index: 0,
            file: file.into(),
            program: program.into(),
            priority: 50,
            chain: bpfld::compose::ChainActions::DEFAULT,
            slot: "comp0".into(),
            path: path.into(),
        }
    }

    #[test]
    fn components_are_known_by_canonical_path_and_program() {
        let a = placed("./count.o", "/d/count.o", "xdp_count");
        assert!(same_component(
            &a,
            &placed("/d/count.o", "/d/count.o", "xdp_count")
        ));
        assert!(same_component(
            &a,
            &placed("x/../count.o", "/d/count.o", "xdp_count")
        ));
        assert!(!same_component(
            &a,
            &placed("./count.o", "/e/count.o", "xdp_count")
        ));
        assert!(!same_component(
            &a,
            &placed("./count.o", "/d/count.o", "xdp_other")
        ));
        // Recorded before paths were: by spelling ('/' kept as '.').
        assert!(same_component(
            &placed("a/b.o", "", "p"),
            &placed("a/b.o", "/x/a/b.o", "p")
        ));
        assert!(same_component(
            &placed("a.b.o", "", "p"),
            &placed("a/b.o", "/x/a/b.o", "p")
        ));
        assert!(!same_component(
            &placed("a/c.o", "", "p"),
            &placed("a/b.o", "/x/a/b.o", "p")
        ));
    }
}
