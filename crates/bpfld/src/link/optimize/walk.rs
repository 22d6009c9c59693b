//! A model of how much of a section the verifier walks: its depth-first
//! exploration of paths (fall-through first, a conditional jump's other
//! way later), following the constants each path holds (a comparison it
//! can decide goes one way only), cut short where it finds a state it
//! kept before. States are kept at prune points only (see
//! [`Cfg::prune_points`]), and only once the walk has gone through two
//! jumps and eight instructions since the last state kept, as the
//! kernel's verifier does to save memory. A kept state covers a later
//! one when the registers still read hold the same values, numbers
//! being told apart only where they decide a later comparison (the
//! verifier tells numbers apart only once it marked them precise).
//!
//! Rewrites that shorten the code can make the verifier walk more: paths
//! that met where a state was kept meet elsewhere (a jump threaded past),
//! or fewer jumps on the way keep states elsewhere (a `goto` removed), and
//! each path walks on alone. The pass compares this model's count before
//! and after to keep what the verifier proves no dearer. (Which states
//! cover others is rougher here than the kernel's ranges and precision,
//! and the model walks both ways after every map lookup, where the
//! kernel knows some never give NULL: its count compares two versions of
//! the same code; it is not the kernel's.)

use crate::link::inline::nodes::Node;
use crate::model::insn;

use super::cfg::{is_cond, uses_defs, Cfg};
use super::values::{successor_states, State, Val};

/// Whether a kept state `old` covers `new` on the registers `live`: the
/// same value, or any two numbers in a register whose value decides no
/// comparison later (`compared`: the verifier tracks such a number
/// exactly only once something depends on it), or a constant where
/// nothing was known.
fn covers(old: &State, new: &State, live: u16, compared: u16) -> bool {
    let number = |v: Val| matches!(v, Val::Const(_) | Val::Unknown);
    (0..11).all(|r| {
        live & (1 << r) == 0
            || old.regs[r] == new.regs[r]
            || compared & (1 << r) == 0 && number(old.regs[r]) && number(new.regs[r])
            || old.regs[r] == Val::Unknown && matches!(new.regs[r], Val::Const(_))
    })
}

/// Registers (bit n = rn) whose value before each slot may decide a
/// conditional jump later: read by one, or by arithmetic whose result
/// is, before being written.
fn compared_in(cfg: &Cfg, nodes: &[Node]) -> Vec<u16> {
    let n = nodes.len();
    let mut out = vec![0u16; n];
    let mut changed = true;
    while changed {
        changed = false;
        for k in (0..n).rev() {
            if !cfg.start[k] {
                continue;
            }
            let i = nodes[k].insn;
            let after = cfg.succ[k].iter().fold(0, |a, s| a | out[*s]);
            let (dst, src) = (1u16 << (i.dst & 0xf).min(10), 1u16 << (i.src & 0xf).min(10));
            let x = i.source() == insn::BPF_X;
            let v = match i.class() {
                insn::BPF_JMP | insn::BPF_JMP32 if is_cond(&i) => {
                    after | dst | if x { src } else { 0 }
                }
                insn::BPF_ALU | insn::BPF_ALU64 => {
                    let read = if after & dst != 0 {
                        (if i.op() == insn::BPF_MOV { 0 } else { dst }) | if x { src } else { 0 }
                    } else {
                        0
                    };
                    (after & !dst) | read
                }
                _ => after & !uses_defs(&i).1,
            };
            if v != out[k] {
                out[k] = v;
                changed = true;
            }
        }
    }
    out
}

/// Instructions the verifier would walk in this section from its entries
/// (`None`: past `budget` steps, too many to tell).
pub(super) fn walked(cfg: &Cfg, nodes: &[Node], budget: u64) -> Option<u64> {
    let prune = cfg.prune_points(nodes);
    let live = cfg.live_in(nodes);
    let compared = compared_in(cfg, nodes);
    let mut kept: Vec<Vec<State>> = vec![Vec::new(); nodes.len()];
    let (mut insns, mut jumps) = (0u64, 0u64);
    let (mut last_insns, mut last_jumps) = (0u64, 0u64);
    let mut stack: Vec<(usize, State)> = cfg
        .entries
        .iter()
        .rev()
        .map(|(k, e)| (*k, State::entry(*e)))
        .collect();
    while let Some((mut k, mut s)) = stack.pop() {
        loop {
            insns += 1;
            if insns > budget {
                return None;
            }
            if prune[k] {
                if kept[k].iter().any(|o| covers(o, &s, live[k], compared[k])) {
                    break;
                }
                if jumps - last_jumps >= 2 && insns - last_insns >= 8 {
                    kept[k].push(s.clone());
                    (last_insns, last_jumps) = (insns, jumps);
                }
            }
            let i = nodes[k].insn;
            if i.is_jmp_class() {
                jumps += 1;
            }
            if i.code == insn::EXIT {
                break;
            }
            let mut next = successor_states(cfg, nodes, k, &mut s);
            let Some(first) = (!next.is_empty()).then(|| next.remove(0)) else {
                break;
            };
            // The fall-through is walked first, a jump's target later.
            stack.extend(next.into_iter().rev());
            (k, s) = first;
        }
    }
    Some(insns)
}
