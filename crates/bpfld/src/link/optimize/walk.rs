//! A model of how much of a section the verifier walks: its depth-first
//! exploration of paths (fall-through first, a conditional jump's other
//! way later), following the constants each path holds (a comparison it
//! can decide goes one way only), cut short where it finds a state it
//! kept before. States are kept at prune points only (see
//! [`Cfg::prune_points`]), and only once the walk has gone through two
//! jumps and eight instructions since the last state kept, as the
//! kernel's verifier does to save memory. A kept state covers a later
//! one when the registers still read hold the same values (a packet
//! pointer's proven range no wider), numbers being told apart only where
//! they decide a later comparison or are added to a pointer (the
//! verifier tells numbers apart only once it marked them precise), and
//! the stack slots still read hold the same kinds of bytes (see
//! [`stack_covers`]).
//!
//! Rewrites that shorten the code can make the verifier walk more: paths
//! that met where a state was kept meet elsewhere (a jump threaded past),
//! or fewer jumps on the way keep states elsewhere (a `goto` removed), and
//! each path walks on alone. The pass compares this model's count before
//! and after to keep what the verifier proves no dearer.
//!
//! Which kernel: since Linux 6.14 the verifier proves that a lookup in an
//! array map with a constant key below its `max_entries` never gives
//! NULL, and walks no NULL way after it; before, it walks both. A model
//! of one kernel errs on the other: without the rule it counts NULL ways
//! the running kernel never walks (two copies of the selftests'
//! xdp_do_tx: a rewrite that saved NULL ways, 513 instructions against
//! 584, cost 641 against 573 on 6.18), with it it misses what a rewrite
//! costs on those ways on older kernels. So the model walks both kernels
//! ([`Walks`]) and a rewrite must be no dearer on either.
//!
//! (Still rougher than the kernel: ranges of numbers (a register
//! compared equal to a constant is not known to hold it on that way),
//! precision of spilled numbers and references held are not followed, and
//! a conditional jump to the next instruction is one way here where the
//! kernel walks its two edges apart; its count
//! compares two versions of the same code. On two copies of
//! test_tcp_check_syncookie_kern, of xdp_do_tx and of comp_stats, before
//! and after the pass, it gives the kernel's count exactly; on two of
//! xdpfilt_alw_all it walks far less than the kernel.)

use std::collections::HashMap;

use crate::link::inline::nodes::{Code, Node};
use crate::model::insn;
use crate::model::object::{Object, SymbolId};

use super::cfg::{is_cond, uses_defs, Cfg};
use super::values::{analyse_in, successor_states_in, Byte, Env, Slot, State, Val};

/// Whether a kept state `old` covers `new` on the registers `live`: the
/// same value, or any two numbers in a register whose value decides no
/// comparison later (`compared`: the verifier tracks such a number
/// exactly only once something depends on it), or a constant where
/// nothing was known.
fn covers(old: &State, new: &State, live: u16, compared: u16, stack_live: u64) -> bool {
    let number = |v: Val| matches!(v, Val::Const(_) | Val::Unknown);
    let regs = (0..11).all(|r| {
        live & (1 << r) == 0
            || old.regs[r] == new.regs[r] && old.range[r] <= new.range[r]
            || compared & (1 << r) == 0 && number(old.regs[r]) && number(new.regs[r])
            || old.regs[r] == Val::Unknown && matches!(new.regs[r], Val::Const(_))
    });
    regs && stack_covers(old, new, stack_live)
}

