//! One test per rewrite, on hand-written XDP code: what the pass leaves,
//! as disassembly.

use super::*;
use crate::model::btf_ext::{FuncInfo, LineInfo};
use crate::model::insn::{InsnIndex, R10};
use crate::model::insn::{BPF_ADD, BPF_B, BPF_JEQ, BPF_JGT, BPF_W, R0, R1, R2, R3, R6, R7, R8, R9};
use crate::model::object::{
    Binding, Section, SectionId, SectionKind, Symbol, SymbolKind, SymbolPlace, Visibility,
};

/// An object with one XDP program `prog` made of `code`.
fn object(code: &[Insn]) -> Object {
    let mut sec = Section::empty(SectionId(1), "xdp", SectionKind::Program, 1);
    sec.insns = code.to_vec();
    sec.sh_size = code.len() as u64 * 8;
    Object {
        endian: crate::model::Endian::Little,
        sections: vec![Section::empty(SectionId(0), "", SectionKind::Null, 0), sec],
        symbols: vec![Symbol {
            id: SymbolId(0),
            name: "prog".into(),
            binding: Binding::Global,
            visibility: Visibility::Default,
            kind: SymbolKind::Func,
            place: SymbolPlace::Section(SectionId(1)),
            value: 0,
            size: code.len() as u64 * 8,
            st_other: 0,
        }],
        btf: None,
        btf_ext_raw: None,
    }
}

fn run(obj: &mut Object) -> Counts {
    let mut code = Code::decode(obj).unwrap();
    let counts = optimize(&mut code, obj).unwrap();
    code.encode(obj).unwrap();
    counts
}

/// The program's code after the pass, one instruction a line.
fn optimized(code: &[Insn]) -> Vec<String> {
    let mut obj = object(code);
    run(&mut obj);
    let insns = &obj.sections[1].insns;
    assert_eq!(obj.symbols[0].size, insns.len() as u64 * 8, "symbol size");
    let mut out = Vec::new();
    let mut k = 0;
    while k < insns.len() {
        out.push(crate::show::disasm::insn_text(&insns[k], insns.get(k + 1)).unwrap());
        k += if insns[k].is_ld_imm64() { 2 } else { 1 };
    }
    out
}

const XDP_DROP: i32 = 1;
const XDP_PASS: i32 = 2;

/// `r0 = XDP_PASS; exit; r0 = XDP_DROP; exit`: the ends the checks of
/// [`bounds`] jump between.
const VERDICTS: [Insn; 4] = [
    Insn::mov64_imm(R0, XDP_PASS),
    Insn::exit(),
    Insn::mov64_imm(R0, XDP_DROP),
    Insn::exit(),
];

/// How many bounds checks (as [`bounds`] writes them) a listing holds.
fn checks(out: &[String]) -> usize {
    out.iter().filter(|l| l.starts_with("if r3 > r2")).count()
}

/// `r2 = data_end; r3 = data; r3 += len; if r3 > r2 goto +drop`, the
/// context in `ctx`.
fn bounds(ctx: u8, len: i32, drop: i16) -> [Insn; 4] {
    [
        Insn::load(BPF_W, R2, ctx, 4),
        Insn::load(BPF_W, R3, ctx, 0),
        Insn::alu64_imm(BPF_ADD, R3, len),
        Insn::jmp_reg(BPF_JGT, R3, R2, drop),
    ]
}

#[test]
fn a_chain_call_check_known_on_every_path_goes() {
    // w0 = 2; if w0 == 2 goto +1; exit; r0 = 3; exit
    let out = optimized(&[
        Insn::mov32_imm(R0, XDP_PASS),
        Insn::jmp_imm(BPF_JEQ, R0, XDP_PASS, 1),
        Insn::exit(),
        Insn::mov64_imm(R0, 3),
        Insn::exit(),
    ]);
    assert_eq!(out, ["r0 = 0x3", "exit"]);
}

