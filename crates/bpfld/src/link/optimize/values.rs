//! What is known about the registers before each instruction (a forward
//! data-flow analysis): constants, the XDP context, the packet pointers
//! loaded from it (with a constant added), and which packet bounds have
//! been proven on the way. Knowledge about packet pointers lasts until an
//! instruction that may change the packet (any call other than a few
//! helpers known not to).

use crate::link::inline::liveness::use_def;
use crate::link::inline::nodes::Node;
use crate::model::insn::{self, Insn};

use super::cfg::{is_cond, Cfg, Entry};

/// What a register holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Val {
    Unknown,
    /// A known 64-bit value.
    Const(u64),
    /// The XDP program's context (`struct xdp_md *`).
    Ctx,
    /// The context's field at byte `field` (0 `data`, 4 `data_end`, 8
    /// `data_meta`) as loaded since the packet last could change, plus
    /// `add`.
    Pkt {
        field: i16,
        add: i64,
    },
}

/// A proven bound: the packet pointer `lo` plus `add` is at most `hi`
/// (both context fields, unsigned comparison).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Fact {
    pub(super) lo: i16,
    pub(super) hi: i16,
    pub(super) add: i64,
}

/// What is known before an instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct State {
    pub(super) regs: [Val; 11],
    /// Per register, the packet range the verifier knows for it: bytes
    /// from the start of the packet (or metadata) that its accesses may
    /// reach. A pointer loaded from the context starts at 0; a bounds
    /// check raises it for every register holding a pointer of the same
    /// kind, as the verifier does.
    pub(super) range: [i64; 11],
    /// Registers that may hold a packet (or metadata) pointer the
    /// analysis does not follow exactly (bit n = rn).
    pub(super) may_pkt: u16,
    /// At most one fact per (lo, hi), the strongest.
    pub(super) facts: Vec<Fact>,
}

/// How a conditional jump goes, when known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Outcome {
    pub(super) taken: bool,
    /// Whether it is known from packet bounds (then removing the
    /// comparison takes a proven range away from the verifier, which is
    /// only safe when no packet pointer it would apply to is used later).
    pub(super) by_packet: bool,
}

/// Helpers known not to change packet data (the kernel's
/// `bpf_helper_changes_pkt_data` marks none of them): map access, time,
/// random numbers, the CPU id, redirects, output to perf and ring
/// buffers, checksums over memory.
const KEEPS_PACKET: &[i32] = &[
    1, 2, 3, 5, 6, 7, 8, 23, 25, 28, 51, 87, 88, 89, 125, 130, 131, 132, 133,
];

/// Whether a call may change the packet (and so its pointers and length).
pub(super) fn changes_packet(i: &Insn) -> bool {
    !(i.is_call() && i.src == 0 && KEEPS_PACKET.contains(&i.imm))
}

/// Whether a value points into the packet (its data or metadata, whose
/// range the verifier tracks), as opposed to its end.
pub(super) fn is_packet_pointer(v: Val) -> bool {
    matches!(v, Val::Pkt { field, .. } if field != 4)
}

impl State {
    pub(super) fn unknown() -> State {
        State {
            regs: [Val::Unknown; 11],
            range: [0; 11],
            may_pkt: 0,
            facts: Vec::new(),
        }
    }

    pub(super) fn entry(e: Entry) -> State {
        let mut s = State::unknown();
        if e == Entry::XdpProgram {
            s.regs[1] = Val::Ctx;
        } else {
            // A subprogram's arguments may be packet pointers.
            s.may_pkt = 0x3e;
        }
        s
    }

    /// What holds on both of two paths.
    fn meet(&mut self, o: &State) -> bool {
        let before = self.clone();
        for (a, b) in self.regs.iter_mut().zip(&o.regs) {
            if a != b {
                *a = Val::Unknown;
            }
        }
        for (a, b) in self.range.iter_mut().zip(&o.range) {
            *a = (*a).min(*b);
        }
        self.may_pkt |= o.may_pkt;
        self.facts.retain_mut(
            |f| match o.facts.iter().find(|g| g.lo == f.lo && g.hi == f.hi) {
                Some(g) => {
                    f.add = f.add.min(g.add);
                    true
                }
                None => false,
            },
        );
        *self != before
    }

