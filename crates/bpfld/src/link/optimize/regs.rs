//! Registers for values that would otherwise be reloaded or copied.
//!
//! Each inlined XDP component loads the context's `data_end` for itself,
//! after the map lookups of the one before have taken r1-r5. A copy of
//! the first load into a callee-saved register that is free there keeps
//! the value across those calls; the later loads then become copies of
//! it (see `reloads` in the module above). A register qualifies when
//! nothing reads its old value after the copy; the one that still holds
//! the value at the most later loads is taken, and only when some load
//! is served. (`data` is kept by `keep_packet_pointer` only in a register
//! nothing names: a packet pointer carries the range proven on its way,
//! which differs between the ways that meet at a component's end, so the
//! verifier's states there differ and it prunes less, which the walk
//! model, blind to ranges, does not see; `data_end` carries no range.)
//!
//! And copies between callee-saved registers join (see [`coalesce`]).
//!
//! Whether each pays is for the caller to measure.

use crate::link::inline::nodes::{Code, Node};
use crate::model::insn::{self, Insn};
use crate::model::object::Object;

use super::cfg::{is_cond, uses_defs, Cfg};
use super::values::{self, analyse};
use super::Why;

/// The context fields kept: `data_end` (see the module's documentation).
const FIELDS: [i16; 1] = [4];

/// Loads of context field `field` in a section, with the register
/// loaded, and how many of them find the same value in another register
/// already.
fn loads(code: &Code, obj: &Object, sec: usize, field: i16) -> (Vec<(usize, u8)>, usize) {
    let cfg = Cfg::build(code, obj, sec);
    let Some(nodes) = code.sec(sec) else {
        return (Vec::new(), 0);
    };
    let states = analyse(&cfg, nodes);
    let mut out = Vec::new();
    let mut served = 0;
    for (k, n) in nodes.iter().enumerate() {
        let Some(s) = states[k].as_ref().filter(|_| cfg.start[k]) else {
            continue;
        };
        if values::context_field_load(n, s) != Some(field) {
            continue;
        }
        let dst = n.insn.dst;
        if values::holding(s, field, dst).next().is_some() {
            served += 1;
        }
        out.push((k, dst));
    }
    (out, served)
}

fn copy_node(code: &mut Code, after: &Node, insn: Insn) -> Node {
    let id = code.fresh();
    if let Some(f) = code.origin.get(&after.id).copied() {
        code.origin.insert(id, f);
    }
    Node {
        id,
        insn,
        target: None,
        reloc: None,
        func: None,
        lines: Vec::new(),
        core: Vec::new(),
    }
}

/// Keeps the first load of each context field of every XDP section in a
/// free register when that lets later loads of it become copies (see the
/// module's documentation); whether it changed anything.
pub(super) fn keep_context_fields(code: &mut Code, obj: &Object) -> Result<bool, Why> {
    let secs: Vec<usize> = code.secs.iter().map(|s| s.0).collect();
    let mut done = false;
    for sec in secs {
        if crate::model::program::program_type(&obj.sections[sec].name) != Some("xdp") {
            continue;
        }
        for field in FIELDS {
            let (found, served) = loads(code, obj, sec, field);
            let Some(&(k, dst)) = found.first() else {
                continue;
            };
            if found.len() < 2 {
                continue;
            }
            let cfg = Cfg::build(code, obj, sec);
            let Some(nodes) = code.sec(sec) else { continue };
            let live = cfg.live_in(nodes);
            let free_after = !cfg.live_out(&live, k);
            let after = nodes[k].clone();
            let mut best: Option<(usize, Code)> = None;
            for r in insn::R6..=insn::R9 {
                if r == dst || free_after & (1 << r) == 0 {
                    continue;
                }
                let mut trial = code.clone();
                let n = copy_node(&mut trial, &after, Insn::mov64_reg(r, dst));
                trial.sec_mut(sec).ok_or("no section")?.insert(k + 1, n);
                let (_, now) = loads(&trial, obj, sec, field);
                if now > served && best.as_ref().is_none_or(|(b, _)| now > *b) {
                    best = Some((now, trial));
                }
            }
            if let Some((_, trial)) = best {
                *code = trial;
                done = true;
            }
        }
    }
    Ok(done)
}

/// The webs of one register in a section: each write of it starts a
/// value, and values that meet (at a join, or in an instruction that
/// reads and writes it in one field) are one web, renamed as a whole.
struct Webs {
    reg: u8,
    /// Per slot: the label of the value the instruction writes.
    def: Vec<Option<usize>>,
    /// Per slot: the label of the value before it (`None`: not reached).
    input: Vec<Option<usize>>,
    parent: Vec<usize>,
}

/// The label of the register's value where a way in enters: never renamed.
const ENTRY: usize = 0;

impl Webs {
    fn find(&self, mut l: usize) -> usize {
        while self.parent[l] != l {
            l = self.parent[l];
        }
        l
    }

