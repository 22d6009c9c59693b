//! The engine against small hand-made BTFs: the value each kind puts in
//! its instruction, and the failures (ambiguous candidates, an
//! instruction that does not hold the local value).

use std::collections::HashMap;

use bpfld::model::btf::{Btf, BtfType, Enum64Value, EnumValue, Member, TypeData, TypeId};
use bpfld::model::btf_ext::CoreRelo;
use bpfld::model::insn::{Insn, InsnIndex};

use super::calc::{self, POISON_HELPER};
use super::{resolve, Targets};

/// A BTF under construction.
struct B(Btf);

impl B {
    fn new() -> B {
        B(Btf::default())
    }
    fn s(&mut self, s: &str) -> u32 {
        match self.0.find_string(s) {
            Some(o) => o,
            None => self.0.add_string(s),
        }
    }
    fn int(&mut self, name: &str, size: u32, signed: bool) -> TypeId {
        let n = self.s(name);
        let data = (u32::from(signed) << 24) | (size * 8);
        self.0
            .add_type(BtfType::new(n, false, TypeData::Int { size, data }))
    }
    /// Members `(name, type, bit offset, bitfield size)`.
    fn composite(
        &mut self,
        union: bool,
        name: &str,
        size: u32,
        ms: &[(&str, TypeId, u32, u32)],
    ) -> TypeId {
        let n = self.s(name);
        let kflag = ms.iter().any(|m| m.3 > 0);
        let members = ms
            .iter()
            .map(|&(mn, t, off, bits)| Member {
                name_off: self.s(mn),
                type_id: t,
                offset: if kflag { bits << 24 | off } else { off },
            })
            .collect();
        let data = if union {
            TypeData::Union { size, members }
        } else {
            TypeData::Struct { size, members }
        };
        self.0.add_type(BtfType::new(n, kflag, data))
    }
    fn st(&mut self, name: &str, size: u32, ms: &[(&str, TypeId, u32, u32)]) -> TypeId {
        self.composite(false, name, size, ms)
    }
    fn array(&mut self, elem: TypeId, nelems: u32) -> TypeId {
        let index = TypeId(1);
        self.0.add_type(BtfType::new(
            0,
            false,
            TypeData::Array {
                elem,
                index,
                nelems,
            },
        ))
    }
    fn ptr(&mut self, to: TypeId) -> TypeId {
        self.0.add_type(BtfType::new(0, false, TypeData::Ptr(to)))
    }
    fn typedef(&mut self, name: &str, to: TypeId) -> TypeId {
        let n = self.s(name);
        self.0
            .add_type(BtfType::new(n, false, TypeData::Typedef(to)))
    }
    fn enum32(&mut self, name: &str, vals: &[(&str, u32)]) -> TypeId {
        let n = self.s(name);
        let values = vals
            .iter()
            .map(|&(vn, val)| EnumValue {
                name_off: self.s(vn),
                val,
            })
            .collect();
        self.0
            .add_type(BtfType::new(n, false, TypeData::Enum { size: 4, values }))
    }
    fn enum64(&mut self, name: &str, vals: &[(&str, u64)]) -> TypeId {
        let n = self.s(name);
        let values = vals
            .iter()
            .map(|&(vn, val)| Enum64Value {
                name_off: self.s(vn),
                val,
            })
            .collect();
        self.0
            .add_type(BtfType::new(n, false, TypeData::Enum64 { size: 8, values }))
    }
}

fn mov(imm: i32) -> Insn {
    Insn {
        code: 0xb7,
        dst: 1,
        src: 0,
        off: 0,
        imm,
    }
}

fn ldx_w(off: i16) -> Insn {
    Insn {
        code: 0x61,
        dst: 0,
        src: 1,
        off,
        imm: 0,
    }
}

fn ldimm64(v: u64) -> [Insn; 2] {
    [
        Insn {
            code: 0x18,
            dst: 1,
            src: 0,
            off: 0,
            imm: v as u32 as i32,
        },
        Insn {
            imm: (v >> 32) as u32 as i32,
            ..Insn::default()
        },
    ]
}

/// Relocates `insns[0]` (kind, root, access) of `local` against `targets`.
fn relocate(
    local: &mut B,
    targets: &mut Targets,
    kind: u32,
    root: TypeId,
    access: &str,
    mut insns: Vec<Insn>,
) -> Result<Vec<Insn>, String> {
    let access_str_off = local.s(access);
    let r = CoreRelo {
        insn: InsnIndex(0),
        type_id: root.0,
        access_str_off,
        kind,
    };
    let o = resolve(&local.0, &r, targets, &mut HashMap::new(), false)?;
    calc::patch(&mut insns, 0, &o)?;
    Ok(insns)
}

