//! Map definitions as an object declares them: BTF-defined maps in
//! `.maps` and legacy `struct bpf_map_def` maps in `maps`. The linker
//! checks that definitions of one map agree and keeps maps pinned by name
//! as one; listings show them.

use serde::Serialize;

use crate::error::Result;
use crate::model::btf::{Btf, TypeData, TypeId};
use crate::model::object::{Object, SectionKind, SymbolKind, SymbolPlace};

/// One map as the object defines it.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct MapDef {
    /// The map's name (its `.maps` variable or legacy symbol).
    pub name: String,
    /// The section it is defined in (`.maps` or `maps`).
    pub section: String,
    /// `BPF_MAP_TYPE_*` number.
    pub map_type: u32,
    /// `BPF_MAP_TYPE_*` in lower case without the prefix, when known.
    pub type_name: Option<&'static str>,
    /// Key size in bytes, when known.
    pub key_size: Option<u32>,
    /// Value size in bytes, when known.
    pub value_size: Option<u32>,
    /// Key and value types in C syntax, for BTF-defined maps.
    pub key_type: Option<String>,
    /// The value's C type, when BTF names it.
    pub value_type: Option<String>,
    /// `max_entries`.
    pub max_entries: u32,
    /// `map_flags` (`BPF_F_*`).
    pub map_flags: u32,
    /// `LIBBPF_PIN_*`: 1 when pinned by name.
    pub pinning: u32,
    /// NUMA node, when set.
    pub numa_node: Option<u32>,
    /// `map_extra` (bloom filter hashes, arena address), when set.
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

/// Every map of an object: BTF-defined ones, then legacy ones.
pub fn map_defs(obj: &Object) -> Result<Vec<MapDef>> {
    let mut maps = Vec::new();
    if let Some(btf) = &obj.btf {
        maps.extend(btf_maps(obj, btf)?);
    }
    maps.extend(legacy_maps(obj)?);
    Ok(maps)
}

/// BTF-defined maps: each VAR of DATASEC `.maps` is a struct whose members
/// encode the definition (`__uint(name, N)` is `int (*name)[N]`,
/// `__type(name, T)` is `T *name`, `__array(values, T)` is `T *values[]`).
fn btf_maps(obj: &Object, btf: &Btf) -> Result<Vec<MapDef>> {
    let Some(sec) = btf.find_datasec(".maps") else {
        return Ok(Vec::new());
    };
    let mut maps = Vec::new();
    for v in btf.datasec_vars(sec)? {
        let linkage = obj
            .symbols
            .iter()
            .find(|s| s.name == v.name && s.kind != SymbolKind::Section)
            .map(|s| match (s.place, s.binding) {
                (SymbolPlace::Undefined, _) => "extern",
                (_, crate::model::object::Binding::Local) => "static",
                (_, crate::model::object::Binding::Weak) => "weak",
                _ => "global",
            })
            .unwrap_or("global");
        let mut def = parse_map_def(btf, v.type_id, 0)
            .map_err(|e| e.context(format!("map '{}' in section '.maps'", v.name)))?;
        def.name = v.name.to_string();
        def.section = ".maps".into();
        def.linkage = linkage;
        maps.push(def);
    }
    Ok(maps)
}

/// The value N of a `int (*name)[N]` member (how `__uint(name, N)` is
/// encoded, in map definitions and libxdp's run metadata alike).
pub(crate) fn uint_member(btf: &Btf, id: TypeId) -> Result<u32> {
    let ptr = btf.resolve(id)?;
    let TypeData::Ptr(arr) = &btf.ty(ptr)?.data else {
        crate::bail!("{} is not a pointer to an array", btf.describe(id));
    };
    let arr = btf.resolve(*arr)?;
    match &btf.ty(arr)?.data {
        TypeData::Array { nelems, .. } => Ok(*nelems),
        _ => crate::bail!("{} does not point to an array", btf.describe(id)),
    }
}

/// The value N of a `__ulong(name, N)` member: an anonymous enum with one
/// value (ENUM, or ENUM64 when N needs 64 bits); a `__uint` member is read
/// too, as libbpf reads both for `map_extra`.
pub(crate) fn ulong_member(btf: &Btf, id: TypeId) -> Result<u64> {
    let t = btf.resolve(id)?;
    let ty = btf.ty(t)?;
    match &ty.data {
        TypeData::Ptr(_) => uint_member(btf, id).map(u64::from),
        TypeData::Enum { values, .. } if values.len() == 1 => {
            let v = values[0].val;
            // A signed enum's value is sign-extended, as C converts it.
            Ok(if ty.kind_flag {
                v as i32 as i64 as u64
            } else {
                u64::from(v)
            })
        }
        TypeData::Enum64 { values, .. } if values.len() == 1 => Ok(values[0].val),
        TypeData::Enum { .. } | TypeData::Enum64 { .. } => {
            crate::bail!(
                "{} is an enum with {} values, not one (__ulong)",
                btf.describe(id),
                ty.vlen()
            )
        }
        _ => crate::bail!(
            "{} is neither a pointer to an array (__uint) nor an enum (__ulong)",
            btf.describe(id)
        ),
    }
}

