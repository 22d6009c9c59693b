//! What is known about the registers before each instruction (a forward
//! data-flow analysis): constants, the XDP context, the packet pointers
//! loaded from it (with a constant added), and which packet bounds have
//! been proven on the way. Knowledge about packet pointers lasts until an
//! instruction that may change the packet (any call other than a few
//! helpers known not to). For the model of the verifier's walk only, the
//! stack too (what the verifier knows of each byte, and the registers
//! spilled there), map values from lookups and the maps they come from.

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
    /// The frame pointer plus a constant.
    Stack(i64),
    /// A map whose lookups the verifier may prove never NULL (an array,
    /// see [`Env`]): its `max_entries`. Only in the walk model.
    Map(u32),
    /// A map value; `true` while it may still be NULL. Only in the walk
    /// model.
    Ptr(bool),
}

/// What the model of the verifier's walk knows beyond the code.
#[derive(Clone, Debug, Default)]
pub(super) struct Env {
    /// Array maps (not inner-map templates) by symbol, with their
    /// `max_entries`.
    pub(super) arrays: std::collections::HashMap<crate::model::object::SymbolId, u32>,
    /// Whether a lookup in one of them with a constant key below
    /// `max_entries` gives a value that is never NULL (the verifier does
    /// since Linux 6.14).
    pub(super) elide_null: bool,
}

/// What the verifier knows about one byte of the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Byte {
    /// Never written.
    Invalid,
    /// Some data.
    Misc,
    /// Known zero.
    Zero,
    /// Part of a spilled register.
    Spill,
}

/// Eight bytes of the stack, as the verifier tracks them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Slot {
    /// Offset of its first byte from the frame pointer (a negative
    /// multiple of 8).
    pub(super) off: i64,
    /// Its bytes from `off` up.
    pub(super) bytes: [Byte; 8],
    /// The register spilled there (what its `Spill` bytes hold).
    pub(super) val: Val,
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
    /// The stack's slots, by offset (`None`: not followed, as for the
    /// rewrites; the walk model follows it).
    pub(super) stack: Option<Vec<Slot>>,
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

/// Helpers that only read the memory they are given: map lookups,
/// updates and deletions, perf and ring buffer output, checksums, and
/// the socket helpers below.
const READS_ONLY: &[i32] = &[1, 2, 3, 25, 28, 130, 84, 85, 86, 99, 100, 110];

/// Socket lookups and release, SYN cookie checks: they leave the packet
/// as it is (the walk model knows; the rewrites stay with
/// [`KEEPS_PACKET`]).
const SOCKETS: &[i32] = &[84, 85, 86, 99, 100, 110];

/// How many bytes from the frame pointer plus `o` a call may touch
/// through argument `r`: the constant in the next argument (helpers take
/// memory with its size after it), else up to the frame's top.
pub(super) fn arg_size(regs: &[Val; 11], r: usize, o: i64) -> i64 {
    match regs.get(r + 1) {
        Some(Val::Const(n)) if r < 5 && (*n as i64) > 0 && (*n as i64) <= -o => *n as i64,
        _ => -o,
    }
}

/// A stack pointer at `off` from the frame pointer; far outside any
/// frame (where offsets could overflow), nothing the model follows.
fn stack_at(off: i64) -> Val {
    if (-(1 << 20)..=1 << 20).contains(&off) {
        Val::Stack(off)
    } else {
        Val::Unknown
    }
}

/// Bytes a load or store moves.
fn size_of(i: &Insn) -> i64 {
    match i.size() {
        insn::BPF_B => 1,
        insn::BPF_H => 2,
        insn::BPF_W => 4,
        _ => 8,
    }
}

