//! Stack slots that are only spilled to and filled from become registers.
//!
//! Inlining leaves values on the stack that a register could hold: the
//! dispatcher's context when every callee-saved register is written by
//! some component (`*(u64 *)(r10 - 8) = r1` and a fill before every
//! component), the callee-saved registers spilled around an inlined body,
//! and a compiler's own spills. Once dead code is gone, a register is
//! often free over the whole time such a value waits: then each store to
//! the slot becomes a copy into that register, each fill a copy out of it
//! (which copy propagation then removes), and a store whose value no fill
//! reads goes.
//!
//! A slot qualifies when every access to its eight bytes is a 64-bit store
//! of a register or a 64-bit load at its exact offset, no pointer derived
//! from `r10` may reach it (see [`Reach`]), and no way into the function
//! reads it before a store. The register chosen is written by nothing
//! while the value waits and holds nothing needed then; a call writes
//! r0-r5, so across calls only r6-r9 qualify.
//!
//! What the verifier proves stays: an 8-byte spill keeps the whole state
//! of the register spilled (a scalar's bounds and precision marks, a
//! packet pointer with its range, the context) and a fill gives it back,
//! which is what a register copy does; a call that changes the packet
//! invalidates packet pointers in registers as in spilled slots. The
//! frame keeps its layout: a slot left unused is not reclaimed, so the
//! stack depth the verifier computes from the deepest access (inlined
//! bodies sit below these slots) is unchanged or smaller, and nothing
//! records it elsewhere (func_info and BTF carry no stack depth).

use crate::link::inline::nodes::{Code, Node};
use crate::model::insn::{self, Insn};
use crate::model::object::{Object, SymbolId};

use super::cfg::{remove, uses_defs, Cfg};
use super::Why;

/// What a register may hold, as far as the stack is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ptr {
    /// Not a pointer into this frame.
    No,
    /// `r10 + off`, made by code whose own frame ends at `top` (an
    /// inlined body's frame lies below its caller's: it cannot reach
    /// above it).
    At { off: i64, top: i64 },
    /// Some pointer into the frame, where exactly is not followed.
    Any,
}

impl Ptr {
    fn meet(self, o: Ptr) -> Ptr {
        if self == o {
            self
        } else {
            Ptr::Any
        }
    }

    fn is_ptr(self) -> bool {
        self != Ptr::No
    }
}

/// Bytes of the frame (offsets from r10, `lo..hi`; empty for none) an
/// instruction may reach other than through `r10` itself, or the whole
/// frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reach {
    Bytes(i64, i64),
    All,
}

impl Reach {
    fn overlaps(self, lo: i64, hi: i64) -> bool {
        match self {
            Reach::All => true,
            Reach::Bytes(a, b) => a < hi && lo < b,
        }
    }
}

/// Whether an instruction reads `r10` as a value (not as the base of a
/// memory access).
fn reads_r10_as_value(i: &Insn) -> bool {
    let (u, _) = uses_defs(i);
    if u & (1 << insn::R10) == 0 {
        return false;
    }
    match i.class() {
        insn::BPF_LDX => i.mode() != insn::BPF_MEM && i.mode() != insn::BPF_MEMSX,
        insn::BPF_ST => false,
        insn::BPF_STX => i.mode() != insn::BPF_MEM || i.src == insn::R10,
        _ => true,
    }
}

/// Whether instruction `i` accesses `r10 + off` directly: (offset, bytes).
fn direct(i: &Insn) -> Option<(i64, i64)> {
    let base = match i.class() {
        insn::BPF_LDX => i.src,
        insn::BPF_ST | insn::BPF_STX => i.dst,
        _ => return None,
    };
    (base == insn::R10).then(|| (i64::from(i.off), i64::from(i.access_bytes())))
}

fn is_spill(i: &Insn) -> bool {
    i.code == insn::BPF_STX | insn::BPF_MEM | insn::BPF_DW
        && i.dst == insn::R10
        && i.src <= 9
        && i.off % 8 == 0
}

fn is_fill(i: &Insn) -> bool {
    i.code == insn::BPF_LDX | insn::BPF_MEM | insn::BPF_DW
        && i.src == insn::R10
        && i.dst <= 9
        && i.off % 8 == 0
}

