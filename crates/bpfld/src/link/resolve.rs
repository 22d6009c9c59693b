//! `--resolve EXTERN=FILE:FUNCTION`: externs filled by functions of
//! component objects, which are linked like archive members.
//!
//! The resolves are checked first (the extern exists, the function
//! exists, their BTF prototypes match), then grouped per component
//! instance; an extern filled by the same function as an earlier one
//! takes that one's name. After each instance is renamed
//! ([`super::isolate`]), only what the resolved functions reach is pulled
//! into the output ([`pull_in`]).

use std::collections::{HashMap, HashSet, VecDeque};

use crate::error::{Error, Result};
use crate::model::btf::{TypeData, TypeId};
use crate::model::object::{Object, SectionId, SymbolKind, SymbolPlace};

use super::pieces::Piece;
use super::Input;

/// `EXTERN` is filled by `FUNCTION` of component `component`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolve {
    /// The extern to fill.
    pub extern_name: String,
    /// Index into the components passed to [`super::link_with`].
    pub component: usize,
    /// The function of the component that fills it.
    pub function: String,
}

/// The BTF FUNC named `name` in `obj` (any linkage).
pub(super) fn btf_func(obj: &Object, name: &str) -> Option<TypeId> {
    let btf = obj.btf.as_ref()?;
    btf.iter()
        .find(|(_, t)| {
            matches!(t.data, TypeData::Func { .. }) && btf.name(t.name_off).ok() == Some(name)
        })
        .map(|(id, _)| id)
}

/// The extern's prototype against its target's, with both shown in C.
pub(super) fn check_signature(inputs: &[&Input], c: &Input, r: &Resolve) -> Result<()> {
    let Some((decl_in, decl)) = inputs
        .iter()
        .find_map(|i| btf_func(&i.object, &r.extern_name).map(|id| (i, id)))
    else {
        return Ok(()); // no BTF to check against (the loader will not either)
    };
    let Some(def) = btf_func(&c.object, &r.function) else {
        crate::bail!(
            "--resolve {}={}:{}: {} has no BTF for '{}', so its prototype cannot be checked",
            r.extern_name,
            c.name,
            r.function,
            c.name,
            r.function
        );
    };
    let (db, cb) = (
        decl_in.object.btf.as_ref().expect("found in BTF"),
        c.object.btf.as_ref().expect("found in BTF"),
    );
    let proto = |btf: &crate::model::btf::Btf, id: TypeId| match btf.get(id).map(|t| &t.data) {
        Some(TypeData::Func { proto, .. }) => *proto,
        _ => id,
    };
    super::compat::types_match(db, proto(db, decl), cb, proto(cb, def), true).map_err(|why| {
        Error::new(format!(
            "--resolve {}={}:{}: the prototypes differ ({why}):\n  extern in {}: {}\n  target in {}: {}",
            r.extern_name,
            c.name,
            r.function,
            decl_in.name,
            crate::model::btf::c_type::prototype(db, decl, &r.extern_name),
            c.name,
            crate::model::btf::c_type::prototype(cb, def, &r.function)
        ))
    })
}

/// Checks the resolves against the inputs and components.
pub fn validate(inputs: &[&Input], components: &[Input], resolves: &[Resolve]) -> Result<()> {
    let mut seen = HashSet::new();
    for r in resolves {
        if !seen.insert(r.extern_name.as_str()) {
            crate::bail!("extern '{}' is resolved twice", r.extern_name);
        }
        let is_extern = inputs.iter().any(|i| {
            i.object
                .symbols
                .iter()
                .any(|s| s.is_extern() && s.name == r.extern_name)
        });
        if !is_extern {
            let mut externs: Vec<&str> = inputs
                .iter()
                .flat_map(|i| i.object.symbols.iter().filter(|s| s.is_extern()))
                .map(|s| s.name.as_str())
                .collect();
            externs.sort();
            externs.dedup();
            crate::bail!(
                "--resolve {}: no input declares an extern '{}' (the externs are: {})",
                r.extern_name,
                r.extern_name,
                if externs.is_empty() {
                    "none".to_string()
                } else {
                    externs.join(", ")
                }
            );
        }
        let Some(c) = components.get(r.component) else {
            crate::bail!("--resolve {}: no component {}", r.extern_name, r.component);
        };
        let found = c.object.symbols.iter().any(|s| {
            s.name == r.function
                && s.kind == SymbolKind::Func
                && matches!(s.place, SymbolPlace::Section(_))
        });
        if !found {
            let mut funcs: Vec<&str> = c
                .object
                .symbols
                .iter()
                .filter(|s| {
                    s.kind == SymbolKind::Func && matches!(s.place, SymbolPlace::Section(_))
                })
                .map(|s| s.name.as_str())
                .collect();
            funcs.sort();
            crate::bail!(
                "--resolve {}={}:{}: {} has no function '{}' (its functions are: {})",
                r.extern_name,
                c.name,
                r.function,
                c.name,
                r.function,
                if funcs.is_empty() {
                    "none".to_string()
                } else {
                    funcs.join(", ")
                }
            );
        }
        check_signature(inputs, c, r)?;
    }
    Ok(())
}

/// Whether an object has an extern that `aliases` renames.
pub(super) fn has_aliases(input: &Input, aliases: &HashMap<String, String>) -> bool {
    !aliases.is_empty()
        && input
            .object
            .symbols
            .iter()
            .any(|s| s.is_extern() && aliases.contains_key(&s.name))
}

