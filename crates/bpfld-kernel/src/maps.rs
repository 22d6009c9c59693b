//! Reading back every entry of a map, as bytes, after a run.

use aya::maps::{Map, MapData, MapType};

use crate::error::{chain, permission_error, Error, ErrorKind, Result};
use crate::sys;

/// One map after the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapDump {
    /// aya's name: the map's symbol, or `.data`, `.bss`, `.rodata`, ...
    pub name: String,
    /// The map type in libbpf's spelling (`array`, `percpu_hash`, ...).
    pub map_type: String,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    /// For per-CPU maps, the number of possible CPUs; each value is then
    /// `cpus` values of `value_size` bytes, concatenated in CPU order.
    pub per_cpu: Option<usize>,
    /// Entries in the kernel's iteration order.
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
    /// Why entries could not be read, for maps whose contents are not
    /// readable by key (queues, ring buffers, prog arrays, ...).
    pub note: Option<String>,
}

pub(crate) fn map_data(map: &Map) -> &MapData {
    match map {
        Map::Array(m)
        | Map::ArrayOfMaps(m)
        | Map::BloomFilter(m)
        | Map::CgroupArray(m)
        | Map::CgroupStorage(m)
        | Map::CgrpStorage(m)
        | Map::CpuMap(m)
        | Map::DevMap(m)
        | Map::DevMapHash(m)
        | Map::HashMap(m)
        | Map::HashOfMaps(m)
        | Map::InodeStorage(m)
        | Map::LpmTrie(m)
        | Map::LruHashMap(m)
        | Map::PerCpuArray(m)
        | Map::PerCpuCgroupStorage(m)
        | Map::PerCpuHashMap(m)
        | Map::PerCpuLruHashMap(m)
        | Map::PerfEventArray(m)
        | Map::ProgramArray(m)
        | Map::Queue(m)
        | Map::ReusePortSockArray(m)
        | Map::RingBuf(m)
        | Map::SockHash(m)
        | Map::SockMap(m)
        | Map::SkStorage(m)
        | Map::Stack(m)
        | Map::StackTraceMap(m)
        | Map::Unsupported(m)
        | Map::XskMap(m) => m,
    }
}

/// bpftool's name of a map type (`percpu_array`, `xskmap`), or `type N`
/// for one newer than bpfld knows; never aya's Rust spelling.
fn map_type_name(t: Option<MapType>) -> String {
    match t {
        Some(t) => {
            let raw = t as u32;
            bpfld::model::map_def::map_type_name(raw)
                .map_or_else(|| format!("type {raw}"), str::to_string)
        }
        None => "unknown".to_string(),
    }
}

pub(crate) fn dump_map(name: &str, map: &MapData) -> Result<MapDump> {
    let info = map.info().map_err(|e| {
        permission_error(&e).unwrap_or_else(|| {
            Error::new(
                ErrorKind::Kernel,
                format!("map '{name}': cannot read its info: {}", chain(&e)),
            )
        })
    })?;
    let mtype = info.map_type().ok();
    let map_type = map_type_name(mtype);
    let per_cpu = match mtype {
        Some(
            MapType::PerCpuHash
            | MapType::PerCpuArray
            | MapType::LruPerCpuHash
            | MapType::PerCpuCgroupStorage,
        ) => Some(aya::util::nr_cpus().map_err(|(file, e)| {
            Error::new(ErrorKind::Kernel, format!("cannot read {file}: {e}"))
        })?),
        _ => None,
    };
    let mut dump = MapDump {
        name: name.to_string(),
        map_type,
        key_size: info.key_size(),
        value_size: info.value_size(),
        max_entries: info.max_entries(),
        per_cpu,
        entries: Vec::new(),
        note: None,
    };
    if dump.key_size == 0 {
        dump.note = Some("keyless map: contents not readable by key".to_string());
        return Ok(dump);
    }
    let key_size = dump.key_size as usize;
    let value_size = dump.value_size as usize;
    // The kernel pads each CPU's value to 8 bytes in a per-CPU lookup.
    let stride = value_size.div_ceil(8) * 8;
    let buf_len = match per_cpu {
        Some(n) => stride * n,
        None => value_size,
    };
    let fd = map.fd();
    let mut key: Option<Vec<u8>> = None;
    // No key is visited twice without a concurrent delete, and nothing runs
    // now; the bound only guards against a kernel that restarts iteration.
    for _ in 0..dump.max_entries {
        let next = match sys::map_get_next_key(fd, key.as_deref(), key_size) {
            Ok(Some(k)) => k,
            Ok(None) => break,
            Err(e) => {
                dump.note = Some(format!("cannot iterate keys: {e}"));
                break;
            }
        };
        match sys::map_lookup(fd, &next, buf_len) {
            Ok(Some(v)) => {
                let value = match per_cpu {
                    Some(_) => v
                        .chunks(stride)
                        .flat_map(|c| &c[..value_size])
                        .copied()
                        .collect(),
                    None => v,
                };
                dump.entries.push((next.clone(), value));
            }
            // Deleted between the two calls: nothing to show.
            Ok(None) => {}
            Err(e) => {
                dump.note = Some(format!("cannot look up values: {e}"));
                break;
            }
        }
        key = Some(next);
    }
    Ok(dump)
}

/// Writes one `--map-update` into `map` (every CPU's slot of a per-CPU
/// map), after checking the sizes against the map the kernel created.
pub(crate) fn seed_map(map: &MapData, u: &crate::globals::MapUpdate) -> Result<()> {
    let text = &u.text;
    let info = map.info().map_err(|e| {
        permission_error(&e).unwrap_or_else(|| {
            Error::new(
                ErrorKind::Kernel,
                format!("{text}: cannot read the map's info: {}", chain(&e)),
            )
        })
    })?;
    let (key_size, value_size) = (info.key_size() as usize, info.value_size() as usize);
    if u.key.len() != key_size {
        return Err(Error::new(
            ErrorKind::Object,
            format!(
                "{text}: the key is {} bytes; map '{}' has {key_size}-byte keys",
                u.key.len(),
                u.map
            ),
        ));
    }
    if u.value.len() != value_size {
        return Err(Error::new(
            ErrorKind::Object,
            format!(
                "{text}: the value is {} bytes; map '{}' has {value_size}-byte values",
                u.value.len(),
                u.map
            ),
        ));
    }
    let per_cpu = matches!(
        info.map_type(),
        Ok(MapType::PerCpuHash
            | MapType::PerCpuArray
            | MapType::LruPerCpuHash
            | MapType::PerCpuCgroupStorage)
    );
    let value = if per_cpu {
        let cpus = aya::util::nr_cpus().map_err(|(file, e)| {
            Error::new(ErrorKind::Kernel, format!("cannot read {file}: {e}"))
        })?;
        // The kernel reads each CPU's value padded to 8 bytes.
        let stride = value_size.div_ceil(8) * 8;
        let mut v = vec![0u8; stride * cpus];
        for c in v.chunks_mut(stride) {
            c[..value_size].copy_from_slice(&u.value);
        }
        v
    } else {
        u.value.clone()
    };
    sys::map_update(map.fd(), &u.key, &value).map_err(|e| {
        Error::new(
            ErrorKind::Kernel,
            format!("{text}: the kernel refused the update: {e}"),
        )
    })
}