/// Whether `id` is an enum with no values (how GCC 12 writes `__ulong`).
fn is_empty_enum(btf: &Btf, id: TypeId) -> bool {
    btf.resolve(id).and_then(|t| btf.ty(t)).is_ok_and(|ty| {
        matches!(ty.data, TypeData::Enum { .. } | TypeData::Enum64 { .. }) && ty.vlen() == 0
    })
}

/// The T of a `T *name` member (`__type(name, T)`).
pub fn pointee(btf: &Btf, id: TypeId) -> Result<TypeId> {
    let ptr = btf.resolve(id)?;
    match &btf.ty(ptr)?.data {
        TypeData::Ptr(t) => Ok(*t),
        _ => crate::bail!("{} is not a pointer", btf.describe(id)),
    }
}

/// Parses a map definition struct (the type of a `.maps` VAR).
pub fn parse_map_def(btf: &Btf, id: TypeId, depth: usize) -> Result<MapDef> {
    if depth > 1 {
        crate::bail!("maps of maps of maps are not supported");
    }
    let st = btf.resolve(id)?;
    let mut def = MapDef {
        linkage: "global",
        ..MapDef::default()
    };
    for m in btf.members(st)? {
        let what = |e: crate::error::Error| e.context(format!("member '{}'", m.name));
        match m.name {
            "type" => {
                def.map_type = uint_member(btf, m.type_id).map_err(what)?;
                def.type_name = map_type_name(def.map_type);
            }
            "max_entries" => def.max_entries = uint_member(btf, m.type_id).map_err(what)?,
            "map_flags" => def.map_flags = uint_member(btf, m.type_id).map_err(what)?,
            "numa_node" => def.numa_node = Some(uint_member(btf, m.type_id).map_err(what)?),
            // GCC 12 writes `__ulong`'s enum without its one value: the
            // value is lost, so map_extra is unknown (libbpf refuses to
            // load such a map; a listing still shows the rest).
            "map_extra" if is_empty_enum(btf, m.type_id) => def.map_extra = None,
            "map_extra" => def.map_extra = Some(ulong_member(btf, m.type_id).map_err(what)?),
            "pinning" => def.pinning = uint_member(btf, m.type_id).map_err(what)?,
            "key_size" => def.key_size = Some(uint_member(btf, m.type_id).map_err(what)?),
            "value_size" => def.value_size = Some(uint_member(btf, m.type_id).map_err(what)?),
            "key" | "value" => {
                let t = pointee(btf, m.type_id).map_err(what)?;
                let size = btf.size_of(t).map_err(what)? as u32;
                let name = crate::model::btf::c_type::type_name(btf, t);
                if m.name == "key" {
                    def.key_type = Some(name);
                    def.key_size = Some(size);
                } else {
                    def.value_type = Some(name);
                    def.value_size = Some(size);
                }
            }
            "values" => {
                // `T *values[]`: an array of pointers to the inner map's
                // definition (maps of maps) or to programs (prog arrays).
                let arr = btf.resolve(m.type_id).map_err(what)?;
                let TypeData::Array { elem, .. } = &btf.ty(arr).map_err(what)?.data else {
                    crate::bail!("member 'values' is not an array");
                };
                let inner = pointee(btf, *elem).map_err(what)?;
                let inner_r = btf.resolve(inner).map_err(what)?;
                if matches!(btf.ty(inner_r).map_err(what)?.data, TypeData::Struct { .. }) {
                    let mut d = parse_map_def(btf, inner_r, depth + 1).map_err(what)?;
                    d.name = "inner".to_string();
                    def.inner = Some(Box::new(d));
                }
            }
            _ => {}
        }
    }
    Ok(def)
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

/// The maps an object pins by name (`LIBBPF_PIN_BY_NAME`): one map for
/// every object that defines them.
pub fn pinned_by_name(obj: &Object) -> impl Iterator<Item = String> {
    map_defs(obj)
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.pinning == 1)
        .map(|m| m.name)
}
