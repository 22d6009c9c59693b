//! Maps created by bpfld, with BTF, before aya creates the rest.
//!
//! aya 0.14 creates global data maps (`.data`, `.bss.A`, `.rodata`, ...)
//! without BTF; the kernel then refuses every program that takes a
//! `bpf_spin_lock`, a kptr or a list/rbtree root in them ("map '.data.A'
//! has to have BTF in order to use bpf_spin_lock"). libbpf creates each of
//! them with the object's BTF, value type the section's DATASEC, no key
//! type. And the verifier matches a local kptr or graph node against the
//! map's field by BTF object, not by name: programs must be loaded with the
//! very BTF the maps were created with, one load of it per object.
//!
//! So bpfld loads the object's BTF once, creates the data maps and the
//! plain BTF-typed maps with it, pins them in the run's private directory
//! and hands aya their pins (aya opens a map pinned at the path it is given
//! instead of creating it, and still writes the initial data and freezes
//! `.rodata`). Programs bpfld loads itself use [`BtfMaps::btf_fd`].

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use aya_obj::btf::BtfKind;
use aya_obj::EbpfSectionKind;

use crate::error::{Error, ErrorKind, Result};

const BPF_MAP_CREATE: libc::c_long = 0;

/// Map types created here when BTF-typed: their key and value may carry
/// BTF (unlike perf event arrays, map-in-maps, queues, ring buffers, ...)
/// and aya adjusts nothing of their definition before creating them.
const PLAIN_TYPES: [u32; 10] = [
    1,  // hash
    2,  // array
    5,  // percpu_hash
    6,  // percpu_array
    9,  // lru_hash
    10, // lru_percpu_hash
    24, // sk_storage
    28, // inode_storage
    29, // task_storage
    32, // cgrp_storage
];

/// Map-in-map types: created here when their inner map is.
const MAP_IN_MAP_TYPES: [u32; 2] = [12, 13];

/// The `union bpf_attr` prefix BPF_MAP_CREATE reads, up to `map_extra`.
#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
    map_ifindex: u32,
    btf_fd: u32,
    btf_key_type_id: u32,
    btf_value_type_id: u32,
    btf_vmlinux_value_type_id: u32,
    map_extra: u64,
}

/// The object's BTF as loaded once, and the maps created with it.
pub(crate) struct BtfMaps {
    pub(crate) btf_fd: Option<OwnedFd>,
    /// aya's map name and the pin aya is to open.
    pub(crate) pins: Vec<(String, PathBuf)>,
}

/// Loads `bytes`'s BTF (fixed up as aya does) and creates its data maps
/// and plain BTF-typed maps with it, pinned under `dir`. Nothing is
/// created when the kernel refuses the BTF: aya then does as it always did.
pub(crate) fn create(bytes: &[u8], dir: &std::path::Path) -> Result<BtfMaps> {
    let none = BtfMaps {
        btf_fd: None,
        pins: Vec::new(),
    };
    let Ok(mut obj) = aya_obj::Object::parse(bytes) else {
        // aya reports the object's faults itself.
        return Ok(none);
    };
    let Some(features) = aya::features().btf() else {
        return Ok(none);
    };
    let Ok(Some(btf)) = obj.fixup_and_sanitize_btf(features) else {
        return Ok(none);
    };
    let btf = btf.clone();
    let Ok(btf_fd) = crate::sys::btf_load(&btf.to_bytes(), None) else {
        return Ok(none);
    };
    let mut names: Vec<&String> = obj.maps.keys().collect();
    names.sort();
    let mut pins = Vec::new();
    for (i, name) in names.into_iter().enumerate() {
        let m = &obj.maps[name];
        // A map pinned by name is aya's to open or create at its own path.
        if m.pinning() != aya_obj::maps::PinningType::None {
            continue;
        }
        let fd = if MAP_IN_MAP_TYPES.contains(&m.map_type()) {
            // The verifier reads the inner map's fields (list heads, kptrs)
            // from the inner map given at creation: that one needs the BTF.
            let Some(inner) = m.inner() else { continue };
            let Some(ids) = btf_ids(&btf, name, &inner) else {
                continue;
            };
            let Ok(inner_fd) = map_create(&inner, name, &btf_fd, ids, None) else {
                continue;
            };
            match map_create(m, name, &btf_fd, (0, 0), Some(&inner_fd)) {
                Ok(fd) => fd,
                Err(_) => continue,
            }
        } else {
            let Some(ids) = btf_ids(&btf, name, m) else {
                continue;
            };
            match map_create(m, name, &btf_fd, ids, None) {
                Ok(fd) => fd,
                // aya creates it (without BTF) and reports its own failure.
                Err(_) => continue,
            }
        };
        // bpffs refuses names with a dot, which data maps all have.
        let path = dir.join(format!("bpfld-btf-map-{i}"));
        let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| {
            Error::new(
                ErrorKind::Kernel,
                format!("map '{name}': bad pin path {}", path.display()),
            )
        })?;
        crate::sys::obj_pin(&fd, &c).map_err(|e| {
            Error::new(
                ErrorKind::Kernel,
                format!("map '{name}': cannot pin it at {}: {e}", path.display()),
            )
        })?;
        pins.push((name.clone(), path));
    }
    Ok(BtfMaps {
        btf_fd: Some(btf_fd),
        pins,
    })
}

/// The key and value type ids `m` is created with, or `None` for a map
/// left to aya.
fn btf_ids(btf: &aya_obj::btf::Btf, name: &str, m: &aya_obj::Map) -> Option<(u32, u32)> {
    match m {
        aya_obj::Map::Legacy(l)
            if matches!(
                l.section_kind,
                EbpfSectionKind::Data | EbpfSectionKind::Bss | EbpfSectionKind::Rodata
            ) =>
        {
            // libbpf's rule: no key type, the section's DATASEC as value.
            btf.id_by_type_name_kind(name, BtfKind::DataSec)
                .ok()
                .map(|id| (0, id))
        }
        aya_obj::Map::Btf(b)
            if PLAIN_TYPES.contains(&m.map_type()) && b.def.btf_value_type_id != 0 =>
        {
            Some((b.def.btf_key_type_id, b.def.btf_value_type_id))
        }
        _ => None,
    }
}

/// BPF_MAP_CREATE of `m` named `name`, with `btf` and the type ids `ids`.
fn map_create(
    m: &aya_obj::Map,
    name: &str,
    btf: &OwnedFd,
    (key_id, value_id): (u32, u32),
    inner: Option<&OwnedFd>,
) -> std::io::Result<OwnedFd> {
    let mut attr = MapCreateAttr {
        map_type: m.map_type(),
        key_size: m.key_size(),
        value_size: m.value_size(),
        max_entries: m.max_entries(),
        map_flags: m.map_flags(),
        inner_map_fd: inner.map_or(0, |f| f.as_raw_fd() as u32),
        map_extra: m.map_extra(),
        ..Default::default()
    };
    if value_id != 0 {
        attr.btf_fd = btf.as_raw_fd() as u32;
        attr.btf_key_type_id = key_id;
        attr.btf_value_type_id = value_id;
    }
    for (d, s) in attr.map_name.iter_mut().zip(
        name.bytes()
            .filter(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
            .take(15),
    ) {
        *d = s;
    }
    // SAFETY: `attr` is the BPF_MAP_CREATE prefix of `bpf_attr`: plain
    // integers, and fds that stay open for the call.
    let fd = unsafe { crate::sys::bpf(BPF_MAP_CREATE, &mut attr) }?;
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}