/// The stack half of [`covers`], on the slots live (bit n: the slot at
/// -8(n+1)), as the verifier compares stacks for a privileged program:
/// a byte never written or holding data before covers anything; a zero
/// byte needs a zero byte; a spill needs a spill of the same register,
/// any two numbers being taken as the same (whether a spilled number is
/// precise is not followed); a whole slot of one number or of data
/// covers the other as a number does.
fn stack_covers(old: &State, new: &State, live: u64) -> bool {
    let (Some(a), Some(b)) = (&old.stack, &new.stack) else {
        return true;
    };
    let blank = |off| Slot {
        off,
        bytes: [Byte::Invalid; 8],
        val: Val::Unknown,
    };
    let number = |v: Val| matches!(v, Val::Const(_) | Val::Unknown);
    // A slot read as one 64-bit number: what it gives.
    let as_number = |s: &Slot| {
        if s.bytes.iter().all(|b| *b == Byte::Spill) && number(s.val) {
            Some(s.val)
        } else if s.bytes.iter().all(|b| *b == Byte::Misc) {
            Some(Val::Unknown)
        } else {
            None
        }
    };
    a.iter().all(|o| {
        let n = (-o.off / 8 - 1) as u32;
        if o.off >= 0 || n >= 64 || live & (1 << n) == 0 {
            return true;
        }
        let c = b
            .iter()
            .find(|s| s.off == o.off)
            .cloned()
            .unwrap_or_else(|| blank(o.off));
        if let (Some(_), Some(_)) = (as_number(o), as_number(&c)) {
            return true;
        }
        let bytes = o.bytes.iter().zip(c.bytes).all(|(x, y)| match x {
            Byte::Invalid | Byte::Misc => true,
            Byte::Zero => y == Byte::Zero,
            Byte::Spill => y == Byte::Spill,
        });
        bytes
            && (!o.bytes.contains(&Byte::Spill) || o.val == c.val || number(o.val) && number(c.val))
    })
}

/// Stack slots (bit n: the slot at -8(n+1)) live before each slot of
/// code: read on some path before a store of all eight bytes. A call
/// given a stack pointer may read from there up to the frame's top.
fn stack_live_in(cfg: &Cfg, nodes: &[Node], states: &[Option<State>]) -> Vec<u64> {
    let n = nodes.len();
    let bits = |from: i64, to: i64| -> u64 {
        // Slots holding any of the bytes from..to (negative offsets).
        let mut m = 0u64;
        let mut a = from.max(-512);
        while a < to.min(0) {
            let k = (-(a.div_euclid(8) * 8) / 8 - 1) as u32;
            if k < 64 {
                m |= 1 << k;
            }
            a = a.div_euclid(8) * 8 + 8;
        }
        m
    };
    let mut gen = vec![0u64; n];
    let mut kill = vec![0u64; n];
    for k in 0..n {
        let Some(s) = states[k].as_ref().filter(|_| cfg.start[k]) else {
            continue;
        };
        let i = nodes[k].insn;
        let base = |r: u8| match s.regs.get((r & 0xf) as usize) {
            Some(Val::Stack(o)) => Some(*o),
            _ => None,
        };
        let size = match i.size() {
            insn::BPF_B => 1,
            insn::BPF_H => 2,
            insn::BPF_W => 4,
            _ => 8,
        };
        match i.class() {
            insn::BPF_LDX => {
                if let Some(o) = base(i.src) {
                    let a = o + i64::from(i.off);
                    gen[k] = bits(a, a + size);
                }
            }
            insn::BPF_STX | insn::BPF_ST => {
                if let Some(o) = base(i.dst) {
                    let a = o + i64::from(i.off);
                    if i.mode() == insn::BPF_MEM && size == 8 && a % 8 == 0 {
                        kill[k] = bits(a, a + 8);
                    } else if i.mode() != insn::BPF_MEM {
                        gen[k] = bits(a, a + size);
                    }
                }
            }
            _ if i.is_call() || i.is_callx() => {
                for r in 1..=5u8 {
                    if let Some(o) = base(r) {
                        gen[k] |= bits(o, o + super::values::arg_size(&s.regs, r as usize, o));
                    }
                }
            }
            _ => {}
        }
    }
    cfg.backward(|k, out| gen[k] | (out & !kill[k]))
}

