//! The control flow of one code section, instruction by instruction
//! (successors, predecessors, where execution may enter), the registers
//! live at each instruction, and the removal of instructions with every
//! reference to them (jumps, symbols, BTF.ext records) moved on.

use std::collections::{HashMap, HashSet};

use crate::link::inline::liveness::use_def;
use crate::link::inline::nodes::{is_jump, Code, Node, NodeId, Pos, Target};
use crate::model::insn::{self, Insn};
use crate::model::object::{Binding, Object, SymbolKind};

use super::Why;

/// Whether an instruction always jumps (`ja`, `gotol`).
pub(super) fn is_goto(i: &Insn) -> bool {
    i.code == insn::JA || i.code == insn::GOTOL
}

/// Whether an instruction is a conditional jump.
pub(super) fn is_cond(i: &Insn) -> bool {
    is_jump(i) && !is_goto(i)
}

/// Arguments (r1 up) of helpers whose prototypes are known here: map
/// access, time, random numbers, the CPU id, redirects, tail calls, ring
/// buffers, checksums over memory, perf output.
const HELPER_ARGS: &[(i32, u8)] = &[
    (1, 2),
    (2, 4),
    (3, 2),
    (5, 0),
    (7, 0),
    (8, 0),
    (12, 3),
    (23, 2),
    (25, 5),
    (28, 5),
    (51, 3),
    (125, 0),
    (130, 4),
    (131, 3),
    (132, 2),
    (133, 2),
];

/// Registers read and written by an instruction (bit n = rn), as
/// `use_def` says, except that a call of a helper listed above reads its
/// arguments only.
pub(super) fn uses_defs(i: &Insn) -> (u16, u16) {
    let (u, d) = use_def(i);
    if i.is_call() && i.src == 0 {
        if let Some((_, n)) = HELPER_ARGS.iter().find(|(id, _)| *id == i.imm) {
            return (((1u16 << (n + 1)) - 1) & !1, d);
        }
    }
    (u, d)
}

/// How execution may enter a section at a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Entry {
    /// The start of an XDP program: r1 holds its context.
    XdpProgram,
    /// Anything else (a subprogram, a callback): nothing is known.
    Other,
}

/// One section's control flow.
pub(super) struct Cfg {
    /// Slot of every node id of the section.
    pub(super) pos: HashMap<NodeId, usize>,
    /// Whether a slot starts an instruction (not the second half of an
    /// `ld_imm64`).
    pub(super) start: Vec<bool>,
    pub(super) succ: Vec<Vec<usize>>,
    pub(super) preds: Vec<Vec<usize>>,
    /// Where execution enters from outside the section's jumps.
    pub(super) entries: Vec<(usize, Entry)>,
}

/// Whether symbol `id` is a local label (see `inline::splice`): it marks
/// an instruction without being a way in.
fn is_label(obj: &Object, id: crate::model::object::SymbolId) -> bool {
    obj.symbol(id)
        .is_some_and(|s| s.kind == SymbolKind::NoType && s.binding == Binding::Local)
}

