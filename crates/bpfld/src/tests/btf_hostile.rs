//! Hostile BTF and BTF.ext: the damaged corpus, truncations, cycles and
//! random mutations give errors (naming the type where there is one) and
//! never panic; whatever is accepted still round-trips exactly.

use super::btf_common;

use bpfld::model::btf::{Btf, BtfType, TypeData, TypeId};
use bpfld::model::Endian;
use bpfld::read::{btf as rbtf, btf_ext as rext};
use bpfld::show::btf_dump::dump_raw;
use bpfld::write::{btf as wbtf, btf_ext as wext};
use btf_common::*;

fn kinds_btf() -> Vec<u8> {
    let data = std::fs::read(fixtures_dir().join("btf_kinds.o")).unwrap();
    section(&data, ".BTF").unwrap()
}

#[test]
fn damaged_raw_btf_files_are_errors() {
    let dir = fixtures_dir().join("damaged");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "btf") {
            let bytes = std::fs::read(&p).unwrap();
            assert!(rbtf::parse(&bytes).is_err(), "{p:?} was accepted");
            n += 1;
        }
    }
    assert!(n >= 15, "only {n} raw damaged files");
}

#[test]
fn damaged_btf_sections_are_errors() {
    let dir = fixtures_dir().join("damaged");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("btf_") || name.starts_with("btf_ext_") {
            continue;
        }
        let data = std::fs::read(&p).unwrap();
        // Some damage (a truncated section) stops the ELF parser already.
        let Some(raw) = section(&data, ".BTF") else {
            continue;
        };
        let err = rbtf::parse_with_endian(&raw, Endian::Little);
        assert!(err.is_err(), "{p:?} was accepted");
        n += 1;
    }
    assert!(n >= 15, "only {n} damaged objects checked");
}

#[test]
fn damaged_btf_ext_sections_are_errors() {
    let dir = fixtures_dir().join("damaged");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        // Instruction offsets past the code need the ELF (read::elf checks it).
        if !name.starts_with("btf_ext_") || name.contains("insn_off_past_section") {
            continue;
        }
        let data = std::fs::read(&p).unwrap();
        let btf = rbtf::parse(&section(&data, ".BTF").unwrap()).unwrap();
        let ext = section(&data, ".BTF.ext").unwrap();
        assert!(rext::parse(&ext, &btf).is_err(), "{p:?} was accepted");
        n += 1;
    }
    assert!(n >= 15, "only {n} damaged BTF.ext checked");
}

#[test]
fn errors_name_the_type() {
    let dir = fixtures_dir().join("damaged");
    let cases = [
        ("raw_type_id_out_of_range.btf", "type [2] PTR '(anon)'"),
        (
            "raw_member_type_out_of_range.btf",
            "[3] STRUCT 'kitchen_sink': member 0",
        ),
        ("raw_typedef_cycle.btf", "TYPEDEF"),
        (
            "raw_decl_tag_component_out_of_range.btf",
            "DECL_TAG 'struct_tag'",
        ),
        ("raw_absurd_vlen.btf", "[3] STRUCT 'kitchen_sink'"),
        ("raw_unknown_kind.btf", "unknown kind 31"),
        ("raw_array_huge.btf", "ARRAY"),
    ];
    for (file, want) in cases {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let msg = rbtf::parse(&bytes).unwrap_err().to_string();
        assert!(msg.contains(want), "{file}: {msg:?} lacks {want:?}");
    }
}

#[test]
fn byte_swapped_magic_is_rejected_when_the_order_is_known() {
    let raw = kinds_btf();
    let mut swapped = raw.clone();
    swapped.swap(0, 1);
    let msg = rbtf::parse_with_endian(&swapped, Endian::Little)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("byte-swapped"), "{msg}");
}

#[test]
fn every_truncation_is_an_error() {
    let raw = kinds_btf();
    for len in 0..raw.len() {
        assert!(rbtf::parse(&raw[..len]).is_err(), "accepted {len} bytes");
    }
}

