//! Kernel objects read back by id: a program's `bpf_prog_info` (name,
//! BTF, maps), a map's `bpf_map_info`, and a loaded BTF object's bytes.

use std::os::fd::OwnedFd;

use crate::error::{kernel_err, Error};
use crate::sys::{btf_get_fd_by_id, map_get_fd_by_id, obj_get_info, prog_get_fd_by_id};

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
    let fd = prog_get_fd_by_id(id).map_err(|e| kernel_err(format!("program id {id}"), &e))?;
    let mut buf = vec![0u8; 256];
    obj_get_info(&fd, &mut buf).map_err(|e| kernel_err(format!("program id {id}: info"), &e))?;
    // Offsets in struct bpf_prog_info: nr_map_ids 52, map_ids 56, name 64,
    // btf_id 128.
    let nr = u32_at(&buf, 52).min(4096) as usize;
    let mut ids = vec![0u32; nr];
    if nr > 0 {
        let mut buf2 = vec![0u8; 256];
        buf2[52..56].copy_from_slice(&(nr as u32).to_ne_bytes());
        buf2[56..64].copy_from_slice(&(ids.as_mut_ptr() as u64).to_ne_bytes());
        obj_get_info(&fd, &mut buf2)
            .map_err(|e| kernel_err(format!("program id {id}: map ids"), &e))?;
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
    let fd = btf_get_fd_by_id(id).map_err(|e| kernel_err(format!("BTF id {id}"), &e))?;
    // struct bpf_btf_info { u64 btf; u32 btf_size; u32 id; ... }
    let mut buf = vec![0u8; 64];
    obj_get_info(&fd, &mut buf).map_err(|e| kernel_err(format!("BTF id {id}: info"), &e))?;
    let size = u32_at(&buf, 8) as usize;
    let mut data = vec![0u8; size];
    let mut buf = vec![0u8; 64];
    buf[0..8].copy_from_slice(&(data.as_mut_ptr() as u64).to_ne_bytes());
    buf[8..12].copy_from_slice(&(size as u32).to_ne_bytes());
    obj_get_info(&fd, &mut buf).map_err(|e| kernel_err(format!("BTF id {id}: data"), &e))?;
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
    let fd = map_get_fd_by_id(id).map_err(|e| kernel_err(format!("map id {id}"), &e))?;
    let m = map_info(&fd).map_err(|e| kernel_err(format!("map id {id}: info"), &e))?;
    Ok((fd, m))
}

/// Opens the map pinned at `path` and reads its info.
pub fn map_by_pin(path: &std::path::Path) -> Result<(OwnedFd, MapInfo), Error> {
    let what = || format!("the pin {}", path.display());
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| {
        Error::new(
            crate::error::ErrorKind::Kernel,
            format!("{}: a NUL in the path", what()),
        )
    })?;
    if path.is_dir() {
        return Err(Error::new(
            crate::error::ErrorKind::Kernel,
            format!("{} is a directory, not a pinned map", path.display()),
        ));
    }
    let fd = crate::sys::obj_get(&c).map_err(|e| kernel_err(what(), &e))?;
    let m = map_info(&fd).map_err(|_| {
        Error::new(
            crate::error::ErrorKind::Kernel,
            format!("{} is not a map", what()),
        )
    })?;
    Ok((fd, m))
}

fn map_info(fd: &OwnedFd) -> std::io::Result<MapInfo> {
    let mut buf = vec![0u8; 128];
    obj_get_info(fd, &mut buf)?;
    let m = MapInfo {
        map_type: u32_at(&buf, 0),
        id: u32_at(&buf, 4),
        key_size: u32_at(&buf, 8),
        value_size: u32_at(&buf, 12),
        max_entries: u32_at(&buf, 16),
        map_flags: u32_at(&buf, 20),
        name: cstr(&buf[24..40]),
    };
    Ok(m)
}
