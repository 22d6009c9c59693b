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
//!   bytes; bodies inlined one after another share the space below the
//!   caller's frame, but one inlined at a call inside another inlined
//!   body goes below that body's frame, which is live across the call;
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
//!
//! The pass in files: `nodes.rs` (decode to nodes, encode back),
//! `frame.rs` (stack use and the call-chain limit), `liveness.rs`
//! (registers read, written and live), `splice.rs` (a body in place of a
//! call); this file runs them over every call of every resolved function.

mod frame;
mod graph;
pub(crate) mod liveness;
pub(crate) mod nodes;
mod splice;

pub(crate) use graph::{program_uses, ProgramUse};
pub(crate) use liveness::registers_written;

use crate::model::object::{Object, SymbolId, SymbolKind};

use graph::check_stack;
use nodes::Code;
use splice::{calls, inline_site, remove_function, still_referenced};

/// What happened to one function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub function: String,
    /// Callers it was inlined into (function names, one per call site).
    pub inlined_into: Vec<String>,
    /// Why it (or some call of it) is still a call.
    pub called_because: Option<String>,
}

/// The kernel's limit on the stack along a call chain, in bytes
/// (`MAX_BPF_STACK`; public as [`crate::link::limits::MAX_STACK`]).
pub(crate) const MAX_STACK: u32 = 512;

/// Why a call stays a call.
type Why = String;

/// Inlines every call to each function named in `names` (defined in a
/// program section of `obj`), and removes a function once nothing calls
/// it any more, along with local functions only it called. (The linker
/// runs [`inline_and_optimize`]; this is the pass alone, for the fuzz
/// targets and tests built with the `internals` feature.)
#[cfg_attr(not(any(test, feature = "internals")), allow(dead_code))]
pub fn inline_functions(obj: &mut Object, names: &[String]) -> Vec<Outcome> {
    inline_and_optimize(obj, names, false).0
}

/// Instruction counts of an optimised link: the whole code and each
/// inlined function's share of it (by its name in the output), before and
/// after the optimisation pass (`link/optimize/`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Optimized {
    pub(crate) total: (u64, u64),
    pub(crate) by_function: Vec<(String, u64, u64)>,
}