    fn union(&mut self, a: usize, b: usize) -> bool {
        let (a, b) = (self.find(a), self.find(b));
        if a == b {
            return false;
        }
        // The entry's label stays the root: whatever meets it is it.
        let (root, child) = if b == ENTRY { (b, a) } else { (a, b) };
        self.parent[child] = root;
        true
    }

    fn build(cfg: &Cfg, nodes: &[Node], reg: u8) -> Webs {
        let n = nodes.len();
        let bit = 1u16 << reg;
        let mut w = Webs {
            reg,
            def: vec![None; n],
            input: vec![None; n],
            parent: vec![ENTRY],
        };
        for (k, x) in nodes.iter().enumerate() {
            if cfg.start[k] && uses_defs(&x.insn).1 & bit != 0 {
                w.def[k] = Some(w.parent.len());
                w.parent.push(w.parent.len());
            }
        }
        let mut work: Vec<usize> = Vec::new();
        for (k, _) in &cfg.entries {
            w.input[*k] = Some(ENTRY);
            work.push(*k);
        }
        while let Some(k) = work.pop() {
            let Some(inp) = w.input[k] else { continue };
            let i = nodes[k].insn;
            let out = match w.def[k] {
                Some(d) => {
                    // `rX += ..`: the value read and the one written share
                    // the field.
                    if uses_defs(&i).0 & bit != 0 && reads_dst(&i) && i.dst == reg {
                        w.union(inp, d);
                    }
                    d
                }
                None => inp,
            };
            for &s in &cfg.succ[k] {
                match w.input[s] {
                    None => {
                        w.input[s] = Some(out);
                        work.push(s);
                    }
                    Some(o) => {
                        if w.union(o, out) {
                            work.push(s);
                        }
                    }
                }
            }
        }
        w
    }

    fn out(&self, k: usize) -> Option<usize> {
        self.def[k].or(self.input[k]).map(|l| self.find(l))
    }

    /// Slots where web `web` holds a value still read later.
    fn range(&self, cfg: &Cfg, live: &[u16], web: usize) -> Vec<usize> {
        (0..self.def.len())
            .filter(|k| {
                cfg.start[*k]
                    && cfg.live_out(live, *k) & (1 << self.reg) != 0
                    && self.out(*k) == Some(web)
            })
            .collect()
    }

    /// Slots reading the register's value of web `web`.
    fn uses(&self, nodes: &[Node], cfg: &Cfg, web: usize) -> Vec<usize> {
        (0..self.def.len())
            .filter(|k| {
                cfg.start[*k]
                    && uses_defs(&nodes[*k].insn).0 & (1 << self.reg) != 0
                    && self.input[*k].map(|l| self.find(l)) == Some(web)
            })
            .collect()
    }

    fn defs(&self, web: usize) -> Vec<usize> {
        (0..self.def.len())
            .filter(|k| self.def[*k].map(|l| self.find(l)) == Some(web))
            .collect()
    }
}

/// Whether an instruction reads its `dst` field's register.
fn reads_dst(i: &Insn) -> bool {
    match i.class() {
        insn::BPF_ALU | insn::BPF_ALU64 => i.op() != insn::BPF_MOV,
        insn::BPF_ST | insn::BPF_STX => true,
        insn::BPF_JMP | insn::BPF_JMP32 => is_cond(i),
        _ => false,
    }
}

/// Whether an instruction's `src` field names a register it reads.
fn reads_src(i: &Insn) -> bool {
    match i.class() {
        insn::BPF_ALU | insn::BPF_ALU64 => i.source() == insn::BPF_X,
        insn::BPF_JMP | insn::BPF_JMP32 => is_cond(i) && i.source() == insn::BPF_X,
        insn::BPF_LDX => true,
        insn::BPF_STX => i.mode() == insn::BPF_MEM,
        _ => false,
    }
}

/// Whether every read and write of `r` by `i` goes through its fields
/// (none is implied, as a call's, `exit`'s or a legacy packet load's).
fn explicit(i: &Insn, r: u8) -> bool {
    let (u, d) = uses_defs(i);
    let bit = 1u16 << r;
    if (u | d) & bit == 0 {
        return true;
    }
    let field_reads = (reads_dst(i) && i.dst == r) || (reads_src(i) && i.src == r);
    let field_writes = match i.class() {
        insn::BPF_ALU | insn::BPF_ALU64 | insn::BPF_LDX => i.dst == r,
        insn::BPF_LD => i.is_ld_imm64() && i.dst == r,
        _ => false,
    };
    let atomic = i.class() == insn::BPF_STX && i.mode() != insn::BPF_MEM;
    !atomic && (u & bit == 0 || field_reads) && (d & bit == 0 || field_writes)
}

