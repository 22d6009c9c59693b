//! XDP attachment through netlink (no bpf_link, no bpffs): load a composed
//! object with aya, reuse maps of the running program, attach or replace
//! atomically, detach; and the `bpf()` info commands that read a running
//! program back (its maps, its BTF).

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use aya::programs::Xdp;
use aya::EbpfLoader;

use crate::error::{errno_text, object_error, program_error, Error, ErrorKind};
use crate::maps::map_data;
use crate::netlink::{self, NetlinkError};
use crate::sys::bpf;

const BPF_OBJ_PIN: libc::c_long = 6;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_MAP_GET_FD_BY_ID: libc::c_long = 14;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_BTF_GET_FD_BY_ID: libc::c_long = 19;

fn kernel_err(what: impl std::fmt::Display, e: &io::Error) -> Error {
    if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) {
        return Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "{what}: permission denied (needs root, or CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN)"
            ),
        );
    }
    Error::new(ErrorKind::Kernel, format!("{what}: {}", errno_text(e)))
}

fn get_fd_by_id(cmd: libc::c_long, id: u32) -> io::Result<OwnedFd> {
    // { u32 id; u32 next_id; u32 open_flags; }
    let mut attr = [id, 0u32, 0u32];
    // SAFETY: the *_GET_FD_BY_ID commands read only these integers.
    let fd = unsafe { bpf(cmd, &mut attr) }?;
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

#[repr(C)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// BPF_OBJ_GET_INFO_BY_FD into `buf` (the kernel fills what it knows).
fn info(fd: impl AsFd, buf: &mut [u8]) -> io::Result<()> {
    let mut attr = InfoAttr {
        bpf_fd: fd.as_fd().as_raw_fd() as u32,
        info_len: buf.len() as u32,
        info: buf.as_mut_ptr() as u64,
    };
    // SAFETY: `info` points at `info_len` writable bytes; any pointers
    // inside the info struct were set by the caller to buffers it owns.
    unsafe { bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr) }?;
    Ok(())
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_ne_bytes)
}

fn cstr(b: &[u8]) -> String {
    let t = b.split(|&c| c == 0).next().unwrap_or(b);
    String::from_utf8_lossy(t).into_owned()
}

/// What `bpf_prog_info` says about a running program.
#[derive(Debug, Clone)]
pub struct ProgInfo {
    pub id: u32,
    pub name: String,
    pub btf_id: u32,
    pub map_ids: Vec<u32>,
}

/// Opens a program by id and reads its info.
pub fn prog_by_id(id: u32) -> Result<(OwnedFd, ProgInfo), Error> {
    let fd = get_fd_by_id(BPF_PROG_GET_FD_BY_ID, id)
        .map_err(|e| kernel_err(format!("program id {id}"), &e))?;
    let mut buf = vec![0u8; 256];
    info(&fd, &mut buf).map_err(|e| kernel_err(format!("program id {id}: info"), &e))?;
    // Offsets in struct bpf_prog_info: nr_map_ids 52, map_ids 56, name 64,
    // btf_id 128.
    let nr = u32_at(&buf, 52).min(4096) as usize;
    let mut ids = vec![0u32; nr];
    if nr > 0 {
        let mut buf2 = vec![0u8; 256];
        buf2[52..56].copy_from_slice(&(nr as u32).to_ne_bytes());
        buf2[56..64].copy_from_slice(&(ids.as_mut_ptr() as u64).to_ne_bytes());
        info(&fd, &mut buf2).map_err(|e| kernel_err(format!("program id {id}: map ids"), &e))?;
        ids.truncate((u32_at(&buf2, 52) as usize).min(nr));
    }
    let pinfo = ProgInfo {
        id,
        name: cstr(&buf[64..80]),
        btf_id: u32_at(&buf, 128),
        map_ids: ids,
    };
    Ok((fd, pinfo))
}

/// The raw BTF (header, types, strings) of a loaded BTF object.
pub fn btf_by_id(id: u32) -> Result<Vec<u8>, Error> {
    let fd = get_fd_by_id(BPF_BTF_GET_FD_BY_ID, id)
        .map_err(|e| kernel_err(format!("BTF id {id}"), &e))?;
    // struct bpf_btf_info { u64 btf; u32 btf_size; u32 id; ... }
    let mut buf = vec![0u8; 64];
    info(&fd, &mut buf).map_err(|e| kernel_err(format!("BTF id {id}: info"), &e))?;
    let size = u32_at(&buf, 8) as usize;
    let mut data = vec![0u8; size];
    let mut buf = vec![0u8; 64];
    buf[0..8].copy_from_slice(&(data.as_mut_ptr() as u64).to_ne_bytes());
    buf[8..12].copy_from_slice(&(size as u32).to_ne_bytes());
    info(&fd, &mut buf).map_err(|e| kernel_err(format!("BTF id {id}: data"), &e))?;
    Ok(data)
}

