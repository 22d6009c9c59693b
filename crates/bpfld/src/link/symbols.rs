//! Global symbol resolution with libbpf's rules: an extern takes the
//! definition, a strong definition beats a weak one, the first of several
//! weak ones wins, two strong ones are an error, hidden is contagious.

use std::collections::HashMap;

use crate::error::Result;
use crate::model::object::{Binding, SectionKind, SymbolId, SymbolKind, SymbolPlace, Visibility};

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
    /// Every definition that lost to `def` (weak ones).
    pub losers: Vec<(usize, SymbolId)>,
}

/// The outcome of resolving every input's global symbols.
#[derive(Debug, Default)]
pub struct Resolution {
    pub globals: Vec<Global>,
    pub by_name: HashMap<String, usize>,
    /// Every losing definition, for quick lookup.
    pub losers: std::collections::HashSet<(usize, SymbolId)>,
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

fn place_desc(inputs: &[&Input], input: usize, sym: SymbolId) -> String {
    let obj = &inputs[input].object;
    let sec = match obj.symbol(sym).map(|s| s.place) {
        Some(SymbolPlace::Section(id)) => obj
            .section(id)
            .map(|s| format!(" (section '{}')", s.name))
            .unwrap_or_default(),
        _ => String::new(),
    };
    format!("{}{sec}", inputs[input].name)
}

/// `shared` names maps that may be defined more than once (pinned by name,
/// or shared between components): the first definition wins, the others
/// must match it (the BTF merge checks) and are dropped.
pub fn resolve(
    inputs: &[&Input],
    shared: &std::collections::HashSet<String>,
) -> Result<Resolution> {
    let mut res = Resolution::default();
    for (i, input) in inputs.iter().enumerate() {
        for sym in &input.object.symbols {
            if sym.id.0 == 0
                || sym.binding == Binding::Local
                || matches!(sym.kind, SymbolKind::Section | SymbolKind::File)
            {
                continue;
            }
            let idx = *res.by_name.entry(sym.name.clone()).or_insert_with(|| {
                res.globals.push(Global {
                    name: sym.name.clone(),
                    def: None,
                    weak: false,
                    hidden: false,
                    kind: sym.kind,
                    wanted_by: Vec::new(),
                    losers: Vec::new(),
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
                if !g.wanted_by.contains(&i) {
                    g.wanted_by.push(i);
                }
                continue;
            }
            let weak = sym.binding == Binding::Weak;
            let in_single = |i: usize, id: SymbolId| {
                let obj = &inputs[i].object;
                match obj.symbol(id).map(|s| s.place) {
                    Some(SymbolPlace::Section(sid)) => obj.section(sid).is_some_and(|s| {
                        matches!(s.kind, SectionKind::License | SectionKind::Version)
                    }),
                    _ => false,
                }
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
                        g.losers.push(prev);
                        g.def = Some((i, sym.id));
                        g.weak = false;
                    } else {
                        g.losers.push((i, sym.id));
                    }
                }
            }
        }
    }
    res.losers = res
        .globals
        .iter()
        .flat_map(|g| g.losers.iter().copied())
        .collect();
    Ok(res)
}

pub fn kind_word(k: SymbolKind) -> &'static str {
    match k {
        SymbolKind::Func => "function",
        SymbolKind::Object => "variable",
        _ => "symbol",
    }
}
