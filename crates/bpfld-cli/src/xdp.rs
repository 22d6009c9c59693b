//! `bpfld xdp attach | status | detach`: compositions on interfaces,
//! attached through netlink (they outlive bpfld and need no bpffs), told
//! apart from other programs and described by the manifest in the loaded
//! program's BTF (never a state file).

mod names;
mod records;
mod reuse;
mod running;
mod status;

use std::path::Path;

use bpfld::model::map_def::pinned_by_name;
use bpfld::{Error, Result};
use bpfld_kernel::xdp::{self as kx, Current, Mode, Reuse};

use names::{avoid_kept_names, stable_names};
use records::{link_path, pins, record_link, record_pins, record_reuse, Pin};
use reuse::{mark_running, plan_reuse};
use running::running;
pub use status::status;

fn kerr(e: bpfld_kernel::Error) -> Error {
    Error::new(e.to_string())
}

/// The name libxdp gives its multi-program dispatcher.
const LIBXDP_DISPATCHER: &str = "xdp_dispatcher";

/// The refusal to touch a program bpfld did not attach, saying whose it
/// looks like: libxdp's dispatcher carries other tools' programs, which
/// would stop running.
fn foreign(dev: &str, old: &running::Running, force: &str) -> Error {
    if old.info.name == LIBXDP_DISPATCHER {
        return Error::new(format!(
            "{dev} has libxdp's dispatcher (program id {}, attached by xdp-loader or another libxdp user), which bpfld did not attach: its programs would stop running; {force}",
            old.prog_id
        ));
    }
    Error::new(format!(
        "{dev} has an XDP program (id {}, '{}') that bpfld did not attach; {force}",
        old.prog_id, old.info.name
    ))
}

pub fn parse_mode(s: &str) -> Result<Mode> {
    match s {
        "skb" | "generic" => Ok(Mode::Skb),
        "native" | "drv" => Ok(Mode::Native),
        _ => Err(Error::new(format!("--mode {s}: expected skb or native"))),
    }
}

/// Where `attach --link` pins the link of interface `ifindex` (of this
/// network namespace) under `pin_dir`.
fn link_pin_path(pin_dir: &Path, ifindex: u32) -> std::path::PathBuf {
    use std::os::unix::fs::MetadataExt;
    let netns = std::fs::metadata("/proc/self/ns/net").map_or(0, |m| m.ino());
    pin_dir.join(format!("bpfld-xdp-link-{netns}-{ifindex}"))
}

/// How many times attach reads the interface again when its program
/// changed underneath it (another tool) before giving up.
const ATTEMPTS: usize = 5;

/// The lock on changing `dev`'s XDP program (see [`kx::lock_interface`]).
fn lock(dev: &str, ifindex: u32) -> Result<kx::InterfaceLock> {
    kx::lock_interface(ifindex).map_err(|e| Error::new(format!("{dev}: {e}")))
}

#[allow(clippy::too_many_arguments)]
pub fn attach(
    dev: &str,
    mode: Option<Mode>,
    components: &[String],
    shared_maps: &[String],
    force: bool,
    fresh: bool,
    no_inline: bool,
    pin_dir: &Path,
    link: bool,
    json: bool,
) -> Result<String> {
    let ifindex = kx::if_index(dev).map_err(kerr)?;
    let specs = components
        .iter()
        .map(|c| crate::parse::parse_component(c))
        .collect::<Result<Vec<_>>>()?;
    // One bpfld at a time changes an interface, each on top of the
    // previous one's result; another tool may still change it between
    // reading and replacing, and then it is read again.
    let _lock = lock(dev, ifindex)?;
    for _ in 0..ATTEMPTS {
        let attempt = attach_once(
            dev,
            ifindex,
            mode,
            specs.clone(),
            shared_maps,
            force,
            fresh,
            no_inline,
            pin_dir,
            link,
            json,
        )?;
        if let Some(text) = attempt {
            return Ok(text);
        }
    }
    Err(Error::new(format!(
        "{dev}: its XDP program changed under bpfld {ATTEMPTS} times (another tool keeps attaching programs); nothing was changed by bpfld"
    )))
}