/// Renames web `web` of `webs.reg` to `y` when nothing else needs `y`
/// while it lives. `same_as`: the web's only write is copy `c` of `y`
/// (`rX = rY`), so `y` already holds its value wherever `y` is not
/// written, and what else reads `y` then does not matter.
fn rename(
    nodes: &mut [Node],
    cfg: &Cfg,
    live: &[u16],
    webs: &Webs,
    web: usize,
    y: u8,
    same_as: Option<usize>,
) -> bool {
    let x = webs.reg;
    if web == webs.find(ENTRY) || x == y {
        return false;
    }
    let defs = webs.defs(web);
    let uses = webs.uses(nodes, cfg, web);
    if same_as.is_some_and(|c| defs != [c]) {
        return false;
    }
    let yb = 1u16 << y;
    let members = defs.iter().chain(&uses);
    if members
        .clone()
        .any(|k| !explicit(&nodes[*k].insn, x) || !explicit(&nodes[*k].insn, y))
    {
        return false;
    }
    for k in webs.range(cfg, live, web) {
        let writes_y = uses_defs(&nodes[k].insn).1 & yb != 0;
        if same_as.is_some() {
            if writes_y && Some(k) != same_as {
                return false;
            }
        } else if (writes_y && !defs.contains(&k)) || cfg.live_out(live, k) & yb != 0 {
            return false;
        }
    }
    if same_as.is_none() && defs.iter().any(|k| cfg.live_out(live, *k) & yb != 0) {
        return false;
    }
    for &k in &uses {
        let i = &mut nodes[k].insn;
        let (d, s) = (reads_dst(i) && i.dst == x, reads_src(i) && i.src == x);
        if d {
            i.dst = y;
        }
        if s {
            i.src = y;
        }
    }
    for &k in &defs {
        nodes[k].insn.dst = y;
    }
    true
}

/// Copy coalescing: `rD = rS` (both callee-saved) whose value, read
/// later, `rS` still holds there: the reads read `rS` and the copy goes
/// (as `rS = rS`). When the code between writes `rS` for a value of its
/// own (an inlined body using the register its caller keeps a value
/// in), that value moves to another callee-saved register free while
/// it lives, so `rS` keeps the caller's: what a save and restore around
/// the body did, without them.
pub(super) fn coalesce(code: &mut Code, obj: &Object, sec: usize) -> Result<bool, Why> {
    let mut changed = false;
    'again: for _ in 0..64 {
        let cfg = Cfg::build(code, obj, sec);
        let Some(nodes) = code.sec(sec) else {
            return Ok(changed);
        };
        let live = cfg.live_in(nodes);
        for k in 0..nodes.len() {
            let i = nodes[k].insn;
            let (d, s) = (i.dst, i.src);
            if !cfg.start[k]
                || i.code != insn::BPF_ALU64 | insn::BPF_MOV | insn::BPF_X
                || i.off != 0
                || d == s
                || !(insn::R6..=insn::R9).contains(&d)
                || !(insn::R6..=insn::R9).contains(&s)
            {
                continue;
            }
            let dw = Webs::build(&cfg, nodes, d);
            let Some(web) = dw.def[k].map(|l| dw.find(l)) else {
                continue;
            };
            let mut trial: Vec<Node> = nodes.clone();
            if rename(&mut trial, &cfg, &live, &dw, web, s, Some(k)) {
                *code.sec_mut(sec).ok_or("no section")? = trial;
                changed = true;
                continue 'again;
            }
            // Writes of rS while the copy's value lives: their values
            // move elsewhere first, when they can.
            let blockers: Vec<usize> = dw
                .range(&cfg, &live, web)
                .into_iter()
                .filter(|j| *j != k && uses_defs(&nodes[*j].insn).1 & (1 << s) != 0)
                .collect();
            let Some(&j) = blockers.first() else { continue };
            let sw = Webs::build(&cfg, nodes, s);
            let Some(other) = sw.def[j].map(|l| sw.find(l)) else {
                continue;
            };
            for y in (insn::R6..=insn::R9).filter(|y| *y != s && *y != d) {
                let mut moved = nodes.clone();
                if !rename(&mut moved, &cfg, &live, &sw, other, y, None) {
                    continue;
                }
                // Worth it only if the copy then goes.
                let mut probe = code.clone();
                *probe.sec_mut(sec).ok_or("no section")? = moved;
                let pcfg = Cfg::build(&probe, obj, sec);
                let pn = probe.sec(sec).ok_or("no section")?;
                let plive = pcfg.live_in(pn);
                let pw = Webs::build(&pcfg, pn, d);
                let Some(pweb) = pw.def[k].map(|l| pw.find(l)) else {
                    continue;
                };
                let mut done = pn.clone();
                if rename(&mut done, &pcfg, &plive, &pw, pweb, s, Some(k)) {
                    *code.sec_mut(sec).ok_or("no section")? = done;
                    changed = true;
                    continue 'again;
                }
            }
        }
        break;
    }
    Ok(changed)
}

/// [`coalesce`] over every section.
pub(super) fn coalesce_all(code: &mut Code, obj: &Object) -> Result<bool, Why> {
    let secs: Vec<usize> = code.secs.iter().map(|s| s.0).collect();
    let mut changed = false;
    for sec in secs {
        changed |= coalesce(code, obj, sec)?;
    }
    Ok(changed)
}