/// The kernel: `struct task { int pid; union { struct { int a; int b; }; long c; }; char comm[16];
/// unsigned flag:1; unsigned class:4; }` (size 48), `struct cg { int level; struct cg *anc[]; }`,
/// `enum pid_type { PIDTYPE_TGID = 1, PIDTYPE_SID = 3 }`, `enum big { BIG_USER = 2^63 }`,
/// `typedef int pid_t`.
fn kernel() -> (B, TypeId) {
    let mut k = B::new();
    let int = k.int("int", 4, true);
    let uint = k.int("unsigned int", 4, false);
    let long = k.int("long", 8, true);
    let ch = k.int("char", 1, true);
    let inner = k.st("", 8, &[("a", int, 0, 0), ("b", int, 32, 0)]);
    let un = k.composite(true, "", 8, &[("", inner, 0, 0), ("c", long, 0, 0)]);
    let comm = k.array(ch, 16);
    let task = k.st(
        "task",
        48,
        &[
            ("pid", int, 0, 0),
            ("", un, 64, 0),
            ("comm", comm, 128, 0),
            ("flag", uint, 256, 1),
            ("class", uint, 257, 4),
        ],
    );
    // The pointer refers to cg, two types ahead.
    let cg = TypeId(k.0.type_count() as u32 + 2);
    let p = k.ptr(cg);
    let anc = k.array(p, 0);
    assert_eq!(
        k.st("cg", 8, &[("level", int, 0, 0), ("anc", anc, 64, 0)]),
        cg
    );
    k.enum32("pid_type", &[("PIDTYPE_TGID", 1), ("PIDTYPE_SID", 3)]);
    k.enum64("big", &[("BIG_USER", 1 << 63)]);
    k.typedef("pid_t", int);
    (k, task)
}

fn targets() -> (Targets, TypeId) {
    let (k, task) = kernel();
    (Targets::fixed(k.0, Vec::new()), task)
}

/// The program's view: `struct task___mine { int pid; int b; char comm[16];
/// unsigned flag:1; unsigned class:4; long missing; }`.
fn local() -> (B, TypeId) {
    let mut l = B::new();
    let int = l.int("int", 4, true);
    let uint = l.int("unsigned int", 4, false);
    let long = l.int("long", 8, true);
    let ch = l.int("char", 1, true);
    let comm = l.array(ch, 16);
    let task = l.st(
        "task___mine",
        40,
        &[
            ("pid", int, 0, 0),
            ("b", int, 32, 0),
            ("comm", comm, 64, 0),
            ("flag", uint, 192, 1),
            ("class", uint, 193, 4),
            ("missing", long, 256, 0),
        ],
    );
    (l, task)
}

#[test]
fn field_kinds_follow_the_kernel_layout() {
    let (mut l, task) = local();
    let (mut t, _) = targets();
    // b is inside the kernel's anonymous union and struct: offset 12.
    let got = relocate(&mut l, &mut t, 0, task, "0:1", vec![mov(4)]).unwrap();
    assert_eq!(got[0].imm, 12);
    // comm[2]: 16 + 2.
    let got = relocate(&mut l, &mut t, 0, task, "0:2:2", vec![mov(10)]).unwrap();
    assert_eq!(got[0].imm, 18);
    let got = relocate(&mut l, &mut t, 1, task, "0:2", vec![mov(16)]).unwrap();
    assert_eq!(got[0].imm, 16);
    let got = relocate(&mut l, &mut t, 2, task, "0:0", vec![mov(1)]).unwrap();
    assert_eq!(got[0].imm, 1);
    let got = relocate(&mut l, &mut t, 3, task, "0:0", vec![mov(1)]).unwrap();
    assert_eq!(got[0].imm, 1);
    // A load of b: its offset is patched.
    let got = relocate(&mut l, &mut t, 0, task, "0:1", vec![ldx_w(4)]).unwrap();
    assert_eq!(got[0].off, 12);
    // Bitfield class: bits 257..261 of the kernel's struct, read with a
    // 4-byte load at byte 32: lshift 64 - (1 + 4) = 59... of the word's
    // 64-bit view, rshift 64 - 4. Validation is off for bitfields.
    let got = relocate(&mut l, &mut t, 4, task, "0:4", vec![mov(0)]).unwrap();
    assert_eq!(got[0].imm, 64 - (257 + 4 - 256));
    let got = relocate(&mut l, &mut t, 5, task, "0:4", vec![mov(60)]).unwrap();
    assert_eq!(got[0].imm, 60);
    let got = relocate(&mut l, &mut t, 0, task, "0:4", vec![mov(0)]).unwrap();
    assert_eq!(got[0].imm, 32);
    let got = relocate(&mut l, &mut t, 3, task, "0:4", vec![mov(0)]).unwrap();
    assert_eq!(got[0].imm, 0, "unsigned bitfield");
}

