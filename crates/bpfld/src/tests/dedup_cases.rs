//! BTF deduplication, one tricky case per test, on BTF built in code (two
//! "compilation units" concatenated, as a linker would) and on objects
//! compiled by clang-19 (skipped loudly without it). Every result is also
//! checked for equivalence with its input (`bpfld::dedup::verify`).

use std::path::{Path, PathBuf};
use std::process::Command;

use bpfld::dedup::{concat, dedup, verify, Dedup};
use bpfld::model::btf::*;

/// A small BTF builder.
struct B(Btf);

impl B {
    fn new() -> Self {
        B(Btf::new(bpfld::model::Endian::Little))
    }
    fn s(&mut self, name: &str) -> u32 {
        self.0.add_string(name)
    }
    fn add(&mut self, name: &str, kflag: bool, data: TypeData) -> TypeId {
        let off = self.s(name);
        self.0.add_type(BtfType::new(off, kflag, data))
    }
    fn int(&mut self, name: &str, size: u32, signed: bool) -> TypeId {
        let enc = if signed { BTF_INT_SIGNED as u32 } else { 0 };
        self.add(
            name,
            false,
            TypeData::Int {
                size,
                data: (enc << 24) | (size * 8),
            },
        )
    }
    fn ptr(&mut self, t: TypeId) -> TypeId {
        self.add("", false, TypeData::Ptr(t))
    }
    fn typedef(&mut self, name: &str, t: TypeId) -> TypeId {
        self.add(name, false, TypeData::Typedef(t))
    }
    fn fwd(&mut self, name: &str, union: bool) -> TypeId {
        self.add(name, union, TypeData::Fwd)
    }
    /// A struct with `(name, type, bit offset)` members.
    fn st(&mut self, name: &str, size: u32, members: &[(&str, TypeId, u32)]) -> TypeId {
        let id = self.add(
            name,
            false,
            TypeData::Struct {
                size,
                members: vec![],
            },
        );
        self.set_members(id, members);
        id
    }
    fn un(&mut self, name: &str, size: u32, members: &[(&str, TypeId, u32)]) -> TypeId {
        let id = self.add(
            name,
            false,
            TypeData::Union {
                size,
                members: vec![],
            },
        );
        self.set_members(id, members);
        id
    }
    /// Fills a struct's members later (for cycles).
    fn set_members(&mut self, id: TypeId, members: &[(&str, TypeId, u32)]) {
        let ms: Vec<Member> = members
            .iter()
            .map(|&(n, t, off)| Member {
                name_off: self.s(n),
                type_id: t,
                offset: off,
            })
            .collect();
        match &mut self.0.get_mut(id).unwrap().data {
            TypeData::Struct { members, .. } | TypeData::Union { members, .. } => *members = ms,
            _ => panic!("not a struct"),
        }
    }
    fn var(&mut self, name: &str, t: TypeId) -> TypeId {
        self.add(
            name,
            false,
            TypeData::Var {
                type_id: t,
                linkage: BTF_VAR_GLOBAL_ALLOCATED,
            },
        )
    }
}

/// Dedups the concatenation of `cus`, checking equivalence.
fn run(cus: Vec<Btf>) -> (Btf, Dedup) {
    let merged = concat(cus).unwrap();
    let d = dedup(&merged).unwrap();
    verify(&merged, &d).unwrap();
    // The result is valid, encodable BTF.
    bpfld::write::btf::try_to_bytes(&d.btf).unwrap();
    (merged, d)
}

/// Ids of the output types of `kind` named `name`.
fn named(btf: &Btf, kind: Kind, name: &str) -> Vec<TypeId> {
    btf.iter()
        .filter(|(_, t)| t.kind() == kind && btf.name(t.name_off).unwrap() == name)
        .map(|(id, _)| id)
        .collect()
}

fn count(btf: &Btf, kind: Kind) -> usize {
    btf.iter().filter(|(_, t)| t.kind() == kind).count()
}

/// CU 1 sees `struct foo` only declared, CU 2 defines it; both define
/// `struct bar { struct foo *f; }`.
#[test]
fn struct_reached_as_fwd_and_as_definition() {
    let mut a = B::new();
    let fwd = a.fwd("foo", false);
    let p = a.ptr(fwd);
    let int = a.int("int", 4, true);
    a.st("bar", 16, &[("f", p, 0), ("x", int, 64)]);
    let mut b = B::new();
    let int = b.int("int", 4, true);
    let foo = b.st("foo", 4, &[("y", int, 0)]);
    let p = b.ptr(foo);
    b.st("bar", 16, &[("f", p, 0), ("x", int, 64)]);
    let (merged, d) = run(vec![a.0, b.0]);
    let out = &d.btf;
    assert_eq!(named(out, Kind::Struct, "bar").len(), 1);
    assert_eq!(named(out, Kind::Struct, "foo").len(), 1);
    assert_eq!(count(out, Kind::Fwd), 0, "the declaration resolved");
    assert_eq!(count(out, Kind::Ptr), 1);
    // The FWD's id now names the definition.
    let fwd_id = merged.find_by_name(Kind::Fwd, "foo").unwrap();
    assert_eq!(d.map[fwd_id.0 as usize], named(out, Kind::Struct, "foo")[0]);
    assert_eq!(out.type_count(), 1 + 4); // void, int, foo, ptr, bar
}

