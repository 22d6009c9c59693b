//! The borrowed BTF view (`read::btf_view`, what `btf dump` lists from)
//! against the model's reader: on every fixture, damaged file, truncation
//! and random mutation, the same verdict, the same error message, and the
//! same listings.

use super::btf_common;

use bpfld::model::btf::{Btf, BtfType, TypeData, TypeId};
use bpfld::model::Endian;
use bpfld::read::btf as rbtf;
use bpfld::read::btf_view::BtfView;
use bpfld::show::btf_dump::{dump_json, dump_json_to, dump_raw, dump_raw_to};
use bpfld::write::btf as wbtf;
use btf_common::*;

/// Both readers on `bytes`: the same outcome; when accepted, the same
/// text and JSON listings. Returns whether it was accepted.
fn agree(bytes: &[u8], endian: Option<Endian>, what: &str) -> bool {
    let (view, model) = match endian {
        Some(e) => (
            BtfView::parse_with_endian(bytes, e),
            rbtf::parse_with_endian(bytes, e),
        ),
        None => (BtfView::parse(bytes), rbtf::parse(bytes)),
    };
    match (view, model) {
        (Ok(view), Ok(model)) => {
            let mut text = Vec::new();
            dump_raw_to(&view, &mut text).unwrap();
            let want = dump_raw(&model);
            assert!(
                text == want.as_bytes(),
                "{what}: text dumps differ: {}",
                first_diff(&String::from_utf8_lossy(&text), &want)
            );
            let mut json = Vec::new();
            dump_json_to(&view, &mut json).unwrap();
            let want = serde_json::to_string_pretty(&dump_json(&model)).unwrap();
            assert!(
                json == want.as_bytes(),
                "{what}: JSON dumps differ: {}",
                first_diff(&String::from_utf8_lossy(&json), &want)
            );
            true
        }
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string(), "{what}: different errors");
            false
        }
        (Ok(_), Err(e)) => panic!("{what}: the view accepts what the reader rejects: {e}"),
        (Err(e), Ok(_)) => panic!("{what}: the view rejects what the reader accepts: {e}"),
    }
}

fn kinds_btf() -> Vec<u8> {
    let data = std::fs::read(fixtures_dir().join("btf_kinds.o")).unwrap();
    section(&data, ".BTF").unwrap()
}

#[test]
fn fixtures_list_the_same() {
    for p in fixture_objects() {
        let data = std::fs::read(&p).unwrap();
        let Some(raw) = section(&data, ".BTF") else {
            continue;
        };
        let endian = if data[5] == 2 {
            Endian::Big
        } else {
            Endian::Little
        };
        assert!(agree(&raw, Some(endian), &p.display().to_string()));
    }
}

#[test]
fn damaged_files_fail_the_same() {
    let dir = fixtures_dir().join("damaged");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let data = std::fs::read(&p).unwrap();
        let what = p.display().to_string();
        if p.extension().is_some_and(|x| x == "btf") {
            agree(&data, None, &what);
            n += 1;
        } else if let Some(raw) = section(&data, ".BTF") {
            agree(&raw, Some(Endian::Little), &what);
            n += 1;
        }
    }
    assert!(n >= 30, "only {n} damaged inputs");
}

#[test]
fn truncations_and_mutations_agree() {
    let raw = kinds_btf();
    for len in 0..raw.len() {
        assert!(!agree(&raw[..len], None, &format!("first {len} bytes")));
    }
    let mut rng = Rng(0xb7f0_71e3);
    let mut accepted = 0;
    for round in 0..3000 {
        let mut m = raw.clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(m.len());
            m[i] = rng.next() as u8;
        }
        if agree(&m, None, &format!("mutation {round}")) {
            accepted += 1;
        }
    }
    // Many mutations of names and sizes stay valid: both paths are used.
    assert!(accepted > 100, "only {accepted} mutations accepted");
}

/// Encodes `int` plus `extra` types (ids from 2).
fn encoded(extra: Vec<TypeData>) -> Vec<u8> {
    let mut btf = Btf::new(Endian::Little);
    let n = btf.add_string("t");
    btf.add_type(BtfType::new(n, false, TypeData::Int { size: 4, data: 32 }));
    for d in extra {
        btf.add_type(BtfType::new(n, false, d));
    }
    wbtf::to_bytes(&btf)
}

#[test]
fn semantic_errors_agree() {
    let array = |elem: u32, nelems: u32| TypeData::Array {
        elem: TypeId(elem),
        index: TypeId(1),
        nelems,
    };
    let cases = [
        vec![TypeData::Typedef(TypeId(2))],
        vec![TypeData::Const(TypeId(3)), TypeData::Volatile(TypeId(2))],
        vec![array(2, 1)],
        vec![array(1, u32::MAX), array(2, u32::MAX)],
        vec![array(1, 1 << 31)],
        vec![TypeData::Fwd, array(2, 1)],
        vec![TypeData::Func {
            proto: TypeId(1),
            linkage: 0,
        }],
        vec![TypeData::DeclTag {
            target: TypeId(1),
            component_idx: 0,
        }],
        vec![TypeData::DeclTag {
            target: TypeId(1),
            component_idx: -2,
        }],
        vec![TypeData::Ptr(TypeId(9))],
        vec![
            TypeData::Datasec {
                size: 4,
                vars: vec![],
            },
            TypeData::Ptr(TypeId(2)),
        ],
    ];
    for c in cases {
        assert!(
            !agree(&encoded(c.clone()), None, &format!("{c:?}")),
            "{c:?}"
        );
    }
    // An array reached through more typedefs than the model's walks
    // follow: the model's size walk gives up, and so does the view.
    let mut chain: Vec<TypeData> = (0..70_000)
        .map(|i| TypeData::Typedef(TypeId(i + 1)))
        .collect();
    chain.push(array(70_001, 1));
    agree(&encoded(chain), None, "long typedef chain");
}

#[test]
fn elf_view_reads_the_btf_the_full_reader_reads() {
    for p in fixture_objects() {
        let data = std::fs::read(&p).unwrap();
        let obj = bpfld::read::elf::parse(&data).unwrap();
        let elf = bpfld::read::elf_view::ElfView::parse(&data[..]).unwrap();
        let Some(model) = &obj.btf else {
            assert!(elf.btf_index().is_none(), "{p:?}");
            continue;
        };
        let bytes = elf.section_data(elf.btf_index().unwrap()).unwrap();
        let view = BtfView::parse_with_endian(bytes, elf.endian()).unwrap();
        let mut text = Vec::new();
        dump_raw_to(&view, &mut text).unwrap();
        assert!(text == dump_raw(model).as_bytes(), "{p:?}");
    }
}
