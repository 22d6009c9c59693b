//! Splicing: a call site replaced by a copy of the callee's body (frame
//! moved down, callee-saved registers spilled around it, `exit`s turned
//! into jumps to the code after the call, calls to its own subprograms
//! relocated), references re-pointed, and functions nothing calls any
//! more removed.

use std::collections::{HashMap, HashSet};

use crate::model::insn::{self, Insn};
use crate::model::object::{
    Binding, Object, RelocKind, SectionId, SectionKind, SymbolId, SymbolKind, SymbolPlace,
};

use super::frame::{frame, shift_frame};
use super::liveness::live_after;
use super::nodes::{Code, Node, NodeId, Pos, Target};
use super::{Why, MAX_STACK};

/// Whether node `n` calls the function `f` (which starts at node `start`).
pub(super) fn calls(n: &Node, f: SymbolId, start: NodeId) -> bool {
    n.insn.is_call()
        && n.insn.src == insn::BPF_PSEUDO_CALL
        && match n.target {
            Some(Target::LocalCall(t)) | Some(Target::SectionCall(t)) => t == start,
            _ => n.reloc.is_some_and(|(_, s)| s == f),
        }
}

/// Whether anything other than the nodes of `f` itself still refers to
/// `f` or into its body.
pub(super) fn still_referenced(code: &Code, obj: &Object, f: SymbolId) -> bool {
    let Some((sec, range)) = code.range(f) else {
        return false;
    };
    let Some(nodes) = code.sec(sec) else {
        return false;
    };
    let inside: HashSet<NodeId> = nodes[range.clone()].iter().map(|n| n.id).collect();
    let mine = |s: usize, k: usize| s == sec && range.contains(&k);
    for (s, ns) in &code.secs {
        for (k, n) in ns.iter().enumerate() {
            if mine(*s, k) {
                continue;
            }
            if n.reloc.is_some_and(|(_, x)| x == f) {
                return true;
            }
            if n.target.is_some_and(|t| inside.contains(&t.node())) {
                return true;
            }
        }
    }
    // Other symbols inside its body (a local label only when something
    // refers to it), or data relocated against it.
    let other_sym = labels_or_symbols_inside(code, obj, f, &inside)
        .into_iter()
        .any(|(id, label)| !label || symbol_referenced(code, obj, id, mine));
    other_sym || data_relocated(obj, f)
}

/// A local label: a NOTYPE local symbol marking an instruction (older
/// clang writes one per basic block, `LBB0_3`). It keeps no code alive by
/// itself.
fn is_label(obj: &Object, id: SymbolId) -> bool {
    obj.symbol(id)
        .is_some_and(|s| s.kind == SymbolKind::NoType && s.binding == Binding::Local)
}

/// The symbols other than `f` that start inside `f`'s body (`inside`),
/// each with whether it is a local label.
fn labels_or_symbols_inside(
    code: &Code,
    obj: &Object,
    f: SymbolId,
    inside: &HashSet<NodeId>,
) -> Vec<(SymbolId, bool)> {
    code.syms
        .iter()
        .filter(|(id, cs)| {
            **id != f
                && !code.removed.contains(id)
                && matches!(cs.start, Pos::At(x) if inside.contains(&x))
        })
        .map(|(id, _)| (*id, is_label(obj, *id)))
        .collect()
}

/// Whether a relocation of data, or of code outside `mine` (section,
/// slot), names symbol `id`.
fn symbol_referenced(
    code: &Code,
    obj: &Object,
    id: SymbolId,
    mine: impl Fn(usize, usize) -> bool,
) -> bool {
    let from_code = code.secs.iter().any(|(s, ns)| {
        ns.iter()
            .enumerate()
            .any(|(k, n)| !mine(*s, k) && n.reloc.is_some_and(|(_, x)| x == id))
    });
    from_code || data_relocated(obj, id)
}

fn data_relocated(obj: &Object, id: SymbolId) -> bool {
    obj.sections
        .iter()
        .filter(|s| s.kind != SectionKind::Program)
        .any(|s| s.relocs.iter().any(|r| r.symbol == id))
}