/// A FWD not reached through any equivalence still resolves to the one
/// definition of its name, but not when the name is ambiguous or the kind
/// (struct vs union) differs.
#[test]
fn lone_fwd_resolves_only_when_unambiguous() {
    let mut a = B::new();
    let fwd = a.fwd("foo", false);
    let p = a.ptr(fwd);
    a.var("gp", p);
    let ufwd = a.fwd("foo_u", true);
    a.ptr(ufwd);
    let mut b = B::new();
    let int = b.int("int", 4, true);
    b.st("foo", 4, &[("y", int, 0)]);
    b.st("foo_u", 4, &[("y", int, 0)]); // a struct, but the FWD says union
    let (_, d) = run(vec![a.0, b.0]);
    assert_eq!(named(&d.btf, Kind::Fwd, "foo").len(), 0);
    assert_eq!(named(&d.btf, Kind::Fwd, "foo_u").len(), 1);

    // Two different definitions of `foo`: the declaration stays.
    let mut a = B::new();
    let fwd = a.fwd("foo", false);
    a.ptr(fwd);
    let mut b = B::new();
    let int = b.int("int", 4, true);
    b.st("foo", 4, &[("y", int, 0)]);
    let mut c = B::new();
    let long = c.int("long", 8, true);
    c.st("foo", 8, &[("y", long, 0)]);
    let (_, d) = run(vec![a.0, b.0, c.0]);
    assert_eq!(named(&d.btf, Kind::Fwd, "foo").len(), 1);
    assert_eq!(named(&d.btf, Kind::Struct, "foo").len(), 2);
}

fn list_cu() -> Btf {
    let mut b = B::new();
    let int = b.int("int", 4, true);
    let node = b.st("node", 16, &[]);
    let p = b.ptr(node);
    b.set_members(node, &[("next", p, 0), ("v", int, 64)]);
    b.0
}

#[test]
fn self_referential_struct() {
    let (_, d) = run(vec![list_cu(), list_cu(), list_cu()]);
    assert_eq!(d.btf.type_count(), 1 + 3);
    let node = named(&d.btf, Kind::Struct, "node")[0];
    let m = d.btf.members(node).unwrap();
    assert_eq!(d.btf.ty(m[0].type_id).unwrap().data, TypeData::Ptr(node));
}

/// `struct a { struct b *b; }` and `struct b { struct a *a; }`, the second
/// CU listing them in the other order.
#[test]
fn mutually_recursive_structs() {
    fn cu(b_first: bool) -> Btf {
        let mut x = B::new();
        let (sa, sb) = if b_first {
            let sb = x.st("b", 8, &[]);
            let sa = x.st("a", 8, &[]);
            (sa, sb)
        } else {
            let sa = x.st("a", 8, &[]);
            let sb = x.st("b", 8, &[]);
            (sa, sb)
        };
        let pa = x.ptr(sa);
        let pb = x.ptr(sb);
        x.set_members(sa, &[("b", pb, 0)]);
        x.set_members(sb, &[("a", pa, 0)]);
        x.0
    }
    let (_, d) = run(vec![cu(false), cu(true)]);
    assert_eq!(count(&d.btf, Kind::Struct), 2);
    assert_eq!(count(&d.btf, Kind::Ptr), 2);

    // A cycle that differs deep inside stays apart: a -> b -> a vs a -> b' -> a.
    let mut y = B::new();
    let int = y.int("int", 4, true);
    let sa = y.st("a", 8, &[]);
    let sb = y.st("b", 8, &[]);
    let pa = y.ptr(sa);
    let pb = y.ptr(sb);
    y.set_members(sa, &[("b", pb, 0)]);
    y.set_members(sb, &[("a", pa, 0), ("n", int, 32)]);
    let (_, d) = run(vec![cu(false), y.0]);
    assert_eq!(count(&d.btf, Kind::Struct), 4);
}

