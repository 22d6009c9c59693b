//! Map definitions, from BTF-defined `.maps` and the legacy `maps` section.

use std::collections::HashMap;

use serde::Serialize;

use crate::error::Result;
use crate::model::btf::Btf;
use crate::model::object::{Object, SectionKind, SymbolKind, SymbolPlace};

/// One map as the object defines it.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct MapDef {
    pub name: String,
    pub section: String,
    pub map_type: u32,
    /// `BPF_MAP_TYPE_*` in lower case without the prefix, when known.
    pub type_name: Option<&'static str>,
    pub key_size: Option<u32>,
    pub value_size: Option<u32>,
    /// Key and value types in C syntax, for BTF-defined maps.
    pub key_type: Option<String>,
    pub value_type: Option<String>,
    pub max_entries: u32,
    pub map_flags: u32,
    pub pinning: u32,
    pub numa_node: Option<u32>,
    pub map_extra: Option<u64>,
    /// The inner map's definition, for maps of maps.
    pub inner: Option<Box<MapDef>>,
    /// "global", "static", "weak" or "extern".
    pub linkage: &'static str,
}

/// Names of `enum bpf_map_type`, by value.
pub fn map_type_name(t: u32) -> Option<&'static str> {
    const NAMES: &[&str] = &[
        "unspec",
        "hash",
        "array",
        "prog_array",
        "perf_event_array",
        "percpu_hash",
        "percpu_array",
        "stack_trace",
        "cgroup_array",
        "lru_hash",
        "lru_percpu_hash",
        "lpm_trie",
        "array_of_maps",
        "hash_of_maps",
        "devmap",
        "sockmap",
        "cpumap",
        "xskmap",
        "sockhash",
        "cgroup_storage",
        "reuseport_sockarray",
        "percpu_cgroup_storage",
        "queue",
        "stack",
        "sk_storage",
        "devmap_hash",
        "struct_ops",
        "ringbuf",
        "inode_storage",
        "task_storage",
        "bloom_filter",
        "user_ringbuf",
        "cgrp_storage",
        "arena",
    ];
    NAMES.get(t as usize).copied()
}

/// One line describing a map.
pub fn describe(m: &MapDef) -> String {
    let mut s = format!(
        "{:<20} {:<16} max_entries={}",
        m.name,
        m.type_name
            .map(str::to_string)
            .unwrap_or_else(|| format!("type {}", m.map_type)),
        m.max_entries
    );
    match (&m.key_type, m.key_size) {
        (Some(t), Some(n)) => s += &format!(" key={t} ({n} bytes)"),
        (None, Some(n)) => s += &format!(" key_size={n}"),
        _ => {}
    }
    match (&m.value_type, m.value_size) {
        (Some(t), Some(n)) => s += &format!(" value={t} ({n} bytes)"),
        (None, Some(n)) => s += &format!(" value_size={n}"),
        _ => {}
    }
    if m.map_flags != 0 {
        s += &format!(" flags={:#x}", m.map_flags);
    }
    if m.pinning != 0 {
        s += &format!(" pinning={}", m.pinning);
    }
    if let Some(inner) = &m.inner {
        s += &format!(
            " inner=[{}]",
            describe(inner)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    if m.linkage != "global" {
        s += &format!(" ({})", m.linkage);
    }
    s
}

/// Every map of an object: BTF-defined ones, then legacy ones.
pub fn map_defs(obj: &Object) -> Result<Vec<MapDef>> {
    let mut maps = Vec::new();
    if let Some(btf) = &obj.btf {
        maps.extend(btf_maps(obj, btf)?);
    }
    maps.extend(legacy_maps(obj)?);
    Ok(maps)
}

fn btf_maps(_obj: &Object, _btf: &Btf) -> Result<Vec<MapDef>> {
    Ok(Vec::new())
}

/// Legacy `struct bpf_map_def` maps: five (or more) u32 fields per symbol.
fn legacy_maps(obj: &Object) -> Result<Vec<MapDef>> {
    let mut maps = Vec::new();
    for sec in obj
        .sections
        .iter()
        .filter(|s| s.kind == SectionKind::LegacyMaps)
    {
        for sym in obj
            .symbols
            .iter()
            .filter(|s| s.place == SymbolPlace::Section(sec.id) && s.kind != SymbolKind::Section)
        {
            let start = sym.value as usize;
            let field = |i: usize| -> Result<u32> {
                let at = start.saturating_add(i * 4);
                match sec.data.get(at..at.saturating_add(4)) {
                    Some(b) => Ok(obj.endian.read_u32([b[0], b[1], b[2], b[3]])),
                    None => crate::bail!(
                        "section '{}': map '{}' at offset {start:#x} runs past the section end",
                        sec.name,
                        sym.name
                    ),
                }
            };
            let map_type = field(0)?;
            maps.push(MapDef {
                name: sym.name.clone(),
                section: sec.name.clone(),
                map_type,
                type_name: map_type_name(map_type),
                key_size: Some(field(1)?),
                value_size: Some(field(2)?),
                max_entries: field(3)?,
                map_flags: field(4)?,
                linkage: "global",
                ..MapDef::default()
            });
        }
    }
    Ok(maps)
}

/// Extern names the BTF puts in `.kconfig`, `.ksyms` or `.maps`, with the
/// kind of extern each is.
pub fn extern_classes(_obj: &Object) -> HashMap<&str, &'static str> {
    HashMap::new()
}

/// Number of types in a BTF blob (not counting void).
pub fn type_count(_btf: &Btf) -> usize {
    0
}
