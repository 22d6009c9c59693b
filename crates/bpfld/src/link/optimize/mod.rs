//! Optimisation across inlined components: what inlining leaves behind
//! when several programs become one, removed without changing what the
//! code does or what the verifier can prove about it.
//!
//! The pass works on the inliner's nodes (`link/inline/nodes.rs`), so
//! jumps, symbols and BTF.ext records follow every instruction moved or
//! removed. Per code section, until nothing changes:
//!
//! - **Reloads** (`values.rs` knows the registers before each
//!   instruction): a load of the XDP context's `data`, `data_end` or
//!   `data_meta` while a register still holds the value loaded earlier
//!   (no call that may change the packet between) becomes a copy of that
//!   register, which carries the range the verifier proved for it.
//! - **Jump threading**: a conditional jump whose outcome is known before
//!   it becomes a `goto` or goes; one known on some incoming jumps only
//!   has those jumps sent straight to where it would go. That removes the
//!   dispatcher's chain-call check (`r0 = 2; ...; if r0 == 2 goto next`)
//!   and a packet bounds check that an equal or wider one already proved
//!   since the packet last could change. A bounds check goes only when
//!   every packet pointer used after it already has the range it would
//!   give (the verifier learns ranges from checks, per register), and no
//!   packet pointer is ever stored to memory.
//! - **Unreachable code** goes.
//! - **Fills**: a 64-bit load of a stack slot that straight code just
//!   stored a register to (no store, call or write of that register
//!   between) becomes a copy of the register (the verifier fills a
//!   spilled register with the state it had).
//! - **Copies**: after `rD = rS`, reads of `rD` in the straight code that
//!   follows read `rS` instead, when that leaves the copy unread (the
//!   verifier gives both registers the same state, so nothing it proves
//!   changes); the copy then goes as a dead store.
//! - **Dead stores**: an instruction without side effects whose result
//!   no path reads goes (a helper whose prototype is known reads only its
//!   arguments), and so does a copy into a register that already holds
//!   the same context pointer or stack address on every path (a
//!   component's `r1 = r9` after the dispatcher's `r9 = r1`).
//! - **`goto`s to the next instruction** go, and a block that is only
//!   jumped to (ending in `exit` or a jump) is moved to the end of its
//!   function when the `goto` over it then becomes one.
//! - **Stack slots** only spilled to and filled from (`spills.rs`: the
//!   dispatcher's context, registers saved around inlined bodies) become
//!   a register free while the value waits (r6-r9 across calls), and
//!   spills no fill reads go.
//!
//! Then the whole is tried once more with the first `data` pointer of an
//! XDP program also kept in a callee-saved register that nothing uses,
//! so later components' reloads (after their map lookups) become copies
//! of it; that is kept when the code comes out shorter. Then, on the
//! result (`regs.rs`), `data_end` kept in a register the rewrites left
//! free, and copies between callee-saved registers joined
//! (a value saved around an inlined body stays where it was, the body's
//! own moving to a free register): each kept when the code comes out
//! shorter and the model below walks no more of it.
//!
//! Shorter code is not always less for the verifier. It compares the
//! state of a path with states it kept before only at prune points
//! (conditional jumps, jump targets, instructions after calls), and it
//! keeps a state there only after two jumps and eight instructions since
//! the last one kept. Paths that met at the dispatcher's chain-call
//! check and are threaded past it meet elsewhere, maybe where no state
//! was kept, and each is walked on alone (two copies of xdping_server:
//! 138 instructions verified instead of 125); a `goto` removed is a
//! jump less on the way, and states are kept elsewhere. So the result
//! is measured with a model of the verifier's walk (`walk.rs`) against
//! the input. When the model walks more, the pass runs again without
//! moving where paths meet (no jump threaded on some of its ways only,
//! no conditional jump removed where paths meet, no `goto` removed that
//! makes its target a join's prune point), and when that still walks
//! more, the input stays as it is. The model walks two kernels, with and
//! without proven array lookups (see `walk.rs`), and the result must be
//! no dearer on either.

mod cfg;
mod regs;
mod spills;
mod values;
mod walk;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use crate::link::inline::nodes::{is_jump, Code, NodeId, Target};
use crate::model::insn::{self, Insn};
use crate::model::object::{Object, SymbolId};