/// One attempt of [`attach`]: `None` when the interface's program changed
/// between reading it and replacing it.
#[allow(clippy::too_many_arguments)]
fn attach_once(
    dev: &str,
    ifindex: u32,
    mode: Option<Mode>,
    mut specs: Vec<bpfld::compose::ComponentSpec>,
    shared_maps: &[String],
    force: bool,
    fresh: bool,
    no_inline: bool,
    pin_dir: &Path,
    link: bool,
    json: bool,
) -> Result<Option<String>> {
    let old = running(ifindex, dev)?;
    if let Some(old) = &old {
        mark_running(old, &mut specs);
    }
    let mut composed = bpfld::compose::compose(
        &specs,
        &bpfld::compose::ComposeOptions::default()
            .share_all(shared_maps)
            .inline(!no_inline),
    )?;
    let mut reuse = Reuse::default();
    let mut same = Vec::new();
    if let Some(old) = &old {
        if old.manifest.is_empty() && !force {
            return Err(foreign(dev, old, "--force replaces it"));
        }
        let old_link = old.btf.as_ref().and_then(link_path);
        match (&old_link, link) {
            (Some(path), false) => {
                return Err(Error::new(format!(
                    "{dev}: its program is attached through a bpf_link (pinned at {}); replace it with --link, or detach it first",
                    path.display()
                )))
            }
            (None, true) => {
                return Err(Error::new(format!(
                    "{dev}: its program is attached through netlink; detach it before attaching with --link"
                )))
            }
            _ => {}
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
                (reuse, same) = plan_reuse(old, &composed.order, new_btf, shared_maps)?;
            }
        }
    }
    // Kernel names by component, not by slot; then none that a map handed
    // over already has (one created before names were stable).
    let mut renamed = stable_names(&mut composed.object, &composed.order);
    let kernel_name = |renamed: &[(String, String)], composed: &str| -> String {
        renamed
            .iter()
            .find(|(_, c)| c == composed)
            .map_or_else(|| composed.to_string(), |(k, _)| k.clone())
    };
    let handed = Reuse {
        maps: reuse
            .maps
            .iter()
            .map(|(n, id)| (kernel_name(&renamed, n), *id))
            .collect(),
    };
    for (new, was) in avoid_kept_names(&mut composed.object, &handed) {
        match renamed.iter_mut().find(|(k, _)| *k == was) {
            Some(r) => r.0 = new,
            None => renamed.push((new, was)),
        }
    }
    // Maps pinned by name: the pins this attachment owns (makes now, or
    // took over from the attachment it replaces) are recorded, for detach.
    let old_pins = old
        .as_ref()
        .and_then(|o| o.btf.as_ref())
        .map(pins)
        .unwrap_or_default();
    let new_pins: Vec<Pin> = pinned_by_name(&composed.object)
        .map(|n| {
            let path = pin_dir.join(n);
            let own = !path.exists() || old_pins.iter().any(|(o, p)| *o && *p == path);
            (own, path)
        })
        .collect();
    // (A map refused at load for a changed definition is recorded too;
    // its id is then not among the new program's maps, so it is ignored.)
    if let Some(btf) = &mut composed.object.btf {
        record_reuse(btf, &reuse.maps, &renamed);
        record_pins(btf, &new_pins);
    }
    // A link keeps its pin across replacements.
    let link_pin = link.then(|| {
        old.as_ref()
            .and_then(|o| o.btf.as_ref())
            .and_then(link_path)
            .unwrap_or_else(|| link_pin_path(pin_dir, ifindex))
    });
    if let (Some(path), Some(btf)) = (&link_pin, &mut composed.object.btf) {
        record_link(btf, path);
    }
    // The composition's name of a map of the new object.
    let composed_name = |n: &str| -> String {
        renamed
            .iter()
            .find(|(k, _)| k == n)
            .map_or_else(|| n.to_string(), |(_, c)| c.clone())
    };
    let bytes = composed.object.to_bytes()?;
    let current = match &old {
        Some(o) => Some(Current {
            fd: o
                .fd
                .try_clone()
                .map_err(|e| Error::new(format!("{dev}: duplicating a descriptor: {e}")))?,
            mode: o.mode,
            link: link_pin.clone(),
        }),
        None => None,
    };
    // --fresh: the maps this attachment pinned start fresh too (pins
    // found there belong to others and stay); its maps keep running
    // until the swap, only the pins go.
    if fresh {
        for (own, path) in &old_pins {
            if *own {
                let _ = std::fs::remove_file(path);
            }
        }
    }
    let done = match kx::attach(
        &bytes,
        bpfld::compose::DISPATCHER,
        ifindex,
        mode,
        current.as_ref(),
        &handed,
        pin_dir,
        link_pin.as_deref(),
    ) {
        Ok(done) => done,
        Err(e) if e.kind() == bpfld_kernel::ErrorKind::Changed => return Ok(None),
        Err(e) => return Err(Error::new(format!("{dev}: {e}"))),
    };
    let names = |v: &[String]| -> Vec<String> { v.iter().map(|n| composed_name(n)).collect() };
    let running_before = old.as_ref().is_some_and(|o| !o.manifest.is_empty()) && !fresh;
    let mut report = AttachReport {
        interface: dev.to_string(),
        prog_id: done.prog_id,
        replaced: old.as_ref().map(|o| o.prog_id),
        link: link_pin.as_ref().map(|p| p.to_string_lossy().into_owned()),
        components: composed
            .order
            .iter()
            .map(|p| ReportComponent {
                placed: p.clone(),
                kept_from: same
                    .iter()
                    .find(|(_, n)| *n == p.slot)
                    .map(|(o, _)| o.clone()),
            })
            .collect(),
        running_before,
        frags: composed.frags,
        frags_note: composed.frags_note(),
        left_out: composed
            .unreachable
            .iter()
            .map(|u| crate::reports::ProgramJson::parse(u))
            .collect(),
        warnings: bpfld::warnings_given(),
        kept: names(&done.kept),
        refused: names(&done.refused),
        fresh: if old.is_some() {
            names(
                &done
                    .created
                    .iter()
                    .filter(|n| !done.refused.contains(n))
                    .cloned()
                    .collect::<Vec<_>>(),
            )
        } else {
            Vec::new()
        },
        pinned: done
            .pinned
            .iter()
            .map(|p| ReportPin {
                name: p.name.clone(),
                path: p.path.to_string_lossy().into_owned(),
                created: p.created,
            })
            .collect(),
        unpinned: Vec::new(),
        mounted_bpffs: done.mounted_bpffs.then(|| kx::DEFAULT_PIN_DIR.to_string()),
    };
    // Pins the replaced attachment made that nothing uses now.
    for (own, path) in &old_pins {
        if *own && !new_pins.iter().any(|(_, p)| p == path) && std::fs::remove_file(path).is_ok() {
            report.unpinned.push(path.to_string_lossy().into_owned());
        }
    }
    for u in &composed.unreachable {
        let w = crate::reports::left_out_warning(u);
        crate::warn(&w);
        report.warnings.push(w);
    }
    if json {
        return serde_json::to_string_pretty(&report)
            .map(|s| Some(s + "\n"))
            .map_err(|e| Error::new(format!("cannot encode JSON: {e}")));
    }
    Ok(Some(report.text()))
}

