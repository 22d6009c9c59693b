//! XDP attachment through netlink (no bpf_link, no bpffs): load a composed
//! object with aya, reuse maps of the running program, attach or replace
//! atomically, detach.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

/// Where maps pinned by name go by default (aya's, libbpf's and
/// xdp-loader's).
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf";

use aya::programs::Xdp;
use aya::EbpfLoader;

use crate::bpffs::{ensure_bpffs, PrivateBpffs};
use crate::error::{kernel_err, object_error, program_error, Error, ErrorKind};
use crate::maps::map_data;
use crate::netlink::{self, NetlinkError};

// Reading the running program back goes with attaching its successor;
// callers reach both through this module.
pub use crate::info::{btf_by_id, map_by_id, map_by_pin, prog_by_id, MapInfo, ProgInfo};

/// Where to attach: skb (generic) or native (driver) mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Skb,
    Native,
}

impl Mode {
    pub fn flag(self) -> u32 {
        match self {
            Mode::Skb => netlink::XDP_FLAGS_SKB_MODE,
            Mode::Native => netlink::XDP_FLAGS_DRV_MODE,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Mode::Skb => "skb",
            Mode::Native => "native",
        }
    }
    /// From `XDP_ATTACHED_*`.
    pub fn from_attached(a: u8) -> Option<Mode> {
        match a {
            1 => Some(Mode::Native),
            2 => Some(Mode::Skb),
            _ => None,
        }
    }
}

/// The interface index of `name`, with a clear error when there is none.
pub fn if_index(name: &str) -> Result<u32, Error> {
    let c = std::ffi::CString::new(name)
        .map_err(|_| Error::new(ErrorKind::Kernel, format!("interface '{name}': bad name")))?;
    // SAFETY: c is a valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        return Err(Error::new(
            ErrorKind::Kernel,
            format!("no such interface '{name}' (in this network namespace)"),
        ));
    }
    Ok(i)
}

fn nl_err(what: &str, e: NetlinkError) -> Error {
    if e.errno == libc::EPERM || e.errno == libc::EACCES {
        return Error::new(
            ErrorKind::PermissionDenied,
            format!("{what}: permission denied (needs root, or CAP_NET_ADMIN and CAP_BPF)"),
        );
    }
    let hint = if e.errno == libc::EOPNOTSUPP {
        " (the driver does not support this XDP mode; try --mode skb)"
    } else {
        ""
    };
    Error::new(ErrorKind::Kernel, format!("{what}: {e}{hint}"))
}

/// The XDP state of every interface (or of one).
pub fn links() -> Result<Vec<netlink::LinkXdp>, Error> {
    netlink::links().map_err(|e| kernel_err("listing interfaces", &e))
}

/// What [`attach`] should do with the running program's state.
#[derive(Default)]
pub struct Reuse {
    /// Map name in the new object -> map id of the running program whose
    /// map (and contents) the new program uses, data maps (`.data*`,
    /// `.bss*`) included: those are used live, never written at load.
    pub maps: Vec<(String, u32)>,
}

/// A map definition, as the kernel compares them for a pinned map.
#[derive(PartialEq, Eq)]
struct MapDef {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
}

impl std::fmt::Display for MapDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = bpfld::model::map_def::map_type_name(self.map_type).unwrap_or_default();
        if t.is_empty() {
            write!(f, "(type {}", self.map_type)?;
        } else {
            write!(f, "({t}")?;
        }
        write!(
            f,
            ", key {} bytes, value {} bytes, {} entries, flags {:#x})",
            self.key_size, self.value_size, self.max_entries, self.map_flags
        )
    }
}

/// A map the program pins by name (`LIBBPF_PIN_BY_NAME`).
#[derive(Debug, Clone)]
pub struct PinnedMap {
    pub name: String,
    pub path: std::path::PathBuf,
    /// Whether this attach pinned it (else the pin was there and used).
    pub created: bool,
}

/// What is attached now, for a replacement.
pub struct Current {
    pub fd: OwnedFd,
    pub mode: Mode,
    /// Where its bpf_link is pinned, when it is attached through one.
    pub link: Option<std::path::PathBuf>,
}

/// The outcome of [`attach`].
#[derive(Debug, Clone)]
pub struct Attached {
    pub prog_id: u32,
    /// Maps handed over from the running program.
    pub kept: Vec<String>,
    /// Maps asked for but not handed over: their definition changed.
    pub refused: Vec<String>,
    /// Writable maps the new program starts fresh (created empty or with
    /// the object's initial values), those refused included; read-only
    /// data (`.rodata*`) is left out, being the object's constants.
    pub created: Vec<String>,
    /// Whether a bpffs was mounted at [`DEFAULT_PIN_DIR`] for maps pinned
    /// by name (there was none).
    pub mounted_bpffs: bool,
    /// The maps pinned by name, in name order.
    pub pinned: Vec<PinnedMap>,
}

