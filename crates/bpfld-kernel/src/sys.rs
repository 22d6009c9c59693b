//! The raw `bpf()` commands bpfld issues itself, those aya does not expose
//! generically: key iteration and byte-level lookup on any map, a
//! permission probe, BTF load, opening objects by id, reading their info,
//! and pinning.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;
const BPF_OBJ_PIN: libc::c_long = 6;
const BPF_OBJ_GET: libc::c_long = 7;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_MAP_GET_FD_BY_ID: libc::c_long = 14;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_BTF_LOAD: libc::c_long = 18;
const BPF_BTF_GET_FD_BY_ID: libc::c_long = 19;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_LINK_UPDATE: libc::c_long = 29;
const BPF_LINK_DETACH: libc::c_long = 34;
/// `enum bpf_attach_type`: BPF_XDP.
const BPF_XDP: u32 = 37;
/// BPF_LINK_UPDATE: replace only if the old program is the given one.
const BPF_F_REPLACE: u32 = 4;
const BPF_MAP_TYPE_ARRAY: u32 = 2;

/// The prefix of `union bpf_attr` used by the map element commands; the
/// kernel zero-fills the rest of the union when given a shorter size.
#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    /// `value` for lookups, `next_key` for BPF_MAP_GET_NEXT_KEY.
    value: u64,
    flags: u64,
}

/// The prefix of `union bpf_attr` used by BPF_MAP_CREATE.
#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
}

/// # Safety
/// `attr` must be the `bpf_attr` prefix `cmd` expects, and every pointer in
/// it must be valid for the sizes the kernel will read or write.
pub(crate) unsafe fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: the caller guarantees the attribute layout and its pointers;
    // the size passed is exactly the struct's, so the kernel reads no further.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// The key after `key` (the first key when `None`); `Ok(None)` at the end.
