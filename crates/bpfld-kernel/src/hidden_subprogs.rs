//! Global subprograms with hidden visibility, verified as static ones.
//!
//! The verifier checks a global function (BTF FUNC linkage global) once,
//! alone, from its prototype: a pointer argument is "maybe NULL" memory
//! of the pointee's size, whatever the callers pass. A static one is
//! checked in each caller's context. libbpf gives a global (or weak)
//! function of `.text` whose symbol is hidden or internal (`__hidden`,
//! which no other object can call after a link) static linkage in the BTF
//! it loads, so code written for that (libbpf's own `usdt.bpf.h`:
//! `bpf_usdt_arg()` stores through its `res` argument unchecked) loads.
//! bpfld loads the same BTF.

use bpfld::model::btf::{TypeData, BTF_FUNC_GLOBAL, BTF_FUNC_STATIC};
use bpfld::model::object::{Binding, Object, SymbolKind, SymbolPlace, Visibility};

/// Gives the global FUNC of each hidden or internal global function of
/// `.text` static linkage, as libbpf does when it loads `obj` (the first
/// global FUNC of that name). Whether anything changed.
pub(crate) fn make_static(obj: &mut Object) -> bool {
    let Some(text) = obj
        .sections
        .iter()
        .find(|s| s.name == ".text")
        .map(|s| s.id)
    else {
        return false;
    };
    let names: Vec<String> = obj
        .symbols
        .iter()
        .filter(|s| {
            s.kind == SymbolKind::Func
                && s.binding != Binding::Local
                && matches!(s.visibility, Visibility::Hidden | Visibility::Internal)
                && s.place == SymbolPlace::Section(text)
        })
        .map(|s| s.name.clone())
        .collect();
    let Some(btf) = obj.btf.as_mut() else {
        return false;
    };
    let mut changed = false;
    for name in names {
        let found = btf.iter().find_map(|(id, t)| match t.data {
            TypeData::Func {
                linkage: BTF_FUNC_GLOBAL,
                ..
            } if btf.type_name(id) == name => Some(id),
            _ => None,
        });
        if let Some(TypeData::Func { linkage, .. }) =
            found.and_then(|id| btf.get_mut(id)).map(|t| &mut t.data)
        {
            *linkage = BTF_FUNC_STATIC;
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Object {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/").to_string() + name;
        bpfld::Object::parse(&std::fs::read(p).unwrap()).unwrap()
    }

    fn linkage(obj: &Object, name: &str) -> u16 {
        let btf = obj.btf.as_ref().unwrap();
        btf.iter()
            .find_map(|(id, t)| match t.data {
                TypeData::Func { linkage, .. } if btf.type_name(id) == name => Some(linkage),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no FUNC {name}"))
    }

    #[test]
    fn only_hidden_global_subprograms_become_static() {
        let mut obj = fixture("verify_hidden.o");
        assert_eq!(linkage(&obj, "hidden_store"), BTF_FUNC_GLOBAL);
        assert_eq!(linkage(&obj, "visible_store"), BTF_FUNC_GLOBAL);
        assert!(make_static(&mut obj));
        assert_eq!(linkage(&obj, "hidden_store"), BTF_FUNC_STATIC);
        assert_eq!(linkage(&obj, "visible_store"), BTF_FUNC_GLOBAL);
        // An entry program keeps its linkage, hidden or not.
        assert_eq!(linkage(&obj, "hidden_entry"), BTF_FUNC_GLOBAL);
        // Done once: nothing left to change.
        assert!(!make_static(&mut obj));
        // Objects without such functions are left as they are.
        let mut plain = fixture("calls.o");
        let before = plain.btf.clone();
        assert!(!make_static(&mut plain));
        assert_eq!(plain.btf, before);
    }
}