/// Replaces the call at `sec`[`k`] by a copy of `f`'s body.
pub(super) fn inline_site(
    code: &mut Code,
    obj: &Object,
    sec: usize,
    k: usize,
    f: SymbolId,
) -> Result<SymbolId, Why> {
    let caller = code
        .function_at(obj, sec, k)
        .ok_or("the call is not inside a function symbol")?;
    let (csec, crange) = code.range(caller).ok_or("caller has no body")?;
    let (fsec, frange) = code.range(f).ok_or("it has no body")?;
    if fsec == sec && frange.contains(&k) {
        return Err("it calls itself".into());
    }
    let caller_nodes = &code.sec(csec).ok_or("no caller section")?[crange.clone()];
    let cf = frame(caller_nodes).map_err(|e| format!("the caller's stack: {e}"))?;
    let live = live_after(caller_nodes, k - crange.start);
    let body: Vec<Node> = code.sec(fsec).ok_or("no callee section")?[frange.clone()].to_vec();
    let bf = frame(&body)?;
    if bf.tail_call {
        return Err(
            "it makes a tail call, which from an inlined body would end the whole program \
             instead of returning to the caller"
                .into(),
        );
    }
    let body_ids: HashSet<NodeId> = body.iter().map(|n| n.id).collect();
    let start = body[0].id;
    for n in &body {
        match n.target {
            Some(Target::Jump(t)) if !body_ids.contains(&t) => {
                return Err("it jumps outside its own body".into())
            }
            Some(Target::LocalCall(t)) | Some(Target::SectionCall(t)) if t == start => {
                return Err("it calls itself".into())
            }
            _ if n.reloc.is_some_and(|(_, s)| s == f) => return Err("it calls itself".into()),
            _ => {}
        }
    }
    // Callee-saved registers the body clobbers and the caller still needs.
    let saved: Vec<u8> = (insn::R6..=insn::R9)
        .filter(|r| bf.writes & live & (1 << r) != 0)
        .collect();
    let own = *code.own_depth.entry(caller).or_insert(cf.depth);
    // A call inside an earlier inlined body: that body's frame is live.
    let live_depth = code
        .live_depth
        .get(&code.sec(sec).ok_or("no caller section")?[k].id);
    let caller_depth = live_depth.copied().unwrap_or(0).max(own).div_ceil(8) * 8;
    let base = caller_depth + 8 * saved.len() as u32;
    if base + bf.depth > MAX_STACK {
        return Err(format!(
            "its frame ({} bytes) below the caller's ({base} bytes) exceeds {MAX_STACK} bytes",
            bf.depth
        ));
    }
    let slot = |j: usize| -> i16 { -((caller_depth + 8 * (j as u32 + 1)) as i16) };

    let mut body = body;
    shift_frame(&mut body, base)?;
    let call = code.sec(sec).ok_or("no caller section")?[k].clone();
    let after = code
        .sec(sec)
        .and_then(|n| n.get(k + 1))
        .map(|n| n.id)
        .ok_or("the call is the last instruction")?;
    // New ids for the copy; a trailing exit is dropped (falls through).
    let mut renum: HashMap<NodeId, NodeId> = HashMap::new();
    let trailing_exit = body.last().is_some_and(|n| n.insn.code == insn::EXIT);
    let restores: Vec<NodeId> = saved.iter().map(|_| code.fresh()).collect();
    let resume = restores.first().copied().unwrap_or(after);
    for n in &body {
        let id = code.fresh();
        renum.insert(n.id, id);
        if n.insn.code == insn::BPF_ALU64 | insn::BPF_MOV | insn::BPF_X && n.insn.src == insn::R10 {
            let top = code.frame_top.get(&n.id).copied().unwrap_or(0) - i64::from(base);
            code.frame_top.insert(id, top);
        }
    }
    if trailing_exit {
        if let Some(last) = body.last() {
            renum.insert(last.id, resume);
        }
    }
    let fsym_sec = obj
        .symbols
        .iter()
        .find(|s| {
            s.kind == SymbolKind::Section && s.place == SymbolPlace::Section(SectionId(fsec as u32))
        })
        .map(|s| s.id);
    let mut copy: Vec<Node> = Vec::with_capacity(body.len() + 2 * saved.len());
    for (j, r) in saved.iter().enumerate() {
        copy.push(Node {
            id: code.fresh(),
            insn: Insn::store_reg(insn::BPF_DW, insn::R10, slot(j), *r),
            target: None,
            reloc: None,
            func: None,
            lines: Vec::new(),
            core: Vec::new(),
        });
    }
    // Stack in use at each call of the copy: the body's own frame (or,
    // at a call that came with a body inlined into it, that one's too)
    // below `base`.
    let f_own = code.own_depth.get(&f).copied().unwrap_or(bf.depth);
    let mut live_at: HashMap<NodeId, u32> = HashMap::new();
    let body_len = body.len();
    for (j, mut n) in body.into_iter().enumerate() {
        if trailing_exit && j + 1 == body_len {
            break;
        }
        if n.insn.is_call() && n.insn.src == insn::BPF_PSEUDO_CALL {
            let inner = code.live_depth.get(&n.id).copied().unwrap_or(f_own);
            live_at.insert(renum[&n.id], base + inner);
        }
        n.id = renum[&n.id];
        n.func = None;
        if n.insn.code == insn::EXIT {
            n.insn = Insn::ja(0);
            n.target = Some(Target::Jump(resume));
        } else {
            n.target = match n.target {
                Some(Target::Jump(t)) => Some(Target::Jump(renum[&t])),
                Some(Target::LocalCall(t)) if fsec != sec => {
                    let s = fsym_sec.ok_or("its section has no section symbol")?;
                    n.reloc = Some((RelocKind::Bpf64_32, s));
                    Some(Target::SectionCall(t))
                }
                other => other,
            };
        }
        copy.push(n);
    }
    for (j, r) in saved.iter().enumerate() {
        copy.push(Node {
            id: restores[j],
            insn: Insn::load(insn::BPF_DW, *r, insn::R10, slot(j)),
            target: None,
            reloc: None,
            func: None,
            lines: Vec::new(),
            core: Vec::new(),
        });
    }
    // The copy takes the call's place: jumps to the call land on it, and
    // the call's own records (its line, a function start) move to it.
    let Some(first) = copy.first_mut() else {
        // An empty body (a lone exit) leaves nothing: jumps to the call go
        // on to what follows it.
        let nodes = code.sec_mut(sec).ok_or("no caller section")?;
        nodes.remove(k);
        retarget(code, call.id, after);
        if let Some(n) = code.sec_mut(sec).and_then(|n| n.get_mut(k)) {
            if call.func.is_some() {
                n.func = call.func;
            }
            if !call.lines.is_empty() {
                n.lines = call.lines;
            }
        }
        return Ok(caller);
    };
    let old_first = first.id;
    first.id = call.id;
    first.func = call.func;
    if !call.lines.is_empty() {
        first.lines = call.lines.clone();
    }
    for n in &copy {
        code.origin.insert(n.id, f);
    }
    code.live_depth.remove(&call.id);
    if let Some(d) = live_at.remove(&old_first) {
        live_at.insert(call.id, d);
    }
    code.live_depth.extend(live_at);
    let nodes = code.sec_mut(sec).ok_or("no caller section")?;
    nodes.splice(k..k + 1, copy);
    // Jumps inside the copy to its first node now name the call's id.
    retarget(code, old_first, call.id);
    Ok(caller)
}