    fn prove(&mut self, lo: i16, hi: i16, add: i64) {
        match self.facts.iter_mut().find(|f| f.lo == lo && f.hi == hi) {
            Some(f) => f.add = f.add.max(add),
            None => {
                self.facts.push(Fact { lo, hi, add });
                self.facts.sort();
            }
        }
    }

    /// Whether `lo + a <= hi + b` is proven (`strict`: `<`).
    fn proven_le(&self, lo: (i16, i64), hi: (i16, i64), strict: bool) -> bool {
        let need = lo.1 - hi.1 + i64::from(strict);
        self.facts
            .iter()
            .any(|f| f.lo == lo.0 && f.hi == hi.0 && f.add >= need)
    }

    fn forget_packet(&mut self) {
        for (r, v) in self.regs.iter_mut().enumerate() {
            if matches!(v, Val::Pkt { .. }) {
                *v = Val::Unknown;
                // Still a pointer the verifier tracks (now invalid).
                self.may_pkt |= 1 << r;
            }
        }
        self.facts.clear();
    }

    /// Whether register `r` may point into the packet or its metadata.
    pub(super) fn packet_pointer(&self, r: usize) -> bool {
        is_packet_pointer(self.regs[r]) || self.may_pkt & (1 << r) != 0
    }

    /// The state after instruction `i` (not a jump's edge facts: see
    /// [`State::edge`]).
    pub(super) fn step(&mut self, i: &Insn, hi: Option<&Insn>, relocated: bool) {
        let (dst, src) = ((i.dst & 0xf) as usize, (i.src & 0xf) as usize);
        let defs = use_def(i).1;
        let before = self.regs;
        let (range_before, may_before) = (self.range, self.may_pkt);
        let bit = |r: usize| -> u16 {
            if r < 11 {
                1 << r
            } else {
                0
            }
        };
        // A pointer stays one through register-to-register arithmetic.
        let mut may_after = match i.class() {
            insn::BPF_ALU | insn::BPF_ALU64 if i.source() == insn::BPF_X => {
                let from_src = may_before & bit(src) != 0
                    || is_packet_pointer(before.get(src).copied().unwrap_or(Val::Unknown));
                let keeps_dst = i.op() != insn::BPF_MOV
                    && (may_before & bit(dst) != 0
                        || is_packet_pointer(before.get(dst).copied().unwrap_or(Val::Unknown)));
                from_src || keeps_dst
            }
            insn::BPF_ALU | insn::BPF_ALU64 => {
                i.op() != insn::BPF_MOV
                    && (may_before & bit(dst) != 0
                        || is_packet_pointer(before.get(dst).copied().unwrap_or(Val::Unknown)))
            }
            _ => false,
        };
        let range_after = match i.class() {
            insn::BPF_ALU64 if i.op() == insn::BPF_MOV && i.source() == insn::BPF_X => {
                range_before.get(src).copied().unwrap_or(0)
            }
            insn::BPF_ALU64
                if matches!(i.op(), insn::BPF_ADD | insn::BPF_SUB) && i.source() == insn::BPF_K =>
            {
                range_before.get(dst).copied().unwrap_or(0)
            }
            _ => 0,
        };
        let new = match i.class() {
            insn::BPF_ALU64 | insn::BPF_ALU if dst < 11 && i.off == 0 => {
                let wide = i.class() == insn::BPF_ALU64;
                let operand = if i.source() == insn::BPF_X {
                    before.get(src).copied().unwrap_or(Val::Unknown)
                } else if wide {
                    Val::Const(i64::from(i.imm) as u64)
                } else {
                    Val::Const(u64::from(i.imm as u32))
                };
                let v = match (i.op(), before[dst], operand) {
                    (insn::BPF_MOV, _, x) if wide => x,
                    (insn::BPF_MOV, _, Val::Const(c)) => Val::Const(c & 0xffff_ffff),
                    (insn::BPF_ADD, Val::Pkt { field, add }, Val::Const(c)) if wide => Val::Pkt {
                        field,
                        add: add.wrapping_add(c as i64),
                    },
                    (insn::BPF_SUB, Val::Pkt { field, add }, Val::Const(c)) if wide => Val::Pkt {
                        field,
                        add: add.wrapping_sub(c as i64),
                    },
                    (op, Val::Const(a), Val::Const(b)) => match alu(op, a, b, wide) {
                        Some(v) => Val::Const(v),
                        None => Val::Unknown,
                    },
                    _ => Val::Unknown,
                };
                Some(v)
            }
            insn::BPF_LD if i.is_ld_imm64() && !relocated && i.src == 0 => {
                let high = hi.map_or(0, |h| u64::from(h.imm as u32));
                Some(Val::Const(u64::from(i.imm as u32) | high << 32))
            }
            insn::BPF_LDX
                if i.mode() == insn::BPF_MEM
                    && i.size() == insn::BPF_W
                    && before.get(src) == Some(&Val::Ctx)
                    && matches!(i.off, 0 | 4 | 8) =>
            {
                Some(Val::Pkt {
                    field: i.off,
                    add: 0,
                })
            }
            _ => None,
        };
        if i.is_call() && changes_packet(i) {
            self.forget_packet();
        }
        for (r, v) in self.regs.iter_mut().enumerate() {
            if defs & (1 << r) != 0 {
                *v = Val::Unknown;
                self.range[r] = 0;
                self.may_pkt &= !(1 << r);
            }
        }
        if defs & bit(dst) != 0 {
            if let Some(v) = new {
                self.regs[dst] = v;
            }
            if is_packet_pointer(self.regs[dst]) {
                may_after = false; // followed exactly
            }
            self.range[dst] = range_after;
            if may_after {
                self.may_pkt |= bit(dst);
            }
        }
    }

