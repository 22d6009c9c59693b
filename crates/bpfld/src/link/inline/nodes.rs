//! The code of a linked object as nodes that name what they refer to
//! (jump and call destinations, relocations, BTF.ext records, symbol
//! bounds) by node instead of by offset, so bodies can be copied and
//! functions removed freely; [`Code::encode`] writes offsets back.

use std::collections::{HashMap, HashSet};

use crate::model::btf_ext::{CoreRelo, FuncInfo, LineInfo};
use crate::model::insn::{self, Insn, InsnIndex};
use crate::model::object::{
    Object, Reloc, RelocKind, SectionId, SectionKind, SymbolId, SymbolKind, SymbolPlace,
};

use super::Why;

pub(crate) type NodeId = u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// A jump; the offset is relative to the next instruction.
    Jump(NodeId),
    /// A BPF-to-BPF call inside one section without a relocation.
    LocalCall(NodeId),
    /// A call relocated against a code section's symbol: the immediate
    /// holds the target slot minus one.
    SectionCall(NodeId),
    /// `ld_imm64` with `BPF_PSEUDO_FUNC` relocated against a section
    /// symbol: the immediate holds (target slot − 1) × 8.
    SectionFunc(NodeId),
    /// A plain `ld_imm64` relocated against a code section's symbol (how
    /// clang writes a callback's address): the immediate is the target's
    /// byte offset.
    SectionAddr(NodeId),
}

impl Target {
    pub(crate) fn node(self) -> NodeId {
        match self {
            Target::Jump(t)
            | Target::LocalCall(t)
            | Target::SectionCall(t)
            | Target::SectionFunc(t)
            | Target::SectionAddr(t) => t,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) id: NodeId,
    pub(crate) insn: Insn,
    pub(crate) target: Option<Target>,
    pub(crate) reloc: Option<(RelocKind, SymbolId)>,
    pub(crate) func: Option<FuncInfo>,
    pub(crate) lines: Vec<LineInfo>,
    pub(crate) core: Vec<CoreRelo>,
}

/// Where a symbol starts and ends: a node, or the end of its section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pos {
    At(NodeId),
    End,
}

#[derive(Clone, Debug)]
pub(crate) struct CodeSym {
    pub(crate) sec: usize,
    pub(crate) start: Pos,
    pub(crate) end: Pos,
}

#[derive(Clone, Debug)]
pub(crate) struct Code {
    /// Program sections by index in `obj.sections`.
    pub(crate) secs: Vec<(usize, Vec<Node>)>,
    /// Symbols defined in program sections (not section symbols).
    pub(crate) syms: HashMap<SymbolId, CodeSym>,
    /// Symbols removed with their functions.
    pub(crate) removed: HashSet<SymbolId>,
    /// Each caller's own stack depth, before bodies were inlined into it:
    /// inlined bodies run one after another, so their frames may share the
    /// space below it.
    pub(crate) own_depth: HashMap<SymbolId, u32>,
    /// Bytes of stack in use at a call that came with an inlined body:
    /// the caller's own frame, registers saved around the body and the
    /// body's frame (every enclosing body's, when nested). A body inlined
    /// at such a call runs while those frames are live, so it goes below
    /// them. Absent: a call of the caller's own code ([`Self::own_depth`]).
    pub(crate) live_depth: HashMap<NodeId, u32>,
    /// Where the frame of the code that made a stack pointer ends (`rX =
    /// r10` nodes of inlined bodies; absent: 0, the function's own): an
    /// inlined body's objects lie below it, so its pointers reach no
    /// higher (what the optimiser's spill elimination relies on).
    pub(crate) frame_top: HashMap<NodeId, i64>,
    pub(crate) next_id: NodeId,
    /// The function each node came from (as decoded; an inlined copy
    /// keeps its callee's): what the optimiser's counts are grouped by.
    pub(crate) origin: HashMap<NodeId, SymbolId>,
}

pub(crate) fn is_jump(i: &Insn) -> bool {
    i.is_jmp_class() && !matches!(i.op(), insn::BPF_CALL | insn::BPF_EXIT)
}

pub(crate) fn jump_delta(i: &Insn) -> i64 {
    if i.code == insn::GOTOL {
        i64::from(i.imm)
    } else {
        i64::from(i.off)
    }
}