#[test]
fn a_check_known_on_some_paths_is_threaded_on_those() {
    // The jump at 1 arrives with r0 = 1 (the check fails: exit), the
    // fall-through with r0 = 2 (it passes): neither runs the check.
    let out = optimized(&[
        Insn::mov64_imm(R0, XDP_DROP),
        Insn::jmp_imm(BPF_JEQ, R1, 0, 1),
        Insn::mov64_imm(R0, XDP_PASS),
        Insn::jmp_imm(BPF_JEQ, R0, XDP_PASS, 1),
        Insn::exit(),
        Insn::mov64_imm(R0, 7),
        Insn::exit(),
    ]);
    assert_eq!(
        out,
        [
            "r0 = 0x1",
            "if r1 == 0x0 goto +0x2",
            "r0 = 0x7",
            "exit",
            "exit"
        ]
    );
}

#[test]
fn a_bounds_check_proven_before_goes_with_its_loads() {
    let mut code = vec![Insn::mov64_reg(R9, R1)];
    code.extend(bounds(R9, 34, 7));
    code.push(Insn::call_helper(1)); // map lookup: the packet stays
    code.extend(bounds(R9, 14, 3));
    code.extend(VERDICTS);
    let out = optimized(&code);
    assert_eq!(
        out,
        [
            // The copy of the context went too: r1 is read instead.
            "r2 = *(u32 *)(r1 + 0x4)",
            "r3 = *(u32 *)(r1 + 0x0)",
            "r3 += 0x22",
            "if r3 > r2 goto +0x3",
            "call 0x1",
            "r0 = 0x2",
            "exit",
            "r0 = 0x1",
            "exit"
        ]
    );
}

#[test]
fn a_bounds_check_stays_when_it_proves_more_or_the_packet_may_change() {
    // Narrower first: the second check proves more.
    let mut narrower = bounds(R1, 14, 6).to_vec();
    narrower.extend(bounds(R1, 34, 2));
    narrower.extend(VERDICTS);
    // (Both checks stay; the second load of data_end goes: r2 holds it.)
    let out = optimized(&narrower);
    assert_eq!(checks(&out), 2, "{out:?}");
    assert_eq!(out.len(), 11, "{out:?}");
    // bpf_xdp_adjust_head between: the packet moved.
    let mut changed = vec![Insn::mov64_reg(R6, R1)];
    changed.extend(bounds(R6, 14, 10));
    changed.extend([
        Insn::mov64_reg(R1, R6),
        Insn::mov64_imm(R2, 4),
        Insn::call_helper(44),
    ]);
    changed.extend(bounds(R6, 14, 2));
    changed.extend(VERDICTS);
    // Both checks stay; only `r1 = r6` goes (r1 still holds the context).
    let out = optimized(&changed);
    assert_eq!(checks(&out), 2, "{out:?}");
    assert!(!out.contains(&"r1 = r6".to_string()), "{out:?}");
    assert_eq!(out.len(), 15, "{out:?}");
}

#[test]
fn a_bounds_check_stays_when_its_pointer_is_used() {
    // The packet is read through the checked pointer: the verifier needs
    // this check's range on it. With r6-r9 all taken, the first pointer
    // cannot be kept for the second component.
    // (r6-r9 hold values read at the end when `taken`.)
    let program = |taken: bool| {
        let mut code: Vec<Insn> = Vec::new();
        if taken {
            // (Fields other than the packet's: no copy of anything.)
            code.extend((R6..=R9).map(|r| Insn::load(BPF_W, r, R1, 12 + 4 * (i16::from(r) % 3))));
        }
        code.extend(bounds(R1, 14, if taken { 11 } else { 7 }));
        code.extend(bounds(R1, 14, if taken { 9 } else { 5 }));
        code.push(Insn::load(BPF_B, R0, R3, -1));
        if taken {
            code.extend((R6..=R9).map(|r| Insn::alu64_reg(BPF_ADD, R0, r)));
        }
        code.extend([
            Insn::exit(),
            Insn::mov64_imm(R0, XDP_PASS),
            Insn::exit(),
            Insn::mov64_imm(R0, XDP_DROP),
            Insn::exit(),
            Insn::exit(),
        ]);
        code
    };
    let out = optimized(&program(true));
    assert!(checks(&out) == 2, "{out:?}");
    // With r6 free, the first pointer is kept there and the second check
    // goes: the copy carries the range the first proved.
    let out = optimized(&program(false));
    assert_eq!(checks(&out), 1, "{out:?}");
    assert!(out.contains(&"r6 = r3".to_string()), "{out:?}");
}

