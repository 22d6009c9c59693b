//! What an attached composition's BTF records for the next attach, as
//! DATASEC names: the maps handed over from its predecessor and the maps
//! it created under another name; and the variables of a DATASEC.

use bpfld::model::btf::{Btf, BtfType, TypeData};

/// Prefix of the BTF DATASEC names recording, in an attached program,
/// which maps were handed over from its predecessor and under what name
/// the program uses each: `.bpfld.xdp.reuse MAP_ID NAME`.
const REUSE_PREFIX: &str = ".bpfld.xdp.reuse ";

pub(super) fn reused_names(btf: &Btf) -> Vec<(u32, String)> {
    btf.iter()
        .filter(|(_, t)| matches!(t.data, TypeData::Datasec { .. }))
        .filter_map(|(_, t)| btf.name(t.name_off).ok())
        .filter_map(|n| n.strip_prefix(REUSE_PREFIX))
        .filter_map(|rest| {
            let (id, name) = rest.split_once(' ')?;
            Some((id.parse().ok()?, name.to_string()))
        })
        .collect()
}

/// Records the maps handed over and the maps renamed in the new object's
/// BTF.
pub(super) fn record_reuse(btf: &mut Btf, maps: &[(String, u32)], renamed: &[(String, String)]) {
    for (name, id) in maps {
        record_marker(btf, &format!("{REUSE_PREFIX}{id} {name}"));
    }
    for (name, composed) in renamed {
        record_marker(btf, &format!("{ALIAS_PREFIX}{name} {composed}"));
    }
}

/// Prefix of the BTF DATASEC names recording, in an attached program, a
/// map it was given another name for at attach, because a map handed over
/// already had the kernel name the composition gives it:
/// `.bpfld.xdp.alias NAME COMPOSED_NAME`.
const ALIAS_PREFIX: &str = ".bpfld.xdp.alias ";

pub(super) fn aliases(btf: &Btf) -> Vec<(String, String)> {
    btf.iter()
        .filter(|(_, t)| matches!(t.data, TypeData::Datasec { .. }))
        .filter_map(|(_, t)| btf.name(t.name_off).ok())
        .filter_map(|n| n.strip_prefix(ALIAS_PREFIX))
        .filter_map(|rest| {
            let (name, composed) = rest.split_once(' ')?;
            Some((name.to_string(), composed.to_string()))
        })
        .collect()
}

fn record_marker(btf: &mut Btf, text: &str) {
    let off = btf.add_string(text);
    btf.add_type(BtfType::new(
        off,
        false,
        TypeData::Datasec {
            size: 1,
            vars: vec![],
        },
    ));
}

/// The variables of DATASEC `sec`: name -> (offset, size).
pub(super) fn datasec(btf: &Btf, sec: &str) -> Vec<(String, u32, u32)> {
    btf.find_datasec(sec)
        .and_then(|id| btf.datasec_vars(id).ok())
        .map(|vs| {
            vs.iter()
                .map(|v| (v.name.to_string(), v.offset, v.size))
                .collect()
        })
        .unwrap_or_default()
}

/// Prefix of the BTF DATASEC names recording, in an attached program, a
/// map it uses pinned by name, and whether the attachment made that pin
/// (`own`, which detach removes) or found it (`used`):
/// `.bpfld.xdp.pin own|used PATH` (PATH escaped).
const PIN_PREFIX: &str = ".bpfld.xdp.pin ";

/// A pin an attached program uses: (made by its attachment, path).
pub(super) type Pin = (bool, std::path::PathBuf);

pub(super) fn record_pins(btf: &mut Btf, pins: &[Pin]) {
    for (own, path) in pins {
        let path = bpfld::compose::escape(&path.to_string_lossy());
        let how = if *own { "own" } else { "used" };
        record_marker(btf, &format!("{PIN_PREFIX}{how} {path}"));
    }
}

pub(super) fn pins(btf: &Btf) -> Vec<Pin> {
    btf.iter()
        .filter(|(_, t)| matches!(t.data, TypeData::Datasec { .. }))
        .filter_map(|(_, t)| btf.name(t.name_off).ok())
        .filter_map(|n| n.strip_prefix(PIN_PREFIX))
        .filter_map(|rest| {
            let (how, path) = rest.split_once(' ')?;
            Some((how == "own", bpfld::compose::unescape(path).into()))
        })
        .collect()
}

/// Prefix of the BTF DATASEC name recording, in a program attached
/// through a bpf_link, where the link is pinned: `.bpfld.xdp.link PATH`.
const LINK_PREFIX: &str = ".bpfld.xdp.link ";

pub(super) fn record_link(btf: &mut Btf, path: &std::path::Path) {
    let path = bpfld::compose::escape(&path.to_string_lossy());
    record_marker(btf, &format!("{LINK_PREFIX}{path}"));
}

pub(super) fn link_path(btf: &Btf) -> Option<std::path::PathBuf> {
    btf.iter()
        .filter(|(_, t)| matches!(t.data, TypeData::Datasec { .. }))
        .filter_map(|(_, t)| btf.name(t.name_off).ok())
        .find_map(|n| n.strip_prefix(LINK_PREFIX))
        .map(|p| bpfld::compose::unescape(p).into())
}