use cfg::{is_cond, is_goto, remove, symbol_bounds, Cfg};
use values::{analyse, successor_states, State, Val};

type Why = String;

/// Instructions before and after the pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Every instruction of the object's code.
    pub(crate) total: (u64, u64),
    /// By the function the instruction came from (an inlined body's
    /// instructions count for the function inlined).
    pub(crate) by_function: HashMap<SymbolId, (u64, u64)>,
}

fn count(code: &Code) -> (u64, HashMap<SymbolId, u64>) {
    let mut by: HashMap<SymbolId, u64> = HashMap::new();
    let mut total = 0;
    for (_, nodes) in &code.secs {
        for n in nodes {
            total += 1;
            if let Some(f) = code.origin.get(&n.id) {
                *by.entry(*f).or_default() += 1;
            }
        }
    }
    (total, by)
}

/// Runs the pass (see [`variant`]) and keeps its result when the model
/// of the verifier's walk (see [`walked`]) walks no more of it than of
/// the input; else the pass that keeps prune points where paths meet,
/// under the same condition; else the input. When the input is too long
/// to model, the pass that keeps prune points.
pub(crate) fn optimize(code: &mut Code, obj: &Object) -> Result<Counts, Why> {
    let (before, by_before) = count(code);
    let original = code.clone();
    *code = match walked(&original, obj) {
        // Too long for the model: the rule alone.
        None => variant(&original, obj, true)?,
        Some(base) => {
            let fits = |c: &Code| walked(c, obj).is_some_and(|w| w.within(&base));
            let full = variant(&original, obj, false)?;

            if fits(&full) {
                full
            } else {
                let careful = variant(&original, obj, true)?;
                if fits(&careful) {
                    careful
                } else {
                    original
                }
            }
        }
    };
    let (after, by_after) = count(code);
    let by_function = by_before
        .into_iter()
        .map(|(f, b)| (f, (b, by_after.get(&f).copied().unwrap_or(0))))
        .collect();
    Ok(Counts {
        total: (before, after),
        by_function,
    })
}

/// The pass's result from `original`: the rewrites until nothing
/// changes, then once more with the first packet pointer kept (see
/// [`keep_packet_pointer`]) when that comes out shorter. `keep_prune`:
/// no rewrite takes away a prune point where paths meet (see [`thread`]
/// and [`jumps_to_next`]).
fn variant(original: &Code, obj: &Object, keep_prune: bool) -> Result<Code, Why> {
    let mut code = original.clone();
    let mut kept = original.clone();
    rewrite(&mut code, obj, keep_prune)?;
    if keep_packet_pointer(&mut kept, obj)? {
        rewrite(&mut kept, obj, keep_prune)?;
        if count(&kept).0 < count(&code).0 {
            code = kept;
        }
    }
    // Registers the rewrites freed may keep `data_end`, and
    // copies around inlined bodies may join (regs.rs).
    type Step = fn(&mut Code, &Object) -> Result<bool, Why>;
    for step in [regs::keep_context_fields as Step, regs::coalesce_all] {
        let mut more = code.clone();
        if step(&mut more, obj)? {
            rewrite(&mut more, obj, keep_prune)?;
            let no_dearer = match (walked(&more, obj), walked(&code, obj)) {
                (Some(a), Some(b)) => a.within(&b),
                (m, c) => m.is_none() == c.is_none(),
            };
            if count(&more).0 < count(&code).0 && no_dearer {
                code = more;
            }
        }
    }
    Ok(code)
}

/// The verifier's walk over every code section, as [`walk::walked`]
/// models it, on kernels with and without proven array lookups (`None`:
/// too long to tell: past the kernel's own limit of a million
/// instructions).
fn walked(code: &Code, obj: &Object) -> Option<walk::Walks> {
    walk::walked_code(code, obj)
}