#[test]
fn dead_stores_go_wide_loads_included() {
    let wide = Insn::ld_imm64(R2, 0, 0x1_2345_6789);
    let out = optimized(&[
        wide[0],
        wide[1],
        Insn::mov64_imm(R3, 1),
        Insn::store_imm(BPF_W, R10, -4, 0),
        Insn::mov64_imm(R0, XDP_PASS),
        Insn::exit(),
    ]);
    assert_eq!(out, ["*(u32 *)(r10 - 0x4) = 0x0", "r0 = 0x2", "exit"]);
}

#[test]
fn a_cold_exit_moves_to_the_end_of_its_function() {
    // if r1 == 0 goto +1; ja +1 (over an exit that is only jumped to);
    // exit; r0 = 2; exit
    let out = optimized(&[
        Insn::mov64_imm(R0, XDP_DROP),
        Insn::jmp_imm(BPF_JEQ, R1, 0, 1),
        Insn::ja(1),
        Insn::exit(),
        Insn::mov64_imm(R0, XDP_PASS),
        Insn::exit(),
    ]);
    assert_eq!(
        out,
        [
            "r0 = 0x1",
            "if r1 == 0x0 goto +0x2",
            "r0 = 0x2",
            "exit",
            "exit"
        ]
    );
}

#[test]
fn records_of_removed_instructions_move_on() {
    // The first instruction (a dead store) carries the function's
    // func_info and line_info: both move to the next one kept.
    let mut obj = object(&[
        Insn::mov64_imm(R2, 1),
        Insn::mov64_imm(R0, XDP_PASS),
        Insn::exit(),
    ]);
    let line = |insn| LineInfo {
        insn: InsnIndex(insn),
        file_name_off: 1,
        line_off: 1,
        line_col: 1 << 10,
    };
    let sec = &mut obj.sections[1];
    sec.func_info.push(FuncInfo {
        insn: InsnIndex(0),
        type_id: 3,
    });
    sec.line_info.extend([line(0), line(2)]);
    let counts = run(&mut obj);
    let sec = &obj.sections[1];
    assert_eq!(sec.insns.len(), 2);
    assert_eq!(sec.func_info[0].insn, InsnIndex(0));
    assert_eq!(
        sec.line_info.iter().map(|l| l.insn.0).collect::<Vec<_>>(),
        [0, 1]
    );
    assert_eq!(counts.total, (3, 2));
    assert_eq!(counts.by_function.get(&SymbolId(0)), Some(&(3, 2)));
}

#[test]
fn only_known_helpers_keep_the_packet() {
    assert!(!values::changes_packet(&Insn::call_helper(1)));
    assert!(values::changes_packet(&Insn::call_helper(44))); // xdp_adjust_head
    assert!(values::changes_packet(&Insn::call_helper(65))); // xdp_adjust_tail
    assert!(values::changes_packet(&Insn::call_helper(12))); // tail call
    assert!(values::changes_packet(&Insn::call_kfunc(1234)));
    assert!(values::changes_packet(&Insn::call_pseudo(3)));
}

#[test]
fn a_copy_read_in_straight_code_goes() {
    // r1 = r0; if r1 == 0 goto +1; *(u64 *)(r1 + 0) = 1; r0 = 2; exit
    let out = optimized(&[
        Insn::call_helper(7),
        Insn::mov64_reg(R1, R0),
        Insn::jmp_imm(BPF_JEQ, R1, 0, 1),
        Insn::store_imm(crate::model::insn::BPF_DW, R1, 0, 1),
        Insn::mov64_imm(R0, XDP_PASS),
        Insn::exit(),
    ]);
    assert_eq!(
        out,
        [
            "call 0x7",
            "if r0 == 0x0 goto +0x1",
            "*(u64 *)(r0 + 0x0) = 0x1",
            "r0 = 0x2",
            "exit"
        ]
    );
    // Read where another path joins: the copy stays.
    let kept = optimized(&[
        Insn::call_helper(7),
        Insn::mov64_reg(R1, R0),
        Insn::jmp_imm(BPF_JEQ, R1, 0, 1),
        Insn::mov64_imm(R1, 5),
        Insn::mov64_reg(R0, R1),
        Insn::exit(),
    ]);
    assert_eq!(kept[1], "r1 = r0", "{kept:?}");
}