/// Registers (bit n = rn) whose value before each slot may decide a
/// conditional jump later: read by one, or by arithmetic whose result
/// is, before being written.
fn compared_in(cfg: &Cfg, nodes: &[Node], states: &[Option<State>]) -> Vec<u16> {
    let pointer = |k: usize, r: usize| {
        r == 10
            || states[k].as_ref().is_none_or(|s| {
                matches!(
                    s.regs[r],
                    Val::Ctx | Val::Pkt { .. } | Val::Stack(_) | Val::Map(_) | Val::Ptr(_)
                ) || s.packet_pointer(r)
            })
    };
    cfg.backward(|k, after: u16| {
        let i = nodes[k].insn;
        let (dst, src) = (1u16 << (i.dst & 0xf).min(10), 1u16 << (i.src & 0xf).min(10));
        let x = i.source() == insn::BPF_X;
        match i.class() {
            insn::BPF_JMP | insn::BPF_JMP32 if is_cond(&i) => after | dst | if x { src } else { 0 },
            insn::BPF_ALU64
                if x && matches!(i.op(), insn::BPF_ADD | insn::BPF_SUB)
                    && pointer(k, (i.dst & 0xf).min(10) as usize) =>
            {
                // Pointer arithmetic: the verifier marks the scalar
                // added precise.
                (after & !src) | src
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
        }
    })
}

/// Instructions the verifier would walk in this section from its entries
/// (`None`: past `budget` steps, too many to tell).
pub(super) fn walked(cfg: &Cfg, nodes: &[Node], budget: u64, env: &Env) -> Option<u64> {
    let prune = cfg.prune_points(nodes);
    let live = cfg.live_in(nodes);
    let states = analyse_in(cfg, nodes, Some(env));
    let compared = compared_in(cfg, nodes, &states);
    let stack_live = stack_live_in(cfg, nodes, &states);
    let mut kept: Vec<Vec<State>> = vec![Vec::new(); nodes.len()];
    let (mut insns, mut jumps) = (0u64, 0u64);
    let (mut last_insns, mut last_jumps) = (0u64, 0u64);
    let mut stack: Vec<(usize, State)> = cfg
        .entries
        .iter()
        .rev()
        .map(|(k, e)| {
            let mut s = State::entry(*e);
            s.stack = Some(Vec::new());
            (*k, s)
        })
        .collect();
    while let Some((mut k, mut s)) = stack.pop() {
        loop {
            insns += 1;
            if insns > budget {
                return None;
            }
            if prune[k] {
                if kept[k]
                    .iter()
                    .any(|o| covers(o, &s, live[k], compared[k], stack_live[k]))
                {
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
            let mut next = successor_states_in(cfg, nodes, k, &mut s, Some(env));
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

/// The model's walk of a whole object's code, on two kernels: one that
/// knows a lookup in an array with a constant key inside it never gives
/// NULL (Linux 6.14 on) and one that does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Walks {
    /// Instructions walked where such lookups are known not NULL.
    pub(super) sure_lookups: u64,
    /// Instructions walked where every lookup may give NULL.
    pub(super) null_lookups: u64,
}

impl Walks {
    /// Whether neither kernel walks more than for `base`: a rewrite
    /// is kept only then, as the output must be no dearer on kernels
    /// before 6.14 than on the running one.
    pub(super) fn within(&self, base: &Walks) -> bool {
        self.sure_lookups <= base.sure_lookups && self.null_lookups <= base.null_lookups
    }
}

/// The arrays of `obj` whose lookups the verifier may prove (array and
/// per-CPU array maps that are not inner-map templates), by symbol.
fn arrays(obj: &Object) -> HashMap<SymbolId, u32> {
    const ARRAY: u32 = 2;
    const PERCPU_ARRAY: u32 = 6;
    const INNER_MAP: u32 = 0x1000;
    let mut out = HashMap::new();
    let Ok(defs) = crate::model::map_def::map_defs(obj) else {
        return out;
    };
    for d in defs {
        if !matches!(d.map_type, ARRAY | PERCPU_ARRAY) || d.map_flags & INNER_MAP != 0 {
            continue;
        }
        for s in obj.symbols.iter().filter(|s| s.name == d.name) {
            out.insert(s.id, d.max_entries);
        }
    }
    out
}

/// [`walked`] over every code section of `code`, on both kernels
/// (`None`: past the kernel's own limit of a million instructions).
pub(super) fn walked_code(code: &Code, obj: &Object) -> Option<Walks> {
    let mut env = Env {
        arrays: arrays(obj),
        elide_null: true,
    };
    let mut walks = Walks {
        sure_lookups: 0,
        null_lookups: 0,
    };
    for (sec, _) in &code.secs {
        let cfg = Cfg::build(code, obj, *sec);
        let nodes = code.sec(*sec)?;
        env.elide_null = true;
        walks.sure_lookups += walked(&cfg, nodes, 1_000_000, &env)?;
        env.elide_null = false;
        walks.null_lookups += walked(&cfg, nodes, 1_000_000, &env)?;
    }
    Some(walks)
}