/// [`inline_functions`], then (with `optimize`, when something was
/// inlined) the optimisation pass over the result. The pass is undone as
/// a whole when it fails.
pub(crate) fn inline_and_optimize(
    obj: &mut Object,
    names: &[String],
    optimize: bool,
) -> (Vec<Outcome>, Option<Optimized>) {
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
            return (outcomes, None);
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
            remove_function(&mut code, obj, f);
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
            remove_function(&mut code, obj, id);
        }
    }
    let mut optimized = None;
    if optimize && outcomes.iter().any(|o| !o.inlined_into.is_empty()) {
        let plain = code.clone();
        match crate::link::optimize::optimize(&mut code, obj) {
            Ok(counts) => {
                let mut by_function: Vec<(String, u64, u64)> = counts
                    .by_function
                    .iter()
                    .filter_map(|(f, (b, a))| Some((obj.symbol(*f)?.name.clone(), *b, *a)))
                    .collect();
                by_function.sort();
                optimized = Some(Optimized {
                    total: counts.total,
                    by_function,
                });
                // Offsets the pass moved may not fit: then without it.
                let mut trial = obj.clone();
                if code.clone().encode(&mut trial).is_err() {
                    code = plain;
                    optimized = None;
                }
            }
            Err(_) => code = plain,
        }
    }
    let snapshot = obj.clone();
    if let Err(e) = code.encode(obj) {
        *obj = snapshot;
        for o in &mut outcomes {
            o.inlined_into.clear();
            o.called_because = Some(format!("rewriting the code failed: {e}"));
        }
        optimized = None;
    }
    (outcomes, optimized)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::insn::{Insn, BPF_DW, R0, R10};
    use crate::model::object::{
        Binding, Section, SectionId, SectionKind, Symbol, SymbolPlace, Visibility,
    };

    /// One `xdp` section holding `prog`, then `a`, then `b` (each a
    /// function symbol over its `(name, code)`).
    fn object(funcs: &[(&str, Vec<Insn>)]) -> Object {
        let mut sec = Section::empty(SectionId(1), "xdp", SectionKind::Program, 1);
        let mut symbols = Vec::new();
        for (j, (name, code)) in funcs.iter().enumerate() {
            symbols.push(Symbol {
                id: SymbolId(j as u32),
                name: name.to_string(),
                binding: if j == 0 {
                    Binding::Global
                } else {
                    Binding::Local
                },
                visibility: Visibility::Default,
                kind: SymbolKind::Func,
                place: SymbolPlace::Section(SectionId(1)),
                value: sec.insns.len() as u64 * 8,
                size: code.len() as u64 * 8,
                st_other: 0,
            });
            sec.insns.extend_from_slice(code);
        }
        sec.sh_size = sec.insns.len() as u64 * 8;
        Object {
            endian: crate::model::Endian::Little,
            sections: vec![Section::empty(SectionId(0), "", SectionKind::Null, 0), sec],
            symbols,
            btf: None,
            btf_ext_raw: None,
        }
    }

    /// The stack offsets the program's stores use, in order.
    fn stores(obj: &Object) -> Vec<i16> {
        obj.sections[1]
            .insns
            .iter()
            .filter(|i| i.class() == crate::model::insn::BPF_ST && i.dst == R10)
            .map(|i| i.off)
            .collect()
    }

    /// `prog` keeps 1 at r10-8 across a call of `a`, which keeps 2 at its
    /// own r10-8 across a call of `b`, which stores 3 at its own r10-8.
    fn nested() -> Object {
        object(&[
            (
                "prog",
                vec![
                    Insn::store_imm(BPF_DW, R10, -8, 1),
                    Insn::call_pseudo(2), // a
                    Insn::load(BPF_DW, R0, R10, -8),
                    Insn::exit(),
                ],
            ),
            (
                "a",
                vec![
                    Insn::store_imm(BPF_DW, R10, -8, 2),
                    Insn::call_pseudo(2), // b
                    Insn::load(BPF_DW, R0, R10, -8),
                    Insn::exit(),
                ],
            ),
            (
                "b",
                vec![
                    Insn::store_imm(BPF_DW, R10, -8, 3),
                    Insn::mov64_imm(R0, 0),
                    Insn::exit(),
                ],
            ),
        ])
    }

    #[test]
    fn a_body_inlined_inside_an_inlined_body_goes_below_both_frames() {
        // Outer first: b's call is then inside a's copy in prog, and b's
        // frame must not reuse a's (which is live across the call).
        for order in [["a", "b"], ["b", "a"]] {
            let mut obj = nested();
            let names: Vec<String> = order.iter().map(|s| s.to_string()).collect();
            let out = inline_functions(&mut obj, &names);
            // b goes into a's copy in prog, or into a before a goes.
            let into = |f: &str| {
                out.iter()
                    .find(|o| o.function == f)
                    .map(|o| &o.inlined_into)
            };
            let b_into = if order[0] == "a" { "prog" } else { "a" };
            assert_eq!(into("a"), Some(&vec!["prog".to_string()]), "{order:?}");
            assert_eq!(into("b"), Some(&vec![b_into.to_string()]), "{order:?}");
            assert_eq!(stores(&obj), [-8, -16, -24], "{order:?}");
            let calls = obj.sections[1].insns.iter().filter(|i| i.is_call());
            assert_eq!(calls.count(), 0, "{order:?}: calls left");
        }
    }

    #[test]
    fn bodies_called_one_after_another_share_the_space_below_the_caller() {
        // prog calls a twice: both copies use the same slot below prog's.
        let mut obj = object(&[
            (
                "prog",
                vec![
                    Insn::store_imm(BPF_DW, R10, -8, 1),
                    Insn::call_pseudo(3), // a
                    Insn::call_pseudo(2), // a
                    Insn::load(BPF_DW, R0, R10, -8),
                    Insn::exit(),
                ],
            ),
            (
                "a",
                vec![
                    Insn::store_imm(BPF_DW, R10, -8, 2),
                    Insn::mov64_imm(R0, 0),
                    Insn::exit(),
                ],
            ),
        ]);
        let out = inline_functions(&mut obj, &["a".to_string()]);
        assert_eq!(out[0].inlined_into, ["prog", "prog"]);
        assert_eq!(stores(&obj), [-8, -16, -16]);
    }
}