#[test]
fn a_copy_back_to_its_source_goes() {
    // r9 = r1; r1 = r9 (after propagation r1 = r1); r0 = *(u32 *)(r1 + 0)
    let out = optimized(&[
        Insn::mov64_reg(R9, R1),
        Insn::mov64_reg(R1, R9),
        Insn::load(BPF_W, R0, R1, 0),
        Insn::exit(),
    ]);
    assert_eq!(out, ["r0 = *(u32 *)(r1 + 0x0)", "exit"]);
}

#[test]
fn a_copy_of_the_context_into_a_register_holding_it_goes() {
    // The dispatcher's `r9 = r1`, then a component's `r1 = r9` read only
    // after a branch, where the straight-code rule does not reach: r1
    // holds the context already on every path.
    let program = |call: bool| {
        let mut code = vec![Insn::mov64_reg(R9, R1)];
        if call {
            code.push(Insn::call_helper(7));
        }
        code.extend([
            Insn::mov64_reg(R1, R9),
            Insn::jmp_imm(BPF_JEQ, R9, 0, 1),
            Insn::store_imm(crate::model::insn::BPF_DW, R10, -8, 3),
            // Two ways in.
            Insn::load(BPF_W, R0, R1, 0),
            Insn::exit(),
        ]);
        optimized(&code)
    };
    let out = program(false);
    assert!(!out.contains(&"r1 = r9".to_string()), "{out:?}");
    assert!(
        out.contains(&"r0 = *(u32 *)(r1 + 0x0)".to_string()),
        "{out:?}"
    );
    // After a call r1 no longer holds it: the copy stays.
    let out = program(true);
    assert!(
        out.contains(&"r1 = r9".to_string())
            && out.contains(&"r0 = *(u32 *)(r1 + 0x0)".to_string()),
        "{out:?}"
    );
}

/// Two components reading the packet, a map lookup between: the first
/// one's `data` pointer is kept in a free callee-saved register, the
/// second's load of it becomes a copy (with the range the first check
/// proved) and its check goes though it reads the packet.
#[test]
fn a_packet_pointer_kept_across_a_call_removes_a_check() {
    let read = |off: i16| {
        [
            Insn::load(BPF_B, insn::R5, R3, off),
            Insn::store_reg(BPF_B, R10, -1 - off, insn::R5),
        ]
    };
    let check = [
        Insn::load(BPF_W, R2, R9, 4),
        Insn::load(BPF_W, R3, R9, 0),
        Insn::mov64_reg(insn::R4, R3),
        Insn::alu64_imm(BPF_ADD, insn::R4, 14),
    ];
    let mut code = vec![Insn::mov64_reg(R9, R1)];
    code.extend(check);
    code.push(Insn::jmp_reg(BPF_JGT, insn::R4, R2, 12));
    code.extend(read(0));
    code.push(Insn::call_helper(1));
    code.extend(check);
    code.push(Insn::jmp_reg(BPF_JGT, insn::R4, R2, 4));
    code.extend(read(13));
    code.extend(VERDICTS);
    let out = optimized(&code);
    let checks = out.iter().filter(|l| l.starts_with("if r4 > r2")).count();
    assert_eq!(checks, 1, "{out:#?}");
    assert!(out.contains(&"r6 = r3".to_string()), "{out:#?}");
    assert!(
        out.contains(&"r5 = *(u8 *)(r6 + 0xd)".to_string()),
        "{out:#?}"
    );
    // Without the call the first pointer stays in r3: no copy needed.
    let mut no_call = code.clone();
    no_call[8] = Insn::mov64_imm(R0, 0);
    let out = optimized(&no_call);
    assert!(!out.iter().any(|l| l.starts_with("r6")), "{out:#?}");
}

#[test]
fn a_metadata_check_whose_pointer_is_used_stays() {
    // r2 = data; r3 = data_meta; r3 += 4; if r3 > r2 goto drop; twice,
    // then a read through the second metadata pointer.
    let meta = [
        Insn::load(BPF_W, R2, R1, 0),
        Insn::load(BPF_W, R3, R1, 8),
        Insn::alu64_imm(BPF_ADD, R3, 4),
    ];
    let mut code = meta.to_vec();
    code.push(Insn::jmp_reg(BPF_JGT, R3, R2, 6));
    code.extend(meta);
    code.extend([
        Insn::jmp_reg(BPF_JGT, R3, R2, 2),
        Insn::load(BPF_B, R0, R3, -1),
        Insn::exit(),
        Insn::mov64_imm(R0, XDP_DROP),
        Insn::exit(),
    ]);
    let out = optimized(&code);
    assert_eq!(checks(&out), 2, "{out:?}");
}

