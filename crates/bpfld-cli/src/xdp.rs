//! `bpfld xdp attach | status | detach`: compositions on interfaces,
//! attached through netlink (they outlive bpfld and need no bpffs), told
//! apart from other programs and described by the manifest in the loaded
//! program's BTF (never a state file).

use bpfld::compose::{read_manifest, Placed};
use bpfld::link::isolate::own_data_name;
use std::collections::HashSet;

use bpfld::model::btf::{Btf, BtfType, TypeData};
use bpfld::model::object::{Object, SectionKind, SymbolKind, SymbolPlace};
use bpfld::{Error, Result};
use bpfld_kernel::xdp::{self as kx, Current, Mode, Reuse};

fn kerr(e: bpfld_kernel::Error) -> Error {
    Error::new(e.to_string())
}

pub fn parse_mode(s: &str) -> Result<Mode> {
    match s {
        "skb" | "generic" => Ok(Mode::Skb),
        "native" | "drv" => Ok(Mode::Native),
        _ => Err(Error::new(format!("--mode {s}: expected skb or native"))),
    }
}

/// The running program of an interface: its fd, mode, BTF and manifest
/// (empty when bpfld did not attach it).
struct Running {
    prog_id: u32,
    mode: Mode,
    fd: std::os::fd::OwnedFd,
    info: kx::ProgInfo,
    btf: Option<Btf>,
    manifest: Vec<Placed>,
}

fn running(ifindex: u32, dev: &str) -> Result<Option<Running>> {
    let links = kx::links().map_err(kerr)?;
    let Some(link) = links.iter().find(|l| l.ifindex == ifindex) else {
        return Err(Error::new(format!("no such interface '{dev}'")));
    };
    if link.prog_id == 0 {
        return Ok(None);
    }
    let mode = Mode::from_attached(link.attached).ok_or_else(|| {
        Error::new(format!(
            "{dev}: XDP program {} is attached in a mode bpfld does not handle (hw or several at once)",
            link.prog_id
        ))
    })?;
    let (fd, info) = kx::prog_by_id(link.prog_id).map_err(kerr)?;
    let btf = if info.btf_id != 0 {
        let raw = kx::btf_by_id(info.btf_id).map_err(kerr)?;
        bpfld::read::btf::parse(&raw).ok()
    } else {
        None
    };
    let manifest = btf.as_ref().map(read_manifest).unwrap_or_default();
    Ok(Some(Running {
        prog_id: link.prog_id,
        mode,
        fd,
        info,
        btf,
        manifest,
    }))
}

/// Prefix of the BTF DATASEC names recording, in an attached program,
/// which maps were handed over from its predecessor and under what name
/// the program uses each: `.bpfld.xdp.reuse MAP_ID NAME`.
const REUSE_PREFIX: &str = ".bpfld.xdp.reuse ";

const BPF_MAP_TYPE_ARRAY: u32 = 2;

/// The kernel keeps 15 bytes of a map's name.
fn trunc15(s: &str) -> String {
    s.chars().take(15).collect()
}