/// `struct outer { union { int i; unsigned int u; }; struct { int p; } s; }`.
#[test]
fn anonymous_structs_and_unions_nested_in_named_ones() {
    fn cu(inner_member_signed: bool) -> Btf {
        let mut x = B::new();
        let int = x.int("int", 4, true);
        let uint = x.int("unsigned int", 4, false);
        let u = x.un("", 4, &[("i", int, 0), ("u", uint, 0)]);
        let t = if inner_member_signed { int } else { uint };
        let s = x.st("", 4, &[("p", t, 0)]);
        x.st("outer", 8, &[("", u, 0), ("s", s, 32)]);
        x.0
    }
    let (_, d) = run(vec![cu(true), cu(true)]);
    assert_eq!(count(&d.btf, Kind::Struct), 2);
    assert_eq!(count(&d.btf, Kind::Union), 1);
    // Same layout and names, different member type: anonymous structs and
    // their owners stay apart; the shared anonymous union merges.
    let (_, d) = run(vec![cu(true), cu(false)]);
    assert_eq!(count(&d.btf, Kind::Struct), 4);
    assert_eq!(count(&d.btf, Kind::Union), 1);
}

/// Names are part of a type's identity: same layout, different names
/// stay two types (struct, typedef and int alike).
#[test]
fn identical_types_with_different_names_stay_apart() {
    let mut x = B::new();
    let int = x.int("int", 4, true);
    let i2 = x.int("int32", 4, true);
    x.st("a", 4, &[("v", int, 0)]);
    x.st("b", 4, &[("v", int, 0)]);
    x.typedef("ta", int);
    x.typedef("tb", int);
    let mut y = B::new();
    let _ = (i2, y.int("int", 4, true));
    let (_, d) = run(vec![x.0, y.0]);
    assert_eq!(count(&d.btf, Kind::Int), 2);
    assert_eq!(count(&d.btf, Kind::Struct), 2);
    assert_eq!(count(&d.btf, Kind::Typedef), 2);
}

#[test]
fn same_name_different_layouts_stay_apart() {
    let mut x = B::new();
    let int = x.int("int", 4, true);
    let foo = x.st("foo", 4, &[("v", int, 0)]);
    let p = x.ptr(foo);
    x.var("use_a", p);
    let mut y = B::new();
    let long = y.int("long", 8, true);
    let foo = y.st("foo", 8, &[("v", long, 0)]);
    let p = y.ptr(foo);
    y.var("use_b", p);
    let (merged, d) = run(vec![x.0, y.0]);
    let foos = named(&d.btf, Kind::Struct, "foo");
    assert_eq!(foos.len(), 2);
    // Each user still points at its own definition.
    for (var, size) in [("use_a", 4), ("use_b", 8)] {
        let old = merged.find_by_name(Kind::Var, var).unwrap();
        let v = d.map[old.0 as usize];
        let TypeData::Var { type_id, .. } = d.btf.ty(v).unwrap().data else {
            panic!()
        };
        let TypeData::Ptr(s) = d.btf.ty(type_id).unwrap().data else {
            panic!()
        };
        assert_eq!(d.btf.size_of(s).unwrap(), size);
    }
}

#[test]
fn bitfields() {
    // kind_flag set: offset = bitfield_size << 24 | bit_offset.
    fn cu(a_bits: u32) -> Btf {
        let mut x = B::new();
        let int = x.int("int", 4, true);
        let id = x.st(
            "f",
            4,
            &[
                ("a", int, a_bits << 24),
                ("b", int, ((8 - a_bits) << 24) | a_bits),
            ],
        );
        x.0.get_mut(id).unwrap().kind_flag = true;
        x.0
    }
    let (_, d) = run(vec![cu(3), cu(3)]);
    assert_eq!(count(&d.btf, Kind::Struct), 1);
    let s = named(&d.btf, Kind::Struct, "f")[0];
    let m = d.btf.members(s).unwrap();
    assert_eq!((m[1].bit_offset, m[1].bitfield_size), (3, 5));
    let (_, d) = run(vec![cu(3), cu(4)]);
    assert_eq!(count(&d.btf, Kind::Struct), 2);
}