/// Builds a BTF with `int` and the given extra types and encodes it.
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
fn reference_cycles_are_errors_but_pointer_cycles_are_fine() {
    let cycles = [
        vec![TypeData::Typedef(TypeId(2))],
        vec![TypeData::Const(TypeId(3)), TypeData::Volatile(TypeId(2))],
        vec![
            TypeData::Typedef(TypeId(3)),
            TypeData::TypeTag(TypeId(4)),
            TypeData::Restrict(TypeId(2)),
        ],
        vec![TypeData::Array {
            elem: TypeId(2),
            index: TypeId(1),
            nelems: 1,
        }],
    ];
    for c in cycles {
        let err = rbtf::parse(&encoded(c.clone())).unwrap_err().to_string();
        assert!(err.contains("cycle"), "{c:?}: {err}");
    }
    // PTR → TYPEDEF → PTR is how a self-referencing struct looks.
    let ok = rbtf::parse(&encoded(vec![
        TypeData::Ptr(TypeId(3)),
        TypeData::Typedef(TypeId(2)),
    ]))
    .unwrap();
    assert_eq!(ok.resolve(TypeId(3)).unwrap(), TypeId(2));
    assert_eq!(ok.size_of(TypeId(3)).unwrap(), 8);
}

#[test]
fn walks_on_unvalidated_models_terminate() {
    // add_type does not validate; walks must still stop.
    let mut btf = Btf::new(Endian::Little);
    btf.add_type(BtfType::new(0, false, TypeData::Typedef(TypeId(1))));
    assert!(btf.resolve(TypeId(1)).is_err());
    assert!(btf.size_of(TypeId(1)).is_err());
    assert!(btf.skip_modifiers(TypeId(1)).is_ok());
    btf.add_type(BtfType::new(0, false, TypeData::Ptr(TypeId(99))));
    assert!(btf.resolve(TypeId(99)).is_err());
    // Dumping dangling references does not panic either.
    assert!(dump_raw(&btf).contains("[2] PTR '(anon)' type_id=99"));
}

#[test]
fn random_mutations_never_panic_and_accepted_input_round_trips() {
    let raw = kinds_btf();
    let mut rng = Rng(0x5eed_b7f0);
    let mut accepted = 0;
    for _ in 0..4000 {
        let mut m = raw.clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(m.len());
            m[i] = rng.next() as u8;
        }
        if let Ok(btf) = rbtf::parse(&m) {
            accepted += 1;
            assert!(
                wbtf::to_bytes(&btf) == m,
                "accepted input did not round-trip"
            );
            let _ = dump_raw(&btf);
        }
    }
    // Mutating names/offsets in place often stays valid.
    assert!(accepted > 0);
    // Pure noise, with and without a valid magic.
    for n in 0..2000 {
        let len = rng.below(512);
        let mut b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if n % 2 == 0 && len >= 2 {
            b[0] = 0x9f;
            b[1] = 0xeb;
        }
        let _ = rbtf::parse(&b);
    }
}

#[test]
fn random_btf_ext_mutations_never_panic_and_accepted_input_round_trips() {
    for fixture in ["calls.o", "core.o", "xdp_counter.bpfeb.o"] {
        let data = std::fs::read(fixtures_dir().join(fixture)).unwrap();
        let btf = rbtf::parse(&section(&data, ".BTF").unwrap()).unwrap();
        let raw = section(&data, ".BTF.ext").unwrap();
        let mut rng = Rng(0xe47_0001);
        for _ in 0..3000 {
            let mut m = raw.clone();
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(m.len());
                m[i] = rng.next() as u8;
            }
            if let Ok(ext) = rext::parse(&m, &btf) {
                assert_eq!(
                    wext::to_bytes(&ext),
                    m,
                    "{fixture}: accepted input did not round-trip"
                );
            }
        }
        for len in 0..raw.len() {
            let _ = rext::parse(&raw[..len], &btf);
        }
    }
}

#[test]
fn func_must_point_to_a_func_proto() {
    let err = rbtf::parse(&encoded(vec![TypeData::Func {
        proto: TypeId(1),
        linkage: 1,
    }]))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("[2] FUNC 't'") && err.contains("not a FUNC_PROTO"),
        "{err}"
    );
}

#[test]
fn try_to_bytes_rejects_what_the_reader_would() {
    let mut btf = Btf::new(Endian::Little);
    let n = btf.add_string("e");
    let ok = btf.clone();
    assert!(wbtf::try_to_bytes(&ok).is_ok());
    btf.add_type(BtfType::new(
        n,
        false,
        TypeData::Enum {
            size: 4,
            values: vec![
                bpfld::model::btf::EnumValue {
                    name_off: n,
                    val: 0
                };
                70_000
            ],
        },
    ));
    let err = wbtf::try_to_bytes(&btf).unwrap_err().to_string();
    assert!(
        err.contains("[1] ENUM 'e'") && err.contains("16-bit vlen"),
        "{err}"
    );
    let mut cyc = ok;
    cyc.add_type(BtfType::new(n, false, TypeData::Typedef(TypeId(1))));
    assert!(wbtf::try_to_bytes(&cyc)
        .unwrap_err()
        .to_string()
        .contains("cycle"));
}
