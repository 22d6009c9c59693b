//! A model of how much of a section the verifier walks: its depth-first
//! exploration of paths (fall-through first, a conditional jump's other
//! way later), following the constants each path holds (a comparison it
//! can decide goes one way only), cut short where it finds a state it
//! kept before. States are kept at prune points only (see
//! [`Cfg::prune_points`]), and only once the walk has gone through two
//! jumps and eight instructions since the last state kept, as the
//! kernel's verifier does to save memory.
//!
//! Rewrites that shorten the code can make the verifier walk more: paths
//! that met where a state was kept meet elsewhere (a jump threaded past),
//! or fewer jumps on the way keep states elsewhere (a `goto` removed), and
//! each path walks on alone. The pass compares this model's count before
//! and after to keep what the verifier proves no dearer. (Where the model
//! keeps a state covering another is rougher than the kernel's ranges
//! and precision: its count is a comparison between two versions of the
//! same code, not the kernel's.)

use crate::link::inline::nodes::Node;
use crate::model::insn;

use super::cfg::Cfg;
use super::values::{successor_states, State, Val};

/// Whether a kept state `old` covers `new` on the registers `live`: the
/// same value, or a constant where nothing was known.
fn covers(old: &State, new: &State, live: u16) -> bool {
    (0..11).all(|r| {
        live & (1 << r) == 0
            || old.regs[r] == new.regs[r]
            || old.regs[r] == Val::Unknown && matches!(new.regs[r], Val::Const(_))
    })
}

/// Instructions the verifier would walk in this section from its entries
/// (`None`: past `budget` steps, too many to tell).
pub(super) fn walked(cfg: &Cfg, nodes: &[Node], budget: u64) -> Option<u64> {
    let prune = cfg.prune_points(nodes);
    let live = cfg.live_in(nodes);
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
                if kept[k].iter().any(|o| covers(o, &s, live[k])) {
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