/// Registers an instruction writes; `callx` writes r0-r5 like a call.
fn defs(i: &Insn) -> u16 {
    if i.is_callx() {
        0x3f
    } else {
        uses_defs(i).1
    }
}

/// One function's view: what pointers into its frame may reach, per
/// slot. `None`: a frame pointer escapes to memory, so anything may.
fn reaches(
    cfg: &Cfg,
    nodes: &[Node],
    range: &std::ops::Range<usize>,
    top_of: &dyn Fn(usize) -> i64,
) -> Option<Vec<Reach>> {
    let n = nodes.len();
    let mut state: Vec<Option<[Ptr; 11]>> = vec![None; n];
    let mut work: Vec<usize> = Vec::new();
    for (k, _) in cfg.entries.iter().filter(|e| range.contains(&e.0)) {
        state[*k] = Some([Ptr::No; 11]);
        work.push(*k);
    }
    if range.start < n && state[range.start].is_none() {
        state[range.start] = Some([Ptr::No; 11]);
        work.push(range.start);
    }
    let mut reach = vec![Reach::Bytes(0, 0); n];
    let mut budget = 64 * (range.len() + 1);
    while let Some(k) = work.pop() {
        budget = budget.checked_sub(1)?;
        let Some(regs) = state[k] else { continue };
        let i = nodes[k].insn;
        let (dst, src) = ((i.dst & 0xf) as usize, (i.src & 0xf) as usize);
        let get = |r: usize| regs.get(r).copied().unwrap_or(Ptr::Any);
        // A frame pointer stored to memory: it could come back anywhere.
        if i.class() == insn::BPF_STX && (src == 10 || get(src).is_ptr()) {
            return None;
        }
        let through = |base: usize| match get(base) {
            Ptr::No => Reach::Bytes(0, 0),
            Ptr::At { off, .. } => {
                let at = off + i64::from(i.off);
                Reach::Bytes(at, at + i64::from(i.access_bytes()))
            }
            Ptr::Any => Reach::All,
        };
        reach[k] = match i.class() {
            insn::BPF_LDX if src != 10 => through(src),
            insn::BPF_ST | insn::BPF_STX if dst != 10 => through(dst),
            _ if i.is_call() || i.is_callx() => {
                // A callee reaches from the pointer up to the end of the
                // frame of the code that made it.
                let mut r = Reach::Bytes(0, 0);
                for a in 1..=5 {
                    let x = match get(a) {
                        Ptr::No => continue,
                        Ptr::At { off, top } if off < top => Reach::Bytes(off, top),
                        _ => Reach::All,
                    };
                    r = match (r, x) {
                        (Reach::Bytes(0, 0), x) => x,
                        (Reach::Bytes(a0, b0), Reach::Bytes(a1, b1)) => {
                            Reach::Bytes(a0.min(a1), b0.max(b1))
                        }
                        _ => Reach::All,
                    };
                }
                r
            }
            _ => Reach::Bytes(0, 0),
        };
        let mut out = regs;
        let d = defs(&i);
        let value = if i.code == insn::BPF_ALU64 | insn::BPF_MOV | insn::BPF_X && i.off == 0 {
            if src == 10 {
                Ptr::At {
                    off: 0,
                    top: top_of(k),
                }
            } else {
                get(src)
            }
        } else if i.is_alu() && i.op() == insn::BPF_MOV {
            // A 32-bit copy of a pointer, or a sign-extending one: some
            // pointer, not followed.
            let from = i.source() == insn::BPF_X && (src == 10 || get(src).is_ptr());
            if from {
                Ptr::Any
            } else {
                Ptr::No
            }
        } else if i.is_alu() {
            let operand = if i.source() == insn::BPF_X {
                if src == 10 {
                    Ptr::Any
                } else {
                    get(src)
                }
            } else {
                Ptr::No
            };
            match (i.code, get(dst), operand) {
                (c, Ptr::At { off, top }, Ptr::No) if c == insn::BPF_ALU64 | insn::BPF_ADD => {
                    Ptr::At {
                        off: off + i64::from(i.imm),
                        top,
                    }
                }
                (c, Ptr::At { off, top }, Ptr::No) if c == insn::BPF_ALU64 | insn::BPF_SUB => {
                    Ptr::At {
                        off: off - i64::from(i.imm),
                        top,
                    }
                }
                (_, a, b) if a.is_ptr() || b.is_ptr() => Ptr::Any,
                _ => Ptr::No,
            }
        } else {
            Ptr::No
        };
        for (r, v) in out.iter_mut().enumerate() {
            if d & (1 << r) != 0 {
                *v = Ptr::No;
            }
        }
        if d & (1 << dst) != 0 && dst < 11 {
            out[dst] = value;
        }
        for &s in &cfg.succ[k] {
            if !range.contains(&s) {
                continue;
            }
            let merged = match state[s] {
                None => Some(out),
                Some(old) => {
                    let mut m = old;
                    for r in 0..11 {
                        m[r] = old[r].meet(out[r]);
                    }
                    (m != old).then_some(m)
                }
            };
            if let Some(m) = merged {
                state[s] = Some(m);
                work.push(s);
            }
        }
    }
    Some(reach)
}