impl Code {
    pub(crate) fn decode(obj: &Object) -> Result<Code, Why> {
        let mut code = Code {
            secs: Vec::new(),
            syms: HashMap::new(),
            removed: HashSet::new(),
            own_depth: HashMap::new(),
            live_depth: HashMap::new(),
            frame_top: HashMap::new(),
            next_id: 0,
            origin: HashMap::new(),
        };
        // Global node id of every (section, slot).
        let mut base: HashMap<usize, NodeId> = HashMap::new();
        for (si, s) in obj.sections.iter().enumerate() {
            if s.kind == SectionKind::Program {
                base.insert(si, code.next_id);
                code.next_id += s.insns.len() as NodeId;
            }
        }
        let node_at = |sec: usize, slot: i64| -> Option<NodeId> {
            let len = obj.sections.get(sec)?.insns.len() as i64;
            (0..len)
                .contains(&slot)
                .then(|| base[&sec] + slot as NodeId)
        };
        let sym_section = |id: SymbolId| -> Option<(usize, u64, SymbolKind)> {
            let s = obj.symbol(id)?;
            match s.place {
                SymbolPlace::Section(SectionId(x)) => Some((x as usize, s.value, s.kind)),
                _ => None,
            }
        };
        for (si, s) in obj.sections.iter().enumerate() {
            if s.kind != SectionKind::Program {
                continue;
            }
            let b = base[&si];
            let mut nodes: Vec<Node> = s
                .insns
                .iter()
                .enumerate()
                .map(|(k, i)| Node {
                    id: b + k as NodeId,
                    insn: *i,
                    target: None,
                    reloc: None,
                    func: None,
                    lines: Vec::new(),
                    core: Vec::new(),
                })
                .collect();
            let at = |n: &mut Vec<Node>, insn: InsnIndex| -> Result<usize, Why> {
                let k = insn.0 as usize;
                if k < n.len() {
                    Ok(k)
                } else {
                    Err(format!("section '{}': record beyond its code", s.name))
                }
            };
            for r in &s.relocs {
                if r.offset % 8 != 0 {
                    return Err(format!("section '{}': misaligned relocation", s.name));
                }
                let k = at(&mut nodes, r.insn())?;
                nodes[k].reloc = Some((r.kind, r.symbol));
            }
            for f in &s.func_info {
                let k = at(&mut nodes, f.insn)?;
                nodes[k].func = Some(*f);
            }
            for l in &s.line_info {
                let k = at(&mut nodes, l.insn)?;
                nodes[k].lines.push(*l);
            }
            for c in &s.core_relos {
                let k = at(&mut nodes, c.insn)?;
                nodes[k].core.push(*c);
            }
            let mut k = 0usize;
            while k < nodes.len() {
                let i = nodes[k].insn;
                let here = k as i64;
                let bad = |what: &str| format!("section '{}' instruction {k}: {what}", s.name);
                if is_jump(&i) {
                    let t = node_at(si, here + jump_delta(&i) + 1)
                        .ok_or_else(|| bad("jump outside the section"))?;
                    nodes[k].target = Some(Target::Jump(t));
                } else if i.is_call() && i.src == insn::BPF_PSEUDO_CALL {
                    match nodes[k].reloc.and_then(|(_, sym)| sym_section(sym)) {
                        Some((ts, value, SymbolKind::Section)) => {
                            let t = node_at(ts, (value / 8) as i64 + i64::from(i.imm) + 1)
                                .ok_or_else(|| bad("call outside its target section"))?;
                            nodes[k].target = Some(Target::SectionCall(t));
                        }
                        Some(_) => {} // against a function symbol: by name
                        None if nodes[k].reloc.is_some() => {}
                        None => {
                            let t = node_at(si, here + i64::from(i.imm) + 1)
                                .ok_or_else(|| bad("call outside the section"))?;
                            nodes[k].target = Some(Target::LocalCall(t));
                        }
                    }
                } else if i.is_ld_func() {
                    match nodes[k].reloc.and_then(|(_, sym)| sym_section(sym)) {
                        Some((ts, value, SymbolKind::Section)) => {
                            let t = node_at(ts, (value / 8) as i64 + i64::from(i.imm) / 8 + 1)
                                .ok_or_else(|| bad("function address outside its section"))?;
                            nodes[k].target = Some(Target::SectionFunc(t));
                        }
                        Some(_) => {}
                        None => return Err(bad("function address without a relocation")),
                    }
                } else if i.is_ld_imm64() {
                    if let Some((ts, value, SymbolKind::Section)) =
                        nodes[k].reloc.and_then(|(_, sym)| sym_section(sym))
                    {
                        if base.contains_key(&ts) {
                            let off = value as i64 + i64::from(i.imm as u32);
                            if off % 8 != 0 {
                                return Err(bad("code address not on an instruction"));
                            }
                            let t = node_at(ts, off / 8)
                                .ok_or_else(|| bad("code address outside its section"))?;
                            nodes[k].target = Some(Target::SectionAddr(t));
                        }
                    }
                }
                k += if i.is_ld_imm64() { 2 } else { 1 };
            }
            code.secs.push((si, nodes));
        }
        // Records outside the code that point into it (clang's
        // .rel.BTF.ext, DWARF) would go stale; linked objects have none.
        for sec in obj
            .sections
            .iter()
            .filter(|s| s.kind != SectionKind::Program)
        {
            for r in &sec.relocs {
                let into_code = sym_section(r.symbol)
                    .is_some_and(|(x, _, k)| k == SymbolKind::Section && base.contains_key(&x));
                if into_code {
                    return Err(format!(
                        "section '{}' has relocations against code (link the object first)",
                        sec.name
                    ));
                }
            }
        }
        for s in &obj.symbols {
            let SymbolPlace::Section(SectionId(x)) = s.place else {
                continue;
            };
            let x = x as usize;
            if s.kind == SymbolKind::Section || !base.contains_key(&x) {
                continue;
            }
            let pos = |off: u64| -> Result<Pos, Why> {
                let len = obj.sections[x].insns.len() as u64;
                if off % 8 != 0 || off / 8 > len {
                    return Err(format!("symbol '{}' is not on an instruction", s.name));
                }
                Ok(if off / 8 == len {
                    Pos::End
                } else {
                    Pos::At(base[&x] + (off / 8) as NodeId)
                })
            };
            code.syms.insert(
                s.id,
                CodeSym {
                    sec: x,
                    start: pos(s.value)?,
                    end: pos(s.value.saturating_add(s.size))?,
                },
            );
        }
        for (f, sec, range) in code.functions(obj) {
            if let Some(nodes) = code.sec(sec) {
                let ids: Vec<NodeId> = nodes[range].iter().map(|n| n.id).collect();
                for id in ids {
                    code.origin.insert(id, f);
                }
            }
        }
        Ok(code)
    }