#[test]
fn a_fill_right_after_its_spill_is_a_copy() {
    // *(u64 *)(r10 - 8) = r1; r2 = 1; r1 = *(u64 *)(r10 - 8); r0 = *(u32 *)(r1 + 0)
    let out = optimized(&[
        Insn::store_reg(crate::model::insn::BPF_DW, R10, -8, R1),
        Insn::mov64_imm(R2, 1),
        Insn::load(crate::model::insn::BPF_DW, R1, R10, -8),
        Insn::load(BPF_W, R0, R1, 0),
        Insn::exit(),
    ]);
    // (The spill, read by no fill any more, goes too.)
    assert_eq!(out, ["r0 = *(u32 *)(r1 + 0x0)", "exit"]);
    // A store between through a pointer to the slot: the fill stays.
    let kept = optimized(&[
        Insn::store_reg(crate::model::insn::BPF_DW, R10, -8, R1),
        Insn::mov64_reg(R2, R10),
        Insn::alu64_imm(BPF_ADD, R2, -8),
        Insn::store_imm(crate::model::insn::BPF_DW, R2, 0, 0),
        Insn::load(crate::model::insn::BPF_DW, R1, R10, -8),
        Insn::load(BPF_W, R0, R1, 0),
        Insn::exit(),
    ]);
    assert_eq!(kept[4], "r1 = *(u64 *)(r10 - 0x8)", "{kept:?}");
}

/// The model of the verifier's walk: two ways meet at a jump target; a
/// state is kept there (and the second way is cut short) only when the
/// first came through two jumps and eight instructions since the last
/// one kept, so one jump more on the way is one instruction less walked.
#[test]
fn the_walk_model_keeps_states_as_the_verifier_does() {
    let walk = |first: Insn| {
        let mut code = vec![Insn::load(BPF_B, R2, R1, 0)];
        code.extend(std::iter::repeat_n(Insn::mov32_imm(R3, 0), 8));
        code.extend([
            first,
            Insn::jmp_imm(BPF_JEQ, R2, 0, 1),
            Insn::mov32_imm(R0, XDP_DROP),
            Insn::mov32_imm(R0, XDP_PASS),
            Insn::exit(),
        ]);
        let obj = object(&code);
        walked(&Code::decode(&obj).unwrap(), &obj).map(|w| w.null_lookups)
    };
    // 14 on the first way; the second: its target, pruned.
    assert_eq!(walk(Insn::jmp_imm(BPF_JEQ, R2, 5, 0)), Some(15));
    // One jump on the first way: nothing kept, the second walks on.
    assert_eq!(walk(Insn::mov32_imm(R3, 0)), Some(16));
}

/// The walk model follows the stack as the verifier does: a state kept
/// where two ways meet covers the second way only when the stack slots
/// read later hold the same kind of thing (here: a spill on the first
/// way, never written on the second; the verifier walks the second way
/// on, as it did in two composed copies of the selftests'
/// test_tcp_check_syncookie_kern, where a model without the stack let
/// a rewrite through that cost 678 instructions verified instead of 670).
/// The kernel (6.18) verifies these three programs in the same 17, 19
/// and 17 instructions.
#[test]
fn the_walk_model_tells_stack_slots_apart() {
    let walk = |spill: Insn, read: Insn| {
        // r2: a number from the context (rx_queue_index).
        let mut code = vec![Insn::load(BPF_W, R2, R1, 12)];
        code.extend(std::iter::repeat_n(Insn::mov32_imm(R3, 0), 8));
        code.extend([
            Insn::ja(0),
            Insn::store_reg(BPF_W, R10, -4, R2),
            Insn::jmp_imm(BPF_JEQ, R2, 0, 1),
            spill,
            Insn::mov32_imm(R0, XDP_PASS),
            read,
            Insn::exit(),
        ]);
        let obj = object(&code);
        walked(&Code::decode(&obj).unwrap(), &obj).map(|w| w.null_lookups)
    };
    let spill = Insn::store_reg(BPF_W, R10, -8, R2);
    let read = Insn::load(BPF_W, R3, R10, -8);
    // 16 on the first way; the second is cut at the join (1)...
    assert_eq!(walk(Insn::mov32_imm(insn::R4, 0), read), Some(17));
    // ...unless the slot read after it holds a spill on one way only.
    assert_eq!(walk(spill, read), Some(19));
    // A slot nothing reads later does not count.
    assert_eq!(walk(spill, Insn::mov32_imm(R3, 0)), Some(17));
}