    /// Packet pointer operands of a comparison between two registers.
    fn packet_operands(&self, i: &Insn) -> Option<((i16, i64), (i16, i64))> {
        if i.class() != insn::BPF_JMP || i.source() != insn::BPF_X {
            return None;
        }
        let get = |r: u8| match self.regs.get((r & 0xf) as usize) {
            Some(Val::Pkt { field, add }) => Some((*field, *add)),
            _ => None,
        };
        Some((get(i.dst)?, get(i.src)?))
    }

    /// The state along one edge of conditional jump `i`: a comparison of
    /// packet pointers proves a bound on the way it goes.
    pub(super) fn edge(&self, i: &Insn, taken: bool) -> State {
        let mut s = self.clone();
        let Some((a, b)) = self.packet_operands(i) else {
            return s;
        };
        // (x, y, strict): x + .. <= y + .., or < when strict.
        let le = |x: (i16, i64), y: (i16, i64), strict: bool| (x, y, strict);
        let fact = match (i.op(), taken) {
            (insn::BPF_JGT, false) | (insn::BPF_JLE, true) => Some(le(a, b, false)),
            (insn::BPF_JGT, true) | (insn::BPF_JLE, false) => Some(le(b, a, true)),
            (insn::BPF_JGE, false) | (insn::BPF_JLT, true) => Some(le(a, b, true)),
            (insn::BPF_JGE, true) | (insn::BPF_JLT, false) => Some(le(b, a, false)),
            _ => None,
        };
        if let Some((x, y, strict)) = fact {
            s.prove(x.0, y.0, x.1 - y.1 + i64::from(strict));
            // The verifier: pointer + off within the end gives every
            // pointer of its kind the range off.
            if x.0 != 4 && y.0 == 4 && y.1 == 0 && x.1 > 0 {
                for r in 0..11 {
                    if matches!(s.regs[r], Val::Pkt { field, .. } if field == x.0) {
                        s.range[r] = s.range[r].max(x.1);
                    }
                }
            }
        }
        s
    }