/// Loads `object`, its program `prog`, and attaches it to `ifindex`: when
/// `current` is given, replaces that program atomically (XDP_FLAGS_REPLACE
/// with it as the expected program), else only if nothing is attached.
/// The attachment belongs to the interface
/// and outlives this process.
#[allow(clippy::too_many_arguments)]
pub fn attach(
    object: &[u8],
    prog: &str,
    ifindex: u32,
    mode: Option<Mode>,
    current: Option<&Current>,
    reuse: &Reuse,
    pin_dir: &Path,
    link: Option<&Path>,
) -> Result<Attached, Error> {
    let mut loader = EbpfLoader::new();
    // The new object's map definitions: a map is reused only when its
    // definition is identical; otherwise it starts fresh.
    let parsed = aya_obj::Object::parse(object).ok();
    // Maps pinned by name go to bpffs at /sys/fs/bpf (aya's default), which
    // a fresh /sys (`ip netns exec`) lacks: mount it first.
    let pins_by_name = parsed.as_ref().is_some_and(|o| {
        o.maps
            .values()
            .any(|m| m.pinning() == aya_obj::maps::PinningType::ByName)
    });
    let mounted_bpffs = pins_by_name && ensure_bpffs(pin_dir)?;
    let pinned = match &parsed {
        Some(o) => check_pins(o, pin_dir)?,
        None => Vec::new(),
    };
    loader.default_map_pin_directory(pin_dir);
    let mut pins = Vec::new();
    let mut swaps = Vec::new();
    let mut refused = Vec::new();
    for (name, id) in &reuse.maps {
        let (fd, old) = map_by_id(*id)?;
        let new = parsed.as_ref().and_then(|o| o.maps.get(name));
        let same = new.is_some_and(|m| {
            m.map_type() == old.map_type
                && m.key_size() == old.key_size
                && m.value_size() == old.value_size
                && m.max_entries() == old.max_entries
                && m.map_flags() == old.map_flags
        });
        if !same {
            refused.push(name.clone());
            continue;
        }
        let is_data = new.is_some_and(|m| {
            matches!(
                m.section_kind(),
                aya_obj::EbpfSectionKind::Data | aya_obj::EbpfSectionKind::Bss
            )
        });
        if is_data {
            swaps.push((name.as_str(), fd));
        } else {
            pins.push((name.as_str(), *id, fd));
        }
    }
    // Maps by pin path: aya opens them instead of creating them.
    let fs = if pins.is_empty() {
        None
    } else {
        Some(PrivateBpffs::mount()?)
    };
    let mut paths = Vec::new();
    if let Some(fs) = &fs {
        for (name, id, fd) in &pins {
            paths.push((*name, fs.pin(fd, &format!("m{id}"))?));
        }
    }
    for (name, path) in &paths {
        loader.map_pin_path(name, path.as_path());
    }
    let ebpf = loader.load(object).map_err(object_error)?;
    drop(fs);
    let handed: Vec<&str> = pins
        .iter()
        .map(|(n, _, _)| *n)
        .chain(swaps.iter().map(|(n, _)| *n))
        .collect();
    let mut created: Vec<String> = ebpf
        .maps()
        .map(|(n, _)| n)
        .filter(|n| !handed.contains(n) && !n.starts_with(".rodata"))
        .map(str::to_string)
        .collect();
    created.sort();
    // Data maps (`.data*`, `.bss*`) cannot go by pin path: aya writes a
    // data section's initial bytes into its map even when the map is
    // opened from a pin (and relocates to an fd, not a value address, when
    // there are none), which would reset the live globals. So aya creates
    // and fills a map of its own, and its descriptor is pointed at the
    // running program's map before the program is loaded: the program
    // then uses the live map, and nothing was written into it.
    for (name, old_fd) in &swaps {
        let map = ebpf.map(name).ok_or_else(|| {
            Error::new(ErrorKind::Kernel, format!("map '{name}' was not created"))
        })?;
        let target = map_data(map).fd().as_fd().as_raw_fd();
        // SAFETY: both are open descriptors of this process; `target`
        // stays open (still owned by aya's map, which the program load
        // below reads it through) and now refers to a map of identical
        // definition, checked above.
        if unsafe { libc::dup2(old_fd.as_raw_fd(), target) } < 0 {
            let e = io::Error::last_os_error();
            return Err(kernel_err(format!("handing map '{name}' over"), &e));
        }
    }
    let mut ebpf = ebpf;
    let p: &mut Xdp = ebpf
        .program_mut(prog)
        .ok_or_else(|| Error::new(ErrorKind::NoSuchProgram, format!("no program '{prog}'")))?
        .try_into()
        .map_err(|e| program_error(prog, e, "not XDP"))?;
    p.load().map_err(|e| program_error(prog, e, "loading"))?;
    let raw = p
        .fd()
        .map_err(|e| program_error(prog, e, "fd"))?
        .as_fd()
        .as_raw_fd();
    let mode = mode.or(current.map(|c| c.mode));
    if let Some(path) = link {
        let prog_fd = p.fd().map_err(|e| program_error(prog, e, "fd"))?.as_fd();
        attach_link(prog_fd, ifindex, mode, current, path)?;
        let prog_id = links()?
            .iter()
            .find(|x| x.ifindex == ifindex)
            .map_or(0, |x| x.prog_id);
        return Ok(Attached {
            prog_id,
            kept: reuse
                .maps
                .iter()
                .map(|(n, _)| n.clone())
                .filter(|n| !refused.contains(n))
                .collect(),
            refused,
            created,
            mounted_bpffs,
            pinned,
        });
    }
    let mut flags = mode.map_or(0, Mode::flag);
    let expected = match current {
        Some(c) => {
            flags |= netlink::XDP_FLAGS_REPLACE;
            Some(c.fd.as_raw_fd())
        }
        None => {
            flags |= netlink::XDP_FLAGS_UPDATE_IF_NOEXIST;
            None
        }
    };
    netlink::set_xdp(ifindex, raw, expected, flags).map_err(|e| {
        // The kernel's answers when the program attached is no longer the
        // one expected (EEXIST), or there is one where there was none
        // (EBUSY): someone else changed it since it was read.
        let changed = match current {
            Some(_) => e.errno == libc::EEXIST,
            None => e.errno == libc::EBUSY,
        };
        if changed {
            Error::new(
                ErrorKind::Changed,
                "its XDP program changed since bpfld read it (another tool attached or replaced one)",
            )
        } else {
            nl_err("attaching the program", e)
        }
    })?;
    // The new program's id, as the interface now reports it.
    let prog_id = links()?
        .iter()
        .find(|x| x.ifindex == ifindex)
        .map_or(0, |x| x.prog_id);
    Ok(Attached {
        prog_id,
        kept: reuse
            .maps
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| !refused.contains(n))
            .collect(),
        refused,
        created,
        mounted_bpffs,
        pinned,
    })
}

