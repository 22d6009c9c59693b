//! Link-time inlining: a call to a resolved function is replaced by the
//! function's body, so a composed pipeline costs what the same steps
//! written as one program cost.
//!
//! The pass works on a linked object. Code is first decoded into nodes
//! that name their targets (jump and call destinations, relocations,
//! BTF.ext records, symbol bounds) by node instead of by offset; bodies are
//! then copied and functions removed freely, and everything is encoded
//! back into offsets at the end, so nothing that refers to moved code can
//! go stale.
//!
//! An inlined body keeps its meaning because:
//! - its stack frame is moved below the caller's frame (every `r10`-based
//!   access and every `rX = r10; rX += imm` is shifted), and the total
//!   stack along every call chain is checked against the kernel's 512
//!   bytes;
//! - the callee-saved registers r6–r9 that the body writes and the caller
//!   uses are spilled around it (a called function gets fresh r6–r9 from
//!   the kernel; an inlined body does not);
//! - each `exit` becomes a jump to the code after the call, r0 holding the
//!   return value as before;
//! - calls to its own subprograms become relocated calls into their
//!   section; its func_info record goes (it is no longer a function) and
//!   its line_info and CO-RE records move with its instructions.
//!
//! The caller's own frame is measured from the code: the deepest `r10`
//! offset it addresses, directly or through a pointer derived from `r10`
//! in straight-line code. That is the whole frame for code a compiler lays
//! out (each stack object addressed from its lowest byte somewhere); code
//! that only ever reaches the bottom of a stack object through a pointer
//! handed to another function would be measured short.
//!
//! A function is called instead of inlined when one of those cannot be
//! guaranteed: it makes a tail call (which, from an inlined body, would end
//! the whole program instead of returning to the caller), it uses `r10` in
//! a way the pass does not follow, it jumps outside itself, or the stack
//! would exceed the kernel's limit.

use std::collections::{HashMap, HashSet};

use crate::model::btf_ext::{CoreRelo, FuncInfo, LineInfo};
use crate::model::insn::{self, Insn, InsnIndex};
use crate::model::object::{
    Object, Reloc, RelocKind, SectionId, SectionKind, SymbolId, SymbolKind, SymbolPlace,
};

/// What happened to one function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub function: String,
    /// Callers it was inlined into (function names, one per call site).
    pub inlined_into: Vec<String>,
    /// Why it (or some call of it) is still a call.
    pub called_because: Option<String>,
}

const MAX_STACK: u32 = 512;
const BPF_FUNC_TAIL_CALL: i32 = 12;

type NodeId = u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
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
    fn node(self) -> NodeId {
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
struct Node {
    id: NodeId,
    insn: Insn,
    target: Option<Target>,
    reloc: Option<(RelocKind, SymbolId)>,
    func: Option<FuncInfo>,
    lines: Vec<LineInfo>,
    core: Vec<CoreRelo>,
}

/// Where a symbol starts and ends: a node, or the end of its section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pos {
    At(NodeId),
    End,
}

#[derive(Clone, Debug)]
struct CodeSym {
    sec: usize,
    start: Pos,
    end: Pos,
}

#[derive(Clone, Debug)]
struct Code {
    /// Program sections by index in `obj.sections`.
    secs: Vec<(usize, Vec<Node>)>,
    /// Symbols defined in program sections (not section symbols).
    syms: HashMap<SymbolId, CodeSym>,
    /// Symbols removed with their functions.
    removed: HashSet<SymbolId>,
    /// Each caller's own stack depth, before bodies were inlined into it:
    /// inlined bodies run one after another, so their frames may share the
    /// space below it.
    own_depth: HashMap<SymbolId, u32>,
    next_id: NodeId,
}

type Why = String;

fn is_jump(i: &Insn) -> bool {
    i.is_jmp_class() && !matches!(i.op(), insn::BPF_CALL | insn::BPF_EXIT)
}

fn jump_delta(i: &Insn) -> i64 {
    if i.code == insn::GOTOL {
        i64::from(i.imm)
    } else {
        i64::from(i.off)
    }
}