/// The rewrites, over every section until nothing changes.
fn rewrite(code: &mut Code, obj: &Object, keep_prune: bool) -> Result<(), Why> {
    let secs: Vec<usize> = code.secs.iter().map(|s| s.0).collect();
    for _ in 0..64 {
        let mut changed = false;
        for &sec in &secs {
            changed |= reloads(code, obj, sec)?;
            changed |= thread(code, obj, sec, keep_prune)?;
            changed |= unreachable(code, obj, sec)?;
            changed |= fills(code, obj, sec)?;
            changed |= spills::slots(code, obj, sec)?;
            changed |= copies(code, obj, sec)?;
            changed |= same_copies(code, obj, sec)?;
            changed |= dead_stores(code, obj, sec)?;
            changed |= jumps_to_next(code, obj, sec, keep_prune)?;
            changed |= move_cold_blocks(code, obj, sec)?;
        }
        if !changed {
            break;
        }
    }
    Ok(())
}

/// A context field loaded again while a register still holds the value
/// loaded before (no packet change between) becomes a copy of that
/// register, which also carries the range the verifier proved for it.
fn reloads(code: &mut Code, obj: &Object, sec: usize) -> Result<bool, Why> {
    let cfg = Cfg::build(code, obj, sec);
    let Some(nodes) = code.sec(sec) else {
        return Ok(false);
    };
    let states = analyse(&cfg, nodes);
    let mut edits = Vec::new();
    for (k, n) in nodes.iter().enumerate() {
        let Some(s) = states[k].as_ref().filter(|_| cfg.start[k]) else {
            continue;
        };
        let Some(field) = values::context_field_load(n, s) else {
            continue;
        };
        let dst = n.insn.dst;
        let holder = values::holding(s, field, dst).max_by_key(|r| (s.range[*r as usize], *r));
        if let Some(r) = holder {
            edits.push((k, Insn::mov64_reg(dst, r)));
        }
    }
    if edits.is_empty() {
        return Ok(false);
    }
    let nodes = code.sec_mut(sec).ok_or("no section")?;
    for (k, i) in edits {
        nodes[k].insn = i;
    }
    Ok(true)
}

/// Keeps the first `data` pointer an XDP program loads from its context
/// in a callee-saved register (r6-r9) that no instruction of its section
/// names: later components' loads of it become copies of it (with the
/// range the first check proved, see [`reloads`]), and their checks of
/// bounds already proven go. One instruction more; whether it pays is
/// for the caller to measure.
fn keep_packet_pointer(code: &mut Code, obj: &Object) -> Result<bool, Why> {
    let secs: Vec<usize> = code.secs.iter().map(|s| s.0).collect();
    let mut done = false;
    for sec in secs {
        let cfg = Cfg::build(code, obj, sec);
        let Some(nodes) = code.sec(sec) else { continue };
        let mut named = 0u16;
        let mut legacy = false;
        for (k, n) in nodes.iter().enumerate() {
            if !cfg.start[k] {
                continue; // the second half of an ld_imm64
            }
            let (u, d) = crate::link::inline::liveness::use_def(&n.insn);
            named |= 1 << (n.insn.dst & 0xf) | 1 << (n.insn.src & 0xf) | (u | d) & 0x3c0;
            legacy |= n.insn.class() == insn::BPF_LD && !n.insn.is_ld_imm64();
        }
        let Some(free) = (insn::R6..=insn::R9).find(|r| named & (1 << r) == 0) else {
            continue;
        };
        if legacy {
            continue;
        }
        let states = analyse(&cfg, nodes);
        let first = (0..nodes.len()).find(|k| {
            let i = nodes[*k].insn;
            cfg.start[*k]
                && i.class() == insn::BPF_LDX
                && i.mode() == insn::BPF_MEM
                && i.size() == insn::BPF_W
                && i.off == 0
                && states[*k]
                    .as_ref()
                    .is_some_and(|s| s.regs.get((i.src & 0xf) as usize) == Some(&Val::Ctx))
        });
        let Some(k) = first else { continue };
        let dst = nodes[k].insn.dst;
        let origin = code.origin.get(&nodes[k].id).copied();
        let id = code.fresh();
        if let Some(f) = origin {
            code.origin.insert(id, f);
        }
        let nodes = code.sec_mut(sec).ok_or("no section")?;
        nodes.insert(
            k + 1,
            crate::link::inline::nodes::Node {
                id,
                insn: Insn::mov64_reg(free, dst),
                target: None,
                reloc: None,
                func: None,
                lines: Vec::new(),
                core: Vec::new(),
            },
        );
        done = true;
    }
    Ok(done)
}