#[test]
fn enum_vs_enum64_and_enum_forward_declarations() {
    let mut x = B::new();
    let one = x.s("ONE");
    x.add(
        "e",
        false,
        TypeData::Enum {
            size: 4,
            values: vec![EnumValue {
                name_off: one,
                val: 1,
            }],
        },
    );
    x.add(
        "e",
        false,
        TypeData::Enum64 {
            size: 8,
            values: vec![Enum64Value {
                name_off: one,
                val: 1,
            }],
        },
    );
    let mut y = B::new();
    // `enum e;` as a forward declaration (vlen 0), and the two again.
    y.add(
        "e",
        false,
        TypeData::Enum {
            size: 4,
            values: vec![],
        },
    );
    let one = y.s("ONE");
    y.add(
        "e",
        false,
        TypeData::Enum {
            size: 4,
            values: vec![EnumValue {
                name_off: one,
                val: 1,
            }],
        },
    );
    y.add(
        "e",
        false,
        TypeData::Enum64 {
            size: 8,
            values: vec![Enum64Value {
                name_off: one,
                val: 1,
            }],
        },
    );
    // Same name, different value: a different enum.
    y.add(
        "e",
        false,
        TypeData::Enum {
            size: 4,
            values: vec![EnumValue {
                name_off: one,
                val: 2,
            }],
        },
    );
    let (_, d) = run(vec![x.0, y.0]);
    assert_eq!(count(&d.btf, Kind::Enum64), 1);
    assert_eq!(
        count(&d.btf, Kind::Enum),
        2,
        "the forward declaration resolved"
    );
    assert!(d.btf.iter().all(|(_, t)| t.vlen() > 0));
}

#[test]
fn typedef_chains() {
    fn cu(base: &str, size: u32) -> Btf {
        let mut x = B::new();
        let i = x.int(base, size, true);
        let a = x.typedef("a_t", i);
        let b = x.typedef("b_t", a);
        let c = x.typedef("c_t", b);
        let cc = x.add("", false, TypeData::Const(c));
        x.ptr(cc);
        x.0
    }
    let (_, d) = run(vec![cu("int", 4), cu("int", 4)]);
    assert_eq!(count(&d.btf, Kind::Typedef), 3);
    assert_eq!(d.btf.type_count(), 1 + 6);
    // The same names over another base type: a second chain.
    let (_, d) = run(vec![cu("int", 4), cu("long", 8)]);
    assert_eq!(count(&d.btf, Kind::Typedef), 6);
    assert_eq!(count(&d.btf, Kind::Ptr), 2);
}

/// Beyond libbpf: identical VARs and DATASECs merge; a DATASEC with other
/// offsets stays apart.
#[test]
fn identical_vars_and_datasecs_merge() {
    fn cu(off: u32) -> Btf {
        let mut x = B::new();
        let int = x.int("int", 4, true);
        let v = x.var("counter", int);
        x.add(
            ".data",
            false,
            TypeData::Datasec {
                size: 8,
                vars: vec![VarSecinfo {
                    type_id: v,
                    offset: off,
                    size: 4,
                }],
            },
        );
        x.0
    }
    let (_, d) = run(vec![cu(0), cu(0)]);
    assert_eq!(
        (count(&d.btf, Kind::Var), count(&d.btf, Kind::Datasec)),
        (1, 1)
    );
    let (_, d) = run(vec![cu(0), cu(4)]);
    assert_eq!(
        (count(&d.btf, Kind::Var), count(&d.btf, Kind::Datasec)),
        (1, 2)
    );
}

/// Only referenced strings are kept, each once.
#[test]
fn strings_are_compacted() {
    let mut x = B::new();
    x.s("unused_string");
    let int = x.int("int", 4, true);
    x.st("s", 4, &[("int", int, 0)]); // member named like the type
    let (merged, d) = run(vec![x.0, list_cu()]);
    let strings: Vec<&[u8]> = d.btf.strings.split(|&b| b == 0).collect();
    let mut sorted = strings[..strings.len() - 1].to_vec();
    sorted.sort();
    assert_eq!(sorted, [&b""[..], b"int", b"next", b"node", b"s", b"v"]);
    assert!(d.btf.strings.len() < merged.strings.len());
}

#[test]
fn bad_input_is_an_error() {
    let mut x = B::new();
    x.ptr(TypeId(42));
    let e = dedup(&x.0).unwrap_err();
    assert!(e.to_string().contains("refers to type 42"), "{e}");

    // typedef a -> typedef b -> typedef a: no representative possible.
    let mut x = B::new();
    let a = x.typedef("a", TypeId(2));
    x.typedef("b", a);
    let e = dedup(&x.0).unwrap_err();
    assert!(e.to_string().contains("cycle"), "{e}");

    let mut x = B::new();
    x.add("", false, TypeData::Int { size: 4, data: 32 });
    x.0.types[1].name_off = 9999;
    let e = dedup(&x.0).unwrap_err();
    assert!(e.to_string().contains("string offset 9999"), "{e}");
}