/// `lookup(key_store)`: an XDP program that looks the key stored by
/// `key_store` at r10 - 8 up in map `m`, and writes the value when
/// there is one; `def`: `m`'s legacy definition (type, key size, value
/// size, max_entries, flags).
fn lookup(key_store: Insn, def: [u32; 5]) -> Object {
    let map = Insn::ld_imm64(R1, 0, 0);
    let mut obj = object(&[
        key_store,
        Insn::mov64_reg(R2, R10),
        Insn::alu64_imm(BPF_ADD, R2, -8),
        map[0],
        map[1],
        Insn::call_helper(1),
        Insn::jmp_imm(BPF_JEQ, R0, 0, 1),
        Insn::store_imm(BPF_W, R0, 0, 1),
        Insn::mov64_imm(R0, XDP_PASS),
        Insn::exit(),
    ]);
    let mut maps = Section::empty(SectionId(2), "maps", SectionKind::LegacyMaps, 1);
    maps.data = def.iter().flat_map(|v| v.to_le_bytes()).collect();
    maps.sh_size = maps.data.len() as u64;
    obj.sections.push(maps);
    obj.symbols.push(Symbol {
        id: SymbolId(1),
        name: "m".into(),
        binding: Binding::Global,
        visibility: Visibility::Default,
        kind: SymbolKind::Object,
        place: SymbolPlace::Section(SectionId(2)),
        value: 0,
        size: 20,
        st_other: 0,
    });
    obj.sections[1].relocs.push(crate::model::object::Reloc {
        offset: 3 * 8,
        kind: crate::model::object::RelocKind::Bpf64_64,
        symbol: SymbolId(1),
    });
    obj
}

/// Linux 6.14 on proves that a lookup in an array (or per-CPU array)
/// with a constant key below max_entries never gives NULL, and does not
/// walk the NULL way; the model walks both kernels. The key is constant
/// when its four bytes are known zero, or hold a number spilled there
/// with exactly four bytes.
#[test]
fn the_walk_model_knows_proven_array_lookups() {
    const ARRAY: u32 = 2;
    const PERCPU_ARRAY: u32 = 6;
    const HASH: u32 = 1;
    let walks = |store: Insn, def: [u32; 5]| {
        let obj = lookup(store, def);
        let w = walked(&Code::decode(&obj).unwrap(), &obj).unwrap();
        (w.sure_lookups, w.null_lookups)
    };
    let key = |k: i32| Insn::store_imm(BPF_W, R10, -8, k);
    // Nine on the way with a value; the NULL way meets it at the exit.
    assert_eq!(walks(key(0), [ARRAY, 4, 4, 1, 0]), (9, 10));
    assert_eq!(walks(key(3), [PERCPU_ARRAY, 4, 4, 4, 0]), (9, 10));
    // A key past the end, another kind of map, an inner-map template: the
    // NULL way is walked on both kernels.
    assert_eq!(walks(key(1), [ARRAY, 4, 4, 1, 0]), (10, 10));
    assert_eq!(walks(key(0), [HASH, 4, 4, 8, 0]), (10, 10));
    assert_eq!(walks(key(0), [ARRAY, 4, 4, 1, 0x1000]), (10, 10));
    // Eight bytes stored: not a four-byte spill, so not a constant key.
    let wide = Insn::store_imm(crate::model::insn::BPF_DW, R10, -8, 0);
    assert_eq!(walks(wide, [ARRAY, 4, 4, 1, 0]), (10, 10));
    // A number the verifier does not know.
    let unknown = Insn::store_reg(BPF_W, R10, -8, R1);
    assert_eq!(walks(unknown, [ARRAY, 4, 4, 1, 0]), (10, 10));
}

