//! Slots of `.maps` definitions an object initialises itself, the libbpf
//! way: `__array(values, ...)` and `.values = { [1] = &x }`. The compiler
//! leaves the slots zero in `.maps`, with one relocation per filled slot
//! against the symbol of what goes there: a program for a prog array
//! (`__array(values, int (void *))`), an inner map for a map-in-map
//! (`__array(values, struct inner)`). The loader puts their fds in (aya
//! 0.14 does not): test_run.rs and map_in_map.rs. They are read once,
//! from the object as given (aya_compat.rs), since aya's copy no longer
//! marks prog arrays' `values`.

use bpfld::model::btf::{Btf, TypeData, TypeId};
use bpfld::model::object::{Object, SectionKind, SymbolKind, SymbolPlace};

use crate::error::{Error, ErrorKind, Result};

/// What a `values` array holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holds {
    /// Programs (a prog array).
    Programs,
    /// Inner maps (a map-in-map).
    Maps,
}

impl Holds {
    /// How errors name the outer map.
    fn map_word(self) -> &'static str {
        match self {
            Holds::Programs => "prog array",
            Holds::Maps => "map",
        }
    }
}

/// One filled slot: map `map`'s entry `index` holds `target` (a program
/// or a map, by name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) map: String,
    pub(crate) index: u32,
    pub(crate) target: String,
}

/// The filled slots of an object's prog arrays and map-in-maps, each list
/// or the error reading it, kept to be reported where it is used.
pub(crate) struct Slots {
    pub(crate) programs: Result<Vec<Slot>>,
    pub(crate) maps: Result<Vec<Slot>>,
}

impl Slots {
    /// Reads both kinds of slots from one parse of the object.
    pub(crate) fn of(obj: &Object) -> Slots {
        Slots {
            programs: slots(obj, Holds::Programs),
            maps: slots(obj, Holds::Maps),
        }
    }
}

/// Whether member type `id` is an array of pointers to what `holds`
/// names: function prototypes for programs, structs (map definitions) for
/// maps.
fn is_values(btf: &Btf, id: TypeId, holds: Holds) -> bool {
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
        .is_some_and(|t| match holds {
            Holds::Programs => matches!(t.data, TypeData::FuncProto { .. }),
            Holds::Maps => matches!(t.data, TypeData::Struct { .. }),
        })
}

/// The filled slots of every map of `obj` whose values are what `holds`
/// names, in relocation order.
pub(crate) fn slots(obj: &Object, holds: Holds) -> Result<Vec<Slot>> {
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
    let what = holds.map_word();
    let mut out = Vec::new();
    for v in btf.datasec_vars(ds).unwrap_or_default() {
        let Ok(def) = btf.resolve(v.type_id) else {
            continue;
        };
        let Some(values) = btf
            .members(def)
            .unwrap_or_default()
            .into_iter()
            .find(|m| m.name == "values" && is_values(btf, m.type_id, holds))
        else {
            continue;
        };
        // Where the map's definition is in .maps: its symbol says so
        // (the DATASEC's offsets may be left for the loader to fill).
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
                .map_err(|_| bad(format!("{what} '{}': slot out of range", v.name)))?;
            let target = obj.symbol(r.symbol).ok_or_else(|| {
                bad(format!(
                    "{what} '{}': slot {index} refers to symbol {} which does not exist",
                    v.name, r.symbol.0
                ))
            })?;
            let (fits, kind) = match holds {
                Holds::Programs => (
                    target.kind == SymbolKind::Func
                        && match target.place {
                            SymbolPlace::Section(id) => {
                                obj.section(id).is_some_and(|s| s.is_program())
                            }
                            _ => false,
                        },
                    "a program",
                ),
                Holds::Maps => (
                    target.place == SymbolPlace::Section(maps.id)
                        && target.kind != SymbolKind::Section,
                    "a map of .maps",
                ),
            };
            if !fits {
                return Err(bad(format!(
                    "{what} '{}': slot {index} refers to '{}', which is not {kind}",
                    v.name, target.name
                )));
            }
            out.push(Slot {
                map: v.name.to_string(),
                index,
                target: target.name.clone(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures")
            .join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn slots_of_the_values_initialiser() {
        let obj = bpfld::Object::parse(&fixture("run_tail.o")).unwrap();
        assert_eq!(
            slots(&obj, Holds::Programs).unwrap(),
            [Slot {
                map: "jumps".into(),
                index: 1,
                target: "tail_drop".into()
            }]
        );
        let obj = bpfld::Object::parse(&fixture("xdp_pass.o")).unwrap();
        assert!(slots(&obj, Holds::Programs).unwrap().is_empty());
    }
}