/// Points every reference to node `from` at node `to`, symbols included.
pub(crate) fn retarget(code: &mut Code, from: NodeId, to: NodeId) {
    for (_, nodes) in &mut code.secs {
        for n in nodes.iter_mut() {
            if let Some(
                Target::Jump(t)
                | Target::LocalCall(t)
                | Target::SectionCall(t)
                | Target::SectionFunc(t)
                | Target::SectionAddr(t),
            ) = &mut n.target
            {
                if *t == from {
                    *t = to;
                }
            }
        }
    }
    for cs in code.syms.values_mut() {
        for p in [&mut cs.start, &mut cs.end] {
            if *p == Pos::At(from) {
                *p = Pos::At(to);
            }
        }
    }
}

/// Removes function `f`'s body and symbol, and the local labels inside
/// it (nothing refers to them: see [`still_referenced`]).
pub(super) fn remove_function(code: &mut Code, obj: &Object, f: SymbolId) {
    if let Some((sec, range)) = code.range(f) {
        let inside: Option<HashSet<NodeId>> = code
            .sec(sec)
            .map(|nodes| nodes[range.clone()].iter().map(|n| n.id).collect());
        if let Some(inside) = inside {
            for (id, label) in labels_or_symbols_inside(code, obj, f, &inside) {
                if label {
                    code.removed.insert(id);
                }
            }
        }
        if let Some(nodes) = code.sec_mut(sec) {
            let end_id = nodes.get(range.end).map(|n| n.id);
            let first_id = nodes[range.start].id;
            nodes.drain(range);
            // A symbol that ended where the function began now ends where
            // the function ended.
            let to = end_id.map_or(Pos::End, Pos::At);
            for cs in code.syms.values_mut() {
                for p in [&mut cs.start, &mut cs.end] {
                    if *p == Pos::At(first_id) {
                        *p = to;
                    }
                }
            }
        }
    }
    code.removed.insert(f);
}
