//! Whole-link properties: the ways of feeding the linker agree, and
//! when BTF is deduplicated does not matter.

use super::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

/// Fixture sets with externs both ways, a weak definition before the
/// strong one (link_a's `weak_policy`), maps, variables and statics.
const SETS: &[&[&str]] = &[
    &["link_a.o", "link_b.o"],
    &["link_b.o", "link_a.o"],
    &["lnk_fn_a.o", "lnk_fn_b.o"],
    &["lnk_vars_use.o", "lnk_vars_def.o"],
    &["lnk_maps_use.o", "lnk_maps_def.o"],
    &["lnk_static_a.o", "lnk_static_b.o"],
    &["lnk_lic_upper.o", "lnk_fn_a.o", "lnk_fn_b.o"],
];

fn paths(set: &[&str]) -> Vec<PathBuf> {
    set.iter().map(|n| fixture(n)).collect()
}

fn linked_bytes(set: &[&str]) -> Vec<u8> {
    let linked = link_files(&paths(set), &[], &LinkOptions::default()).unwrap();
    crate::write::elf::to_bytes(&linked.object).unwrap()
}

#[test]
fn files_memory_and_direct_output_give_the_same_bytes() {
    for set in SETS {
        let from_files = linked_bytes(set);
        let inputs: Vec<Input> = paths(set)
            .iter()
            .map(|p| Input {
                name: p.display().to_string(),
                object: crate::read::elf::read_file(p).unwrap(),
            })
            .collect();
        let in_memory = link(&inputs, &LinkOptions::default()).unwrap();
        assert!(
            crate::write::elf::to_bytes(&in_memory).unwrap() == from_files,
            "{set:?}: link_files and link differ"
        );
        // The code goes from the temporary file straight to the output.
        let dir = std::env::temp_dir().join(format!("bpfld-link-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join(format!("{}.o", set.join("+")));
        link_files_to(&paths(set), &[], &LinkOptions::default(), &out).unwrap();
        let written = std::fs::read(&out).unwrap();
        std::fs::remove_file(&out).unwrap();
        assert!(written == from_files, "{set:?}: link_files_to differs");
        let _ = std::fs::remove_dir(&dir);
    }
}

#[test]
fn a_pipe_is_read_once() {
    // `bpfld link -o out <(...) b.o`: a pipe cannot be read twice.
    let dir = std::env::temp_dir().join(format!("bpfld-pipe-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("a.o");
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("no mkfifo; skipped");
        return;
    }
    let bytes = std::fs::read(fixture("lnk_fn_a.o")).unwrap();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, bytes).unwrap())
    };
    let set = [fifo.clone(), fixture("lnk_fn_b.o")];
    let linked = link_files(&set, &[], &LinkOptions::default()).unwrap();
    writer.join().unwrap();
    std::fs::remove_file(&fifo).unwrap();
    let _ = std::fs::remove_dir(&dir);
    let got = crate::write::elf::to_bytes(&linked.object).unwrap();
    // The same as the regular files, but for the name in errors.
    assert!(got == linked_bytes(&["lnk_fn_a.o", "lnk_fn_b.o"]));
}

#[test]
fn deduplicating_while_merging_changes_nothing() {
    for set in SETS {
        let once = linked_bytes(set);
        btf::TEST_MIN_DEDUP.with(|c| c.set(Some(1)));
        let every_input = linked_bytes(set);
        btf::TEST_MIN_DEDUP.with(|c| c.set(None));
        assert!(
            once == every_input,
            "{set:?}: output depends on when BTF is deduplicated"
        );
    }
}

