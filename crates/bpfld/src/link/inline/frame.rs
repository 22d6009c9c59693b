//! What a stretch of code does with the stack: the deepest `r10` offset
//! it addresses (directly or through a pointer derived from `r10` in
//! straight-line code), the registers it writes, whether it makes a tail
//! call; moving an inlined body's frame below its caller's (the 512-byte
//! limit along every call chain is checked on the call graph, graph.rs).

use std::collections::HashSet;

use crate::model::insn;

use super::liveness::use_def;
use super::nodes::{Node, NodeId, Target};
use super::{Why, MAX_STACK};

const BPF_FUNC_TAIL_CALL: i32 = 12;

/// What a stretch of code does with the stack and registers.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Frame {
    /// Bytes below r10 it uses.
    pub(super) depth: u32,
    /// Registers it writes (bit n = rn).
    pub(super) writes: u16,
    pub(super) tail_call: bool,
}

/// Scans straight-line code for its stack use. Only `r10` as a memory base
/// with a negative offset, and `rX = r10` immediately followed by
/// `rX += imm` with a negative `imm`, are followed; anything else makes the
/// frame unknown.
pub(super) fn frame(nodes: &[Node]) -> Result<Frame, Why> {
    let mut f = Frame::default();
    let mut k = 0;
    // Jump targets: the code between them runs straight.
    let targets: HashSet<NodeId> = nodes
        .iter()
        .filter_map(|n| match n.target {
            Some(Target::Jump(t)) => Some(t),
            _ => None,
        })
        .collect();
    // Registers holding r10 + a known offset, in straight-line code: an
    // access below such a pointer (`p[-1]`) deepens the frame too.
    let mut fp: [Option<i64>; 16] = [None; 16];
    let deepen = |off: i64, f: &mut Frame| -> Result<(), Why> {
        if off >= 0 || off < -i64::from(MAX_STACK) {
            return Err(format!("it addresses r10{off:+}, outside a stack frame"));
        }
        f.depth = f.depth.max((-off) as u32);
        Ok(())
    };
    while k < nodes.len() {
        let i = nodes[k].insn;
        let width = if i.is_ld_imm64() { 2 } else { 1 };
        let (dst, src) = (i.dst & 0xf, i.src & 0xf);
        let src_is_reg = match i.class() {
            insn::BPF_ALU | insn::BPF_ALU64 | insn::BPF_JMP | insn::BPF_JMP32 => {
                i.source() == insn::BPF_X && !i.is_call()
            }
            insn::BPF_LDX | insn::BPF_STX => true,
            _ => false,
        };
        let dst_is_reg = !(i.is_call()
            || i.code == insn::EXIT
            || i.code == insn::JA
            || i.code == insn::GOTOL
            || i.code == insn::JCOND);
        if i.is_call() && i.src == 0 && i.imm == BPF_FUNC_TAIL_CALL {
            f.tail_call = true;
        }
        if targets.contains(&nodes[k].id) {
            fp = [None; 16];
        }
        let base = match i.class() {
            insn::BPF_LDX => Some(src),
            insn::BPF_ST | insn::BPF_STX => Some(dst),
            _ => None,
        };
        if let Some(o) = base
            .filter(|b| *b != insn::R10)
            .and_then(|b| fp[b as usize])
        {
            deepen(o + i64::from(i.off), &mut f)?;
        }
        // What this instruction leaves in the registers it writes.
        let defs = use_def(&i).1;
        f.writes |= defs;
        let copied = (i.code == insn::BPF_ALU64 | insn::BPF_MOV | insn::BPF_X && i.off == 0)
            .then(|| fp[src as usize])
            .flatten();
        let moved = match (i.code, fp[dst as usize]) {
            (c, Some(o)) if c == insn::BPF_ALU64 | insn::BPF_ADD | insn::BPF_K => {
                Some(o + i64::from(i.imm))
            }
            (c, Some(o)) if c == insn::BPF_ALU64 | insn::BPF_SUB | insn::BPF_K => {
                Some(o - i64::from(i.imm))
            }
            _ => None,
        };
        for (r, v) in fp.iter_mut().enumerate() {
            if defs & (1 << r) != 0 {
                *v = None;
            }
        }
        if defs & (1 << dst) != 0 {
            fp[dst as usize] = copied.or(moved);
        }
        let fp_base = base == Some(insn::R10);
        if fp_base {
            deepen(i64::from(i.off), &mut f)?;
            if i.class() == insn::BPF_STX && src == insn::R10 {
                return Err("it stores the frame pointer to memory".into());
            }
            k += width;
            continue;
        }
        if i.code == insn::BPF_ALU64 | insn::BPF_MOV | insn::BPF_X && src == insn::R10 {
            let next = nodes.get(k + 1).map(|n| n.insn);
            match next {
                Some(n)
                    if n.code == insn::BPF_ALU64 | insn::BPF_ADD | insn::BPF_K
                        && n.dst == i.dst
                        && !targets.contains(&nodes[k + 1].id) =>
                {
                    deepen(i64::from(n.imm), &mut f)?;
                    fp[dst as usize] = Some(i64::from(n.imm));
                    k += 2;
                    continue;
                }
                _ => {
                    return Err(format!(
                        "instruction {k} copies r10 without an offset that the inliner can follow"
                    ))
                }
            }
        }
        if (src_is_reg && src == insn::R10) || (dst_is_reg && dst == insn::R10) {
            return Err(format!(
                "instruction {k} uses r10 in a way the inliner does not follow"
            ));
        }
        k += width;
    }
    Ok(f)
}

