//! Values that later components load again, kept in a register instead.
//!
//! Each inlined XDP component loads the context's `data` and `data_end`
//! (and `data_meta`) for itself, after the map lookups of the one before
//! have taken r1-r5. A copy of the first load into a callee-saved
//! register that is free there keeps the value across those calls; the
//! later loads then become copies of it (see `reloads` in the module
//! above), which carry the range the first bounds check proved, so the
//! later checks go too. A register qualifies when nothing reads its old
//! value after the copy; which one is worth it is measured: the one that
//! still holds the value at the most later loads, and only when some
//! load is served. Whether the whole pays (one instruction more) is for
//! the caller to measure.

use crate::link::inline::nodes::{Code, Node};
use crate::model::insn::{self, Insn};
use crate::model::object::Object;

use super::cfg::Cfg;
use super::values::{analyse, Val};
use super::Why;

/// The context fields followed: `data`, `data_end`, `data_meta`.
const FIELDS: [i16; 3] = [0, 4, 8];

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
        let i = n.insn;
        let Some(s) = &states[k] else { continue };
        if !cfg.start[k]
            || i.class() != insn::BPF_LDX
            || i.mode() != insn::BPF_MEM
            || i.size() != insn::BPF_W
            || i.off != field
            || !n.core.is_empty()
            || s.regs.get((i.src & 0xf) as usize) != Some(&Val::Ctx)
        {
            continue;
        }
        let same = Val::Pkt { field, add: 0 };
        if (0..10u8).any(|r| r != i.dst && s.regs[r as usize] == same) {
            served += 1;
        }
        out.push((k, i.dst));
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