fn target_slot(cfg: &Cfg, t: Option<Target>) -> Option<usize> {
    match t {
        Some(Target::Jump(t)) => cfg.pos.get(&t).copied(),
        _ => None,
    }
}

/// Whether some reachable instruction stores a packet pointer to memory,
/// where the verifier would keep its range for a later load.
fn packet_pointer_stored(
    nodes: &[crate::link::inline::nodes::Node],
    states: &[Option<State>],
) -> bool {
    nodes.iter().zip(states).any(|(n, s)| {
        n.insn.class() == insn::BPF_STX
            && s.as_ref()
                .is_some_and(|s| s.packet_pointer((n.insn.src & 0xf).min(10) as usize))
    })
}

/// Jump threading: conditional jumps whose outcome is known.
///
/// `keep_prune`: a conditional jump is a prune point, where the verifier
/// compares the states of the paths that meet there; none is threaded
/// on some of its ways only (that moves where they meet), and one is
/// removed only where paths do not meet, or meet at a prune point again.
fn thread(code: &mut Code, obj: &Object, sec: usize, keep_prune: bool) -> Result<bool, Why> {
    let cfg = Cfg::build(code, obj, sec);
    let Some(nodes) = code.sec(sec) else {
        return Ok(false);
    };
    let prune = cfg.prune_points(nodes);
    let states = analyse(&cfg, nodes);
    let live = cfg.live_in(nodes);
    let stored = packet_pointer_stored(nodes, &states);
    let mut retarget: Vec<(usize, NodeId)> = Vec::new();
    let mut rewrite: Vec<(usize, bool)> = Vec::new();
    for k in 0..nodes.len() {
        let i = nodes[k].insn;
        if !cfg.start[k] || !is_cond(&i) || i.code == insn::JCOND || k + 1 >= nodes.len() {
            continue;
        }
        let Some(t) = target_slot(&cfg, nodes[k].target) else {
            continue;
        };
        if t == k + 1 {
            continue;
        }
        // Dropping a packet comparison is safe when every packet pointer
        // used where it leads already has the range it would give.
        let safe = |s: &State, o: values::Outcome| -> bool {
            if !o.by_packet {
                return true;
            }
            if stored {
                return false;
            }
            let Some((kind, need)) = s.check_range(&i, o.taken) else {
                return true;
            };
            let dest = if o.taken { t } else { k + 1 };
            (0..11).all(|r| {
                live[dest] & (1 << r) == 0
                    || !s.packet_pointer(r)
                    || matches!(s.regs[r], Val::Pkt { field, .. } if field != kind)
                    || matches!(s.regs[r], Val::Pkt { .. }) && s.range[r] >= need
            })
        };
        let Some(here) = &states[k] else { continue };
        if let Some(o) = here.outcome(&i).filter(|o| safe(here, *o)) {
            let meets = cfg.preds[k].len() > 1 && !prune[k + 1];
            if o.taken || !keep_prune || !meets {
                rewrite.push((k, o.taken));
            }
            continue;
        }
        for &p in &cfg.preds[k] {
            let pi = nodes[p].insn;
            let falls = !is_goto(&pi) && pi.code != insn::EXIT && p + 1 == k;
            if !is_jump(&pi) || target_slot(&cfg, nodes[p].target) != Some(k) || falls {
                continue;
            }
            let Some(mut s) = states[p].clone() else {
                continue;
            };
            let edge = successor_states(&cfg, nodes, p, &mut s)
                .into_iter()
                .find(|(to, _)| *to == k);
            let Some((_, s)) = edge else { continue };
            if let Some(o) = s.outcome(&i).filter(|o| safe(&s, *o)) {
                let to = if o.taken { t } else { k + 1 };
                if !keep_prune {
                    retarget.push((p, nodes[to].id));
                }
            }
        }
    }
    if retarget.is_empty() && rewrite.is_empty() {
        return Ok(false);
    }
    let mut dead = vec![false; nodes.len()];
    let nodes = code.sec_mut(sec).ok_or("no section")?;
    for (p, to) in retarget {
        nodes[p].target = Some(Target::Jump(to));
    }
    for (k, taken) in rewrite {
        if taken {
            nodes[k].insn = Insn::ja(0);
        } else {
            dead[k] = true;
        }
    }
    remove(code, sec, &dead)?;
    Ok(true)
}