/// Moves a body's stack frame down by `by` bytes (see [`frame`]).
pub(super) fn shift_frame(nodes: &mut [Node], by: u32) -> Result<(), Why> {
    let by = i64::from(by);
    let mut k = 0;
    while k < nodes.len() {
        let i = nodes[k].insn;
        let fp_base = match i.class() {
            insn::BPF_LDX => i.src == insn::R10,
            insn::BPF_ST | insn::BPF_STX => i.dst == insn::R10,
            _ => false,
        };
        if fp_base {
            nodes[k].insn.off =
                i16::try_from(i64::from(i.off) - by).map_err(|_| "stack too deep")?;
        } else if i.code == insn::BPF_ALU64 | insn::BPF_MOV | insn::BPF_X && i.src == insn::R10 {
            let n = &mut nodes[k + 1].insn;
            n.imm = i32::try_from(i64::from(n.imm) - by).map_err(|_| "stack too deep")?;
            k += 1;
        }
        k += if i.is_ld_imm64() { 2 } else { 1 };
    }
    Ok(())
}

pub(super) fn round32(x: u32) -> u32 {
    x.max(1).div_ceil(32) * 32
}

#[cfg(test)]
mod tests {
    use super::super::nodes::nodes;
    use super::*;
    use crate::model::insn::{Insn, BPF_ADD, BPF_DW, BPF_W, R1, R10, R2, R6};

    #[test]
    fn frame_follows_stack_slots_and_stack_addresses() {
        let f = frame(&nodes(&[
            Insn::store_imm(BPF_W, R10, -4, 0),
            Insn::mov64_reg(R2, R10),
            Insn::alu64_imm(BPF_ADD, R2, -24),
            Insn::mov64_reg(R6, R1),
            Insn::exit(),
        ]))
        .unwrap();
        assert_eq!(f.depth, 24);
        assert_ne!(f.writes & (1 << R6), 0);
        assert!(!f.tail_call);
    }

    #[test]
    fn frame_sees_accesses_below_a_stack_pointer() {
        // r2 = r10; r2 += -8; r3 = r2; *(u64 *)(r3 - 16) = 0: 24 bytes.
        let f = frame(&nodes(&[
            Insn::mov64_reg(R2, R10),
            Insn::alu64_imm(BPF_ADD, R2, -8),
            Insn::mov64_reg(insn::R3, R2),
            Insn::store_imm(BPF_DW, insn::R3, -16, 0),
            Insn::exit(),
        ]))
        .unwrap();
        assert_eq!(f.depth, 24);
    }

    #[test]
    fn a_stack_address_split_by_a_jump_target_is_refused() {
        // goto +1 lands on `r2 += -8`, which then does not follow r2 = r10.
        let e = frame(&nodes(&[
            Insn::ja(1),
            Insn::mov64_reg(R2, R10),
            Insn::alu64_imm(BPF_ADD, R2, -8),
            Insn::exit(),
        ]))
        .unwrap_err();
        assert!(e.contains("copies r10"), "{e}");
    }

    #[test]
    fn frame_refuses_what_it_cannot_follow() {
        let copy = frame(&nodes(&[Insn::mov64_reg(R1, R10), Insn::exit()])).unwrap_err();
        assert!(copy.contains("copies r10"), "{copy}");
        let store =
            frame(&nodes(&[Insn::store_reg(BPF_DW, R1, 0, R10), Insn::exit()])).unwrap_err();
        assert!(store.contains("r10"), "{store}");
        let above = frame(&nodes(&[Insn::store_imm(BPF_W, R10, 8, 0), Insn::exit()])).unwrap_err();
        assert!(above.contains("outside a stack frame"), "{above}");
        let tail = frame(&nodes(&[Insn::call_helper(12), Insn::exit()])).unwrap();
        assert!(tail.tail_call);
    }
}