    pub(crate) fn fresh(&mut self) -> NodeId {
        self.next_id += 1;
        self.next_id - 1
    }

    pub(crate) fn sec(&self, sec: usize) -> Option<&Vec<Node>> {
        self.secs.iter().find(|(s, _)| *s == sec).map(|(_, n)| n)
    }

    pub(crate) fn sec_mut(&mut self, sec: usize) -> Option<&mut Vec<Node>> {
        self.secs
            .iter_mut()
            .find(|(s, _)| *s == sec)
            .map(|(_, n)| n)
    }

    pub(crate) fn index_of(&self, sec: usize, p: Pos) -> Option<usize> {
        let nodes = self.sec(sec)?;
        match p {
            Pos::End => Some(nodes.len()),
            Pos::At(id) => nodes.iter().position(|n| n.id == id),
        }
    }

    /// The node range of a function symbol.
    pub(crate) fn range(&self, sym: SymbolId) -> Option<(usize, std::ops::Range<usize>)> {
        let cs = self.syms.get(&sym)?;
        let a = self.index_of(cs.sec, cs.start)?;
        let b = self.index_of(cs.sec, cs.end)?;
        (a < b).then_some((cs.sec, a..b))
    }

    /// Function symbols with their ranges, in section order.
    pub(crate) fn functions(&self, obj: &Object) -> Vec<(SymbolId, usize, std::ops::Range<usize>)> {
        let mut v: Vec<_> = self
            .syms
            .keys()
            .filter(|id| {
                obj.symbol(**id).is_some_and(|s| s.kind == SymbolKind::Func)
                    && !self.removed.contains(id)
            })
            .filter_map(|id| self.range(*id).map(|(s, r)| (*id, s, r)))
            .collect();
        v.sort_by_key(|(id, s, r)| (*s, r.start, *id));
        v
    }

    /// The function (symbol) whose body holds node `k` of `sec`.
    pub(crate) fn function_at(&self, obj: &Object, sec: usize, k: usize) -> Option<SymbolId> {
        self.functions(obj)
            .into_iter()
            .find(|(_, s, r)| *s == sec && r.contains(&k))
            .map(|(id, _, _)| id)
    }

    /// Where every node lives: id → (section, slot).
    pub(crate) fn locations(&self) -> HashMap<NodeId, (usize, usize)> {
        let mut m = HashMap::new();
        for (s, nodes) in &self.secs {
            for (k, n) in nodes.iter().enumerate() {
                m.insert(n.id, (*s, k));
            }
        }
        m
    }