pub fn map_get_next_key(
    fd: impl AsFd,
    key: Option<&[u8]>,
    key_size: usize,
) -> io::Result<Option<Vec<u8>>> {
    if let Some(k) = key {
        if k.len() != key_size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "key size mismatch",
            ));
        }
    }
    let mut next = vec![0u8; key_size];
    let mut attr = MapElemAttr {
        map_fd: fd.as_fd().as_raw_fd() as u32,
        key: key.map_or(0, |k| k.as_ptr() as u64),
        value: next.as_mut_ptr() as u64,
        ..Default::default()
    };
    // SAFETY: `key` (when given) holds key_size bytes, checked above, and
    // `next` has room for key_size bytes, the map's key size; the kernel
    // reads and writes no more than that.
    match unsafe { bpf(BPF_MAP_GET_NEXT_KEY, &mut attr) } {
        Ok(_) => Ok(Some(next)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The value of `key` as `value_len` bytes (for per-CPU maps, the kernel's
/// full per-CPU buffer); `Ok(None)` when the key is absent.
pub fn map_lookup(fd: impl AsFd, key: &[u8], value_len: usize) -> io::Result<Option<Vec<u8>>> {
    let mut value = vec![0u8; value_len];
    let mut attr = MapElemAttr {
        map_fd: fd.as_fd().as_raw_fd() as u32,
        key: key.as_ptr() as u64,
        value: value.as_mut_ptr() as u64,
        ..Default::default()
    };
    // SAFETY: `key` is a key of this map (its key size, as returned by
    // BPF_MAP_GET_NEXT_KEY) and `value` has room for the value size the
    // kernel copies out (value_size, or round_up(value_size, 8) * possible
    // CPUs for per-CPU maps, which the caller passes as value_len).
    match unsafe { bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) } {
        Ok(_) => Ok(Some(value)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sets `key` to `value` (BPF_ANY). `key` and `value` must be the map's
/// key size and value size (for per-CPU maps, the kernel's whole per-CPU
/// buffer); the caller checks them against the map's info.
pub fn map_update(fd: impl AsFd, key: &[u8], value: &[u8]) -> io::Result<()> {
    let mut attr = MapElemAttr {
        map_fd: fd.as_fd().as_raw_fd() as u32,
        key: key.as_ptr() as u64,
        value: value.as_ptr() as u64,
        flags: 0,
        ..Default::default()
    };
    // SAFETY: the kernel reads key_size bytes from `key` and value_size
    // (per-CPU: the rounded size times possible CPUs) from `value`; the
    // caller passes buffers of exactly those sizes, alive for the call.
    unsafe { bpf(BPF_MAP_UPDATE_ELEM, &mut attr) }?;
    Ok(())
}

/// Creates (and closes) a one-entry array map: the cheapest call that
/// needs the same privilege as loading a program.
pub fn probe_array_map() -> io::Result<()> {
    let mut attr = MapCreateAttr {
        map_type: BPF_MAP_TYPE_ARRAY,
        key_size: 4,
        value_size: 4,
        max_entries: 1,
        map_flags: 0,
    };
    // SAFETY: BPF_MAP_CREATE reads only these plain integer fields.
    let fd = unsafe { bpf(BPF_MAP_CREATE, &mut attr) }?;
    // SAFETY: on success BPF_MAP_CREATE returns a new file descriptor that
    // nothing else owns; OwnedFd closes it.
    drop(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    Ok(())
}

/// The `union bpf_attr` prefix BPF_BTF_LOAD reads.
#[repr(C)]
#[derive(Default)]
struct BtfLoadAttr {
    btf: u64,
    btf_log_buf: u64,
    btf_size: u32,
    btf_log_size: u32,
    btf_log_level: u32,
}

/// BPF_BTF_LOAD of `bytes`, with the verifier log written to `log` when given.
pub(crate) fn btf_load(bytes: &[u8], log: Option<&mut [u8]>) -> io::Result<OwnedFd> {
    let mut attr = BtfLoadAttr {
        btf: bytes.as_ptr() as u64,
        btf_size: u32::try_from(bytes.len())
            .map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?,
        ..Default::default()
    };
    if let Some(log) = log {
        attr.btf_log_buf = log.as_mut_ptr() as u64;
        attr.btf_log_size = log.len() as u32;
        attr.btf_log_level = 1;
    }
    // SAFETY: `attr` is the BPF_BTF_LOAD prefix of `bpf_attr`; the BTF
    // pointer covers `btf_size` readable bytes and the log pointer
    // `btf_log_size` writable bytes, both alive for the call.
    let ret = unsafe { bpf(BPF_BTF_LOAD, &mut attr) }?;
    // SAFETY: on success BPF_BTF_LOAD returns a new file descriptor that
    // nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as libc::c_int) })
}

/// Opens a program by id.
pub(crate) fn prog_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    get_fd_by_id(BPF_PROG_GET_FD_BY_ID, id)
}

/// Opens a map by id.
pub(crate) fn map_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    get_fd_by_id(BPF_MAP_GET_FD_BY_ID, id)
}

/// Opens a loaded BTF object by id.
pub(crate) fn btf_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    get_fd_by_id(BPF_BTF_GET_FD_BY_ID, id)
}

/// `cmd` is one of the *_GET_FD_BY_ID commands.
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
pub(crate) fn obj_get_info(fd: impl AsFd, buf: &mut [u8]) -> io::Result<()> {
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

/// BPF_LINK_CREATE of an XDP link: program `prog` on interface `ifindex`
/// with the XDP mode `flags`.
pub(crate) fn xdp_link_create(prog: impl AsFd, ifindex: u32, flags: u32) -> io::Result<OwnedFd> {
    // { u32 prog_fd; u32 target_ifindex; u32 attach_type; u32 flags; }
    let mut attr = [prog.as_fd().as_raw_fd() as u32, ifindex, BPF_XDP, flags];
    // SAFETY: the link_create prefix of bpf_attr: integers only.
    let fd = unsafe { bpf(BPF_LINK_CREATE, &mut attr) }?;
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// BPF_LINK_UPDATE: link `link` runs `new` instead of `old` (only if it
/// runs `old` now).
pub(crate) fn link_update(link: impl AsFd, new: impl AsFd, old: impl AsFd) -> io::Result<()> {
    // { u32 link_fd; u32 new_prog_fd; u32 flags; u32 old_prog_fd; }
    let mut attr = [
        link.as_fd().as_raw_fd() as u32,
        new.as_fd().as_raw_fd() as u32,
        BPF_F_REPLACE,
        old.as_fd().as_raw_fd() as u32,
    ];
    // SAFETY: the link_update prefix of bpf_attr: integers only.
    unsafe { bpf(BPF_LINK_UPDATE, &mut attr) }?;
    Ok(())
}

/// BPF_LINK_DETACH: the link lets go of its hook (and its program).
pub(crate) fn link_detach(link: impl AsFd) -> io::Result<()> {
    let mut attr = [link.as_fd().as_raw_fd() as u32];
    // SAFETY: the link_detach prefix of bpf_attr: one integer.
    unsafe { bpf(BPF_LINK_DETACH, &mut attr) }?;
    Ok(())
}

/// BPF_OBJ_GET: opens the object pinned at `path`.
pub(crate) fn obj_get(path: &std::ffi::CStr) -> io::Result<OwnedFd> {
    #[repr(C)]
    struct GetAttr {
        pathname: u64,
        bpf_fd: u32,
        file_flags: u32,
    }
    let mut attr = GetAttr {
        pathname: path.as_ptr() as u64,
        bpf_fd: 0,
        file_flags: 0,
    };
    // SAFETY: pathname is a valid NUL-terminated string alive for the call.
    let fd = unsafe { bpf(BPF_OBJ_GET, &mut attr) }?;
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// BPF_OBJ_PIN: pins the object `fd` refers to at `path` (in a bpffs).
pub(crate) fn obj_pin(fd: impl AsFd, path: &std::ffi::CStr) -> io::Result<()> {
    #[repr(C)]
    struct PinAttr {
        pathname: u64,
        bpf_fd: u32,
        file_flags: u32,
    }
    let mut attr = PinAttr {
        pathname: path.as_ptr() as u64,
        bpf_fd: fd.as_fd().as_raw_fd() as u32,
        file_flags: 0,
    };
    // SAFETY: pathname is a valid NUL-terminated string alive for the call.
    unsafe { bpf(BPF_OBJ_PIN, &mut attr) }?;
    Ok(())
}