/// Attaches `prog` through a bpf_link pinned at `path`: a new link, or,
/// when `current` runs through the link pinned there, that link updated
/// to the new program (the same link, replaced atomically).
fn attach_link(
    prog: std::os::fd::BorrowedFd<'_>,
    ifindex: u32,
    mode: Option<Mode>,
    current: Option<&Current>,
    path: &Path,
) -> Result<(), Error> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::new(ErrorKind::Kernel, "link pin path has a NUL"))?;
    if let Some(cur) = current {
        let lfd = crate::sys::obj_get(&c).map_err(|e| {
            kernel_err(format!("opening the link pinned at {}", path.display()), &e)
        })?;
        return crate::sys::link_update(&lfd, prog, &cur.fd).map_err(|e| {
            if e.raw_os_error() == Some(libc::EPERM) {
                Error::new(
                    ErrorKind::Changed,
                    "the program of its bpf_link changed since bpfld read it (another tool replaced it)",
                )
            } else {
                kernel_err("updating the bpf_link", &e)
            }
        });
    }
    let dir = path.parent().unwrap_or(Path::new(DEFAULT_PIN_DIR));
    if ensure_bpffs(dir)? {
        return Err(Error::new(
            ErrorKind::Kernel,
            format!(
                "{} was not a bpffs: one mounted now would vanish with this command (as inside `ip netns exec`), and the link with it; mount bpffs where it lasts, or attach without --link",
                dir.display()
            ),
        ));
    }
    let flags = mode.map_or(0, Mode::flag);
    let lfd =
        crate::sys::xdp_link_create(prog, ifindex, flags).map_err(|e| match e.raw_os_error() {
            Some(libc::EBUSY) | Some(libc::EEXIST) => Error::new(
                ErrorKind::Changed,
                "its XDP program changed since bpfld read it (another tool attached one)",
            ),
            Some(libc::EOPNOTSUPP) => kernel_err(
                "creating the bpf_link (the driver does not support this XDP mode; try --mode skb)",
                &e,
            ),
            _ => kernel_err("creating the bpf_link", &e),
        })?;
    // Without its pin the link would go with this process.
    crate::sys::obj_pin(&lfd, &c)
        .map_err(|e| kernel_err(format!("pinning the bpf_link at {}", path.display()), &e))
}