/// A rewrite is kept only when neither kernel walks more: with and
/// without proven lookups.
#[test]
fn a_rewrite_must_be_no_dearer_on_either_kernel() {
    let w = |sure, null| walk::Walks {
        sure_lookups: sure,
        null_lookups: null,
    };
    assert!(w(10, 11).within(&w(10, 11)));
    assert!(w(9, 11).within(&w(10, 11)));
    assert!(!w(9, 12).within(&w(10, 11)));
    assert!(!w(11, 10).within(&w(10, 11)));
}

/// A stack pointer moved far out of any frame (the verifier refuses its
/// use; the model must not trip over it): the model stops following it.
#[test]
fn a_stack_pointer_far_out_is_not_followed() {
    let far = Insn::ld_imm64(R3, 0, i64::MAX as u64);
    let code = [
        far[0],
        far[1],
        Insn::mov64_reg(R2, R10),
        Insn::alu64_reg(BPF_ADD, R2, R3),
        Insn::store_reg(crate::model::insn::BPF_DW, R2, 8, R1),
        Insn::load(crate::model::insn::BPF_DW, R0, R2, 8),
        Insn::call_helper(1),
        Insn::mov64_imm(R0, XDP_PASS),
        Insn::exit(),
    ];
    let obj = object(&code);
    assert!(walked(&Code::decode(&obj).unwrap(), &obj).is_some());
    assert_eq!(optimized(&code).last().map(String::as_str), Some("exit"));
}

/// The program's code after the pass, `setup` applied to the decoded
/// code first (to mark instructions as inlined from elsewhere).
fn optimized_with(code: &[Insn], setup: impl Fn(&mut Code)) -> Vec<String> {
    let mut obj = object(code);
    let mut c = Code::decode(&obj).unwrap();
    setup(&mut c);
    optimize(&mut c, &obj).unwrap();
    c.encode(&mut obj).unwrap();
    let insns = &obj.sections[1].insns;
    let mut out = Vec::new();
    let mut k = 0;
    while k < insns.len() {
        out.push(crate::show::disasm::insn_text(&insns[k], insns.get(k + 1)).unwrap());
        k += if insns[k].is_ld_imm64() { 2 } else { 1 };
    }
    out
}

const DW: u8 = crate::model::insn::BPF_DW;

/// The dispatcher's context on the stack (every callee-saved register
/// taken somewhere), filled before each of two components that call a
/// helper.
fn context_on_the_stack(busy: &[u8]) -> Vec<Insn> {
    let mut code = vec![Insn::store_reg(DW, R10, -8, R1)];
    for _ in 0..2 {
        code.extend([
            Insn::load(DW, R1, R10, -8),
            Insn::load(BPF_W, R2, R1, 0),
            Insn::call_helper(5), // ktime: r1-r5 gone
        ]);
    }
    code.extend([Insn::load(DW, R1, R10, -8), Insn::load(BPF_W, R0, R1, 4)]);
    // Registers written while the context waits, read after.
    code.splice(1..1, busy.iter().map(|r| Insn::mov64_imm(*r, 1)));
    code.extend(busy.iter().map(|r| Insn::alu64_reg(BPF_ADD, R0, *r)));
    code.push(Insn::exit());
    code
}

#[test]
fn a_spilled_value_waits_in_a_free_callee_saved_register() {
    let out = optimized(&context_on_the_stack(&[R6, R7]));
    assert_eq!(
        out,
        [
            "r8 = r1",
            "r6 = 0x1",
            "r7 = 0x1",
            "call 0x5",
            "call 0x5",
            "r0 = *(u32 *)(r8 + 0x4)",
            "r0 += r6",
            "r0 += r7",
            "exit"
        ]
    );
}