/// The slots of one function that may become registers: their offsets.
fn candidates(
    cfg: &Cfg,
    nodes: &[Node],
    range: &std::ops::Range<usize>,
    top_of: &dyn Fn(usize) -> i64,
) -> Vec<i64> {
    let mut slots: Vec<i64> = Vec::new();
    let mut other: Vec<(i64, i64)> = Vec::new();
    for k in range.clone() {
        if !cfg.start[k] {
            continue;
        }
        let n = &nodes[k];
        let i = n.insn;
        let copy = i.code == insn::BPF_ALU64 | insn::BPF_MOV | insn::BPF_X && i.off == 0;
        if reads_r10_as_value(&i) && !copy {
            return Vec::new(); // r10 in arithmetic: not followed
        }
        let Some((off, len)) = direct(&i) else {
            continue;
        };
        let plain = n.reloc.is_none() && n.core.is_empty();
        if plain && (is_spill(&i) || is_fill(&i)) {
            if is_spill(&i) && !slots.contains(&off) {
                slots.push(off);
            }
        } else {
            other.push((off, off + len));
        }
    }
    let Some(reach) = reaches(cfg, nodes, range, top_of) else {
        return Vec::new();
    };
    slots.retain(|&off| {
        let (lo, hi) = (off, off + 8);
        !other.iter().any(|(a, b)| *a < hi && lo < *b)
            && !range
                .clone()
                .any(|k| cfg.start[k] && reach[k].overlaps(lo, hi))
    });
    slots.sort_unstable_by(|a, b| b.cmp(a));
    slots.truncate(64);
    slots
}

/// Per slot, whether its value is live before each instruction (bit j =
/// `slots[j]`), within `range`.
fn slot_liveness(
    cfg: &Cfg,
    nodes: &[Node],
    range: &std::ops::Range<usize>,
    slots: &[i64],
) -> Vec<u64> {
    let bit = |i: &Insn| {
        slots
            .iter()
            .position(|s| i64::from(i.off) == *s)
            .map_or(0u64, |j| 1 << j)
    };
    let n = nodes.len();
    let (mut uses, mut kills) = (vec![0u64; n], vec![0u64; n]);
    for k in range.clone() {
        let i = nodes[k].insn;
        if !cfg.start[k] {
            continue;
        }
        if is_fill(&i) {
            uses[k] = bit(&i);
        } else if is_spill(&i) {
            kills[k] = bit(&i);
        }
    }
    let mut live = vec![0u64; n];
    let mut changed = true;
    while changed {
        changed = false;
        for k in range.clone().rev() {
            if !cfg.start[k] {
                continue;
            }
            // Leaving the function's body: assume every slot is read.
            let out = cfg.succ[k].iter().fold(0u64, |a, s| {
                a | if range.contains(s) {
                    live[*s]
                } else {
                    u64::MAX
                }
            });
            let v = uses[k] | (out & !kills[k]);
            if v != live[k] {
                live[k] = v;
                changed = true;
            }
        }
    }
    live
}