/// BTF.ext records follow their types and strings into the new BTF.
#[test]
fn btf_ext_records_are_remapped() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/calls.o");
    let obj = bpfld::read::elf::read_file(&path).unwrap();
    let old = obj.btf.clone().unwrap();
    // Twice the same object: the second copy's ids all move down.
    let n = old.types.len() as u32 - 1;
    let merged = concat(vec![old.clone(), old.clone()]).unwrap();
    let mut d = dedup(&merged).unwrap();
    let mut sections = obj.sections.clone();
    let mut records = 0;
    for s in &mut sections {
        for f in &mut s.func_info {
            f.type_id += n; // as if from the second copy
        }
        for r in &mut s.core_relos {
            r.type_id += n;
        }
        for l in &mut s.line_info {
            l.file_name_off += old.strings.len() as u32;
            l.line_off += old.strings.len() as u32;
        }
        records += s.func_info.len() + s.line_info.len();
    }
    assert!(records > 0);
    d.remap_sections(&merged, &mut sections).unwrap();
    for (s, orig) in sections.iter().zip(&obj.sections) {
        for (f, o) in s.func_info.iter().zip(&orig.func_info) {
            assert_eq!(
                d.btf.type_name(TypeId(f.type_id)),
                old.type_name(TypeId(o.type_id))
            );
            assert_eq!(d.btf.ty(TypeId(f.type_id)).unwrap().kind(), Kind::Func);
        }
        for (l, o) in s.line_info.iter().zip(&orig.line_info) {
            assert_eq!(
                d.btf.name(l.line_off).unwrap(),
                old.name(o.line_off).unwrap()
            );
            assert_eq!(
                d.btf.name(l.file_name_off).unwrap(),
                old.name(o.file_name_off).unwrap()
            );
        }
    }
    assert!(d.type_id(u32::MAX).is_err());
}

// ---- the same situations as compiled by clang ----

