//! Global symbol resolution with libbpf's rules: an extern takes the
//! definition, a strong definition beats a weak one, the first of several
//! weak ones wins, two strong ones are an error, hidden is contagious.
//!
//! Resolution works on [`InputGlobals`], the few facts it needs of each
//! input, so that the linker can drop an input after reading it.

use std::collections::{HashMap, HashSet};

use crate::error::Result;
use crate::model::object::{
    Binding, RelocKind, SectionKind, Symbol, SymbolId, SymbolKind, SymbolPlace, Visibility,
};

use super::Input;

/// One input's global symbols, as resolution and the unresolved-extern
/// check need them.
#[derive(Clone, Debug)]
pub struct InputGlobals {
    pub name: String,
    /// In symbol table order.
    pub syms: Vec<GlobalSym>,
}

#[derive(Clone, Debug)]
pub struct GlobalSym {
    pub sym: Symbol,
    /// The section it is defined in, and whether that is `license` or
    /// `version` (kept once, so defined once).
    pub section: Option<(String, bool)>,
    /// Whether a call relocation of this input targets a symbol of this
    /// name (an unresolved extern is then a function).
    pub called: bool,
}

impl InputGlobals {
    pub fn of(input: &Input) -> InputGlobals {
        let obj = &input.object;
        let called: HashSet<&str> = obj
            .sections
            .iter()
            .flat_map(|s| &s.relocs)
            .filter(|r| r.kind == RelocKind::Bpf64_32)
            .filter_map(|r| obj.symbol(r.symbol).map(|s| s.name.as_str()))
            .collect();
        let syms = obj
            .symbols
            .iter()
            .filter(|sym| {
                sym.id.0 != 0
                    && sym.binding != Binding::Local
                    && !matches!(sym.kind, SymbolKind::Section | SymbolKind::File)
            })
            .map(|sym| GlobalSym {
                section: match sym.place {
                    SymbolPlace::Section(id) => obj.section(id).map(|s| {
                        (
                            s.name.clone(),
                            matches!(s.kind, SectionKind::License | SectionKind::Version),
                        )
                    }),
                    _ => None,
                },
                called: called.contains(sym.name.as_str()),
                sym: sym.clone(),
            })
            .collect();
        InputGlobals {
            name: input.name.clone(),
            syms,
        }
    }

    fn find(&self, id: SymbolId) -> Option<&GlobalSym> {
        self.syms
            .binary_search_by_key(&id, |g| g.sym.id)
            .ok()
            .and_then(|k| self.syms.get(k))
    }
}

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
    /// The winning definition's symbol, but its name.
    pub def_sym: Option<Shape>,
    /// The first declaration (the shape an unresolved extern keeps).
    pub decl: Option<Shape>,
    /// Whether some declaration is not weak (a weak extern may stay
    /// unresolved).
    pub strong_ref: bool,
    /// Whether an input that declares it calls it.
    pub called: bool,
}

/// A symbol but its name and id (a global's name is the global's).
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub binding: Binding,
    pub visibility: Visibility,
    pub kind: SymbolKind,
    pub place: SymbolPlace,
    pub value: u64,
    pub size: u64,
    pub st_other: u8,
}

impl Shape {
    fn of(s: &Symbol) -> Shape {
        Shape {
            binding: s.binding,
            visibility: s.visibility,
            kind: s.kind,
            place: s.place,
            value: s.value,
            size: s.size,
            st_other: s.st_other,
        }
    }

    /// The symbol of this shape named `name`.
    pub fn symbol(&self, name: &str) -> Symbol {
        Symbol {
            id: SymbolId(0),
            name: name.to_string(),
            binding: self.binding,
            visibility: self.visibility,
            kind: self.kind,
            place: self.place,
            value: self.value,
            size: self.size,
            st_other: self.st_other,
        }
    }
}

/// The outcome of resolving every input's global symbols.
#[derive(Debug, Default)]
pub struct Resolution {
    pub globals: Vec<Global>,
    pub by_name: HashMap<String, usize>,
    /// Every losing definition, for quick lookup.
    pub losers: HashSet<(usize, SymbolId)>,
}

impl Resolution {
    pub fn get(&self, name: &str) -> Option<&Global> {
        self.by_name.get(name).map(|&i| &self.globals[i])
    }

    /// Whether `(input, sym)` is a definition that lost to another one.
    pub fn is_loser(&self, input: usize, sym: SymbolId) -> bool {
        self.losers.contains(&(input, sym))
    }
}

fn place_desc(inputs: &[InputGlobals], input: usize, sym: SymbolId) -> String {
    let sec = match inputs[input].find(sym).and_then(|g| g.section.as_ref()) {
        Some((name, _)) => format!(" (section '{name}')"),
        None => String::new(),
    };
    format!("{}{sec}", inputs[input].name)
}

/// `shared` names maps that may be defined more than once (pinned by name,
/// or shared between components): the first definition wins, the others
/// must match it (the BTF merge checks) and are dropped.
pub fn resolve(inputs: &[InputGlobals], shared: &HashSet<String>) -> Result<Resolution> {
    let mut res = Resolution::default();
    for (i, input) in inputs.iter().enumerate() {
        for gs in &input.syms {
            let sym = &gs.sym;
            let idx = *res.by_name.entry(sym.name.clone()).or_insert_with(|| {
                res.globals.push(Global {
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
                });
                res.globals.len() - 1
            });
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
                crate::bail!(
                    "symbol '{}' is a {} in {} but a {} in an earlier input",
                    sym.name,
                    kind_word(sym.kind),
                    input.name,
                    kind_word(g.kind)
                );
            }
            if g.kind == SymbolKind::NoType {
                g.kind = sym.kind;
            }
            if sym.place == SymbolPlace::Undefined {
                if g.decl.is_none() {
                    g.decl = Some(Shape::of(sym));
                }
                g.strong_ref |= sym.binding != Binding::Weak;
                g.called |= gs.called;
                if !g.wanted_by.contains(&i) {
                    g.wanted_by.push(i);
                }
                continue;
            }
            let weak = sym.binding == Binding::Weak;
            let in_single = |i: usize, id: SymbolId| {
                inputs[i]
                    .find(id)
                    .and_then(|g| g.section.as_ref())
                    .is_some_and(|s| s.1)
            };
            // `license` and `version` are kept once (and checked to agree),
            // so their symbols are too.
            if let Some(prev) = g.def {
                if in_single(prev.0, prev.1) && in_single(i, sym.id) {
                    continue;
                }
            }
            match g.def {
                None => {
                    g.def = Some((i, sym.id));
                    g.def_sym = Some(Shape::of(sym));
                    g.weak = weak;
                }
                Some(prev) => {
                    if !g.weak && !weak && !shared.contains(&sym.name) {
                        let first = place_desc(inputs, prev.0, prev.1);
                        let second = place_desc(inputs, i, sym.id);
                        crate::bail!(
                            "symbol '{}' is defined twice (strong definitions in {first} and {second}); make one of them static or weak",
                            sym.name
                        );
                    }
                    if g.weak && !weak {
                        res.losers.insert(prev);
                        g.def = Some((i, sym.id));
                        g.def_sym = Some(Shape::of(sym));
                        g.weak = false;
                    } else {
                        res.losers.insert((i, sym.id));
                    }
                }
            }
        }
    }
    Ok(res)
}

pub fn kind_word(k: SymbolKind) -> &'static str {
    match k {
        SymbolKind::Func => "function",
        SymbolKind::Object => "variable",
        _ => "symbol",
    }
}