/// Replaces one slot of one function in `sec` by a register (or removes
/// its dead stores); whether it did.
fn one_slot(code: &mut Code, obj: &Object, sec: usize) -> Result<bool, Why> {
    let cfg = Cfg::build(code, obj, sec);
    let Some(nodes) = code.sec(sec) else {
        return Ok(false);
    };
    let functions: Vec<(SymbolId, std::ops::Range<usize>)> = code
        .functions(obj)
        .into_iter()
        .filter(|(_, s, _)| *s == sec)
        .map(|(f, _, r)| (f, r))
        .collect();
    let reached = cfg.reachable();
    let live_regs = cfg.live_in(nodes);
    for (_, range) in functions {
        // Code inlined into `f` lies below the slots of `f` and the
        // registers saved around it, so its pointers reach no higher.
        let top_of = |k: usize| code.frame_top.get(&nodes[k].id).copied().unwrap_or(0);
        let slots = candidates(&cfg, nodes, &range, &top_of);
        if slots.is_empty() {
            continue;
        }
        let live = slot_liveness(&cfg, nodes, &range, &slots);
        let entry_live = cfg
            .entries
            .iter()
            .filter(|e| range.contains(&e.0))
            .fold(0u64, |a, e| a | live[e.0])
            | live[range.start];
        let out = |k: usize| {
            cfg.succ[k].iter().fold(0u64, |a, s| {
                a | if range.contains(s) {
                    live[*s]
                } else {
                    u64::MAX
                }
            })
        };
        for (j, &off) in slots.iter().enumerate() {
            let b = 1u64 << j;
            if entry_live & b != 0 {
                continue;
            }
            let at_slot = |i: &Insn| i64::from(i.off) == off;
            let accesses: Vec<usize> = range
                .clone()
                .filter(|k| {
                    cfg.start[*k]
                        && (is_spill(&nodes[*k].insn) || is_fill(&nodes[*k].insn))
                        && at_slot(&nodes[*k].insn)
                })
                .collect();
            // Every slot where the value must survive the instruction.
            let waits: Vec<usize> = range
                .clone()
                .filter(|k| cfg.start[*k] && reached[*k] && out(*k) & b != 0)
                .collect();
            let fits = |r: u8| -> bool {
                let rb = 1u16 << r;
                waits.iter().all(|&k| {
                    let i = nodes[k].insn;
                    if is_spill(&i) && at_slot(&i) {
                        return cfg.live_out(&live_regs, k) & rb == 0 || i.src == r;
                    }
                    let fill_into_r = is_fill(&i) && at_slot(&i) && i.dst == r;
                    defs(&i) & rb == 0 || fill_into_r
                })
            };
            let mut prefer: Vec<u8> = Vec::new();
            for &k in &accesses {
                let i = nodes[k].insn;
                let r = if is_spill(&i) { i.src } else { i.dst };
                if !prefer.contains(&r) {
                    prefer.push(r);
                }
            }
            prefer.extend([6, 7, 8, 9, 0, 1, 2, 3, 4, 5]);
            let Some(r) = prefer.into_iter().find(|r| fits(*r)) else {
                continue;
            };
            let mut dead = vec![false; nodes.len()];
            let mut edits: Vec<(usize, Insn)> = Vec::new();
            for &k in &accesses {
                let i = nodes[k].insn;
                if is_spill(&i) {
                    if out(k) & b == 0 {
                        dead[k] = true;
                    } else {
                        edits.push((k, Insn::mov64_reg(r, i.src)));
                    }
                } else {
                    edits.push((k, Insn::mov64_reg(i.dst, r)));
                }
            }
            let nodes = code.sec_mut(sec).ok_or("no section")?;
            for (k, i) in edits {
                nodes[k].insn = i;
            }
            remove(code, sec, &dead)?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// Stack slots only spilled to and filled from become registers (see
/// the module's documentation), one after another until none is left.
pub(super) fn slots(code: &mut Code, obj: &Object, sec: usize) -> Result<bool, Why> {
    let mut changed = false;
    for _ in 0..256 {
        if !one_slot(code, obj, sec)? {
            break;
        }
        changed = true;
    }
    Ok(changed)
}