fn clang_available() -> bool {
    Command::new("clang-19")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn compile(name: &str, src: &str) -> PathBuf {
    // Unit tests get no CARGO_TARGET_TMPDIR: a directory per test process.
    let dir = std::env::temp_dir().join(format!("bpfld-dedup-cases-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c = dir.join(format!("{name}.c"));
    let o = dir.join(format!("{name}.o"));
    std::fs::write(&c, src).unwrap();
    let out = Command::new("clang-19")
        .args(["-g", "-O2", "-target", "bpf", "-c", "-o"])
        .arg(&o)
        .arg(&c)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "clang: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    o
}

#[test]
fn clang_compiled_units_merge() {
    if !clang_available() {
        eprintln!("SKIP clang_compiled_units_merge: clang-19 is not installed (scripts/test.sh installs it)");
        return;
    }
    let a = compile(
        "cu_a",
        r#"
        struct foo;
        struct list { struct list *next; struct foo *owner; };
        struct ping; struct pong { struct ping *p; int n; };
        struct ping { struct pong *q; };
        typedef unsigned int u32; typedef u32 id_t;
        struct bits { unsigned a:3, b:5; id_t id; union { int i; float f; }; struct { char c; } inner; };
        enum color { RED, GREEN };
        struct list la; struct ping pa; struct pong poa; struct bits ba; enum color ca;
        "#,
    );
    let b = compile(
        "cu_b",
        r#"
        struct foo { int x; struct list *items; };
        struct list { struct list *next; struct foo *owner; };
        struct ping; struct pong { struct ping *p; int n; };
        struct ping { struct pong *q; };
        typedef unsigned int u32; typedef u32 id_t;
        struct bits { unsigned a:3, b:5; id_t id; union { int i; float f; }; struct { char c; } inner; };
        struct bits2 { unsigned a:4, b:4; id_t id; };
        enum color { RED, GREEN };
        struct foo fb; struct ping pb; struct bits bb; struct bits2 b2; enum color cb;
        "#,
    );
    let read = |p: &Path| bpfld::read::elf::read_file(p).unwrap().btf.unwrap();
    let (_, d) = run(vec![read(&a), read(&b)]);
    let out = &d.btf;
    for name in ["foo", "list", "ping", "pong", "bits", "bits2"] {
        assert_eq!(named(out, Kind::Struct, name).len(), 1, "struct {name}");
    }
    assert_eq!(count(out, Kind::Fwd), 0);
    assert_eq!(named(out, Kind::Typedef, "id_t").len(), 1);
    assert_eq!(named(out, Kind::Enum, "color").len(), 1);
    assert_eq!(count(out, Kind::Union), 1);
    // The anonymous `struct { char c; }` once, beside the named ones.
    assert_eq!(count(out, Kind::Struct), 7);
}

#[test]
fn concat_names_the_bad_input() {
    for bad_at in 0..2 {
        let mut cus = vec![list_cu(), list_cu()];
        cus[bad_at].add_type(BtfType::new(0, false, TypeData::Ptr(TypeId(99))));
        let e = concat(cus).unwrap_err().to_string();
        assert!(e.contains(&format!("input {}", bad_at + 1)), "{e}");
        assert!(e.contains("refers to type 99"), "{e}");
    }
    let mut cus = vec![list_cu(), list_cu()];
    cus[1].types[1].name_off = 5000;
    let e = concat(cus).unwrap_err().to_string();
    assert!(
        e.contains("input 2") && e.contains("string offset 5000"),
        "{e}"
    );
}

/// A name may point inside another string (a suffix): it is the same
/// name as the string it spells.
#[test]
fn names_pointing_inside_strings() {
    let mut x = B::new();
    let whole = x.s("my_int");
    x.0.add_type(BtfType::new(
        whole + 3,
        false,
        TypeData::Int { size: 4, data: 32 },
    ));
    let mut y = B::new();
    y.int("int", 4, false);
    let (_, d) = run(vec![x.0, y.0]);
    assert_eq!(d.btf.type_count(), 2);
    assert_eq!(d.btf.type_name(TypeId(1)), "int");
}

/// Random type graphs (dangling ids, cycles through any kind, odd names):
/// dedup returns a result or an error, never panics, and every result is
/// equivalent to its input; merged with itself, or with a copy numbered
/// backwards, a graph dedups to the same size as alone.
#[test]
fn random_graphs_never_panic() {
    let seed = std::cell::Cell::new(0x9e37_79b9_7f4a_7c15u64);
    let rnd = |m: u32| {
        let mut x = seed.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        seed.set(x);
        (x % m as u64) as u32
    };
    let (mut ok, mut err) = (0, 0);
    for _ in 0..5000 {
        let mut x = B::new();
        let names = [x.s("a"), x.s("b"), 0];
        let n = 2 + rnd(20);
        for _ in 0..n {
            let name = names[rnd(3) as usize];
            // Mostly valid ids, sometimes one past the end.
            let id = || {
                if rnd(60) == 0 {
                    TypeId(n + 1)
                } else {
                    TypeId(rnd(n + 1))
                }
            };
            let data = match rnd(14) {
                0 => TypeData::Int { size: 4, data: 32 },
                1 => TypeData::Ptr(id()),
                2 => TypeData::Array {
                    elem: id(),
                    index: id(),
                    nelems: rnd(3),
                },
                3 => TypeData::Struct {
                    size: 8,
                    members: (0..rnd(3))
                        .map(|k| Member {
                            name_off: names[k as usize % 3],
                            type_id: id(),
                            offset: 0,
                        })
                        .collect(),
                },
                4 => TypeData::Union {
                    size: 8,
                    members: vec![Member {
                        name_off: 0,
                        type_id: id(),
                        offset: 0,
                    }],
                },
                5 => TypeData::Fwd,
                6 => TypeData::Typedef(id()),
                7 => TypeData::Const(id()),
                8 => TypeData::Func {
                    proto: id(),
                    linkage: 1,
                },
                9 => TypeData::FuncProto {
                    ret: id(),
                    params: vec![Param {
                        name_off: names[0],
                        type_id: id(),
                    }],
                },
                10 => TypeData::Var {
                    type_id: id(),
                    linkage: 1,
                },
                11 => TypeData::Datasec {
                    size: 4,
                    vars: vec![VarSecinfo {
                        type_id: id(),
                        offset: 0,
                        size: 4,
                    }],
                },
                12 => TypeData::Enum {
                    size: 4,
                    values: vec![],
                },
                _ => TypeData::DeclTag {
                    target: id(),
                    component_idx: -1,
                },
            };
            let kflag = rnd(2) == 1;
            x.0.add_type(BtfType::new(name, kflag, data));
        }
        match dedup(&x.0) {
            Ok(d) => {
                verify(&x.0, &d).unwrap();
                // Merged with itself, the graph dedups to the same size.
                let twice = concat(vec![x.0.clone(), x.0.clone()]).unwrap();
                let d2 = dedup(&twice).unwrap();
                verify(&twice, &d2).unwrap();
                assert_eq!(
                    d2.btf.type_count(),
                    d.btf.type_count(),
                    "input:\n{}\nalone:\n{}\ntwice:\n{}",
                    bpfld::show::btf_dump::dump_raw(&x.0),
                    bpfld::show::btf_dump::dump_raw(&d.btf),
                    bpfld::show::btf_dump::dump_raw(&d2.btf)
                );
                // A renumbered copy (reversed ids) merges too.
                let n1 = x.0.types.len() as u32;
                let mut rev = x.0.clone();
                let body: Vec<BtfType> = rev.types.drain(1..).rev().collect();
                rev.types.extend(body);
                for t in rev.types.iter_mut().skip(1) {
                    t.map_ids(|id| {
                        if id.0 == 0 || id.0 >= n1 {
                            id
                        } else {
                            TypeId(n1 - id.0)
                        }
                    });
                }
                let both = concat(vec![x.0.clone(), rev]).unwrap();
                let d3 = dedup(&both).unwrap();
                verify(&both, &d3).unwrap();
                assert_eq!(
                    d3.btf.type_count(),
                    d.btf.type_count(),
                    "input:\n{}\nalone:\n{}\nwith reversed:\n{}",
                    bpfld::show::btf_dump::dump_raw(&x.0),
                    bpfld::show::btf_dump::dump_raw(&d.btf),
                    bpfld::show::btf_dump::dump_raw(&d3.btf)
                );
                ok += 1;
            }
            Err(_) => err += 1,
        }
    }
    // Both outcomes were exercised.
    eprintln!("ok {ok}, err {err}");
    assert!(ok > 500 && err > 500, "ok {ok}, err {err}");
}

/// `dedup_object`: an object whose BTF holds every type twice (as a
/// linker's plain concatenation would) comes back with one copy, its
/// BTF.ext records naming the same functions and source lines, and
/// survives an ELF write and re-read.
#[test]
fn object_dedup_remaps_its_records() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    for name in ["calls.o", "core.o", "maps.o", "globals.o"] {
        let orig = bpfld::read::elf::read_file(&dir.join(name)).unwrap();
        let old = orig.btf.clone().unwrap();
        let n = old.types.len() as u32 - 1;
        let slen = old.strings.len() as u32;
        let mut obj = orig.clone();
        // Make the records refer to the second copy.
        obj.btf = Some(concat(vec![old.clone(), old.clone()]).unwrap());
        for s in &mut obj.sections {
            s.func_info.iter_mut().for_each(|f| f.type_id += n);
            s.core_relos.iter_mut().for_each(|r| {
                r.type_id += n;
                r.access_str_off += slen;
            });
            s.line_info.iter_mut().for_each(|l| {
                l.file_name_off += slen;
                l.line_off += slen;
            });
        }
        let map = bpfld::dedup::dedup_object(&mut obj).unwrap();
        assert_eq!(map.len() as u32, 2 * n + 1);
        let btf = obj.btf.as_ref().unwrap();
        assert!(btf.type_count() as u32 <= n + 1, "{name}");
        let bytes = bpfld::write::elf::to_bytes(&obj).unwrap();
        let back = bpfld::read::elf::parse(&bytes).unwrap();
        let bbtf = back.btf.as_ref().unwrap();
        let mut checked = 0;
        for o in &orig.sections {
            let s = back.sections.iter().find(|s| s.name == o.name).unwrap();
            assert_eq!(s.func_info.len(), o.func_info.len(), "{name} {}", s.name);
            for (f, of) in s.func_info.iter().zip(&o.func_info) {
                assert_eq!(
                    bbtf.type_name(TypeId(f.type_id)),
                    old.type_name(TypeId(of.type_id))
                );
                checked += 1;
            }
            for (l, ol) in s.line_info.iter().zip(&o.line_info) {
                assert_eq!(
                    bbtf.name(l.line_off).unwrap(),
                    old.name(ol.line_off).unwrap()
                );
            }
            for (r, or) in s.core_relos.iter().zip(&o.core_relos) {
                assert_eq!(
                    bbtf.type_name(TypeId(r.type_id)),
                    old.type_name(TypeId(or.type_id))
                );
                assert_eq!(
                    bbtf.name(r.access_str_off).unwrap(),
                    old.name(or.access_str_off).unwrap()
                );
            }
        }
        assert!(checked > 0, "{name}: no func_info");
    }
}

/// `Dedup::remap_btf_ext` on a parsed `.BTF.ext`: records and section
/// names follow, and the result parses against the new BTF.
#[test]
fn btf_ext_model_is_remapped() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/core.o");
    let obj = bpfld::read::elf::read_file(&path).unwrap();
    let old = obj.btf.clone().unwrap();
    let raw = obj.btf_ext_raw.clone().unwrap();
    let ext = bpfld::read::btf_ext::parse(&raw, &old).unwrap();
    let mut d = dedup(&concat(vec![old.clone()]).unwrap()).unwrap();
    let mut new_ext = ext.clone();
    d.remap_btf_ext(&old, &mut new_ext).unwrap();
    let bytes = bpfld::write::btf_ext::to_bytes(&new_ext);
    let back = bpfld::read::btf_ext::parse(&bytes, &d.btf).unwrap();
    assert!(!back.core_relos.is_empty());
    for (s, o) in back.core_relos.iter().zip(&ext.core_relos) {
        assert_eq!(s.sec_name, o.sec_name);
        for (r, or) in s.records.iter().zip(&o.records) {
            assert_eq!(
                d.btf.type_name(TypeId(r.type_id)),
                old.type_name(TypeId(or.type_id))
            );
            assert_eq!(
                d.btf.name(r.access_str_off).unwrap(),
                old.name(or.access_str_off).unwrap()
            );
        }
    }
    assert_eq!(back.func_info.len(), ext.func_info.len());
}

/// `dedup_many` is `dedup` of the concatenation, without building it.
#[test]
fn dedup_many_equals_dedup_of_concat() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    let btfs: Vec<Btf> = [
        "calls.o",
        "maps.o",
        "link_a.o",
        "link_b.o",
        "btf_kinds.bpfeb.o",
    ]
    .iter()
    .map(|n| {
        bpfld::read::elf::read_file(&dir.join(n))
            .unwrap()
            .btf
            .unwrap()
    })
    .collect();
    let one = dedup(&concat(btfs.clone()).unwrap()).unwrap();
    let many = bpfld::dedup::dedup_many(btfs.clone()).unwrap();
    assert_eq!(many.btf, one.btf);
    assert_eq!(many.map, one.map);
    assert_eq!(many.btf.endian, btfs[0].endian);
    // Errors name the input.
    let mut bad = btfs;
    bad[2].types[1].name_off = 1 << 30;
    let e = bpfld::dedup::dedup_many(bad).unwrap_err().to_string();
    assert!(e.contains("input 3") && e.contains("string offset"), "{e}");
}