#[test]
fn btf_ext_written_in_pieces_matches_from_sections() {
    for set in SETS {
        let obj = link_files(&paths(set), &[], &LinkOptions::default())
            .unwrap()
            .object;
        let btf = obj.btf.as_ref().unwrap();
        let whole = crate::write::btf_ext::from_sections(&obj, btf).unwrap();
        let mut pieces = Vec::new();
        crate::write::btf_ext::write_from_sections(&obj, btf, &mut |b| {
            pieces.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        assert!(!whole.is_empty());
        assert!(pieces == whole, "{set:?}: .BTF.ext bytes differ");
    }
}

/// A DATASEC of `size` bytes named `.data`, with (offset, size) entries,
/// and an object whose `.data` has `sec_size` bytes.
fn datasec_case(
    size: u32,
    sec_size: u64,
    entries: &[(u32, u32)],
) -> (crate::model::btf::Btf, Object) {
    use crate::model::btf::{Btf, BtfType, TypeData, VarSecinfo};
    use crate::model::object::SectionKind;
    let mut b = Btf::new(crate::model::Endian::Little);
    let int_name = b.add_string("int");
    let int = b.add_type(BtfType::new(
        int_name,
        false,
        TypeData::Int {
            size: 4,
            data: (1 << 24) | 32,
        },
    ));
    let mut vars = Vec::new();
    for (n, &(offset, size)) in entries.iter().enumerate() {
        let name = b.add_string(&format!("v{n}"));
        let var = b.add_type(BtfType::new(
            name,
            false,
            TypeData::Var {
                type_id: int,
                linkage: 0,
            },
        ));
        vars.push(VarSecinfo {
            type_id: var,
            offset,
            size,
        });
    }
    let sec_name = b.add_string(".data");
    b.add_type(BtfType::new(
        sec_name,
        false,
        TypeData::Datasec { size, vars },
    ));
    let mut data = Section::empty(SectionId(1), ".data", SectionKind::Data, 1);
    data.sh_size = sec_size;
    let obj = Object {
        endian: crate::model::Endian::Little,
        sections: vec![sections::null_section(), data],
        symbols: Vec::new(),
        btf: None,
        btf_ext_raw: None,
    };
    (b, obj)
}

#[test]
fn datasec_layout_check_refuses_overlaps_and_overruns() {
    let check = |size, sec_size, entries: &[(u32, u32)]| {
        let (btf, obj) = datasec_case(size, sec_size, entries);
        datasec::check_layout(&btf, &obj).map_err(|e| e.to_string())
    };
    assert!(check(12, 12, &[(0, 4), (4, 4), (8, 4)]).is_ok());
    // Two VARs at offset 0: what two inputs' `license` variables gave.
    let e = check(4, 4, &[(0, 4), (0, 4)]).unwrap_err();
    assert!(e.contains("'v1' at offset 0 overlaps 'v0'"), "{e}");
    let e = check(8, 8, &[(4, 4), (0, 4)]).unwrap_err();
    assert!(e.contains("overlaps"), "{e}");
    let e = check(8, 8, &[(0, 4), (6, 4)]).unwrap_err();
    assert!(e.contains("past the section's 8 bytes"), "{e}");
    let e = check(4, 8, &[(0, 4)]).unwrap_err();
    assert!(e.contains("has size 4 but its section 8 bytes"), "{e}");
}

/// Every output of the fixture sets: each DATASEC entry has its own VAR
/// (two inputs' same-named statics are two variables), and the layout
/// check holds.
#[test]
fn every_datasec_entry_is_its_own_variable() {
    use crate::model::btf::TypeData;
    for set in SETS {
        let obj = link_files(&paths(set), &[], &LinkOptions::default())
            .unwrap()
            .object;
        let btf = obj.btf.as_ref().unwrap();
        datasec::check_layout(btf, &obj).unwrap();
        let mut seen = HashSet::new();
        for (_, t) in btf.iter() {
            if let TypeData::Datasec { vars, .. } = &t.data {
                for v in vars {
                    assert!(
                        seen.insert(v.type_id),
                        "{set:?}: VAR '{}' listed twice",
                        btf.type_name(v.type_id)
                    );
                }
            }
        }
    }
}