    /// The range a check by conditional jump `i` gives packet pointers of
    /// its kind on the way it goes (`taken`), as the verifier computes it:
    /// the checked pointer's offset, one more when the comparison is
    /// strict (`data + off < data_end`). (the kind, the range); `None`
    /// when it gives none.
    pub(super) fn check_range(&self, i: &Insn, taken: bool) -> Option<(i16, i64)> {
        let (a, b) = self.packet_operands(i)?;
        let (x, y, strict) = match (i.op(), taken) {
            (insn::BPF_JGT, false) | (insn::BPF_JLE, true) => (a, b, false),
            (insn::BPF_JGE, false) | (insn::BPF_JLT, true) => (a, b, true),
            (insn::BPF_JGT, true) | (insn::BPF_JLE, false) => (b, a, true),
            (insn::BPF_JGE, true) | (insn::BPF_JLT, false) => (b, a, false),
            _ => return None,
        };
        // Data against its end, metadata against data: the lower side's
        // pointers gain the range. Two pointers of one kind: nothing.
        (x.0 != 4 && y.0 != x.0).then_some((x.0, x.1 + i64::from(strict)))
    }

    /// How conditional jump `i` goes in this state, when known.
    pub(super) fn outcome(&self, i: &Insn) -> Option<Outcome> {
        if !is_cond(i) || i.code == insn::JCOND {
            return None;
        }
        if let Some((a, b)) = self.packet_operands(i) {
            let le = |x, y| self.proven_le(x, y, false);
            let lt = |x, y| self.proven_le(x, y, true);
            let taken = match i.op() {
                insn::BPF_JGT if le(a, b) => Some(false),
                insn::BPF_JGT if lt(b, a) => Some(true),
                insn::BPF_JGE if lt(a, b) => Some(false),
                insn::BPF_JGE if le(b, a) => Some(true),
                insn::BPF_JLT if lt(a, b) => Some(true),
                insn::BPF_JLT if le(b, a) => Some(false),
                insn::BPF_JLE if le(a, b) => Some(true),
                insn::BPF_JLE if lt(b, a) => Some(false),
                _ => None,
            };
            return taken.map(|taken| Outcome {
                taken,
                by_packet: true,
            });
        }
        let Val::Const(a) = self.regs.get((i.dst & 0xf) as usize).copied()? else {
            return None;
        };
        let b = if i.source() == insn::BPF_X {
            match self.regs.get((i.src & 0xf) as usize).copied()? {
                Val::Const(b) => b,
                _ => return None,
            }
        } else {
            i64::from(i.imm) as u64
        };
        let wide = i.class() == insn::BPF_JMP;
        compare(i.op(), a, b, wide).map(|taken| Outcome {
            taken,
            by_packet: false,
        })
    }
}

/// A constant ALU operation, as the kernel computes it (division by zero
/// gives 0, modulo by zero leaves the dividend).
fn alu(op: u8, a: u64, b: u64, wide: bool) -> Option<u64> {
    let v = if wide {
        match op {
            insn::BPF_ADD => a.wrapping_add(b),
            insn::BPF_SUB => a.wrapping_sub(b),
            insn::BPF_MUL => a.wrapping_mul(b),
            insn::BPF_OR => a | b,
            insn::BPF_AND => a & b,
            insn::BPF_XOR => a ^ b,
            insn::BPF_LSH => a.wrapping_shl((b & 63) as u32),
            insn::BPF_RSH => a.wrapping_shr((b & 63) as u32),
            _ => return None,
        }
    } else {
        let (a, b) = (a as u32, b as u32);
        u64::from(match op {
            insn::BPF_ADD => a.wrapping_add(b),
            insn::BPF_SUB => a.wrapping_sub(b),
            insn::BPF_MUL => a.wrapping_mul(b),
            insn::BPF_OR => a | b,
            insn::BPF_AND => a & b,
            insn::BPF_XOR => a ^ b,
            insn::BPF_LSH => a.wrapping_shl(b & 31),
            insn::BPF_RSH => a.wrapping_shr(b & 31),
            _ => return None,
        })
    };
    Some(v)
}