/// Byte-mutated fixture BTF that the reader still accepts: dedup succeeds
/// (or names a reference cycle), every result is equivalent to its input
/// and valid, and a mutant merged with itself dedups to the same size as
/// alone.
#[test]
fn mutated_fixture_btf() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    let seed = std::cell::Cell::new(0x2545_f491_4f6c_dd1du64);
    let rnd = |m: usize| {
        let mut x = seed.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        seed.set(x);
        (x % m as u64) as usize
    };
    let (mut accepted, mut cycles) = (0, 0);
    for name in ["btf_kinds.o", "maps.o", "core.o", "calls.o", "link_a.o"] {
        let obj = bpfld::read::elf::read_file(&dir.join(name)).unwrap();
        let bytes = bpfld::write::btf::to_bytes(obj.btf.as_ref().unwrap());
        for _ in 0..400 {
            let mut m = bytes.clone();
            // A few bytes of the type section (after the 24-byte header).
            for _ in 0..1 + rnd(3) {
                let at = 24 + rnd(m.len() - 24);
                m[at] = match rnd(3) {
                    0 => m[at] ^ (1 << rnd(8)),
                    1 => rnd(256) as u8,
                    _ => m[at].wrapping_add(1),
                };
            }
            let Ok(btf) = bpfld::read::btf::parse(&m) else {
                continue;
            };
            accepted += 1;
            let twice = concat(vec![btf.clone(), btf.clone()]).unwrap();
            // What the reader accepts deduplicates, except a cycle through
            // pointers and prototypes alone (no struct on the way), which
            // the reader lets through and libbpf's dedup also refuses.
            let (alone, both) = match (dedup(&btf), dedup(&twice)) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(e), _) | (_, Err(e)) => {
                    assert!(e.to_string().contains("reference cycle"), "{e}");
                    cycles += 1;
                    continue;
                }
            };
            for (input, d) in [(&btf, &alone), (&twice, &both)] {
                verify(input, d).unwrap();
                bpfld::write::btf::try_to_bytes(&d.btf).unwrap();
            }
            // Merged with itself, it dedups to the same size as alone.
            assert_eq!(both.btf.type_count(), alone.btf.type_count());
        }
    }
    assert!(accepted > 200, "only {accepted} mutants parsed");
    assert!(cycles < accepted / 10, "{cycles} of {accepted} refused");
}

/// A record naming a type the BTF does not have is an error naming the
/// section, and leaves the object as it was.
#[test]
fn bad_record_leaves_object_unchanged() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/calls.o");
    let mut obj = bpfld::read::elf::read_file(&path).unwrap();
    let sec = obj
        .sections
        .iter()
        .position(|s| !s.func_info.is_empty())
        .unwrap();
    obj.sections[sec].func_info.last_mut().unwrap().type_id = 1 << 20;
    let before_btf = obj.btf.clone();
    let before: Vec<_> = obj.sections.iter().map(|s| s.func_info.clone()).collect();
    let e = bpfld::dedup::dedup_object(&mut obj)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&obj.sections[sec].name) && e.contains("1048576"),
        "{e}"
    );
    assert_eq!(obj.btf, before_btf);
    let after: Vec<_> = obj.sections.iter().map(|s| s.func_info.clone()).collect();
    assert_eq!(after, before);
}