impl Cfg {
    pub(super) fn build(code: &Code, obj: &Object, sec: usize) -> Cfg {
        let nodes = code.sec(sec).map_or(&[][..], |n| n.as_slice());
        let n = nodes.len();
        let pos: HashMap<NodeId, usize> =
            nodes.iter().enumerate().map(|(k, x)| (x.id, k)).collect();
        let mut start = vec![false; n];
        let mut succ = vec![Vec::new(); n];
        let mut k = 0;
        while k < n {
            start[k] = true;
            let i = nodes[k].insn;
            let width = if i.is_ld_imm64() { 2 } else { 1 };
            let jump = match nodes[k].target {
                Some(Target::Jump(t)) => pos.get(&t).copied(),
                _ => None,
            };
            if i.code != insn::EXIT && !is_goto(&i) && k + width < n {
                succ[k].push(k + width);
            }
            if let Some(t) = jump {
                if !succ[k].contains(&t) {
                    succ[k].push(t);
                }
            }
            k += width;
        }
        let mut preds = vec![Vec::new(); n];
        for (k, ss) in succ.iter().enumerate() {
            for s in ss {
                preds[*s].push(k);
            }
        }
        let xdp = crate::model::program::program_type(&obj.sections[sec].name) == Some("xdp");
        let mut entries: Vec<(usize, Entry)> = Vec::new();
        let mut add = |k: usize, e: Entry| {
            if let Some(x) = entries.iter_mut().find(|x| x.0 == k) {
                if x.1 != e {
                    x.1 = Entry::Other;
                }
            } else {
                entries.push((k, e));
            }
        };
        for (id, cs) in &code.syms {
            if cs.sec != sec || code.removed.contains(id) || is_label(obj, *id) {
                continue;
            }
            let Pos::At(at) = cs.start else { continue };
            let Some(k) = pos.get(&at).copied() else {
                continue;
            };
            let program = obj
                .symbol(*id)
                .is_some_and(|s| s.kind == SymbolKind::Func && s.binding != Binding::Local);
            add(
                k,
                if xdp && program {
                    Entry::XdpProgram
                } else {
                    Entry::Other
                },
            );
        }
        // Calls and code addresses, from any section.
        for (_, ns) in &code.secs {
            for x in ns {
                match x.target {
                    Some(Target::Jump(_)) | None => {}
                    Some(t) => {
                        if let Some(k) = pos.get(&t.node()) {
                            add(*k, Entry::Other);
                        }
                    }
                }
            }
        }
        // The section's first instruction is a way in, whatever names it.
        if n > 0 && !entries.iter().any(|e| e.0 == 0) {
            entries.push((0, Entry::Other));
        }
        Cfg {
            pos,
            start,
            succ,
            preds,
            entries,
        }
    }

    /// Slots reachable from the entries.
    pub(super) fn reachable(&self) -> Vec<bool> {
        let mut seen = vec![false; self.succ.len()];
        let mut stack: Vec<usize> = self.entries.iter().map(|e| e.0).collect();
        while let Some(k) = stack.pop() {
            if seen[k] {
                continue;
            }
            seen[k] = true;
            if k + 1 < seen.len() && !self.start.get(k + 1).copied().unwrap_or(true) {
                seen[k + 1] = true; // the second half of an ld_imm64
            }
            stack.extend(self.succ[k].iter().copied());
        }
        seen
    }

    /// Registers (bit n = rn) live on entry to each slot: read on some
    /// path before being written (`exit` reads r0, a call r1-r5).
    pub(super) fn live_in(&self, nodes: &[Node]) -> Vec<u16> {
        let ud: Vec<(u16, u16)> = nodes.iter().map(|x| uses_defs(&x.insn)).collect();
        self.backward(|k, out| ud[k].0 | (out & !ud[k].1))
    }

    /// A backward analysis of bit sets to its fixed point: the set before
    /// each slot is `transfer(slot, union of its successors' sets)`.
    pub(super) fn backward<T>(&self, transfer: impl Fn(usize, T) -> T) -> Vec<T>
    where
        T: Copy + Default + PartialEq + std::ops::BitOr<Output = T>,
    {
        let n = self.start.len();
        let mut sets = vec![T::default(); n];
        let mut changed = true;
        while changed {
            changed = false;
            for k in (0..n).rev() {
                if !self.start[k] {
                    continue;
                }
                let out = self.succ[k].iter().fold(T::default(), |a, s| a | sets[*s]);
                let v = transfer(k, out);
                if v != sets[k] {
                    sets[k] = v;
                    changed = true;
                }
            }
        }
        sets
    }

    /// Registers live after slot `k` (on any of its successors).
    pub(super) fn live_out(&self, live: &[u16], k: usize) -> u16 {
        self.succ[k].iter().fold(0, |a, s| a | live[*s])
    }
}

