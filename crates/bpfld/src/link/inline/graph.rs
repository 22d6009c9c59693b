//! The call graph of an object's code: each function's own stack frame
//! (measured by [`frame`]) and the functions it calls or takes the address
//! of. The inliner checks the stack along call chains with it; the
//! kernel's limits (`link/limits.rs`) measure whole programs with it.

use std::collections::{HashMap, HashSet};

use crate::model::insn;
use crate::model::object::{Object, SectionKind, SymbolId, SymbolPlace};

use super::frame::{frame, round32};
use super::nodes::{Code, Target};
use super::{Why, MAX_STACK};

/// Every function of the code, its frame and its callees.
pub(super) struct CallGraph {
    /// (function, section, node range), in section order.
    pub(super) funcs: Vec<(SymbolId, usize, std::ops::Range<usize>)>,
    /// Bytes of stack each function's own code uses (None: not measurable).
    pub(super) frames: HashMap<SymbolId, Option<u32>>,
    /// The functions each one calls (or passes as a callback).
    pub(super) callees: HashMap<SymbolId, Vec<SymbolId>>,
}

impl CallGraph {
    pub(super) fn of(code: &Code, obj: &Object) -> CallGraph {
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
        let by_symbol: HashSet<SymbolId> = funcs.iter().map(|f| f.0).collect();
        for (id, sec, r) in &funcs {
            let nodes = &code.sec(*sec).map_or(&[][..], |n| &n[r.clone()]);
            frames.insert(*id, frame(nodes).ok().map(|f| f.depth));
            let mut out = Vec::new();
            for n in nodes.iter() {
                let callee = match n.target {
                    Some(Target::LocalCall(t))
                    | Some(Target::SectionCall(t))
                    | Some(Target::SectionFunc(t))
                    | Some(Target::SectionAddr(t)) => {
                        loc.get(&t).and_then(|(s, k)| func_of(*s, *k))
                    }
                    _ if n.insn.is_call() && n.insn.src == insn::BPF_PSEUDO_CALL
                        || n.insn.is_ld_func() =>
                    {
                        n.reloc.map(|(_, s)| s).filter(|s| by_symbol.contains(s))
                    }
                    _ => None,
                };
                out.extend(callee);
            }
            callees.insert(*id, out);
        }
        CallGraph {
            funcs,
            frames,
            callees,
        }
    }

    /// The deepest stack along a call chain from `f` (each frame rounded
    /// up to 32 bytes, as the kernel counts) and the functions along it;
    /// None when a frame on some chain is not measurable or the chain
    /// recurses.
    pub(super) fn deepest(&self, f: SymbolId) -> Option<(u32, Vec<(SymbolId, u32)>)> {
        self.below(f, &mut Vec::new())
    }

    fn below(&self, f: SymbolId, seen: &mut Vec<SymbolId>) -> Option<(u32, Vec<(SymbolId, u32)>)> {
        if seen.contains(&f) {
            return None;
        }
        seen.push(f);
        let own = round32((*self.frames.get(&f)?)?);
        let mut deepest = (0, Vec::new());
        for c in self.callees.get(&f).map_or(&[][..], |v| v) {
            let d = self.below(*c, seen)?;
            if d.0 > deepest.0 || deepest.1.is_empty() {
                deepest = d;
            }
        }
        seen.pop();
        let mut chain = vec![(f, own)];
        chain.extend(deepest.1);
        Some((own + deepest.0, chain))
    }

    /// `f` and every function it reaches.
    fn reached(&self, f: SymbolId) -> Vec<SymbolId> {
        let mut stack = vec![f];
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        while let Some(g) = stack.pop() {
            if seen.insert(g) {
                out.push(g);
                stack.extend(self.callees.get(&g).into_iter().flatten().copied());
            }
        }
        out
    }
}

