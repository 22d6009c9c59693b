//! The inliner on every function of every fixture, not only on resolved
//! slots: it must never panic, and whatever it decides, the object must
//! still be written, read back and listed; a function it inlined is gone
//! and no call to it is left.

use bpfld::link::inline::inline_functions;
use bpfld::model::object::SymbolKind;

#[test]
fn inlining_any_function_of_any_fixture_keeps_the_object_whole() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    let mut tried = 0;
    let mut inlined = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .collect();
    entries.sort();
    for path in entries {
        let bytes = std::fs::read(&path).unwrap();
        let Ok(obj) = bpfld::read::elf::parse(&bytes) else {
            continue;
        };
        // Raw clang output first goes through the linker (its .rel.BTF.ext
        // points into the code; linked objects carry none).
        let input = bpfld::link::Input {
            name: path.display().to_string(),
            object: obj.clone(),
        };
        let opts = bpfld::link::LinkOptions {
            relocatable: true,
            ..Default::default()
        };
        let raw = inline_functions(&mut obj.clone(), &["x".to_string()]);
        assert!(raw[0].called_because.is_some());
        let Ok(obj) = bpfld::link::link(&[input], &opts) else {
            continue;
        };
        let funcs: Vec<String> = obj
            .symbols
            .iter()
            .filter(|s| s.kind == SymbolKind::Func)
            .map(|s| s.name.clone())
            .collect();
        for f in funcs {
            tried += 1;
            let mut o = obj.clone();
            let out = inline_functions(&mut o, std::slice::from_ref(&f));
            let what = format!("{}: {f}", path.display());
            let written = bpfld::write::elf::to_bytes(&o).unwrap_or_else(|e| panic!("{what}: {e}"));
            let back = bpfld::read::elf::parse(&written).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(!bpfld::show::disasm::disasm(&back).is_empty(), "{what}");
            if !out[0].inlined_into.is_empty() && out[0].called_because.is_none() {
                inlined += 1;
                assert!(
                    !back
                        .symbols
                        .iter()
                        .any(|s| s.name == f && s.kind == SymbolKind::Func),
                    "{what}: inlined everywhere but still defined"
                );
            }
        }
    }
    eprintln!("{tried} functions tried, {inlined} inlined everywhere");
    assert!(inlined > 0);
}