/// What `attach` did, printed as text or JSON.
#[derive(serde::Serialize)]
struct AttachReport {
    interface: String,
    prog_id: u32,
    /// The program it replaced.
    replaced: Option<u32>,
    /// Where its bpf_link is pinned (`--link`).
    link: Option<String>,
    /// In run order.
    components: Vec<ReportComponent>,
    /// Whether a bpfld composition ran before (whose components could be
    /// kept), and `--fresh` was not given.
    #[serde(skip)]
    running_before: bool,
    frags: bool,
    #[serde(skip)]
    frags_note: Option<String>,
    /// Components after one that never continues the chain: never run.
    left_out: Vec<crate::reports::ProgramJson>,
    /// The warnings printed on standard error (a component left out
    /// because an earlier one never continues the chain, ...).
    warnings: Vec<String>,
    /// Maps handed over from the replaced program (composition names).
    kept: Vec<String>,
    /// Maps that would have been kept but whose definition changed.
    refused: Vec<String>,
    /// Maps created anew in a replacement (read-only data left out).
    fresh: Vec<String>,
    pinned: Vec<ReportPin>,
    unpinned: Vec<String>,
    /// Where a bpffs was mounted for maps pinned by name.
    mounted_bpffs: Option<String>,
}

#[derive(serde::Serialize)]
struct ReportComponent {
    #[serde(flatten)]
    placed: bpfld::compose::Placed,
    /// The slot it ran in before, when it was running (its state kept).
    kept_from: Option<String>,
}