#[test]
fn a_slot_stays_when_no_register_is_free_or_a_pointer_reaches_it() {
    // r6-r9 all hold values across the calls.
    let busy = [R6, R7, R8, R9];
    let out = optimized(&context_on_the_stack(&busy));
    assert_eq!(
        out.iter().filter(|l| l.contains("(r10 - 0x8)")).count(),
        2,
        "{out:?}"
    );
    // A pointer to the slot handed to a helper (the map lookup's key).
    let mut code = context_on_the_stack(&[]);
    let at = code.len() - 1;
    code.splice(
        at..at,
        [
            Insn::mov64_reg(R2, R10),
            Insn::alu64_imm(BPF_ADD, R2, -8),
            Insn::mov64_imm(R1, 0),
            Insn::call_helper(1),
        ],
    );
    let out = optimized(&code);
    assert_eq!(out[0], "*(u64 *)(r10 - 0x8) = r1", "{out:?}");
    // A 4-byte store into half of it.
    let mut code = context_on_the_stack(&[]);
    code.insert(1, Insn::store_imm(BPF_W, R10, -4, 0));
    let out = optimized(&code);
    assert_eq!(out[0], "*(u64 *)(r10 - 0x8) = r1", "{out:?}");
}

/// An inlined body's stack lies below its caller's own frame, so a
/// pointer it makes (its map key) does not reach the caller's slots; the
/// caller's own pointer would.
#[test]
fn pointers_of_inlined_code_do_not_reach_the_callers_frame() {
    let mut code = context_on_the_stack(&[R6, R7]);
    // The key at r10 - 12, made by code inlined from elsewhere.
    let key = [
        Insn::store_imm(BPF_W, R10, -12, 0),
        Insn::mov64_reg(R2, R10),
        Insn::alu64_imm(BPF_ADD, R2, -12),
        Insn::ld_imm64(R1, 0, 0)[0],
        Insn::ld_imm64(R1, 0, 0)[1],
        Insn::call_helper(1),
    ];
    code.splice(3..3, key);
    let inlined = |c: &mut Code| {
        // As the inliner records it: the body's frame ends at r10 - 8.
        let made = c.secs[0].1[4].id;
        c.frame_top.insert(made, -8);
    };
    let out = optimized_with(&code, inlined);
    assert!(!out.iter().any(|l| l.contains("(r10 - 0x8)")), "{out:?}");
    assert_eq!(out[0], "r8 = r1", "{out:?}");
    // The same key made by the caller's own code may reach the slot.
    let out = optimized_with(&code, |_| {});
    assert_eq!(out[0], "*(u64 *)(r10 - 0x8) = r1", "{out:?}");
}

#[test]
fn a_spill_no_fill_reads_goes() {
    let out = optimized(&[
        Insn::store_reg(DW, R10, -16, R1),
        Insn::mov64_imm(R0, XDP_PASS),
        Insn::exit(),
    ]);
    assert_eq!(out, ["r0 = 0x2", "exit"]);
}

/// A caller keeps its context in r6 and an inlined body uses r6 for a
/// value of its own, so the inliner saved r6 around it: the save and
/// restore become copies through a free register (r7), and the restore,
/// read after a join where copies do not propagate, joins the saved
/// copy: the context stays in r7 throughout, with no copy left.
#[test]
fn a_value_saved_around_an_inlined_body_stays_in_its_register() {
    // (Branches on both sides: no straight code to propagate copies in.)
    let out = optimized(&[
        Insn::mov64_reg(R6, R1),
        Insn::store_reg(DW, R10, -8, R6),
        Insn::load(BPF_W, R6, R6, 16),
        Insn::jmp_imm(BPF_JEQ, R6, 0, 1),
        Insn::alu64_imm(BPF_ADD, R6, 1),
        Insn::call_helper(5),
        Insn::mov64_reg(R0, R6),
        Insn::load(DW, R6, R10, -8),
        Insn::jmp_imm(BPF_JEQ, R0, 0, 1),
        Insn::mov64_imm(R0, XDP_PASS),
        Insn::load(BPF_W, R1, R6, 4),
        Insn::alu64_reg(BPF_ADD, R0, R1),
        Insn::exit(),
    ]);
    assert_eq!(
        out,
        [
            "r7 = r1",
            "r6 = *(u32 *)(r1 + 0x10)",
            "if r6 == 0x0 goto +0x1",
            "r6 += 0x1",
            "call 0x5",
            "r0 = r6",
            "if r0 == 0x0 goto +0x1",
            "r0 = 0x2",
            "r1 = *(u32 *)(r7 + 0x4)",
            "r0 += r1",
            "exit"
        ]
    );
}