/// Removes what no entry reaches.
fn unreachable(code: &mut Code, obj: &Object, sec: usize) -> Result<bool, Why> {
    let cfg = Cfg::build(code, obj, sec);
    let dead: Vec<bool> = cfg.reachable().into_iter().map(|r| !r).collect();
    remove(code, sec, &dead)
}

/// Whether removing `n` changes nothing but the registers it writes.
fn pure(n: &crate::link::inline::nodes::Node) -> bool {
    let i = n.insn;
    match i.class() {
        insn::BPF_ALU | insn::BPF_ALU64 => true,
        insn::BPF_LDX => matches!(i.mode(), insn::BPF_MEM | insn::BPF_MEMSX),
        // A code address keeps its function reachable.
        insn::BPF_LD => i.is_ld_imm64() && n.target.is_none() && !i.is_ld_func(),
        _ => false,
    }
}

/// Removes instructions whose only effect is a register no path reads.
fn dead_stores(code: &mut Code, obj: &Object, sec: usize) -> Result<bool, Why> {
    let cfg = Cfg::build(code, obj, sec);
    let Some(nodes) = code.sec(sec) else {
        return Ok(false);
    };
    let live = cfg.live_in(nodes);
    let mut dead = vec![false; nodes.len()];
    for (k, n) in nodes.iter().enumerate() {
        if !cfg.start[k] || !pure(n) {
            continue;
        }
        let defs = crate::link::inline::liveness::use_def(&n.insn).1;
        // `rX = rX` (64-bit: the 32-bit one clears the upper half).
        let itself = n.insn.code == insn::BPF_ALU64 | insn::BPF_MOV | insn::BPF_X
            && n.insn.off == 0
            && n.insn.dst == n.insn.src;
        if itself || defs != 0 && defs & cfg.live_out(&live, k) == 0 {
            dead[k] = true;
            if n.insn.is_ld_imm64() && k + 1 < dead.len() {
                dead[k + 1] = true;
            }
        }
    }
    remove(code, sec, &dead)
}

/// Removes `rX = rY` where both already hold the context or the same
/// stack address on every path: the verifier's state of rX is the same
/// either way (a component's `r1 = r9` right after the dispatcher's
/// `r9 = r1`). Each such copy changes no register, so all go at once;
/// not with [`dead_stores`], whose liveness counts them as writes.
fn same_copies(code: &mut Code, obj: &Object, sec: usize) -> Result<bool, Why> {
    let cfg = Cfg::build(code, obj, sec);
    let Some(nodes) = code.sec(sec) else {
        return Ok(false);
    };
    let states = analyse(&cfg, nodes);
    let mut dead = vec![false; nodes.len()];
    for (k, n) in nodes.iter().enumerate() {
        let i = n.insn;
        if !cfg.start[k]
            || i.code != insn::BPF_ALU64 | insn::BPF_MOV | insn::BPF_X
            || i.off != 0
            || i.dst > 10
            || i.src > 10
        {
            continue;
        }
        dead[k] = states[k].as_ref().is_some_and(|st| {
            let (d, s) = (st.regs[i.dst as usize], st.regs[i.src as usize]);
            d == s && matches!(d, Val::Ctx | Val::Stack(_))
        });
    }
    remove(code, sec, &dead)
}