/// What `bpf_map_info` says about a map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapInfo {
    pub id: u32,
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    /// The kernel's name (at most 15 bytes).
    pub name: String,
}

/// Opens a map by id and reads its info.
pub fn map_by_id(id: u32) -> Result<(OwnedFd, MapInfo), Error> {
    let fd = get_fd_by_id(BPF_MAP_GET_FD_BY_ID, id)
        .map_err(|e| kernel_err(format!("map id {id}"), &e))?;
    let mut buf = vec![0u8; 128];
    info(&fd, &mut buf).map_err(|e| kernel_err(format!("map id {id}: info"), &e))?;
    let m = MapInfo {
        map_type: u32_at(&buf, 0),
        id: u32_at(&buf, 4),
        key_size: u32_at(&buf, 8),
        value_size: u32_at(&buf, 12),
        max_entries: u32_at(&buf, 16),
        map_flags: u32_at(&buf, 20),
        name: cstr(&buf[24..40]),
    };
    Ok((fd, m))
}

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

/// A private bpffs mount, so aya can be handed existing maps by pin path;
/// unmounted (and every pin with it) on drop.
struct PrivateBpffs {
    dir: PathBuf,
}

impl PrivateBpffs {
    fn mount() -> Result<PrivateBpffs, Error> {
        let dir = std::env::temp_dir().join(format!("bpfld-reuse-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| kernel_err(format!("creating {}", dir.display()), &e))?;
        let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::new(ErrorKind::Kernel, "temp dir path has a NUL"))?;
        // SAFETY: all pointers are valid NUL-terminated strings; no data.
        let r = unsafe {
            libc::mount(
                c"bpf".as_ptr(),
                c.as_ptr(),
                c"bpf".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            let _ = std::fs::remove_dir(&dir);
            return Err(kernel_err("mounting a private bpffs to hand maps over", &e));
        }
        Ok(PrivateBpffs { dir })
    }

    fn pin(&self, fd: &OwnedFd, name: &str) -> Result<PathBuf, Error> {
        let path = self.dir.join(name);
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::new(ErrorKind::Kernel, "pin path has a NUL"))?;
        #[repr(C)]
        struct PinAttr {
            pathname: u64,
            bpf_fd: u32,
            file_flags: u32,
        }
        let mut attr = PinAttr {
            pathname: c.as_ptr() as u64,
            bpf_fd: fd.as_raw_fd() as u32,
            file_flags: 0,
        };
        // SAFETY: pathname is a valid NUL-terminated string alive for the call.
        unsafe { bpf(BPF_OBJ_PIN, &mut attr) }.map_err(|e| kernel_err("pinning a map", &e))?;
        Ok(path)
    }
}

impl Drop for PrivateBpffs {
    fn drop(&mut self) {
        if let Ok(c) = std::ffi::CString::new(self.dir.as_os_str().as_encoded_bytes()) {
            // SAFETY: valid NUL-terminated path.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// What is attached now, for a replacement.
pub struct Current {
    pub fd: OwnedFd,
    pub mode: Mode,
}

/// The outcome of [`attach`].
#[derive(Debug, Clone)]
pub struct Attached {
    pub prog_id: u32,
    /// Maps handed over from the running program.
    pub kept: Vec<String>,
    /// Maps asked for but not handed over: their definition changed.
    pub refused: Vec<String>,
}

/// Loads `object`, its program `prog`, and attaches it to `ifindex`: when
/// `current` is given, replaces that program atomically (XDP_FLAGS_REPLACE
/// with it as the expected program), else only if nothing is attached.
/// The attachment belongs to the interface
/// and outlives this process.
pub fn attach(
    object: &[u8],
    prog: &str,
    ifindex: u32,
    mode: Option<Mode>,
    current: Option<&Current>,
    reuse: &Reuse,
) -> Result<Attached, Error> {
    let mut loader = EbpfLoader::new();
    // The new object's map definitions: a map is reused only when its
    // definition is identical; otherwise it starts fresh.
    let parsed = aya_obj::Object::parse(object).ok();
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
    netlink::set_xdp(ifindex, raw, expected, flags)
        .map_err(|e| nl_err("attaching the program", e))?;
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
    })
}

/// Removes the XDP program `expected` (attached in `mode`) from `ifindex`.
pub fn detach(ifindex: u32, mode: Mode, expected: &OwnedFd) -> Result<(), Error> {
    netlink::set_xdp(
        ifindex,
        -1,
        Some(expected.as_raw_fd()),
        mode.flag() | netlink::XDP_FLAGS_REPLACE,
    )
    .map_err(|e| nl_err("detaching the program", e))
}
