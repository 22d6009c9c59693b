//! `bpfld xdp status`: the XDP program of each interface, and for a
//! composition its components and their maps.

use bpfld::compose::Placed;
use bpfld::model::btf::TypeData;
use bpfld::{Error, Result};
use bpfld_kernel::xdp as kx;

use super::kerr;
use super::names::trunc15;
use super::records::{aliases, datasec, link_path, pins, reused_names};
use super::running::{running, Running};

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
    /// Maps it uses pinned by name (shared by all components).
    pins: Vec<StatusPin>,
    /// Where its bpf_link is pinned, when attached through one.
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<String>,
}

/// A map pinned by name that an attached composition uses.
#[derive(serde::Serialize)]
struct StatusPin {
    /// The map's name (the pin's file name), as `attach` names it.
    name: String,
    path: String,
    /// Whether its attachment made the pin (detach removes it).
    own: bool,
    /// The map pinned there now, if it is one of the program's.
    id: Option<u32>,
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
            pins: Vec::new(),
            link: None,
        };
        if l.prog_id != 0 {
            if let Some(r) = running(l.ifindex, &l.name)? {
                e.prog_name = r.info.name.clone();
                e.bpfld = !r.manifest.is_empty();
                if e.bpfld {
                    e.link = r
                        .btf
                        .as_ref()
                        .and_then(link_path)
                        .map(|p| p.to_string_lossy().into_owned());
                    e.maps = component_maps(&r);
                    e.pins = r
                        .btf
                        .as_ref()
                        .map(pins)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(own, path)| StatusPin {
                            name: path
                                .file_name()
                                .map(|n| n.to_string_lossy().into_owned())
                                .unwrap_or_default(),
                            id: kx::map_by_pin(&path)
                                .ok()
                                .map(|(_, m)| m.id)
                                .filter(|id| r.info.map_ids.contains(id)),
                            path: path.to_string_lossy().into_owned(),
                            own,
                        })
                        .collect();
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
    if out.is_empty() {
        text.push_str("no interface has an XDP program\n");
    }
    for e in &out {
        if e.prog_id == 0 {
            text.push_str(&format!("{}: no XDP program\n", e.interface));
            continue;
        }
        let how = match (&e.link, e.bpfld) {
            (_, false) => " (not attached by bpfld)".to_string(),
            (Some(l), true) => format!(" through the bpf_link pinned at {l}"),
            (None, true) => String::new(),
        };
        text.push_str(&format!(
            "{}: {} mode, program {} '{}'{how}\n",
            e.interface, e.mode, e.prog_id, e.prog_name,
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
        for pin in &e.pins {
            let whose = if pin.own {
                "pinned by this attachment"
            } else {
                "pinned before it"
            };
            match pin.id {
                Some(id) => text.push_str(&format!(
                    "  pinned map (all components): {} (id {id}, {whose})\n",
                    pin.path
                )),
                None => text.push_str(&format!(
                    "  pinned map (all components): {} (the pin is gone or holds another map)\n",
                    pin.path
                )),
            }
        }
    }
    Ok(text)
}