/// Spill and fill: `*(u64 *)(r10 + off) = rS; ...; rD = *(u64 *)(r10 +
/// off)` in straight code, nothing between writing memory, calling or
/// writing rS: the load becomes `rD = rS`.
fn fills(code: &mut Code, obj: &Object, sec: usize) -> Result<bool, Why> {
    let cfg = Cfg::build(code, obj, sec);
    let Some(nodes) = code.sec(sec) else {
        return Ok(false);
    };
    let dw_stack = |i: &Insn, class: u8| {
        i.class() == class && i.mode() == insn::BPF_MEM && i.size() == insn::BPF_DW
    };
    let mut edits = Vec::new();
    for k in 0..nodes.len() {
        let st = nodes[k].insn;
        if !cfg.start[k] || !dw_stack(&st, insn::BPF_STX) || st.dst != insn::R10 || st.src > 9 {
            continue;
        }
        let mut prev = k;
        let mut j = k + 1;
        while j < nodes.len() && cfg.start[j] && cfg.preds[j] == [prev] {
            let x = nodes[j].insn;
            if dw_stack(&x, insn::BPF_LDX) && x.src == insn::R10 && x.off == st.off {
                edits.push((j, Insn::mov64_reg(x.dst, st.src)));
                break;
            }
            let writes_memory = matches!(x.class(), insn::BPF_ST | insn::BPF_STX);
            let defs = cfg::uses_defs(&x).1;
            if writes_memory || x.is_call() || x.is_jmp_class() || defs & (1 << st.src) != 0 {
                break;
            }
            prev = j;
            j += if x.is_ld_imm64() { 2 } else { 1 };
        }
    }
    if edits.is_empty() {
        return Ok(false);
    }
    let nodes = code.sec_mut(sec).ok_or("no section")?;
    for (j, i) in edits {
        nodes[j].insn = i;
    }
    Ok(true)
}

/// The register fields of `i` that read `r`, as (dst, src) flags, when
/// every read of `r` is one of them (`None`: some read cannot be moved to
/// another register: an implicit one, or a register both read and
/// written).
fn explicit_reads(i: &Insn, r: u8) -> Option<(bool, bool)> {
    let uses = cfg::uses_defs(i).0;
    if uses & (1 << r) == 0 {
        return Some((false, false));
    }
    let x = i.source() == insn::BPF_X;
    match i.class() {
        insn::BPF_ALU | insn::BPF_ALU64 => (x && i.src == r && i.dst != r).then_some((false, true)),
        insn::BPF_LDX => (i.src == r).then_some((false, true)),
        insn::BPF_ST => (i.dst == r).then_some((true, false)),
        insn::BPF_STX if i.mode() == insn::BPF_MEM => Some((i.dst == r, i.src == r)),
        insn::BPF_JMP | insn::BPF_JMP32 if is_cond(i) && i.code != insn::JCOND => {
            Some((i.dst == r, x && i.src == r))
        }
        _ => None,
    }
}

/// Copy propagation (see the module's documentation).
fn copies(code: &mut Code, obj: &Object, sec: usize) -> Result<bool, Why> {
    let cfg = Cfg::build(code, obj, sec);
    let Some(nodes) = code.sec(sec) else {
        return Ok(false);
    };
    let live = cfg.live_in(nodes);
    let n = nodes.len();
    let mut edits: Vec<(usize, bool, bool, u8)> = Vec::new();
    let mut used: Vec<bool> = vec![false; n];
    'copy: for k in 0..n {
        let i = nodes[k].insn;
        let (d, s) = (i.dst, i.src);
        if !cfg.start[k]
            || i.code != insn::BPF_ALU64 | insn::BPF_MOV | insn::BPF_X
            || i.off != 0
            || d == s
            || d > 9
            || s > 9
            || used[k]
        {
            continue;
        }
        let mut mine = Vec::new();
        let mut prev = k;
        let mut j = k + 1;
        loop {
            // Straight code only: the next instruction has one way in.
            if j >= n || !cfg.start[j] || cfg.preds[j] != [prev] || used[j] {
                if j < n && live[j] & (1 << d) != 0 {
                    continue 'copy;
                }
                break;
            }
            let x = nodes[j].insn;
            let Some((rd, rs)) = explicit_reads(&x, d) else {
                continue 'copy;
            };
            if rd || rs {
                mine.push((j, rd, rs, s));
            }
            let defs = crate::link::inline::liveness::use_def(&x).1;
            if defs & (1 << d) != 0 {
                break;
            }
            if defs & (1 << s) != 0 {
                if cfg.live_out(&live, j) & (1 << d) != 0 {
                    continue 'copy;
                }
                break;
            }
            // Other ways out must not need the copy.
            let elsewhere = cfg.succ[j].iter().filter(|t| **t != j + 1);
            if elsewhere.clone().any(|t| live[*t] & (1 << d) != 0) {
                continue 'copy;
            }
            if x.code == insn::EXIT || is_goto(&x) {
                break;
            }
            prev = j;
            j += if x.is_ld_imm64() { 2 } else { 1 };
        }
        if mine.is_empty() {
            continue;
        }
        for e in &mine {
            used[e.0] = true;
        }
        used[k] = true;
        edits.extend(mine);
    }
    if edits.is_empty() {
        return Ok(false);
    }
    let nodes = code.sec_mut(sec).ok_or("no section")?;
    for (j, rd, rs, s) in edits {
        if rd {
            nodes[j].insn.dst = s;
        }
        if rs {
            nodes[j].insn.src = s;
        }
    }
    Ok(true)
}