fn reused_names(btf: &Btf) -> Vec<(u32, String)> {
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
fn record_reuse(btf: &mut Btf, maps: &[(String, u32)], renamed: &[(String, String)]) {
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

fn aliases(btf: &Btf) -> Vec<(String, String)> {
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
fn avoid_kept_names(obj: &mut Object, reuse: &Reuse) -> Vec<(String, String)> {
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

/// The variables of DATASEC `sec`: name -> (offset, size).
fn datasec(btf: &Btf, sec: &str) -> Vec<(String, u32, u32)> {
    btf.find_datasec(sec)
        .and_then(|id| btf.datasec_vars(id).ok())
        .map(|vs| {
            vs.iter()
                .map(|v| (v.name.to_string(), v.offset, v.size))
                .collect()
        })
        .unwrap_or_default()
}

/// What of the running composition the new one keeps: for each component
/// of the new order also in the old (same file and program), its maps
/// (same name; the definition is checked at load) and the map of its
/// writable globals (same variables at the same offsets).
fn plan_reuse(old: &Running, order: &[Placed], new_btf: &Btf, shared: &[String]) -> Result<Reuse> {
    let mut reuse = Reuse::default();
    let Some(old_btf) = &old.btf else {
        return Ok(reuse);
    };
    let mut used = vec![false; old.manifest.len()];
    let mut pairs = Vec::new();
    for p in order {
        if let Some(i) =
            old.manifest.iter().enumerate().position(|(i, q)| {
                !used[i] && same_file(&q.file, &p.file) && q.program == p.program
            })
        {
            used[i] = true;
            pairs.push((old.manifest[i].slot.clone(), p.slot.clone()));
        }
    }
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
    Ok(reuse)
}

pub fn attach(
    dev: &str,
    mode: Option<Mode>,
    components: &[String],
    shared_maps: &[String],
    force: bool,
    fresh: bool,
    no_inline: bool,
) -> Result<String> {
    let ifindex = kx::if_index(dev).map_err(kerr)?;
    let specs = components
        .iter()
        .map(|c| crate::parse_component(c))
        .collect::<Result<Vec<_>>>()?;
    let mut composed = bpfld::compose::compose_with(&specs, shared_maps, no_inline)?;
    let old = running(ifindex, dev)?;
    let mut reuse = Reuse::default();
    if let Some(old) = &old {
        if old.manifest.is_empty() && !force {
            return Err(Error::new(format!(
                "{dev} has an XDP program (id {}, '{}') that bpfld did not attach; --force replaces it",
                old.prog_id, old.info.name
            )));
        }
        if let Some(m) = mode {
            if m != old.mode {
                return Err(Error::new(format!(
                    "{dev}: the program attached now runs in {} mode; detach it before attaching in {} mode",
                    old.mode.name(),
                    m.name()
                )));
            }
        }
        if !fresh && !old.manifest.is_empty() {
            if let Some(new_btf) = &composed.object.btf {
                reuse = plan_reuse(old, &composed.order, new_btf, shared_maps)?;
            }
        }
    }
    let renamed = avoid_kept_names(&mut composed.object, &reuse);
    // (A map refused at load for a changed definition is recorded too;
    // its id is then not among the new program's maps, so it is ignored.)
    if let Some(btf) = &mut composed.object.btf {
        record_reuse(btf, &reuse.maps, &renamed);
    }
    let bytes = bpfld::write::elf::to_bytes(&composed.object)?;
    let current = match &old {
        Some(o) => Some(Current {
            fd: o
                .fd
                .try_clone()
                .map_err(|e| Error::new(format!("{dev}: duplicating a descriptor: {e}")))?,
            mode: o.mode,
        }),
        None => None,
    };
    let done = kx::attach(
        &bytes,
        "xdp_dispatcher",
        ifindex,
        mode,
        current.as_ref(),
        &reuse,
    )
    .map_err(|e| Error::new(format!("{dev}: {e}")))?;
    let mut text = format!(
        "{dev}: {} program {}{}\n",
        if old.is_some() {
            "replaced by"
        } else {
            "attached"
        },
        done.prog_id,
        old.as_ref()
            .map(|o| format!(" (was {})", o.prog_id))
            .unwrap_or_default()
    );
    for p in &composed.order {
        text.push_str(&format!("  {p}\n"));
    }
    if !done.kept.is_empty() {
        text.push_str(&format!("  kept: {}\n", done.kept.join(" ")));
    }
    if !done.refused.is_empty() {
        text.push_str(&format!(
            "  fresh (definition changed): {}\n",
            done.refused.join(" ")
        ));
    }
    Ok(text)
}

#[derive(serde::Serialize)]
struct StatusEntry {
    interface: String,
    ifindex: u32,
    mode: String,
    prog_id: u32,
    prog_name: String,
    bpfld: bool,
    components: Vec<Placed>,
    maps: Vec<StatusMap>,
}

/// A map of an attached composition: whose it is and under which names.
#[derive(serde::Serialize)]
struct StatusMap {
    /// The slot of the component it belongs to (none: shared, `.rodata`).
    component: Option<String>,
    /// Its name in the composition (`NAME__compN`, `.data.compN`).
    name: String,
    id: u32,
    /// The kernel's name: the one it was created with, which a map handed
    /// over from an earlier program keeps (at most 15 bytes).
    kernel_name: String,
}

/// The maps of a running composition, each under its composition name
/// and with its component: through the records of maps handed over and
/// renamed in its BTF (REUSE_PREFIX, ALIAS_PREFIX), else by kernel name.
fn component_maps(r: &Running) -> Vec<StatusMap> {
    let Some(btf) = &r.btf else {
        return Vec::new();
    };
    let handed = reused_names(btf);
    let renamed = aliases(btf);
    // The program's own names for its maps: `.maps` variables and data
    // sections.
    let mut own: Vec<String> = datasec(btf, ".maps").into_iter().map(|v| v.0).collect();
    own.extend(
        btf.iter()
            .filter(|(_, t)| matches!(t.data, TypeData::Datasec { .. }))
            .filter_map(|(_, t)| btf.name(t.name_off).ok())
            .filter(|n| n.starts_with(".data") || n.starts_with(".rodata") || n.starts_with(".bss"))
            .map(str::to_string),
    );
    let slots: Vec<&str> = r.manifest.iter().map(|p| p.slot.as_str()).collect();
    let mut out = Vec::new();
    for id in &r.info.map_ids {
        let Ok((_, m)) = kx::map_by_id(*id) else {
            continue;
        };
        let name = match handed.iter().find(|(i, _)| i == id) {
            Some((_, n)) => n.clone(),
            None => {
                let n = own
                    .iter()
                    .find(|n| trunc15(n) == m.name)
                    .cloned()
                    .unwrap_or_else(|| m.name.clone());
                renamed
                    .iter()
                    .find(|(r, _)| *r == n)
                    .map_or(n, |(_, c)| c.clone())
            }
        };
        let slot = name
            .strip_prefix(".data.")
            .or_else(|| name.rsplit_once("__").map(|(_, s)| s))
            .filter(|s| slots.contains(s))
            .map(str::to_string);
        out.push(StatusMap {
            component: slot,
            name,
            id: *id,
            kernel_name: m.name,
        });
    }
    out.sort_by(|a, b| (&a.component, &a.name).cmp(&(&b.component, &b.name)));
    out
}

pub fn status(dev: Option<&str>, json: bool) -> Result<String> {
    let want = dev.map(|d| kx::if_index(d).map_err(kerr)).transpose()?;
    let mut out = Vec::new();
    for l in kx::links().map_err(kerr)? {
        if want.is_some_and(|w| w != l.ifindex) || (want.is_none() && l.prog_id == 0) {
            continue;
        }
        let mut e = StatusEntry {
            interface: l.name.clone(),
            ifindex: l.ifindex,
            mode: match l.attached {
                0 => "none",
                1 => "native",
                2 => "skb",
                3 => "hw",
                _ => "multi",
            }
            .into(),
            prog_id: l.prog_id,
            prog_name: String::new(),
            bpfld: false,
            components: Vec::new(),
            maps: Vec::new(),
        };
        if l.prog_id != 0 {
            if let Some(r) = running(l.ifindex, &l.name)? {
                e.prog_name = r.info.name.clone();
                e.bpfld = !r.manifest.is_empty();
                if e.bpfld {
                    e.maps = component_maps(&r);
                }
                e.components = r.manifest;
            }
        }
        out.push(e);
    }
    if json {
        return serde_json::to_string_pretty(&out)
            .map(|s| s + "\n")
            .map_err(|e| Error::new(format!("cannot encode JSON: {e}")));
    }
    let mut text = String::new();
    for e in &out {
        if e.prog_id == 0 {
            text.push_str(&format!("{}: no XDP program\n", e.interface));
            continue;
        }
        text.push_str(&format!(
            "{}: {} mode, program {} '{}'{}\n",
            e.interface,
            e.mode,
            e.prog_id,
            e.prog_name,
            if e.bpfld {
                ""
            } else {
                " (not attached by bpfld)"
            }
        ));
        for p in &e.components {
            text.push_str(&format!("  {p}\n"));
            let maps: Vec<String> = e
                .maps
                .iter()
                .filter(|m| m.component.as_deref() == Some(p.slot.as_str()))
                .map(|m| {
                    if m.kernel_name == trunc15(&m.name) {
                        format!("{} (id {})", m.name, m.id)
                    } else {
                        format!("{} (id {}, created as {})", m.name, m.id, m.kernel_name)
                    }
                })
                .collect();
            if !maps.is_empty() {
                text.push_str(&format!("    maps: {}\n", maps.join(", ")));
            }
        }
    }
    Ok(text)
}

pub fn detach(dev: &str, force: bool) -> Result<String> {
    let ifindex = kx::if_index(dev).map_err(kerr)?;
    let Some(old) = running(ifindex, dev)? else {
        return Err(Error::new(format!("{dev} has no XDP program")));
    };
    if old.manifest.is_empty() && !force {
        return Err(Error::new(format!(
            "{dev} has an XDP program (id {}, '{}') that bpfld did not attach; --force detaches it",
            old.prog_id, old.info.name
        )));
    }
    kx::detach(ifindex, old.mode, &old.fd).map_err(|e| Error::new(format!("{dev}: {e}")))?;
    Ok(format!("{dev}: detached program {}\n", old.prog_id))
}