/// Slot by slot, byte by byte, what holds on both of two stacks.
fn meet_stack(a: &mut Vec<Slot>, b: &[Slot]) {
    let offs: std::collections::BTreeSet<i64> = a.iter().chain(b).map(|s| s.off).collect();
    let blank = |off| Slot {
        off,
        bytes: [Byte::Invalid; 8],
        val: Val::Unknown,
    };
    let find = |v: &[Slot], off| v.iter().find(|s| s.off == off).cloned();
    let out = offs
        .into_iter()
        .map(|off| {
            let x = find(a, off).unwrap_or_else(|| blank(off));
            let y = find(b, off).unwrap_or_else(|| blank(off));
            let mut m = x.clone();
            for (p, q) in m.bytes.iter_mut().zip(y.bytes) {
                if *p != q {
                    *p = Byte::Misc;
                }
            }
            if x.val != y.val || m.bytes != x.bytes {
                m.val = Val::Unknown;
                for p in m.bytes.iter_mut() {
                    if *p == Byte::Spill && x.val != y.val {
                        *p = Byte::Misc;
                    }
                }
            }
            m
        })
        .collect();
    *a = out;
}

/// Whether a call may change the packet (and so its pointers and length).
pub(super) fn changes_packet(i: &Insn) -> bool {
    !(i.is_call() && i.src == 0 && KEEPS_PACKET.contains(&i.imm))
}

/// The packet field (`data` 0, `data_end` 4, `data_meta` 8) that node
/// `n` loads from the XDP context, with `s` the state before it; `None`
/// for any other instruction (or one a CO-RE record may rewrite).
pub(super) fn context_field_load(n: &Node, s: &State) -> Option<i16> {
    let i = n.insn;
    let is = i.class() == insn::BPF_LDX
        && i.mode() == insn::BPF_MEM
        && i.size() == insn::BPF_W
        && n.core.is_empty()
        && s.regs.get((i.src & 0xf) as usize) == Some(&Val::Ctx)
        && matches!(i.off, 0 | 4 | 8);
    is.then_some(i.off)
}