    /// Writes the code back: offsets from node positions.
    pub(crate) fn encode(self, obj: &mut Object) -> Result<(), Why> {
        let loc = self.locations();
        let find = |id: NodeId| loc.get(&id).copied().ok_or("a target vanished".to_string());
        // Symbols first: they are looked up while nodes are consumed.
        let mut values: HashMap<SymbolId, (u64, u64)> = HashMap::new();
        for (id, cs) in &self.syms {
            if self.removed.contains(id) {
                continue;
            }
            let a = self
                .index_of(cs.sec, cs.start)
                .ok_or("a symbol lost its start")?;
            let b = self
                .index_of(cs.sec, cs.end)
                .ok_or("a symbol lost its end")?;
            values.insert(*id, (a as u64 * 8, (b.saturating_sub(a)) as u64 * 8));
        }
        for (si, nodes) in self.secs {
            let sec = &mut obj.sections[si];
            sec.insns.clear();
            sec.relocs.clear();
            sec.func_info.clear();
            sec.line_info.clear();
            sec.core_relos.clear();
            for (k, n) in nodes.into_iter().enumerate() {
                let mut i = n.insn;
                let here = k as i64;
                match n.target {
                    Some(Target::Jump(t)) => {
                        let (ts, tk) = find(t)?;
                        let delta = tk as i64 - here - 1;
                        if ts != si {
                            return Err("a jump crosses sections".into());
                        }
                        if i.code == insn::GOTOL {
                            i.imm = i32::try_from(delta).map_err(|_| "jump too far")?;
                        } else {
                            i.off = i16::try_from(delta).map_err(|_| {
                                format!("a jump of {delta} instructions does not fit in 16 bits")
                            })?;
                        }
                    }
                    Some(Target::LocalCall(t)) => {
                        let (ts, tk) = find(t)?;
                        if ts != si {
                            return Err("a local call crosses sections".into());
                        }
                        i.imm = i32::try_from(tk as i64 - here - 1).map_err(|_| "call too far")?;
                    }
                    Some(Target::SectionCall(t)) => {
                        let (_, tk) = find(t)?;
                        i.imm = i32::try_from(tk as i64 - 1).map_err(|_| "call too far")?;
                    }
                    Some(Target::SectionFunc(t)) => {
                        let (_, tk) = find(t)?;
                        i.imm =
                            i32::try_from((tk as i64 - 1) * 8).map_err(|_| "address too far")?;
                    }
                    Some(Target::SectionAddr(t)) => {
                        let (_, tk) = find(t)?;
                        i.imm = i32::try_from(tk as i64 * 8).map_err(|_| "address too far")?;
                    }
                    None => {}
                }
                sec.insns.push(i);
                let slot = InsnIndex(k as u32);
                if let Some((kind, symbol)) = n.reloc {
                    sec.relocs.push(Reloc {
                        offset: k as u64 * 8,
                        kind,
                        symbol,
                    });
                }
                if let Some(f) = n.func {
                    sec.func_info.push(FuncInfo { insn: slot, ..f });
                }
                for l in n.lines {
                    sec.line_info.push(LineInfo { insn: slot, ..l });
                }
                for c in n.core {
                    sec.core_relos.push(CoreRelo { insn: slot, ..c });
                }
            }
            sec.sh_size = sec.insns.len() as u64 * 8;
            // .BTF.ext names its sections through the BTF strings; a
            // section that gained its first records needs its name there.
            let has_ext = !(sec.func_info.is_empty()
                && sec.line_info.is_empty()
                && sec.core_relos.is_empty());
            if let Some(btf) = obj.btf.as_mut().filter(|_| has_ext) {
                let name = &obj.sections[si].name;
                if btf.find_string(name).is_none() {
                    btf.add_string(name);
                }
            }
        }
        for s in &mut obj.symbols {
            if let Some((v, size)) = values.get(&s.id) {
                s.value = *v;
                s.size = *size;
            }
        }
        // Drop removed symbols and renumber the rest.
        if !self.removed.is_empty() {
            let mut renum: HashMap<SymbolId, SymbolId> = HashMap::new();
            let mut kept = Vec::with_capacity(obj.symbols.len());
            for s in std::mem::take(&mut obj.symbols) {
                if self.removed.contains(&s.id) {
                    continue;
                }
                let new = SymbolId(kept.len() as u32);
                renum.insert(s.id, new);
                kept.push(crate::model::object::Symbol { id: new, ..s });
            }
            obj.symbols = kept;
            for sec in &mut obj.sections {
                for r in &mut sec.relocs {
                    r.symbol = *renum
                        .get(&r.symbol)
                        .ok_or("a relocation refers to a removed function")?;
                }
            }
        }
        Ok(())
    }
}

/// Nodes of straight code with its jumps resolved (for tests).
#[cfg(test)]
pub(crate) fn nodes(code: &[Insn]) -> Vec<Node> {
    code.iter()
        .enumerate()
        .map(|(k, i)| Node {
            id: k as NodeId,
            insn: *i,
            target: is_jump(i).then(|| Target::Jump((k as i64 + jump_delta(i) + 1) as NodeId)),
            reloc: None,
            func: None,
            lines: Vec::new(),
            core: Vec::new(),
        })
        .collect()
}