/// What one entry program of an object takes of the kernel's budget
/// once loaded as libbpf loads it (its subprograms appended).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProgramUse {
    /// The program (its function's name).
    pub(crate) name: String,
    /// Its section.
    pub(crate) section: String,
    /// Instruction slots: its own and those of every function it reaches.
    pub(crate) insns: u64,
    /// The maps it and the functions it reaches use: map names, and the
    /// data sections (`.data`, `.rodata`, `.bss`, ...) each of which is
    /// one map in the kernel.
    pub(crate) maps: Vec<String>,
    /// The stack along its deepest call chain and that chain (function
    /// name, frame rounded up to 32 bytes); None when not measurable.
    pub(crate) stack: Option<(u32, Vec<(String, u32)>)>,
}

/// Every entry program of `obj` (a function in a code section other than
/// `.text`) with what it uses; an error when the code cannot be decoded.
pub(crate) fn program_uses(obj: &Object) -> Result<Vec<ProgramUse>, String> {
    let code = match Code::decode(obj) {
        Ok(code) => code,
        // Records outside the code that point into it (an unlinked
        // object's .rel.BTF.ext) stop a rewrite, not a reading.
        Err(_) => {
            let mut read_only = obj.clone();
            for s in &mut read_only.sections {
                if s.kind != SectionKind::Program {
                    s.relocs.clear();
                }
            }
            Code::decode(&read_only)?
        }
    };
    let graph = CallGraph::of(&code, obj);
    let name = |id: SymbolId| obj.symbol(id).map_or(String::new(), |s| s.name.clone());
    let mut out = Vec::new();
    for (id, sec, _) in &graph.funcs {
        if obj.sections.get(*sec).is_none_or(|s| s.name == ".text") {
            continue;
        }
        let reached = graph.reached(*id);
        let mut insns = 0u64;
        let mut maps: Vec<String> = Vec::new();
        for f in &reached {
            let Some((s, r)) = code.range(*f) else {
                continue;
            };
            insns += r.len() as u64;
            for n in code.sec(s).map_or(&[][..], |n| &n[r]) {
                let Some((_, target)) = n.reloc.filter(|_| n.insn.is_ld_imm64()) else {
                    continue;
                };
                let Some(t) = obj.symbol(target) else {
                    continue;
                };
                let SymbolPlace::Section(ts) = t.place else {
                    continue;
                };
                let Some(tsec) = obj.section(ts) else {
                    continue;
                };
                let map = match tsec.kind {
                    SectionKind::Maps | SectionKind::LegacyMaps => t.name.clone(),
                    SectionKind::Data | SectionKind::Rodata | SectionKind::Bss => tsec.name.clone(),
                    _ => continue,
                };
                if !maps.contains(&map) {
                    maps.push(map);
                }
            }
        }
        let stack = graph
            .deepest(*id)
            .map(|(d, chain)| (d, chain.into_iter().map(|(f, b)| (name(f), b)).collect()));
        out.push(ProgramUse {
            name: name(*id),
            section: obj.sections[*sec].name.clone(),
            insns,
            maps,
            stack,
        });
    }
    Ok(out)
}

/// Checks the stack along every call chain that goes through `through`:
/// the kernel allows 512 bytes in all, each frame rounded up to 32.
pub(super) fn check_stack(code: &Code, obj: &Object, through: SymbolId) -> Result<(), Why> {
    let graph = CallGraph::of(code, obj);
    let reaches = |from: SymbolId| {
        let mut stack = vec![from];
        let mut seen = HashSet::new();
        while let Some(f) = stack.pop() {
            if f == through {
                return true;
            }
            if seen.insert(f) {
                stack.extend(graph.callees.get(&f).into_iter().flatten().copied());
            }
        }
        false
    };
    let called: HashSet<SymbolId> = graph.callees.values().flatten().copied().collect();
    for (id, _, _) in graph.funcs.iter().filter(|f| !called.contains(&f.0)) {
        if !reaches(*id) {
            continue;
        }
        match graph.deepest(*id) {
            Some((d, _)) if d <= MAX_STACK => {}
            Some((d, _)) => {
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
