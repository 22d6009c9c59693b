//! Ring buffer sizes made what the kernel accepts, as libbpf makes them.
//!
//! The kernel creates a ring buffer (and a user ring buffer) only of a
//! power-of-two number of pages; libbpf rounds `max_entries` up to that
//! before creating one, and the kernel selftests rely on it
//! (`__uint(max_entries, 1000)`). aya 0.14 rounds plain ring buffers only:
//! not user ring buffers, and not a ring buffer that is a map-in-map's
//! inner map template (`__array(values, struct ringbuf_map)`). In aya's
//! copy of the object every such definition gets the rounded size in its
//! BTF, which is where aya and bpfld read it.

use bpfld::model::btf::{Btf, BtfType, TypeData, TypeId};

const RINGBUF: u32 = 27;
const USER_RINGBUF: u32 = 31;

/// The size libbpf gives a ring buffer of `bytes`: a power-of-two number
/// of `page`-byte pages. 0 stays 0 (the kernel refuses it, as libbpf lets
/// it), and so does a size whose rounding would not fit in 32 bits.
pub(crate) fn ringbuf_size(bytes: u32, page: u32) -> u32 {
    if bytes == 0 || page == 0 {
        return bytes;
    }
    bytes
        .div_ceil(page)
        .checked_next_power_of_two()
        .and_then(|pages| pages.checked_mul(page))
        .unwrap_or(bytes)
}

/// This machine's page size.
fn page_size() -> u32 {
    // SAFETY: sysconf only reads a configuration value.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u32::try_from(n).unwrap_or(4096)
}

/// Rounds the size of every ring buffer defined in `.maps`, inner map
/// templates included, to what the kernel accepts. Returns whether
/// anything changed.
pub(crate) fn round_ringbufs(btf: &mut Btf) -> bool {
    round_ringbufs_to(btf, page_size())
}

/// The integer of `__uint(name, N)`: a pointer to an array of N elements.
fn uint_array(btf: &Btf, member: TypeId) -> Option<(TypeId, TypeId, u32)> {
    let ptr = btf.resolve(member).ok()?;
    let Some(TypeData::Ptr(arr)) = btf.get(ptr).map(|t| &t.data) else {
        return None;
    };
    match btf.get(*arr).map(|t| &t.data) {
        Some(TypeData::Array {
            elem,
            index,
            nelems,
        }) => Some((*elem, *index, *nelems)),
        _ => None,
    }
}

/// The definition struct `values` (`__array(values, struct inner)`)
/// points at: an array of pointers to it.
fn inner_def(btf: &Btf, values: TypeId) -> Option<TypeId> {
    let Some(TypeData::Array { elem, .. }) = btf.get(values).map(|t| &t.data) else {
        return None;
    };
    let ptr = btf.resolve(*elem).ok()?;
    let Some(TypeData::Ptr(to)) = btf.get(ptr).map(|t| &t.data) else {
        return None;
    };
    let def = btf.resolve(*to).ok()?;
    matches!(btf.get(def)?.data, TypeData::Struct { .. }).then_some(def)
}

fn round_ringbufs_to(btf: &mut Btf, page: u32) -> bool {
    let Some(ds) = btf.find_datasec(".maps") else {
        return false;
    };
    let mut defs: Vec<TypeId> = btf
        .datasec_vars(ds)
        .unwrap_or_default()
        .iter()
        .filter_map(|v| btf.resolve(v.type_id).ok())
        .collect();
    // Inner map templates, one level down (the kernel nests no deeper).
    let inner: Vec<TypeId> = defs
        .iter()
        .flat_map(|&d| btf.members(d).unwrap_or_default())
        .filter(|m| m.name == "values")
        .filter_map(|m| inner_def(btf, m.type_id))
        .collect();
    defs.extend(inner);
    defs.sort();
    defs.dedup();
    let mut changed = false;
    for def in defs {
        let members = btf.members(def).unwrap_or_default();
        let field = |name: &str| {
            members
                .iter()
                .position(|m| m.name == name)
                .and_then(|i| Some((i, uint_array(btf, members[i].type_id)?)))
        };
        let Some((_, (_, _, map_type))) = field("type") else {
            continue;
        };
        if map_type != RINGBUF && map_type != USER_RINGBUF {
            continue;
        }
        let Some((i, (elem, index, bytes))) = field("max_entries") else {
            continue;
        };
        let rounded = ringbuf_size(bytes, page);
        if rounded == bytes {
            continue;
        }
        // New types: the array may be shared with other members and maps.
        let array = btf.add_type(BtfType::new(
            0,
            false,
            TypeData::Array {
                elem,
                index,
                nelems: rounded,
            },
        ));
        let ptr = btf.add_type(BtfType::new(0, false, TypeData::Ptr(array)));
        if let Some(TypeData::Struct { members, .. }) = btf.get_mut(def).map(|t| &mut t.data) {
            if let Some(m) = members.get_mut(i) {
                m.type_id = ptr;
                changed = true;
            }
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_whole_pages_a_power_of_two_of_them() {
        assert_eq!(ringbuf_size(0, 4096), 0);
        assert_eq!(ringbuf_size(8, 4096), 4096);
        assert_eq!(ringbuf_size(1000, 4096), 4096);
        assert_eq!(ringbuf_size(4096, 4096), 4096);
        assert_eq!(ringbuf_size(4097, 4096), 8192);
        assert_eq!(ringbuf_size(3 * 4096, 4096), 4 * 4096);
        assert_eq!(ringbuf_size(5 * 65536, 65536), 8 * 65536);
        // No power of two of pages fits in 32 bits: left to the kernel.
        assert_eq!(ringbuf_size(u32::MAX - 10, 4096), u32::MAX - 10);
    }

    fn fixture(name: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures")
            .join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// Map name and (type, max_entries) of every map bpfld reads in `btf`,
    /// inner templates as `outer.inner`.
    fn sizes(obj: &bpfld::model::object::Object) -> Vec<(String, u32, u32)> {
        let mut out = Vec::new();
        for d in bpfld::model::map_def::map_defs(obj).unwrap() {
            out.push((d.name.clone(), d.map_type, d.max_entries));
            if let Some(i) = &d.inner {
                out.push((format!("{}.inner", d.name), i.map_type, i.max_entries));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn ring_buffers_and_inner_templates_are_rounded() {
        let mut obj = bpfld::Object::parse(&fixture("run_ringbuf.o")).unwrap();
        assert_eq!(
            sizes(&obj),
            [
                ("rb".to_string(), RINGBUF, 1000),
                ("rb_hash".to_string(), 13, 1),
                ("rb_hash.inner".to_string(), RINGBUF, 1000),
                ("urb".to_string(), USER_RINGBUF, 8),
            ]
        );
        let btf = obj.btf.as_mut().unwrap();
        assert!(round_ringbufs_to(btf, 4096));
        // Already rounded: nothing more to do.
        assert!(!round_ringbufs_to(btf, 4096));
        // The rounded copy is written and read back.
        let back = bpfld::Object::parse(&obj.to_bytes().unwrap()).unwrap();
        assert_eq!(
            sizes(&back),
            [
                ("rb".to_string(), RINGBUF, 4096),
                ("rb_hash".to_string(), 13, 1),
                ("rb_hash.inner".to_string(), RINGBUF, 4096),
                ("urb".to_string(), USER_RINGBUF, 4096),
            ]
        );
    }
}