/// Detaches the bpf_link pinned at `path` and removes the pin.
pub fn detach_link(path: &Path) -> Result<(), Error> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::new(ErrorKind::Kernel, "link pin path has a NUL"))?;
    let lfd = crate::sys::obj_get(&c)
        .map_err(|e| kernel_err(format!("opening the link pinned at {}", path.display()), &e))?;
    crate::sys::link_detach(&lfd).map_err(|e| kernel_err("detaching the bpf_link", &e))?;
    std::fs::remove_file(path)
        .map_err(|e| kernel_err(format!("removing the link pin {}", path.display()), &e))
}

/// An exclusive lock on changing one interface's XDP program, released
/// on drop: bpfld's attach, replace and detach on an interface take it,
/// so that each applies on top of the previous one (libxdp takes a lock
/// of its own for the same reason).
pub struct InterfaceLock {
    _file: std::fs::File,
}

/// Where the interface locks are: `/run/bpfld/xdp-NETNS-IFINDEX.lock`
/// (interface indexes are per network namespace).
pub const LOCK_DIR: &str = "/run/bpfld";

/// Takes the lock of interface `ifindex` of this network namespace,
/// waiting for whoever holds it.
pub fn lock_interface(ifindex: u32) -> Result<InterfaceLock, Error> {
    use std::os::unix::fs::MetadataExt;
    let netns = std::fs::metadata("/proc/self/ns/net")
        .map(|m| m.ino())
        .unwrap_or(0);
    let path = Path::new(LOCK_DIR).join(format!("xdp-{netns}-{ifindex}.lock"));
    let fail = |doing: &str, e: io::Error| {
        if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) {
            return Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "{doing} {}: permission denied (changing XDP programs needs root, or CAP_NET_ADMIN and CAP_BPF)",
                    path.display()
                ),
            );
        }
        kernel_err(format!("{doing} {}", path.display()), &e)
    };
    std::fs::create_dir_all(LOCK_DIR).map_err(|e| fail("creating the lock", e))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| fail("opening the lock", e))?;
    loop {
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(InterfaceLock { _file: file });
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(fail("taking the lock", e));
        }
    }
}

/// Removes the XDP program `expected` (attached in `mode`) from `ifindex`.
pub fn detach(ifindex: u32, mode: Mode, expected: &OwnedFd) -> Result<(), Error> {
    netlink::set_xdp(
        ifindex,
        -1,
        Some(expected.as_raw_fd()),
        mode.flag() | netlink::XDP_FLAGS_REPLACE,
    )
    .map_err(|e| {
        if e.errno == libc::EEXIST {
            Error::new(
                ErrorKind::Changed,
                "its XDP program changed since bpfld read it (another tool attached or replaced one); nothing was detached",
            )
        } else {
            nl_err("detaching the program", e)
        }
    })
}

/// The maps of `object` pinned by name (`LIBBPF_PIN_BY_NAME`) and where
/// they go under `pin_dir`: a map already pinned there is used when its
/// definition is the object's (libbpf's rule; `created` false), else that
/// is an error naming both definitions; the others will be pinned there
/// (`created` true). Nothing is pinned or changed. Call it as root with
/// bpffs at `pin_dir` (or a directory that does not exist).
pub fn pins_of(object: &[u8], pin_dir: &Path) -> Result<Vec<PinnedMap>, Error> {
    match aya_obj::Object::parse(object) {
        Ok(o) => check_pins(&o, pin_dir),
        Err(e) => Err(Error::new(
            ErrorKind::Object,
            format!("cannot parse the object: {e}"),
        )),
    }
}

fn check_pins(o: &aya_obj::Object, pin_dir: &Path) -> Result<Vec<PinnedMap>, Error> {
    let mut pinned = Vec::new();
    let mut by_name: Vec<(&String, &aya_obj::maps::Map)> = o
        .maps
        .iter()
        .filter(|(_, m)| m.pinning() == aya_obj::maps::PinningType::ByName)
        .collect();
    by_name.sort_by_key(|(n, _)| *n);
    for (name, m) in by_name {
        let path = pin_dir.join(name);
        let existed = path.exists();
        if existed {
            let (_, old) = crate::info::map_by_pin(&path)?;
            let want = MapDef {
                map_type: m.map_type(),
                key_size: m.key_size(),
                value_size: m.value_size(),
                max_entries: m.max_entries(),
                map_flags: m.map_flags(),
            };
            let have = MapDef {
                map_type: old.map_type,
                key_size: old.key_size,
                value_size: old.value_size,
                max_entries: old.max_entries,
                map_flags: old.map_flags,
            };
            if want != have {
                return Err(Error::new(
                    ErrorKind::Object,
                    format!(
                        "map '{name}' is pinned by name, and {} holds an incompatible map: pinned {have}, the object's {want}; remove that pin or choose another --pin-path",
                        path.display()
                    ),
                ));
            }
        }
        pinned.push(PinnedMap {
            name: name.clone(),
            path,
            created: !existed,
        });
    }
    Ok(pinned)
}
