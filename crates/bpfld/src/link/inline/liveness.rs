//! Which registers an instruction reads and writes, and which of the
//! callee-saved r6–r9 are still needed after a call site (a backward
//! liveness pass): those an inlined body writes are spilled around it.

use std::collections::HashMap;

use crate::model::insn::{self, Insn};

use super::nodes::{Node, NodeId, Target};

/// Registers (bit n = rn) that straight code writes (a call counts as
/// writing r0–r5).
pub(crate) fn registers_written(code: &[Insn]) -> u16 {
    let mut w = 0;
    let mut k = 0;
    while k < code.len() {
        w |= use_def(&code[k]).1;
        k += if code[k].is_ld_imm64() { 2 } else { 1 };
    }
    w
}

/// Registers read and written by one instruction (bit n = rn).
pub(crate) fn use_def(i: &Insn) -> (u16, u16) {
    let (d, s) = (1u16 << (i.dst & 0xf), 1u16 << (i.src & 0xf));
    let x = i.source() == insn::BPF_X;
    match i.class() {
        insn::BPF_ALU | insn::BPF_ALU64 => {
            let src = if x { s } else { 0 };
            if i.op() == insn::BPF_MOV {
                (src, d)
            } else {
                (d | src, d)
            }
        }
        insn::BPF_LDX => (s, d),
        insn::BPF_LD if i.is_ld_imm64() => (0, d),
        insn::BPF_LD => (0x3fe | s, 0x3f), // legacy packet loads: like a call
        insn::BPF_ST => (d, 0),
        insn::BPF_STX if i.mode() == insn::BPF_ATOMIC => {
            if i.imm == insn::BPF_CMPXCHG {
                (d | s | 1, 1)
            } else if i.imm & insn::BPF_FETCH != 0 {
                (d | s, s)
            } else {
                (d | s, 0)
            }
        }
        insn::BPF_STX => (d | s, 0),
        _ if i.is_call() => (0x3e, 0x3f),
        _ if i.code == insn::EXIT => (1, 0),
        _ if i.code == insn::JA || i.code == insn::GOTOL || i.code == insn::JCOND => (0, 0),
        _ => (d | if x { s } else { 0 }, 0), // conditional jumps
    }
}

/// Registers r6–r9 whose values are read after node `at` of a function's
/// `nodes` before being written (a backward liveness pass).
pub(super) fn live_after(nodes: &[Node], at: usize) -> u16 {
    let pos: HashMap<NodeId, usize> = nodes.iter().enumerate().map(|(k, n)| (n.id, k)).collect();
    let n = nodes.len();
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut ud: Vec<(u16, u16)> = vec![(0, 0); n];
    let mut k = 0;
    while k < n {
        let i = nodes[k].insn;
        let width = if i.is_ld_imm64() { 2 } else { 1 };
        ud[k] = use_def(&i);
        let next = k + width;
        let jump = match nodes[k].target {
            Some(Target::Jump(t)) => pos.get(&t).copied(),
            _ => None,
        };
        let unconditional = i.code == insn::JA || i.code == insn::GOTOL;
        if i.code != insn::EXIT && !unconditional && next < n {
            succ[k].push(next);
        }
        succ[k].extend(jump);
        if width == 2 && k + 1 < n {
            succ[k + 1] = succ[k].clone();
        }
        k += width;
    }
    let mut live_in = vec![0u16; n];
    let mut changed = true;
    while changed {
        changed = false;
        for k in (0..n).rev() {
            let out = succ[k].iter().fold(0, |a, s| a | live_in[*s]);
            let v = ud[k].0 | (out & !ud[k].1);
            if v != live_in[k] {
                live_in[k] = v;
                changed = true;
            }
        }
    }
    let out = succ
        .get(at)
        .map_or(0, |v| v.iter().fold(0, |a, s| a | live_in[*s]));
    out & 0x3c0
}

#[cfg(test)]
mod tests {
    use super::super::nodes::nodes;
    use super::*;
    use crate::model::insn::{R0, R1, R6};

    #[test]
    fn liveness_sees_reads_after_the_call_only() {
        // r6 = r1; call; if r0 == 0 goto +1; r0 = r6; exit
        let code = nodes(&[
            Insn::mov64_reg(R6, R1),
            Insn::call_pseudo(-1),
            Insn::jmp_imm(insn::BPF_JEQ, R0, 0, 1),
            Insn::mov64_reg(R0, R6),
            Insn::exit(),
        ]);
        assert_eq!(live_after(&code, 1), 1 << R6);
        // r6 = r1; call; r6 = 1; r0 = r6; exit: overwritten first.
        let code = nodes(&[
            Insn::mov64_reg(R6, R1),
            Insn::call_pseudo(-1),
            Insn::mov64_imm(R6, 1),
            Insn::mov64_reg(R0, R6),
            Insn::exit(),
        ]);
        assert_eq!(live_after(&code, 1), 0);
    }
}