/// Removes `goto`s to the next instruction. (A conditional jump there
/// still tells the verifier something on each of its two ways, and
/// stays: clang writes none, threading makes one only in a loop.)
///
/// `keep_prune`: a jump's target is a prune point; where paths meet
/// there and no other jump or a conditional jump there makes it one,
/// the `goto` stays.
fn jumps_to_next(code: &mut Code, obj: &Object, sec: usize, keep_prune: bool) -> Result<bool, Why> {
    let cfg = Cfg::build(code, obj, sec);
    let Some(nodes) = code.sec(sec) else {
        return Ok(false);
    };
    let jumps_to = |t: usize| {
        (0..nodes.len())
            .filter(|k| {
                cfg.start[*k]
                    && is_jump(&nodes[*k].insn)
                    && target_slot(&cfg, nodes[*k].target) == Some(t)
            })
            .count()
    };
    let dead: Vec<bool> = (0..nodes.len())
        .map(|k| {
            let to_next = cfg.start[k]
                && is_goto(&nodes[k].insn)
                && target_slot(&cfg, nodes[k].target) == Some(k + 1);
            let needed = keep_prune
                && to_next
                && cfg.preds[k + 1].len() > 1
                && !is_cond(&nodes[k + 1].insn)
                && jumps_to(k + 1) < 2;
            to_next && !needed
        })
        .collect();
    remove(code, sec, &dead)
}

/// `goto L; B; L:` where block B is only jumped to and does not fall
/// into L: B moves to the end of the function, and the `goto` becomes a
/// jump to the next instruction.
fn move_cold_blocks(code: &mut Code, obj: &Object, sec: usize) -> Result<bool, Why> {
    let mut changed = false;
    for _ in 0..1024 {
        let cfg = Cfg::build(code, obj, sec);
        let bounds = symbol_bounds(code, sec);
        let Some(nodes) = code.sec(sec) else {
            return Ok(changed);
        };
        let mut found = None;
        for a in 0..nodes.len() {
            let i = nodes[a].insn;
            if !cfg.start[a] || !is_goto(&i) {
                continue;
            }
            let Some(t) = target_slot(&cfg, nodes[a].target) else {
                continue;
            };
            if t <= a + 1 {
                continue;
            }
            let block = a + 1..t;
            let last = t - 1;
            let ends = cfg.start[last]
                && (nodes[last].insn.code == insn::EXIT || is_goto(&nodes[last].insn));
            let closed = block
                .clone()
                .all(|b| !bounds.contains(&nodes[b].id) && !cfg.entries.iter().any(|e| e.0 == b));
            if !ends || !closed {
                continue;
            }
            let Some(f) = code.function_at(obj, sec, a) else {
                continue;
            };
            let Some((_, range)) = code.range(f) else {
                continue;
            };
            if range.end <= t {
                continue;
            }
            found = Some((block, range.end));
            break;
        }
        let Some((block, end)) = found else {
            return Ok(changed);
        };
        let nodes = code.sec_mut(sec).ok_or("no section")?;
        let moved: Vec<_> = nodes.drain(block.clone()).collect();
        let at = end - block.len();
        nodes.splice(at..at, moved);
        changed = true;
    }
    Ok(changed)
}
