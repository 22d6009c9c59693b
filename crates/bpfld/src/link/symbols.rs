//! Global symbol resolution with libbpf's rules: an extern takes the
//! definition, a strong definition beats a weak one, the first of several
//! weak ones wins, two strong ones are an error, hidden is contagious.
//!
//! Resolution takes one input at a time ([`Resolver::add`]) and keeps
//! only what it decides, so that the linker can drop an input after
//! reading it.

use std::collections::{HashMap, HashSet};

use crate::error::Result;
use crate::model::object::{
    Binding, RelocKind, SectionKind, Symbol, SymbolId, SymbolKind, SymbolPlace, Visibility,
};

use super::Input;

/// One global name and what it resolved to.
#[derive(Clone, Debug)]
pub struct Global {
    pub name: String,
    /// The winning definition: (input, symbol).
    pub def: Option<(usize, SymbolId)>,
    pub weak: bool,
    pub hidden: bool,
    pub kind: SymbolKind,
    /// Inputs that declare it as an extern.
    pub wanted_by: Vec<usize>,
    /// The winning definition's symbol, without its name.
    pub def_sym: Option<Symbol>,
    /// The first declaration (the shape an unresolved extern keeps),
    /// without its name.
    pub decl: Option<Symbol>,
    /// Whether some declaration is not weak (a weak extern may stay
    /// unresolved).
    pub strong_ref: bool,
    /// Whether an input that declares it calls it.
    pub called: bool,
    /// The definition's section name (in `Resolver::sections`), for errors.
    def_sec: Option<u32>,
}

/// A global's definition or declaration as kept by the resolution: the
/// input's symbol without its name, which is the global's (so that the
/// resolution holds each name once).
fn nameless(s: &Symbol) -> Symbol {
    Symbol {
        id: SymbolId(0),
        name: String::new(),
        ..*s
    }
}

/// The outcome of resolving every input's global symbols.
#[derive(Debug, Default)]
pub struct Resolution {
    pub globals: Vec<Global>,
    /// Global index by a hash of the name (the names live in `globals`):
    /// names whose hash another name has go to `collided`.
    by_hash: crate::dedup::fxhash::FxMap<u32, u32>,
    collided: HashMap<String, usize>,
    /// Every losing definition, for quick lookup.
    pub losers: HashSet<(usize, SymbolId)>,
    /// The inputs' names, for errors.
    pub input_names: Vec<String>,
}

impl Resolution {
    /// The index in `globals` of the global `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        let i = *self.by_hash.get(&name_hash(name))? as usize;
        if self.globals.get(i).is_some_and(|g| g.name == name) {
            Some(i)
        } else {
            self.collided.get(name).copied()
        }
    }

    /// Adds a global named `name`; returns its index.
    fn insert(&mut self, g: Global) -> usize {
        let i = self.globals.len();
        match self.by_hash.entry(name_hash(&g.name)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i as u32);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.collided.insert(g.name.clone(), i);
            }
        }
        self.globals.push(g);
        i
    }

    /// Whether `(input, sym)` is a definition that lost to another one.
    pub fn is_loser(&self, input: usize, sym: SymbolId) -> bool {
        self.losers.contains(&(input, sym))
    }
}

fn name_hash(name: &str) -> u32 {
    use std::hash::Hasher;
    let mut h = crate::dedup::fxhash::FxHasher::default();
    h.write(name.as_bytes());
    h.write_usize(name.len());
    let h = h.finish();
    (h ^ (h >> 32)) as u32
}

/// An error found while resolving, reported once every input has been
/// seen: two strong definitions are fine after all when a later input pins
/// the map by name.
#[derive(Debug)]
enum Deferred {
    Always(String),
    UnlessShared(String, String),
}

/// Resolves the inputs' globals as they are added, in link order.
#[derive(Debug, Default)]
pub struct Resolver {
    res: Resolution,
    errors: Vec<Deferred>,
    /// Names of the sections definitions are in (a handful).
    sections: Vec<String>,
    /// Whether an earlier input brought `license` / `version`: a later
    /// input's copy is checked to agree and dropped with its symbols (as
    /// libbpf does), so that the output lists one variable at offset 0.
    single_seen: [bool; 2],
}

/// Which of `license` and `version` a section is.
pub(super) fn single_index(kind: SectionKind) -> Option<usize> {
    match kind {
        SectionKind::License => Some(0),
        SectionKind::Version => Some(1),
        _ => None,
    }
}