/// The registers other than `but` that hold packet field `field` as
/// loaded (nothing added) in state `s`.
pub(super) fn holding(s: &State, field: i16, but: u8) -> impl Iterator<Item = u8> + '_ {
    let same = Val::Pkt { field, add: 0 };
    (0..10u8).filter(move |r| *r != but && s.regs[*r as usize] == same)
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
            stack: None,
        }
    }

    pub(super) fn entry(e: Entry) -> State {
        let mut s = State::unknown();
        s.regs[10] = Val::Stack(0);
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
        if let (Some(a), Some(b)) = (&mut self.stack, &o.stack) {
            meet_stack(a, b);
        }
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
        for slot in self.stack.iter_mut().flatten() {
            if matches!(slot.val, Val::Pkt { .. }) {
                slot.val = Val::Unknown;
            }
        }
        self.facts.clear();
    }

    /// The slot at `off` (a multiple of 8), added unwritten when missing.
    fn slot(stack: &mut Vec<Slot>, off: i64) -> &mut Slot {
        let at = match stack.binary_search_by_key(&off, |s| s.off) {
            Ok(at) => at,
            Err(at) => {
                stack.insert(
                    at,
                    Slot {
                        off,
                        bytes: [Byte::Invalid; 8],
                        val: Val::Unknown,
                    },
                );
                at
            }
        };
        &mut stack[at]
    }

    /// A store of `size` bytes of `v` at the frame pointer plus `addr`,
    /// as the verifier records it (privileged): a number stored at the
    /// start of a slot, or any register as a whole slot, is a spill;
    /// anything else is data (zero when known zero), and a spill it
    /// overlaps becomes data.
    fn store(&mut self, addr: i64, size: i64, v: Val) {
        let Some(stack) = &mut self.stack else { return };
        let base = addr.div_euclid(8) * 8;
        let number = matches!(v, Val::Const(_) | Val::Unknown);
        if addr == base && (number || size == 8) && (1..=8).contains(&size) {
            let slot = State::slot(stack, base);
            for (j, b) in slot.bytes.iter_mut().enumerate() {
                *b = if (j as i64) < size {
                    Byte::Spill
                } else {
                    match *b {
                        Byte::Zero | Byte::Invalid => *b,
                        _ => Byte::Misc,
                    }
                };
            }
            slot.val = v;
            return;
        }
        let kind = if v == Val::Const(0) {
            Byte::Zero
        } else {
            Byte::Misc
        };
        State::scribble(stack, addr, size.clamp(0, 512), kind);
    }

    /// Bytes `addr..addr + size` hold data of `kind`: spills they touch
    /// are gone.
    fn scribble(stack: &mut Vec<Slot>, addr: i64, size: i64, kind: Byte) {
        for a in addr..addr + size {
            if a >= 0 {
                break;
            }
            let slot = State::slot(stack, a.div_euclid(8) * 8);
            if slot.bytes.contains(&Byte::Spill) {
                for b in slot.bytes.iter_mut() {
                    if *b == Byte::Spill {
                        *b = Byte::Misc;
                    }
                }
                slot.val = Val::Unknown;
            }
            slot.bytes[(a - slot.off) as usize] = kind;
        }
    }

    /// What a load of `size` bytes at the frame pointer plus `addr`
    /// gives: the register spilled there when it is read as it was
    /// stored, zero from zeroed bytes, else a number.
    pub(super) fn load(&self, addr: i64, size: i64) -> Val {
        let Some(stack) = &self.stack else {
            return Val::Unknown;
        };
        let base = addr.div_euclid(8) * 8;
        let Ok(at) = stack.binary_search_by_key(&base, |s| s.off) else {
            return Val::Unknown;
        };
        let slot = &stack[at];
        let from = (addr - base) as usize;
        let Some(read) = slot.bytes.get(from..from + size.clamp(0, 8) as usize) else {
            return Val::Unknown;
        };
        let spilled = slot.bytes.iter().take_while(|b| **b == Byte::Spill).count() as i64;
        if from == 0 && spilled == size {
            return match slot.val {
                v if size == 8 => v,
                Val::Const(c) if c >> (size * 8) == 0 => Val::Const(c),
                _ => Val::Unknown,
            };
        }
        if read.iter().all(|b| *b == Byte::Zero) {
            return Val::Const(0);
        }
        Val::Unknown
    }

    /// The constant key a map lookup reads at the frame pointer plus
    /// `addr` (`size` bytes), as the verifier finds it to prove the
    /// lookup never gives NULL: zeroed bytes, or a number spilled there
    /// with exactly that many bytes.
    fn constant_key(&self, addr: i64, size: usize) -> Option<u64> {
        let stack = self.stack.as_ref()?;
        let base = addr.div_euclid(8) * 8;
        let slot = &stack[stack.binary_search_by_key(&base, |s| s.off).ok()?];
        let from = (addr - base) as usize;
        let rest = slot.bytes.get(from..)?;
        if rest.iter().take_while(|b| **b == Byte::Zero).count() >= size {
            return Some(0);
        }
        let spill = rest.iter().take_while(|b| **b == Byte::Spill).count();
        match slot.val {
            Val::Const(c) if slot.bytes[0] == Byte::Spill && spill == size => Some(c),
            _ => None,
        }
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
                    (insn::BPF_ADD, Val::Stack(o), Val::Const(c)) if wide => {
                        stack_at(o.wrapping_add(c as i64))
                    }
                    (insn::BPF_SUB, Val::Stack(o), Val::Const(c)) if wide => {
                        stack_at(o.wrapping_sub(c as i64))
                    }
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
            insn::BPF_LDX if i.mode() == insn::BPF_MEM && self.stack.is_some() => {
                match before.get(src) {
                    Some(Val::Stack(o)) => Some(self.load(o + i64::from(i.off), size_of(i))),
                    _ => None,
                }
            }
            _ => None,
        };
        if self.stack.is_some() {
            self.stack_effects(i, &before);
        }
        let keeps = self.stack.is_some() && i.is_call() && i.src == 0 && SOCKETS.contains(&i.imm);
        if i.is_call() && changes_packet(i) && !keeps {
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

    /// What `i` does to the stack (`before`: the registers before it).
    fn stack_effects(&mut self, i: &Insn, before: &[Val; 11]) {
        let (dst, src) = ((i.dst & 0xf) as usize, (i.src & 0xf) as usize);
        let base = |r: usize| match before.get(r) {
            Some(Val::Stack(o)) => Some(*o),
            _ => None,
        };
        match i.class() {
            insn::BPF_STX | insn::BPF_ST => {
                let Some(o) = base(dst) else { return };
                let addr = o + i64::from(i.off);
                let v = if i.class() == insn::BPF_ST {
                    Val::Const(i64::from(i.imm) as u64)
                } else {
                    before.get(src).copied().unwrap_or(Val::Unknown)
                };
                if i.mode() == insn::BPF_MEM {
                    self.store(addr, size_of(i), v);
                } else if let Some(stack) = &mut self.stack {
                    State::scribble(stack, addr, size_of(i), Byte::Misc);
                }
            }
            insn::BPF_JMP if i.is_call() || i.is_callx() => {
                // Memory a callee may write: from each stack pointer
                // passed up to the frame's top (helpers known to only
                // read theirs aside).
                let reads_only = i.src == 0 && READS_ONLY.contains(&i.imm);
                if reads_only {
                    return;
                }
                for r in 1..=5 {
                    if let (Some(o), Some(stack)) = (base(r), &mut self.stack) {
                        State::scribble(stack, o, arg_size(before, r, o), Byte::Misc);
                    }
                }
            }
            _ => {}
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
        // A map value compared with NULL: known on each way.
        let d = (i.dst & 0xf) as usize;
        if i.class() == insn::BPF_JMP
            && i.source() == insn::BPF_K
            && i.imm == 0
            && matches!(i.op(), insn::BPF_JEQ | insn::BPF_JNE)
            && s.regs.get(d) == Some(&Val::Ptr(true))
        {
            let null = taken == (i.op() == insn::BPF_JEQ);
            s.regs[d] = if null { Val::Const(0) } else { Val::Ptr(false) };
        }
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
        let null_check = i.class() == insn::BPF_JMP
            && i.source() == insn::BPF_K
            && i.imm == 0
            && matches!(i.op(), insn::BPF_JEQ | insn::BPF_JNE);
        if null_check && self.regs.get((i.dst & 0xf) as usize) == Some(&Val::Ptr(false)) {
            return Some(Outcome {
                taken: i.op() == insn::BPF_JNE,
                by_packet: false,
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
    analyse_in(cfg, nodes, None)
}

/// [`analyse`], with the stack followed and what `env` knows when given
/// (as the walk model sees the code).
pub(super) fn analyse_in(cfg: &Cfg, nodes: &[Node], env: Option<&Env>) -> Vec<Option<State>> {
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
        let mut s = State::entry(*e);
        if env.is_some() {
            s.stack = Some(Vec::new());
        }
        merge(&mut states, &mut work, *k, s);
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
        for (to, st) in successor_states_in(cfg, nodes, k, &mut s, env) {
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
    successor_states_in(cfg, nodes, k, s, None)
}

/// [`successor_states`], knowing what `env` says (the walk model).
pub(super) fn successor_states_in(
    cfg: &Cfg,
    nodes: &[Node],
    k: usize,
    s: &mut State,
    env: Option<&Env>,
) -> Vec<(usize, State)> {
    let i = nodes[k].insn;
    let known = s.outcome(&i).filter(|o| !o.by_packet);
    let relocated = nodes[k].reloc.is_some();
    // A lookup (bpf_map_lookup_elem) in an array with a constant key
    // within it: the verifier (6.14 on) knows the value is there.
    let lookup = env
        .filter(|_| i.is_call() && i.src == 0 && i.imm == 1)
        .map(|env| {
            let key = match s.regs[2] {
                Val::Stack(o) => s.constant_key(o, 4),
                _ => None,
            };
            let sure =
                matches!((s.regs[1], key), (Val::Map(max), Some(key)) if key < u64::from(max));
            Val::Ptr(!(sure && env.elide_null))
        });
    s.step(&i, nodes.get(k + 1).map(|x| &x.insn), relocated);
    if let Some(v) = lookup {
        s.regs[0] = v;
    }
    if let (Some(env), Some((_, sym))) = (env, nodes[k].reloc) {
        if let Some(max) = env.arrays.get(&sym).filter(|_| i.is_ld_imm64()) {
            s.regs[(i.dst & 0xf) as usize] = Val::Map(*max);
        }
    }
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