/// Whether a conditional jump with operator `op` is taken on `a`, `b`
/// (`wide`: 64-bit comparison, else the low 32 bits).
fn compare(op: u8, a: u64, b: u64, wide: bool) -> Option<bool> {
    let (ua, ub, sa, sb) = if wide {
        (a, b, a as i64, b as i64)
    } else {
        (
            u64::from(a as u32),
            u64::from(b as u32),
            i64::from(a as u32 as i32),
            i64::from(b as u32 as i32),
        )
    };
    Some(match op {
        insn::BPF_JEQ => ua == ub,
        insn::BPF_JNE => ua != ub,
        insn::BPF_JGT => ua > ub,
        insn::BPF_JGE => ua >= ub,
        insn::BPF_JLT => ua < ub,
        insn::BPF_JLE => ua <= ub,
        insn::BPF_JSET => ua & ub != 0,
        insn::BPF_JSGT => sa > sb,
        insn::BPF_JSGE => sa >= sb,
        insn::BPF_JSLT => sa < sb,
        insn::BPF_JSLE => sa <= sb,
        _ => return None,
    })
}

/// The states before every slot of a section (`None`: not reached, or
/// nothing known).
/// Edges a comparison of constants never takes are not followed; those
/// known only from packet bounds are (the comparison may stay).
pub(super) fn analyse(cfg: &Cfg, nodes: &[Node]) -> Vec<Option<State>> {
    let n = nodes.len();
    let mut states: Vec<Option<State>> = vec![None; n];
    let mut work: Vec<usize> = Vec::new();
    let merge = |states: &mut Vec<Option<State>>, work: &mut Vec<usize>, k: usize, s: State| {
        match &mut states[k] {
            Some(old) => {
                if old.meet(&s) {
                    work.push(k);
                }
            }
            slot @ None => {
                *slot = Some(s);
                work.push(k);
            }
        }
    };
    for (k, e) in &cfg.entries {
        merge(&mut states, &mut work, *k, State::entry(*e));
    }
    // Every change only forgets something, so this settles; the budget
    // is a guard: past it nothing is known (and nothing is rewritten).
    let mut budget = 256 * (n + 1);
    while let Some(k) = work.pop() {
        budget = budget.saturating_sub(1);
        if budget == 0 {
            return vec![None; n];
        }
        let Some(mut s) = states[k].clone() else {
            continue;
        };
        for (to, st) in successor_states(cfg, nodes, k, &mut s) {
            merge(&mut states, &mut work, to, st);
        }
    }
    states
}

/// The state along each edge out of slot `k`, given the state `s` before
/// it (consumed).
pub(super) fn successor_states(
    cfg: &Cfg,
    nodes: &[Node],
    k: usize,
    s: &mut State,
) -> Vec<(usize, State)> {
    let i = nodes[k].insn;
    let known = s.outcome(&i).filter(|o| !o.by_packet);
    let relocated = nodes[k].reloc.is_some();
    s.step(&i, nodes.get(k + 1).map(|x| &x.insn), relocated);
    let target = match nodes[k].target {
        Some(crate::link::inline::nodes::Target::Jump(t)) => cfg.pos.get(&t).copied(),
        _ => None,
    };
    let mut out = Vec::new();
    for to in &cfg.succ[k] {
        if !is_cond(&i) {
            out.push((*to, s.clone()));
        } else if target == Some(k + 1) {
            // A jump to the next slot: both ways lead there.
            out.push((*to, s.clone()));
        } else {
            let taken = Some(*to) == target;
            if known.is_some_and(|o| o.taken != taken) {
                continue;
            }
            out.push((*to, s.edge(&i, taken)));
        }
    }
    out
}