/// Removes the nodes of section `sec` whose slots `dead` marks. What
/// referred to a removed node (jumps, calls, symbol bounds) refers to the
/// next node kept; a removed node's func_info and line_info move there
/// when it has none of its own, so every function still starts with its
/// records (and a caller's line where an inlined body starts stays, see
/// below).
pub(super) fn remove(code: &mut Code, sec: usize, dead: &[bool]) -> Result<bool, Why> {
    if !dead.iter().any(|d| *d) {
        return Ok(false);
    }
    let origin = code.origin.clone();
    let Some(nodes) = code.sec_mut(sec) else {
        return Ok(false);
    };
    let mut next: Option<usize> = None;
    let mut after_next: Option<usize> = None;
    let mut moved: HashMap<NodeId, Option<NodeId>> = HashMap::new();
    for k in (0..nodes.len()).rev() {
        if !dead.get(k).copied().unwrap_or(false) {
            after_next = next;
            next = Some(k);
            continue;
        }
        moved.insert(nodes[k].id, next.map(|x| nodes[x].id));
        if let Some(x) = next {
            let (func, lines) = (nodes[k].func.take(), std::mem::take(&mut nodes[k].lines));
            if nodes[x].func.is_none() {
                nodes[x].func = func;
            }
            let from = |n: &Node| origin.get(&n.id).copied();
            if nodes[x].lines.is_empty() {
                nodes[x].lines = lines;
            } else if !lines.is_empty()
                && (from(&nodes[k]) != from(&nodes[x])
                    || lines[0].file_name_off != nodes[x].lines[0].file_name_off)
            {
                // A line of other code (the caller's, where an inlined
                // body starts, even on a node of the body it moved to
                // before) says where that body begins: it stays, and the
                // body's own first line moves one on when it can.
                let own = std::mem::replace(&mut nodes[x].lines, lines);
                // (Not onto the second half of an ld_imm64.)
                let y = after_next.filter(|_| !nodes[x].insn.is_ld_imm64());
                if let Some(y) = y {
                    if nodes[y].lines.is_empty() && from(&nodes[y]) == from(&nodes[x]) {
                        nodes[y].lines = own;
                    }
                }
            }
        }
    }
    let mut k = 0;
    nodes.retain(|_| {
        k += 1;
        !dead.get(k - 1).copied().unwrap_or(false)
    });
    for (_, ns) in &mut code.secs {
        for x in ns.iter_mut() {
            let Some(t) = &mut x.target else { continue };
            let slot = match t {
                Target::Jump(t)
                | Target::LocalCall(t)
                | Target::SectionCall(t)
                | Target::SectionFunc(t)
                | Target::SectionAddr(t) => t,
            };
            if let Some(to) = moved.get(slot) {
                *slot = to.ok_or("an instruction something jumps to was removed")?;
            }
        }
    }
    for cs in code.syms.values_mut() {
        for p in [&mut cs.start, &mut cs.end] {
            if let Pos::At(at) = *p {
                if let Some(to) = moved.get(&at) {
                    *p = to.map_or(Pos::End, Pos::At);
                }
            }
        }
    }
    for id in moved.keys() {
        code.origin.remove(id);
    }
    Ok(true)
}

/// Node ids that a symbol starts or ends at.
pub(super) fn symbol_bounds(code: &Code, sec: usize) -> HashSet<NodeId> {
    let mut out = HashSet::new();
    for cs in code.syms.values().filter(|c| c.sec == sec) {
        for p in [cs.start, cs.end] {
            if let Pos::At(x) = p {
                out.insert(x);
            }
        }
    }
    out
}

impl Cfg {
    /// Where the verifier compares states (its prune points): every
    /// conditional jump, every jump's target, and the instruction after
    /// every call. A state it reaches elsewhere is never compared with
    /// earlier ones, so paths that meet there are walked on separately
    /// until the next prune point.
    pub(super) fn prune_points(&self, nodes: &[Node]) -> Vec<bool> {
        let mut out = vec![false; nodes.len()];
        for (k, n) in nodes.iter().enumerate() {
            if !self.start[k] {
                continue;
            }
            let i = n.insn;
            if is_cond(&i) {
                out[k] = true;
            }
            if is_jump(&i) {
                if let Some(Target::Jump(t)) = n.target {
                    if let Some(t) = self.pos.get(&t) {
                        out[*t] = true;
                    }
                }
            }
            if (i.is_call() || i.is_callx()) && k + 1 < out.len() {
                out[k + 1] = true;
            }
        }
        out
    }
}