#[test]
fn a_missing_field_poisons_or_gives_zero() {
    let (mut l, task) = local();
    let (mut t, _) = targets();
    let got = relocate(&mut l, &mut t, 2, task, "0:5", vec![mov(1)]).unwrap();
    assert_eq!(got[0], mov(0));
    let got = relocate(&mut l, &mut t, 0, task, "0:5", vec![ldx_w(32)]).unwrap();
    assert_eq!((got[0].code, got[0].imm), (0x85, POISON_HELPER));
    // Both halves of an ld_imm64.
    let got = relocate(&mut l, &mut t, 1, task, "0:5", ldimm64(8).to_vec()).unwrap();
    assert!(got.iter().all(|i| i.code == 0x85 && i.imm == POISON_HELPER));
}

#[test]
fn type_kinds() {
    let (mut l, task) = local();
    let int = TypeId(1);
    let pid_t = l.typedef("pid_t", int);
    let none = l.st("no_such", 4, &[("x", int, 0, 0)]);
    let (mut t, ktask) = targets();
    let rel = |l: &mut B, t: &mut Targets, kind, root, before: i32| {
        relocate(l, t, kind, root, "0", vec![mov(before)]).unwrap()[0].imm
    };
    assert_eq!(rel(&mut l, &mut t, 6, task, 77), task.0 as i32, "local id");
    assert_eq!(
        rel(&mut l, &mut t, 7, task, 99),
        ktask.0 as i32,
        "kernel id"
    );
    assert_eq!(rel(&mut l, &mut t, 8, task, 1), 1);
    assert_eq!(rel(&mut l, &mut t, 9, task, 40), 48);
    assert_eq!(rel(&mut l, &mut t, 9, pid_t, 4), 4);
    assert_eq!(rel(&mut l, &mut t, 8, none, 1), 0);
    assert_eq!(rel(&mut l, &mut t, 9, none, 4), 0);
    assert_eq!(rel(&mut l, &mut t, 7, none, 5), 0);
    // `missing` is not in the kernel's task: no match.
    assert_eq!(rel(&mut l, &mut t, 12, task, 1), 0);
    // A local task with only members the kernel has, of the same types.
    let mut l2 = B::new();
    let int = l2.int("int", 4, true);
    let small = l2.st("task", 4, &[("pid", int, 0, 0)]);
    assert_eq!(rel(&mut l2, &mut t, 12, small, 1), 1);
    let mut l3 = B::new();
    let uint = l3.int("unsigned int", 4, false);
    let signedness = l3.st("task", 4, &[("pid", uint, 0, 0)]);
    assert_eq!(rel(&mut l3, &mut t, 12, signedness, 1), 0, "pid is signed");
}

#[test]
fn enumerators_and_enum64_in_ld_imm64() {
    let mut l = B::new();
    l.int("int", 4, true);
    let e = l.enum32(
        "pid_type___mine",
        &[("PIDTYPE_SID", 100), ("PIDTYPE_BPFLD", 7)],
    );
    let big = l.enum64("big", &[("BIG_USER", 1 << 32)]);
    let (mut t, _) = targets();
    let got = relocate(&mut l, &mut t, 11, e, "0", vec![mov(100)]).unwrap();
    assert_eq!(got[0].imm, 3);
    let got = relocate(&mut l, &mut t, 10, e, "0", vec![mov(1)]).unwrap();
    assert_eq!(got[0].imm, 1);
    let got = relocate(&mut l, &mut t, 10, e, "1", vec![mov(1)]).unwrap();
    assert_eq!(got[0].imm, 0);
    let got = relocate(&mut l, &mut t, 11, e, "1", vec![mov(7)]).unwrap();
    assert_eq!(got[0].imm, POISON_HELPER);
    let got = relocate(&mut l, &mut t, 11, big, "0", ldimm64(1 << 32).to_vec()).unwrap();
    assert_eq!(
        (got[0].imm as u32, got[1].imm as u32),
        (0, 0x8000_0000),
        "{got:?}"
    );
}