impl Resolver {
    /// Adds input `i`'s global symbols.
    pub fn add(&mut self, i: usize, input: &Input) {
        let obj = &input.object;
        // Names the input calls: an unresolved extern is then a function.
        let called: HashSet<&str> = obj
            .sections
            .iter()
            .flat_map(|s| &s.relocs)
            .filter(|r| r.kind == RelocKind::Bpf64_32)
            .filter_map(|r| obj.symbol(r.symbol).map(|s| s.name.as_str()))
            .collect();
        let res = &mut self.res;
        for sym in obj.symbols.iter().filter(|sym| {
            sym.id.0 != 0
                && sym.binding != Binding::Local
                && !matches!(sym.kind, SymbolKind::Section | SymbolKind::File)
        }) {
            let section = match sym.place {
                SymbolPlace::Section(id) => obj.section(id),
                _ => None,
            };
            if section
                .and_then(|s| single_index(s.kind))
                .is_some_and(|k| self.single_seen[k])
            {
                continue;
            }
            let idx = match res.index(&sym.name) {
                Some(idx) => idx,
                None => res.insert(Global {
                    name: sym.name.clone(),
                    def: None,
                    weak: false,
                    hidden: false,
                    kind: sym.kind,
                    wanted_by: Vec::new(),
                    def_sym: None,
                    decl: None,
                    strong_ref: false,
                    called: false,
                    def_sec: None,
                }),
            };
            let g = &mut res.globals[idx];
            if matches!(sym.visibility, Visibility::Hidden | Visibility::Internal) {
                g.hidden = true;
            }
            let kinds_clash = |a: SymbolKind, b: SymbolKind| {
                matches!(
                    (a, b),
                    (SymbolKind::Func, SymbolKind::Object) | (SymbolKind::Object, SymbolKind::Func)
                )
            };
            if kinds_clash(g.kind, sym.kind) {
                self.errors.push(Deferred::Always(format!(
                    "symbol '{}' is a {} in {} but a {} in an earlier input",
                    sym.name,
                    kind_word(sym.kind),
                    input.name,
                    kind_word(g.kind)
                )));
                continue;
            }
            if g.kind == SymbolKind::NoType {
                g.kind = sym.kind;
            }
            if sym.place == SymbolPlace::Undefined {
                if g.decl.is_none() {
                    g.decl = Some(nameless(sym));
                }
                g.strong_ref |= sym.binding != Binding::Weak;
                g.called |= called.contains(sym.name.as_str());
                if !g.wanted_by.contains(&i) {
                    g.wanted_by.push(i);
                }
                continue;
            }
            let weak = sym.binding == Binding::Weak;
            let sec = section.map(|s| match self.sections.iter().position(|n| *n == s.name) {
                Some(k) => k as u32,
                None => {
                    self.sections.push(s.name.clone());
                    self.sections.len() as u32 - 1
                }
            });
            let place = |sec: Option<u32>| {
                sec.and_then(|k| self.sections.get(k as usize))
                    .map(|n| format!(" (section '{n}')"))
                    .unwrap_or_default()
            };
            match g.def {
                None => {
                    g.def = Some((i, sym.id));
                    g.def_sym = Some(nameless(sym));
                    g.weak = weak;
                    g.def_sec = sec;
                }
                Some(prev) => {
                    if !g.weak && !weak {
                        let first = format!(
                            "{}{}",
                            res.input_names.get(prev.0).map_or("", String::as_str),
                            place(g.def_sec)
                        );
                        let second = format!("{}{}", input.name, place(sec));
                        self.errors.push(Deferred::UnlessShared(
                            sym.name.clone(),
                            format!(
                                "symbol '{}' is defined twice (strong definitions in {first} and {second}); make one of them static or weak",
                                sym.name
                            ),
                        ));
                    }
                    if g.weak && !weak {
                        res.losers.insert(prev);
                        g.def = Some((i, sym.id));
                        g.def_sym = Some(nameless(sym));
                        g.weak = false;
                        g.def_sec = sec;
                    } else {
                        res.losers.insert((i, sym.id));
                    }
                }
            }
        }
        for s in &obj.sections {
            if let Some(k) = single_index(s.kind) {
                self.single_seen[k] = true;
            }
        }
        if res.input_names.len() <= i {
            res.input_names.resize(i + 1, String::new());
        }
        res.input_names[i] = input.name.clone();
    }

    /// The resolution, or the first error in link order. `shared` names
    /// maps that may be defined more than once (pinned by name, or shared
    /// between components): the first definition wins, the others must
    /// match it (the BTF merge checks) and are dropped.
    pub fn finish(self, shared: &HashSet<String>) -> Result<Resolution> {
        for e in self.errors {
            match e {
                Deferred::Always(msg) => crate::bail!("{msg}"),
                Deferred::UnlessShared(name, msg) if !shared.contains(&name) => {
                    crate::bail!("{msg}")
                }
                Deferred::UnlessShared(..) => {}
            }
        }
        Ok(self.res)
    }
}

pub fn kind_word(k: SymbolKind) -> &'static str {
    match k {
        SymbolKind::Func => "function",
        SymbolKind::Object => "variable",
        _ => "symbol",
    }
}

/// Every extern no input defines, unless the loader resolves it
/// (`special`) or it is weak, as one error naming who needs each.
pub(super) fn check_unresolved(
    names: &[String],
    res: &Resolution,
    special: &HashSet<String>,
) -> Result<()> {
    let mut missing = Vec::new();
    for g in &res.globals {
        if g.def.is_some() || special.contains(&g.name) {
            continue;
        }
        // A weak extern may stay unresolved; the loader sees zero.
        if !g.strong_ref {
            continue;
        }
        let who: Vec<&str> = g
            .wanted_by
            .iter()
            .map(|&i| names.get(i).map_or("", String::as_str))
            .collect();
        let kind = if g.called { SymbolKind::Func } else { g.kind };
        missing.push(format!(
            "{} '{}' (needed by {})",
            kind_word(kind),
            g.name,
            who.join(", ")
        ));
    }
    if !missing.is_empty() {
        crate::bail!(
            "unresolved extern{}: {}; link the objects that define them, or pass --relocatable for a partial link",
            if missing.len() == 1 { "" } else { "s" },
            missing.join("; ")
        );
    }
    Ok(())
}