/// Renames the externs in `aliases` (an extern filled by the same function
/// as an earlier one takes that one's name) in an object and its BTF.
pub(super) fn rename_aliases(input: &mut Input, aliases: &HashMap<String, String>) {
    for s in &mut input.object.symbols {
        if s.is_extern() {
            if let Some(to) = aliases.get(&s.name) {
                s.name = to.clone();
            }
        }
    }
    if let Some(btf) = &mut input.object.btf {
        let ids: Vec<(crate::model::btf::TypeId, String)> = btf
            .iter()
            .filter(|(_, t)| {
                matches!(
                    t.data,
                    crate::model::btf::TypeData::Func { linkage: 2, .. }
                        | crate::model::btf::TypeData::Var { linkage: 2, .. }
                )
            })
            .filter_map(|(id, t)| {
                let name = btf.name(t.name_off).ok()?;
                aliases.get(name).map(|to| (id, to.clone()))
            })
            .collect();
        for (id, to) in ids {
            let off = btf.find_string(&to).unwrap_or_else(|| btf.add_string(&to));
            if let Some(t) = btf.get_mut(id) {
                t.name_off = off;
            }
        }
    }
}

/// Marks the pieces of a component that its roots do not reach as dropped:
/// code reached through calls and relocations, data through relocations.
pub fn pull_in(obj: &Object, roots: &[String], cuts: &mut HashMap<SectionId, Vec<Piece>>) {
    let piece_at = |cuts: &HashMap<SectionId, Vec<Piece>>, sec: SectionId, off: u64| {
        cuts.get(&sec)
            .and_then(|ps| {
                ps.iter()
                    .position(|p| p.start <= off && off < p.end.max(p.start + 1))
            })
            .map(|i| (sec, i))
    };
    let mut reached: HashSet<(SectionId, usize)> = HashSet::new();
    let mut queue: VecDeque<(SectionId, usize)> = VecDeque::new();
    for s in &obj.symbols {
        if roots.contains(&s.name) && s.kind == SymbolKind::Func {
            if let SymbolPlace::Section(id) = s.place {
                if let Some(p) = piece_at(cuts, id, s.value) {
                    if reached.insert(p) {
                        queue.push_back(p);
                    }
                }
            }
        }
    }
    while let Some((sec_id, idx)) = queue.pop_front() {
        let Some(sec) = obj.section(sec_id) else {
            continue;
        };
        let Some(piece) = cuts.get(&sec_id).and_then(|ps| ps.get(idx)).cloned() else {
            continue;
        };
        let mut targets: Vec<(SectionId, u64)> = Vec::new();
        for r in sec
            .relocs
            .iter()
            .filter(|r| piece.start <= r.offset && r.offset < piece.end)
        {
            let Some(sym) = obj.symbol(r.symbol) else {
                continue;
            };
            let SymbolPlace::Section(t) = sym.place else {
                continue;
            };
            let mut off = sym.value;
            if sym.kind == SymbolKind::Section && sec.is_program() {
                if let Some(insn) = sec.insns.get((r.offset / 8) as usize) {
                    off = if insn.code == crate::model::insn::CALL {
                        (i64::from(insn.imm) + 1).max(0) as u64 * 8
                    } else if insn.src == crate::model::insn::BPF_PSEUDO_FUNC {
                        ((i64::from(insn.imm) / 8 + 1).max(0) as u64) * 8
                    } else {
                        u64::from(insn.imm as u32)
                    };
                }
            }
            targets.push((t, off));
        }
        if sec.is_program() {
            // Calls within the section carry no relocation.
            let relocated: HashSet<u64> = sec.relocs.iter().map(|r| r.offset / 8).collect();
            let (a, b) = ((piece.start / 8) as usize, (piece.end / 8) as usize);
            for (slot, insn) in sec.insns.iter().enumerate().take(b).skip(a) {
                if insn.code == crate::model::insn::CALL
                    && insn.src == crate::model::insn::BPF_PSEUDO_CALL
                    && !relocated.contains(&(slot as u64))
                {
                    let t = slot as i64 + i64::from(insn.imm) + 1;
                    if t >= 0 {
                        targets.push((sec_id, t as u64 * 8));
                    }
                }
            }
        }
        for (t, off) in targets {
            if let Some(p) = piece_at(cuts, t, off) {
                if reached.insert(p) {
                    queue.push_back(p);
                }
            }
        }
    }
    for (sec, ps) in cuts.iter_mut() {
        for (i, p) in ps.iter_mut().enumerate() {
            if !reached.contains(&(*sec, i)) {
                p.keep = false;
            }
        }
    }
}

/// What one component instance fills: (function, externs it fills), in
/// command-line order; the first extern names the instance and the
/// function.
pub(super) type Targets = Vec<(String, Vec<String>)>;

/// The resolves grouped per component instance.
pub(super) struct Plan {
    /// Component instances in order of first use on the command line,
    /// each with (function, externs it fills), in command-line order.
    pub instances: Vec<(usize, Targets)>,
    /// Externs filled by the same function as an earlier extern, renamed
    /// to that one.
    pub aliases: HashMap<String, String>,
}

pub(super) fn plan(resolves: &[Resolve]) -> Plan {
    let mut instances: Vec<(usize, Targets)> = Vec::new();
    for r in resolves {
        let k = match instances.iter().position(|(c, _)| *c == r.component) {
            Some(k) => k,
            None => {
                instances.push((r.component, Vec::new()));
                instances.len() - 1
            }
        };
        let t = &mut instances[k].1;
        match t.iter_mut().find(|(f, _)| *f == r.function) {
            Some((_, ex)) => ex.push(r.extern_name.clone()),
            None => t.push((r.function.clone(), vec![r.extern_name.clone()])),
        }
    }
    let mut aliases: HashMap<String, String> = HashMap::new();
    for (_, t) in &instances {
        for (_, ex) in t {
            for e in &ex[1..] {
                aliases.insert(e.clone(), ex[0].clone());
            }
        }
    }
    Plan { instances, aliases }
}
