//! The producer quirks of read/workarounds.rs: clang's objects are left
//! exactly as they are; GCC's are rewritten once (normalising twice changes
//! nothing more) into BTF that passes the writer's validation.

use std::path::{Path, PathBuf};

use bpfld::read::workarounds::{needs_normalizing, normalize_object};

fn objects(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "o"))
        .collect();
    v.sort();
    v
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

#[test]
fn clang_objects_need_no_workaround() {
    let objs = objects(&fixtures());
    assert!(objs.len() > 20);
    for p in objs {
        let obj = bpfld::read::elf::read_file(&p).unwrap();
        assert!(!needs_normalizing(&obj), "{}", p.display());
    }
}

#[test]
fn gcc_objects_are_normalised_once_into_valid_btf() {
    let objs = objects(&fixtures().join("gcc"));
    assert!(objs.len() > 5);
    for p in objs {
        let mut obj = bpfld::read::elf::read_file(&p).unwrap();
        assert!(needs_normalizing(&obj), "{}", p.display());
        normalize_object(&mut obj);
        assert!(!needs_normalizing(&obj), "{}: not idempotent", p.display());
        let again = {
            let mut o = obj.clone();
            normalize_object(&mut o);
            o
        };
        assert!(
            again.btf == obj.btf
                && bpfld::write::elf::to_bytes(&again).unwrap()
                    == bpfld::write::elf::to_bytes(&obj).unwrap(),
            "{}: a second pass changed it",
            p.display()
        );
        let btf = obj.btf.as_ref().unwrap();
        bpfld::write::btf::try_to_bytes(btf).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        // Every code section starts with a func_info record now.
        for s in obj
            .sections
            .iter()
            .filter(|s| s.is_program() && !s.insns.is_empty())
        {
            assert_eq!(
                s.func_info.first().map(|r| r.insn.0),
                Some(0),
                "{}: section {}",
                p.display(),
                s.name
            );
            assert_eq!(s.func_info.len(), s.line_info.len());
        }
    }
}