#[test]
fn flexible_array_elements() {
    let mut l = B::new();
    let int = l.int("int", 4, true);
    let cg = TypeId(l.0.type_count() as u32 + 2);
    let p = l.ptr(cg);
    let anc = l.array(p, 0);
    assert_eq!(
        l.st("cg", 8, &[("level", int, 0, 0), ("anc", anc, 64, 0)]),
        cg
    );
    let (mut t, _) = targets();
    // Index 2 of a flexible array is beyond its 0 elements, and allowed.
    let got = relocate(&mut l, &mut t, 0, cg, "0:1:2", vec![mov(24)]).unwrap();
    assert_eq!(got[0].imm, 8 + 16);
}

#[test]
fn candidates_that_disagree_are_an_error() {
    // Two kernel flavours of `pair` with `x` at different offsets.
    let mut k = B::new();
    let int = k.int("int", 4, true);
    k.st("pair", 8, &[("x", int, 0, 0)]);
    k.st("pair___2", 8, &[("y", int, 0, 0), ("x", int, 32, 0)]);
    let long = k.int("long", 8, true);
    k.st("wide", 8, &[("v", int, 0, 0)]);
    k.st("wide___2", 8, &[("v", long, 0, 0)]);
    let mut t = Targets::fixed(k.0, Vec::new());
    let mut l = B::new();
    let int = l.int("int", 4, true);
    let pair = l.st("pair", 4, &[("x", int, 0, 0)]);
    let wide = l.st("wide", 4, &[("v", int, 0, 0)]);
    let e = relocate(&mut l, &mut t, 0, pair, "0:0", vec![mov(0)]).unwrap_err();
    assert!(
        e.contains("candidates disagree on the field's bit offset")
            && e.contains("'pair'")
            && e.contains("'pair___2'"),
        "{e}"
    );
    let e = relocate(&mut l, &mut t, 1, wide, "0:0", vec![mov(4)]).unwrap_err();
    assert!(
        e.contains("candidates disagree") && e.contains("gives 4") && e.contains("gives 8"),
        "{e}"
    );
}

#[test]
fn an_instruction_without_the_local_value_is_an_error() {
    let (mut l, task) = local();
    let (mut t, _) = targets();
    let e = relocate(&mut l, &mut t, 0, task, "0:1", vec![mov(5)]).unwrap_err();
    assert!(e.contains("holds immediate 5, not 4"), "{e}");
    let e = relocate(&mut l, &mut t, 0, task, "0:1", vec![ldx_w(8)]).unwrap_err();
    assert!(e.contains("holds offset 8, not 4"), "{e}");
    let jump = Insn {
        code: 0x05,
        ..Insn::default()
    };
    let e = relocate(&mut l, &mut t, 0, task, "0:1", vec![jump]).unwrap_err();
    assert!(e.contains("cannot be relocated"), "{e}");
    let e = relocate(&mut l, &mut t, 0, task, "0:9", vec![mov(4)]).unwrap_err();
    assert!(e.contains("invalid access string"), "{e}");
    let e = relocate(&mut l, &mut t, 13, task, "0:1", vec![mov(4)]).unwrap_err();
    assert!(e.contains("unknown relocation kind 13"), "{e}");
}

#[test]
fn modules_are_searched_when_vmlinux_has_no_candidate() {
    let (k, _) = kernel();
    let mut m = B(k.0.clone());
    let int = TypeId(1);
    let only = m.st("mod_only", 8, &[("pad", int, 0, 0), ("v", int, 32, 0)]);
    let mut t = Targets::fixed(k.0, vec![("bpf_testmod".into(), m.0)]);
    let mut l = B::new();
    let int = l.int("int", 4, true);
    let s = l.st("mod_only", 4, &[("v", int, 0, 0)]);
    let got = relocate(&mut l, &mut t, 0, s, "0:0", vec![mov(0)]).unwrap();
    assert_eq!(got[0].imm, 4);
    let got = relocate(&mut l, &mut t, 7, s, "0", vec![mov(0)]).unwrap();
    assert_eq!(got[0].imm, only.0 as i32);
}