impl Code {
    fn decode(obj: &Object) -> Result<Code, Why> {
        let mut code = Code {
            secs: Vec::new(),
            syms: HashMap::new(),
            removed: HashSet::new(),
            own_depth: HashMap::new(),
            next_id: 0,
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
        Ok(code)
    }

    fn fresh(&mut self) -> NodeId {
        self.next_id += 1;
        self.next_id - 1
    }

    fn sec(&self, sec: usize) -> Option<&Vec<Node>> {
        self.secs.iter().find(|(s, _)| *s == sec).map(|(_, n)| n)
    }

    fn sec_mut(&mut self, sec: usize) -> Option<&mut Vec<Node>> {
        self.secs
            .iter_mut()
            .find(|(s, _)| *s == sec)
            .map(|(_, n)| n)
    }

    fn index_of(&self, sec: usize, p: Pos) -> Option<usize> {
        let nodes = self.sec(sec)?;
        match p {
            Pos::End => Some(nodes.len()),
            Pos::At(id) => nodes.iter().position(|n| n.id == id),
        }
    }

    /// The node range of a function symbol.
    fn range(&self, sym: SymbolId) -> Option<(usize, std::ops::Range<usize>)> {
        let cs = self.syms.get(&sym)?;
        let a = self.index_of(cs.sec, cs.start)?;
        let b = self.index_of(cs.sec, cs.end)?;
        (a < b).then_some((cs.sec, a..b))
    }

    /// Function symbols with their ranges, in section order.
    fn functions(&self, obj: &Object) -> Vec<(SymbolId, usize, std::ops::Range<usize>)> {
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
    fn function_at(&self, obj: &Object, sec: usize, k: usize) -> Option<SymbolId> {
        self.functions(obj)
            .into_iter()
            .find(|(_, s, r)| *s == sec && r.contains(&k))
            .map(|(id, _, _)| id)
    }

    /// Where every node lives: id → (section, slot).
    fn locations(&self) -> HashMap<NodeId, (usize, usize)> {
        let mut m = HashMap::new();
        for (s, nodes) in &self.secs {
            for (k, n) in nodes.iter().enumerate() {
                m.insert(n.id, (*s, k));
            }
        }
        m
    }

    /// Writes the code back: offsets from node positions.
    fn encode(self, obj: &mut Object) -> Result<(), Why> {
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

/// What a stretch of code does with the stack and registers.
#[derive(Clone, Copy, Debug, Default)]
struct Frame {
    /// Bytes below r10 it uses.
    depth: u32,
    /// Registers it writes (bit n = rn).
    writes: u16,
    tail_call: bool,
}

/// Scans straight-line code for its stack use. Only `r10` as a memory base
/// with a negative offset, and `rX = r10` immediately followed by
/// `rX += imm` with a negative `imm`, are followed; anything else makes the
/// frame unknown.
fn frame(nodes: &[Node]) -> Result<Frame, Why> {
    let mut f = Frame::default();
    let mut k = 0;
    // Jump targets: the code between them runs straight.
    let targets: HashSet<NodeId> = nodes
        .iter()
        .filter_map(|n| match n.target {
            Some(Target::Jump(t)) => Some(t),
            _ => None,
        })
        .collect();
    // Registers holding r10 + a known offset, in straight-line code: an
    // access below such a pointer (`p[-1]`) deepens the frame too.
    let mut fp: [Option<i64>; 16] = [None; 16];
    let deepen = |off: i64, f: &mut Frame| -> Result<(), Why> {
        if off >= 0 || off < -i64::from(MAX_STACK) {
            return Err(format!("it addresses r10{off:+}, outside a stack frame"));
        }
        f.depth = f.depth.max((-off) as u32);
        Ok(())
    };
    while k < nodes.len() {
        let i = nodes[k].insn;
        let width = if i.is_ld_imm64() { 2 } else { 1 };
        let (dst, src) = (i.dst & 0xf, i.src & 0xf);
        let src_is_reg = match i.class() {
            insn::BPF_ALU | insn::BPF_ALU64 | insn::BPF_JMP | insn::BPF_JMP32 => {
                i.source() == insn::BPF_X && !i.is_call()
            }
            insn::BPF_LDX | insn::BPF_STX => true,
            _ => false,
        };
        let dst_is_reg = !(i.is_call()
            || i.code == insn::EXIT
            || i.code == insn::JA
            || i.code == insn::GOTOL
            || i.code == insn::JCOND);
        if i.is_call() && i.src == 0 && i.imm == BPF_FUNC_TAIL_CALL {
            f.tail_call = true;
        }
        if targets.contains(&nodes[k].id) {
            fp = [None; 16];
        }
        let base = match i.class() {
            insn::BPF_LDX => Some(src),
            insn::BPF_ST | insn::BPF_STX => Some(dst),
            _ => None,
        };
        if let Some(o) = base
            .filter(|b| *b != insn::R10)
            .and_then(|b| fp[b as usize])
        {
            deepen(o + i64::from(i.off), &mut f)?;
        }
        // What this instruction leaves in the registers it writes.
        let defs = use_def(&i).1;
        f.writes |= defs;
        let copied = (i.code == insn::BPF_ALU64 | insn::BPF_MOV | insn::BPF_X && i.off == 0)
            .then(|| fp[src as usize])
            .flatten();
        let moved = match (i.code, fp[dst as usize]) {
            (c, Some(o)) if c == insn::BPF_ALU64 | insn::BPF_ADD | insn::BPF_K => {
                Some(o + i64::from(i.imm))
            }
            (c, Some(o)) if c == insn::BPF_ALU64 | insn::BPF_SUB | insn::BPF_K => {
                Some(o - i64::from(i.imm))
            }
            _ => None,
        };
        for (r, v) in fp.iter_mut().enumerate() {
            if defs & (1 << r) != 0 {
                *v = None;
            }
        }
        if defs & (1 << dst) != 0 {
            fp[dst as usize] = copied.or(moved);
        }
        let fp_base = base == Some(insn::R10);
        if fp_base {
            deepen(i64::from(i.off), &mut f)?;
            if i.class() == insn::BPF_STX && src == insn::R10 {
                return Err("it stores the frame pointer to memory".into());
            }
            k += width;
            continue;
        }
        if i.code == insn::BPF_ALU64 | insn::BPF_MOV | insn::BPF_X && src == insn::R10 {
            let next = nodes.get(k + 1).map(|n| n.insn);
            match next {
                Some(n)
                    if n.code == insn::BPF_ALU64 | insn::BPF_ADD | insn::BPF_K
                        && n.dst == i.dst
                        && !targets.contains(&nodes[k + 1].id) =>
                {
                    deepen(i64::from(n.imm), &mut f)?;
                    fp[dst as usize] = Some(i64::from(n.imm));
                    k += 2;
                    continue;
                }
                _ => {
                    return Err(format!(
                        "instruction {k} copies r10 without an offset that the inliner can follow"
                    ))
                }
            }
        }
        if (src_is_reg && src == insn::R10) || (dst_is_reg && dst == insn::R10) {
            return Err(format!(
                "instruction {k} uses r10 in a way the inliner does not follow"
            ));
        }
        k += width;
    }
    Ok(f)
}

/// Registers (bit n = rn) that straight code writes (a call counts as
/// writing r0–r5).
pub(crate) fn registers_written(code: &[Insn]) -> u16 {
    let mut w = 0;
    let mut k = 0;
    while k < code.len() {
        w |= use_def(&code[k]).1;
        k += if code[k].is_ld_imm64() { 2 } else { 1 };
    }
    w
}

/// Registers read and written by one instruction (bit n = rn).
fn use_def(i: &Insn) -> (u16, u16) {
    let (d, s) = (1u16 << (i.dst & 0xf), 1u16 << (i.src & 0xf));
    let x = i.source() == insn::BPF_X;
    match i.class() {
        insn::BPF_ALU | insn::BPF_ALU64 => {
            let src = if x { s } else { 0 };
            if i.op() == insn::BPF_MOV {
                (src, d)
            } else {
                (d | src, d)
            }
        }
        insn::BPF_LDX => (s, d),
        insn::BPF_LD if i.is_ld_imm64() => (0, d),
        insn::BPF_LD => (0x3fe | s, 0x3f), // legacy packet loads: like a call
        insn::BPF_ST => (d, 0),
        insn::BPF_STX if i.mode() == insn::BPF_ATOMIC => {
            if i.imm == insn::BPF_CMPXCHG {
                (d | s | 1, 1)
            } else if i.imm & insn::BPF_FETCH != 0 {
                (d | s, s)
            } else {
                (d | s, 0)
            }
        }
        insn::BPF_STX => (d | s, 0),
        _ if i.is_call() => (0x3e, 0x3f),
        _ if i.code == insn::EXIT => (1, 0),
        _ if i.code == insn::JA || i.code == insn::GOTOL || i.code == insn::JCOND => (0, 0),
        _ => (d | if x { s } else { 0 }, 0), // conditional jumps
    }
}

/// Registers r6–r9 whose values are read after node `at` of a function's
/// `nodes` before being written (a backward liveness pass).
fn live_after(nodes: &[Node], at: usize) -> u16 {
    let pos: HashMap<NodeId, usize> = nodes.iter().enumerate().map(|(k, n)| (n.id, k)).collect();
    let n = nodes.len();
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut ud: Vec<(u16, u16)> = vec![(0, 0); n];
    let mut k = 0;
    while k < n {
        let i = nodes[k].insn;
        let width = if i.is_ld_imm64() { 2 } else { 1 };
        ud[k] = use_def(&i);
        let next = k + width;
        let jump = match nodes[k].target {
            Some(Target::Jump(t)) => pos.get(&t).copied(),
            _ => None,
        };
        let unconditional = i.code == insn::JA || i.code == insn::GOTOL;
        if i.code != insn::EXIT && !unconditional && next < n {
            succ[k].push(next);
        }
        succ[k].extend(jump);
        if width == 2 && k + 1 < n {
            succ[k + 1] = succ[k].clone();
        }
        k += width;
    }
    let mut live_in = vec![0u16; n];
    let mut changed = true;
    while changed {
        changed = false;
        for k in (0..n).rev() {
            let out = succ[k].iter().fold(0, |a, s| a | live_in[*s]);
            let v = ud[k].0 | (out & !ud[k].1);
            if v != live_in[k] {
                live_in[k] = v;
                changed = true;
            }
        }
    }
    let out = succ
        .get(at)
        .map_or(0, |v| v.iter().fold(0, |a, s| a | live_in[*s]));
    out & 0x3c0
}

/// Moves a body's stack frame down by `by` bytes (see [`frame`]).
fn shift_frame(nodes: &mut [Node], by: u32) -> Result<(), Why> {
    let by = i64::from(by);
    let mut k = 0;
    while k < nodes.len() {
        let i = nodes[k].insn;
        let fp_base = match i.class() {
            insn::BPF_LDX => i.src == insn::R10,
            insn::BPF_ST | insn::BPF_STX => i.dst == insn::R10,
            _ => false,
        };
        if fp_base {
            nodes[k].insn.off =
                i16::try_from(i64::from(i.off) - by).map_err(|_| "stack too deep")?;
        } else if i.code == insn::BPF_ALU64 | insn::BPF_MOV | insn::BPF_X && i.src == insn::R10 {
            let n = &mut nodes[k + 1].insn;
            n.imm = i32::try_from(i64::from(n.imm) - by).map_err(|_| "stack too deep")?;
            k += 1;
        }
        k += if i.is_ld_imm64() { 2 } else { 1 };
    }
    Ok(())
}

fn round32(x: u32) -> u32 {
    x.max(1).div_ceil(32) * 32
}

/// Checks the stack along every call chain that goes through `through`:
/// the kernel allows 512 bytes in all, each frame rounded up to 32.
fn check_stack(code: &Code, obj: &Object, through: SymbolId) -> Result<(), Why> {
    let funcs = code.functions(obj);
    let loc = code.locations();
    let mut frames: HashMap<SymbolId, Option<u32>> = HashMap::new();
    let mut callees: HashMap<SymbolId, Vec<SymbolId>> = HashMap::new();
    let func_of = |sec: usize, k: usize| {
        funcs
            .iter()
            .find(|(_, s, r)| *s == sec && r.contains(&k))
            .map(|(id, _, _)| *id)
    };
    let by_symbol: HashMap<SymbolId, SymbolId> = funcs.iter().map(|f| (f.0, f.0)).collect();
    for (id, sec, r) in &funcs {
        let nodes = &code.sec(*sec).map_or(&[][..], |n| &n[r.clone()]);
        frames.insert(*id, frame(nodes).ok().map(|f| f.depth));
        let mut out = Vec::new();
        for n in nodes.iter() {
            let callee = match n.target {
                Some(Target::LocalCall(t))
                | Some(Target::SectionCall(t))
                | Some(Target::SectionFunc(t))
                | Some(Target::SectionAddr(t)) => loc.get(&t).and_then(|(s, k)| func_of(*s, *k)),
                _ if n.insn.is_call() && n.insn.src == insn::BPF_PSEUDO_CALL
                    || n.insn.is_ld_func() =>
                {
                    n.reloc.and_then(|(_, s)| by_symbol.get(&s).copied())
                }
                _ => None,
            };
            out.extend(callee);
        }
        callees.insert(*id, out);
    }
    // Deepest chain below each function (None: unknown or recursive).
    fn below(
        f: SymbolId,
        frames: &HashMap<SymbolId, Option<u32>>,
        callees: &HashMap<SymbolId, Vec<SymbolId>>,
        seen: &mut Vec<SymbolId>,
    ) -> Option<u32> {
        if seen.contains(&f) {
            return None;
        }
        seen.push(f);
        let own = round32((*frames.get(&f)?)?);
        let mut deepest = 0;
        for c in callees.get(&f).map_or(&[][..], |v| v) {
            deepest = deepest.max(below(*c, frames, callees, seen)?);
        }
        seen.pop();
        Some(own + deepest)
    }
    let reaches = |from: SymbolId| {
        let mut stack = vec![from];
        let mut seen = HashSet::new();
        while let Some(f) = stack.pop() {
            if f == through {
                return true;
            }
            if seen.insert(f) {
                stack.extend(callees.get(&f).into_iter().flatten().copied());
            }
        }
        false
    };
    let called: HashSet<SymbolId> = callees.values().flatten().copied().collect();
    for (id, _, _) in funcs.iter().filter(|f| !called.contains(&f.0)) {
        if !reaches(*id) {
            continue;
        }
        match below(*id, &frames, &callees, &mut Vec::new()) {
            Some(d) if d <= MAX_STACK => {}
            Some(d) => {
                return Err(format!(
                "the stack along a call chain would be {d} bytes, above the kernel's {MAX_STACK}"
            ))
            }
            None => {
                return Err(
                    "the stack use of a function on the call chain cannot be bounded".into(),
                )
            }
        }
    }
    Ok(())
}

/// Whether node `n` calls the function `f` (which starts at node `start`).
fn calls(n: &Node, f: SymbolId, start: NodeId) -> bool {
    n.insn.is_call()
        && n.insn.src == insn::BPF_PSEUDO_CALL
        && match n.target {
            Some(Target::LocalCall(t)) | Some(Target::SectionCall(t)) => t == start,
            _ => n.reloc.is_some_and(|(_, s)| s == f),
        }
}

/// Whether anything other than the nodes of `f` itself still refers to
/// `f` or into its body.
fn still_referenced(code: &Code, obj: &Object, f: SymbolId) -> bool {
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
    // Other symbols inside its body, or data relocated against it.
    let other_sym = code.syms.iter().any(|(id, cs)| {
        *id != f
            && !code.removed.contains(id)
            && matches!(cs.start, Pos::At(x) if inside.contains(&x))
    });
    let data_ref = obj
        .sections
        .iter()
        .filter(|s| s.kind != SectionKind::Program)
        .any(|s| s.relocs.iter().any(|r| r.symbol == f));
    other_sym || data_ref
}

/// Replaces the call at `sec`[`k`] by a copy of `f`'s body.
fn inline_site(
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
    let caller_depth = code.own_depth.entry(caller).or_insert(cf.depth).div_ceil(8) * 8;
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
    let body_len = body.len();
    for (j, mut n) in body.into_iter().enumerate() {
        if trailing_exit && j + 1 == body_len {
            break;
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
    let nodes = code.sec_mut(sec).ok_or("no caller section")?;
    nodes.splice(k..k + 1, copy);
    // Jumps inside the copy to its first node now name the call's id.
    retarget(code, old_first, call.id);
    Ok(caller)
}

/// Points every reference to node `from` at node `to`, symbols included.
fn retarget(code: &mut Code, from: NodeId, to: NodeId) {
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

/// Removes function `f`'s body and symbol.
fn remove_function(code: &mut Code, f: SymbolId) {
    if let Some((sec, range)) = code.range(f) {
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

/// Inlines every call to each function named in `names` (defined in a
/// program section of `obj`), and removes a function once nothing calls
/// it any more, along with local functions only it called.
pub fn inline_functions(obj: &mut Object, names: &[String]) -> Vec<Outcome> {
    let mut outcomes: Vec<Outcome> = names
        .iter()
        .map(|n| Outcome {
            function: n.clone(),
            inlined_into: Vec::new(),
            called_because: None,
        })
        .collect();
    let mut code = match Code::decode(obj) {
        Ok(c) => c,
        Err(e) => {
            for o in &mut outcomes {
                o.called_because = Some(format!("the object's code cannot be rewritten: {e}"));
            }
            return outcomes;
        }
    };
    for o in &mut outcomes {
        let Some(f) = obj
            .symbols
            .iter()
            .find(|s| {
                s.name == o.function && s.kind == SymbolKind::Func && code.syms.contains_key(&s.id)
            })
            .map(|s| s.id)
        else {
            o.called_because = Some("no function of that name in the output's code".into());
            continue;
        };
        while let Some((_, range)) = code.range(f) {
            let start = code.sec(code.syms[&f].sec).map(|n| n[range.start].id);
            let Some(start) = start else { break };
            let fsec = code.syms[&f].sec;
            // The next call site not yet tried.
            let site = code.secs.iter().find_map(|(s, nodes)| {
                nodes.iter().enumerate().find_map(|(k, n)| {
                    let own = *s == fsec && range.contains(&k);
                    (!own && calls(n, f, start)).then_some((*s, k))
                })
            });
            let Some((sec, k)) = site else { break };
            let before = code.clone();
            let done = inline_site(&mut code, obj, sec, k, f)
                .and_then(|caller| check_stack(&code, obj, caller).map(|_| caller));
            match done {
                Ok(caller) => {
                    let name = obj.symbol(caller).map_or(String::new(), |s| s.name.clone());
                    o.inlined_into.push(name);
                }
                Err(why) => {
                    code = before;
                    o.called_because = Some(why);
                    break;
                }
            }
        }
        if o.inlined_into.is_empty() && o.called_because.is_none() {
            o.called_because = Some("nothing calls it".into());
        }
        if !o.inlined_into.is_empty() && !still_referenced(&code, obj, f) {
            remove_function(&mut code, f);
        }
    }
    // Local functions that only removed functions called.
    loop {
        let dead: Vec<SymbolId> = code
            .functions(obj)
            .into_iter()
            .map(|(id, _, _)| id)
            .filter(|id| {
                obj.symbol(*id).is_some_and(|s| {
                    s.binding == crate::model::object::Binding::Local
                        && obj.sections[code.syms[id].sec].name == ".text"
                })
            })
            .filter(|id| !still_referenced(&code, obj, *id))
            .collect();
        if dead.is_empty() || outcomes.iter().all(|o| o.inlined_into.is_empty()) {
            break;
        }
        for id in dead {
            remove_function(&mut code, id);
        }
    }
    let snapshot = obj.clone();
    if let Err(e) = code.encode(obj) {
        *obj = snapshot;
        for o in &mut outcomes {
            o.inlined_into.clear();
            o.called_because = Some(format!("rewriting the code failed: {e}"));
        }
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;
    use insn::{BPF_ADD, BPF_DW, BPF_W, R0, R1, R10, R2, R6};

    fn nodes(code: &[Insn]) -> Vec<Node> {
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

    #[test]
    fn frame_follows_stack_slots_and_stack_addresses() {
        let f = frame(&nodes(&[
            Insn::store_imm(BPF_W, R10, -4, 0),
            Insn::mov64_reg(R2, R10),
            Insn::alu64_imm(BPF_ADD, R2, -24),
            Insn::mov64_reg(R6, R1),
            Insn::exit(),
        ]))
        .unwrap();
        assert_eq!(f.depth, 24);
        assert_ne!(f.writes & (1 << R6), 0);
        assert!(!f.tail_call);
    }

    #[test]
    fn frame_sees_accesses_below_a_stack_pointer() {
        // r2 = r10; r2 += -8; r3 = r2; *(u64 *)(r3 - 16) = 0: 24 bytes.
        let f = frame(&nodes(&[
            Insn::mov64_reg(R2, R10),
            Insn::alu64_imm(BPF_ADD, R2, -8),
            Insn::mov64_reg(insn::R3, R2),
            Insn::store_imm(BPF_DW, insn::R3, -16, 0),
            Insn::exit(),
        ]))
        .unwrap();
        assert_eq!(f.depth, 24);
    }

    #[test]
    fn a_stack_address_split_by_a_jump_target_is_refused() {
        // goto +1 lands on `r2 += -8`, which then does not follow r2 = r10.
        let e = frame(&nodes(&[
            Insn::ja(1),
            Insn::mov64_reg(R2, R10),
            Insn::alu64_imm(BPF_ADD, R2, -8),
            Insn::exit(),
        ]))
        .unwrap_err();
        assert!(e.contains("copies r10"), "{e}");
    }

    #[test]
    fn frame_refuses_what_it_cannot_follow() {
        let copy = frame(&nodes(&[Insn::mov64_reg(R1, R10), Insn::exit()])).unwrap_err();
        assert!(copy.contains("copies r10"), "{copy}");
        let store =
            frame(&nodes(&[Insn::store_reg(BPF_DW, R1, 0, R10), Insn::exit()])).unwrap_err();
        assert!(store.contains("r10"), "{store}");
        let above = frame(&nodes(&[Insn::store_imm(BPF_W, R10, 8, 0), Insn::exit()])).unwrap_err();
        assert!(above.contains("outside a stack frame"), "{above}");
        let tail = frame(&nodes(&[Insn::call_helper(12), Insn::exit()])).unwrap();
        assert!(tail.tail_call);
    }

    #[test]
    fn liveness_sees_reads_after_the_call_only() {
        // r6 = r1; call; if r0 == 0 goto +1; r0 = r6; exit
        let code = nodes(&[
            Insn::mov64_reg(R6, R1),
            Insn::call_pseudo(-1),
            Insn::jmp_imm(insn::BPF_JEQ, R0, 0, 1),
            Insn::mov64_reg(R0, R6),
            Insn::exit(),
        ]);
        assert_eq!(live_after(&code, 1), 1 << R6);
        // r6 = r1; call; r6 = 1; r0 = r6; exit: overwritten first.
        let code = nodes(&[
            Insn::mov64_reg(R6, R1),
            Insn::call_pseudo(-1),
            Insn::mov64_imm(R6, 1),
            Insn::mov64_reg(R0, R6),
            Insn::exit(),
        ]);
        assert_eq!(live_after(&code, 1), 0);
    }
}
