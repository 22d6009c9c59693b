//! Map-in-map slots an object initialises itself, the libbpf way:
//! `__array(values, struct inner)` and `.values = { [0] = &inner_map }`.
//! As for prog arrays, the compiler leaves the slots zero in `.maps`, with
//! one relocation per filled slot against the inner map's symbol; the
//! loader puts the inner maps' fds in once every map exists (aya 0.14
//! does not).

use bpfld::model::btf::{Btf, TypeData, TypeId};
use bpfld::model::object::{Object, SectionKind, SymbolKind, SymbolPlace};

use crate::error::{Error, ErrorKind, Result};

/// One filled slot: map `outer`'s entry `index` holds map `inner`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MapSlot {
    pub(crate) outer: String,
    pub(crate) index: u32,
    pub(crate) inner: String,
}

/// Whether member type `id` is an array of pointers to structs (a map
/// definition), as `__array(values, struct ...)` writes it.
fn is_map_values(btf: &Btf, id: TypeId) -> bool {
    let Some(TypeData::Array { elem, .. }) = btf.get(id).map(|t| &t.data) else {
        return false;
    };
    let Ok(elem) = btf.resolve(*elem) else {
        return false;
    };
    let Some(TypeData::Ptr(to)) = btf.get(elem).map(|t| &t.data) else {
        return false;
    };
    btf.resolve(*to)
        .ok()
        .and_then(|t| btf.get(t))
        .is_some_and(|t| matches!(t.data, TypeData::Struct { .. }))
}

/// The filled slots of every map-in-map of `obj`, in relocation order.
pub(crate) fn slots(obj: &Object) -> Result<Vec<MapSlot>> {
    let (Some(btf), Some(maps)) = (obj.btf.as_ref(), obj.section_by_name(".maps")) else {
        return Ok(Vec::new());
    };
    if maps.kind != SectionKind::Maps || maps.relocs.is_empty() {
        return Ok(Vec::new());
    }
    let Some(ds) = btf.find_datasec(".maps") else {
        return Ok(Vec::new());
    };
    let bad = |m: String| Error::new(ErrorKind::Object, m);
    let mut out = Vec::new();
    for v in btf.datasec_vars(ds).unwrap_or_default() {
        let Ok(def) = btf.resolve(v.type_id) else {
            continue;
        };
        let Some(values) = btf
            .members(def)
            .unwrap_or_default()
            .into_iter()
            .find(|m| m.name == "values" && is_map_values(btf, m.type_id))
        else {
            continue;
        };
        let Some(sym) = obj.symbols.iter().find(|s| {
            s.name == v.name
                && s.place == SymbolPlace::Section(maps.id)
                && s.kind != SymbolKind::Section
        }) else {
            continue;
        };
        let start = sym.value + u64::from(values.bit_offset / 8);
        let end = sym.value + sym.size.max(btf.size_of(def).unwrap_or(0));
        for r in maps
            .relocs
            .iter()
            .filter(|r| r.offset >= start && r.offset < end)
        {
            let index = u32::try_from((r.offset - start) / 8)
                .map_err(|_| bad(format!("map '{}': slot out of range", v.name)))?;
            let target = obj.symbol(r.symbol).ok_or_else(|| {
                bad(format!(
                    "map '{}': slot {index} refers to symbol {} which does not exist",
                    v.name, r.symbol.0
                ))
            })?;
            if target.place != SymbolPlace::Section(maps.id) || target.kind == SymbolKind::Section {
                return Err(bad(format!(
                    "map '{}': slot {index} refers to '{}', which is not a map of .maps",
                    v.name, target.name
                )));
            }
            out.push(MapSlot {
                outer: v.name.to_string(),
                index,
                inner: target.name.clone(),
            });
        }
    }
    Ok(out)
}

/// Puts each slot's inner map into its outer map, in `ebpf`'s maps.
pub(crate) fn fill(obj: &Object, ebpf: &aya::Ebpf) -> Result<()> {
    use std::os::fd::AsFd;
    for s in slots(obj)? {
        let fd_of = |name: &str| {
            ebpf.map(name)
                .map(|m| crate::maps::map_data(m).fd().as_fd())
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::Object,
                        format!(
                            "map '{}' slot {}: no map named '{name}' was created",
                            s.outer, s.index
                        ),
                    )
                })
        };
        let (outer, inner) = (fd_of(&s.outer)?, fd_of(&s.inner)?);
        let value = (std::os::fd::AsRawFd::as_raw_fd(&inner) as u32).to_le_bytes();
        crate::sys::map_update(outer, &s.index.to_le_bytes(), &value).map_err(|e| {
            Error::new(
                ErrorKind::Kernel,
                format!(
                    "map '{}': cannot put map '{}' in slot {}: {e}",
                    s.outer, s.inner, s.index
                ),
            )
        })?;
    }
    Ok(())
}