#[derive(serde::Serialize)]
struct ReportPin {
    name: String,
    path: String,
    /// Pinned by this attach (else found there and used).
    created: bool,
}

impl AttachReport {
    fn text(&self) -> String {
        let via = match &self.link {
            Some(p) => format!(" through the bpf_link pinned at {p}"),
            None => String::new(),
        };
        let mut text = match self.replaced {
            Some(was) => format!(
                "{}: replaced by program {} (was {was}){via}\n",
                self.interface, self.prog_id
            ),
            None => format!(
                "{}: attached program {}{via}\n",
                self.interface, self.prog_id
            ),
        };
        for c in &self.components {
            // Whether it is a component that was running (its state
            // carried over), and from which slot.
            let was = match &c.kept_from {
                Some(o) if *o == c.placed.slot => " (running: kept)".to_string(),
                Some(o) => format!(" (running as {o}: kept)"),
                None if self.running_before => " (new)".to_string(),
                None => String::new(),
            };
            text.push_str(&format!("  {}{was}\n", c.placed));
        }
        if let Some(note) = &self.frags_note {
            text.push_str(&format!("  {note}"));
        }
        if !self.kept.is_empty() {
            text.push_str(&format!("  kept: {}\n", self.kept.join(" ")));
        }
        if !self.refused.is_empty() {
            text.push_str(&format!(
                "  fresh (definition changed): {}\n",
                self.refused.join(" ")
            ));
        }
        if !self.fresh.is_empty() {
            text.push_str(&format!("  fresh: {}\n", self.fresh.join(" ")));
        }
        for p in &self.pinned {
            let how = if p.created {
                "pinned now"
            } else {
                "pinned already, used"
            };
            text.push_str(&format!("  pinned map {}: {} ({how})\n", p.name, p.path));
        }
        for p in &self.unpinned {
            text.push_str(&format!("  unpinned {p}\n"));
        }
        if let Some(dir) = &self.mounted_bpffs {
            text.push_str(&format!(
                "  mounted a bpffs at {dir} for the maps pinned by name (there was none; inside `ip netns exec` it and its pins last only as long as the command)\n"
            ));
        }
        text
    }
}

/// What `detach` did, printed as text or JSON.
#[derive(serde::Serialize)]
struct DetachReport {
    interface: String,
    prog_id: u32,
    /// The bpf_link removed, when it was attached through one.
    link: Option<String>,
    /// The pins its attachment made, removed with it.
    unpinned: Vec<String>,
}

pub fn detach(dev: &str, force: bool, json: bool) -> Result<String> {
    let ifindex = kx::if_index(dev).map_err(kerr)?;
    let _lock = lock(dev, ifindex)?;
    let Some(old) = running(ifindex, dev)? else {
        return Err(Error::new(format!("{dev} has no XDP program")));
    };
    if old.manifest.is_empty() && !force {
        return Err(foreign(dev, &old, "--force detaches it"));
    }
    let link = old.btf.as_ref().and_then(link_path);
    match &link {
        Some(path) => kx::detach_link(path),
        None => kx::detach(ifindex, old.mode, &old.fd),
    }
    .map_err(|e| Error::new(format!("{dev}: {e}")))?;
    let mut report = DetachReport {
        interface: dev.to_string(),
        prog_id: old.prog_id,
        link: link.as_ref().map(|p| p.to_string_lossy().into_owned()),
        unpinned: Vec::new(),
    };
    // The pins its attachment made, if they still hold its maps.
    for (own, path) in old.btf.as_ref().map(pins).unwrap_or_default() {
        let ours = kx::map_by_pin(&path).is_ok_and(|(_, m)| old.info.map_ids.contains(&m.id));
        if own && ours && std::fs::remove_file(&path).is_ok() {
            report.unpinned.push(path.to_string_lossy().into_owned());
        }
    }
    if json {
        return serde_json::to_string_pretty(&report)
            .map(|s| s + "\n")
            .map_err(|e| Error::new(format!("cannot encode JSON: {e}")));
    }
    let mut text = format!("{dev}: detached program {}\n", report.prog_id);
    if let Some(path) = &report.link {
        text.push_str(&format!("  removed the bpf_link pinned at {path}\n"));
    }
    for path in &report.unpinned {
        text.push_str(&format!("  unpinned {path}\n"));
    }
    Ok(text)
}
