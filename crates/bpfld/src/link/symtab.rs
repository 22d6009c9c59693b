//! The output's symbol table. Symbols are numbered only at the end
//! (section symbols, then locals, then globals in first-seen order);
//! until then the relocations carried over name them by kind and index
//! ([`tagged`]).

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::model::object::{
    Binding, SectionId, Symbol, SymbolId, SymbolKind, SymbolPlace, Visibility,
};

use super::pieces::Placement;
use super::sections::{OutSec, SINGLE_OUT};
use super::symbols::Resolution;
use super::{Input, Out};

/// Output symbols are numbered only at the end (section symbols, then
/// locals, then globals); until then relocations name them by kind and
/// index in the top two bits.
pub(super) const TAG_SECTION: u32 = 1 << 30;

pub(super) const TAG_LOCAL: u32 = 2 << 30;

pub(super) const TAG_GLOBAL: u32 = 3 << 30;

pub(super) const TAG_MASK: u32 = 3 << 30;

pub(super) fn tagged(tag: u32, index: usize) -> Result<SymbolId> {
    match u32::try_from(index) {
        Ok(n) if n < 1 << 30 => Ok(SymbolId(tag | n)),
        _ => crate::bail!("too many symbols in the output"),
    }
}

/// Input `i`'s symbols as output symbols (tagged, see [`TAG_LOCAL`]):
/// locals are added to the output, and where a global definition landed
/// is recorded.
pub(super) fn emit_symbols(
    i: usize,
    input: &Input,
    res: &Resolution,
    placement: &Placement,
    out: &mut Out,
) -> Result<HashMap<SymbolId, SymbolId>> {
    let place_of = |s: &Symbol| -> Option<(SymbolPlace, u64)> {
        match s.place {
            SymbolPlace::Section(id) => placement
                .map_symbol(i, id, s.value, s.size)
                .map(|(o, off)| (SymbolPlace::Section(SectionId(o as u32)), off)),
            other => Some((other, s.value)),
        }
    };
    let mut map = HashMap::new();
    for s in &input.object.symbols {
        if s.id.0 == 0 || s.kind == SymbolKind::File {
            continue;
        }
        if s.binding != Binding::Local {
            if s.kind == SymbolKind::Section {
                continue;
            }
            if let Some(g) = res.index(&s.name) {
                map.insert(s.id, tagged(TAG_GLOBAL, g)?);
                if res.globals[g].def == Some((i, s.id)) {
                    out.def_place[g] = Some(place_of(s));
                }
            }
            continue;
        }
        if s.kind == SymbolKind::Section {
            if let SymbolPlace::Section(id) = s.place {
                if let Some((o, _)) = placement.map(i, id, 0) {
                    // `license` and `version` have no section symbol.
                    if !SINGLE_OUT.contains(&o) {
                        map.insert(s.id, tagged(TAG_SECTION, o)?);
                    }
                }
            }
            continue;
        }
        let Some((place, value)) = place_of(s) else {
            continue; // in a dropped piece
        };
        map.insert(s.id, tagged(TAG_LOCAL, out.locals.len())?);
        out.locals.push(Symbol {
            place,
            value,
            ..s.clone()
        });
    }
    Ok(map)
}

/// The local symbols input `input` may bring (an upper bound).
pub(super) fn local_count(input: &Input) -> usize {
    input
        .object
        .symbols
        .iter()
        .filter(|s| s.binding == Binding::Local)
        .count()
}

/// Numbers the output's symbols: the null symbol, one per concatenated
/// section (`concat`), the locals, then the globals in first-seen order
/// (where `def_place` says their definition landed). `out_index` names
/// the output section of a placement index. Returns the symbols and each
/// global's id (`None` for a component's global not pulled in).
pub(super) fn number(
    concat: &[OutSec],
    locals: Vec<Symbol>,
    res: &Resolution,
    def_place: &[Option<Option<(SymbolPlace, u64)>>],
    names: &[String],
    is_component: &[bool],
    out_index: impl Fn(usize) -> usize,
) -> Result<(Vec<Symbol>, Vec<Option<SymbolId>>)> {
    let nconcat = concat.len();
    // Output section ids count the null section.
    let place = |p: SymbolPlace| match p {
        SymbolPlace::Section(id) => {
            SymbolPlace::Section(SectionId(out_index(id.0 as usize) as u32 + 1))
        }
        other => other,
    };

    let mut symbols = Vec::with_capacity(1 + nconcat + locals.len() + res.globals.len());
    symbols.push(Symbol {
        id: SymbolId(0),
        name: String::new(),
        binding: Binding::Local,
        visibility: Visibility::Default,
        kind: SymbolKind::NoType,
        place: SymbolPlace::Undefined,
        value: 0,
        size: 0,
        st_other: 0,
    });
    for (o, s) in concat.iter().enumerate() {
        symbols.push(Symbol {
            id: SymbolId(o as u32 + 1),
            name: s.sec.name.clone(),
            binding: Binding::Local,
            visibility: Visibility::Default,
            kind: SymbolKind::Section,
            place: SymbolPlace::Section(SectionId(o as u32 + 1)),
            value: 0,
            size: 0,
            st_other: 0,
        });
    }
    for mut s in locals {
        s.id = SymbolId(symbols.len() as u32);
        s.place = place(s.place);
        symbols.push(s);
    }
    // Globals, in first-seen order.
    let mut global_ids: Vec<Option<SymbolId>> = vec![None; res.globals.len()];
    for (n, g) in res.globals.iter().enumerate() {
        let sym = match (g.def, &g.def_sym) {
            (Some((i, _)), Some(s)) => {
                let Some(Some((p, value))) = def_place[n] else {
                    if is_component[i] {
                        continue; // not pulled in
                    }
                    crate::bail!(
                        "{}: symbol '{}' lies outside the sections that are linked",
                        names.get(i).map_or("", String::as_str),
                        g.name
                    );
                };
                Symbol {
                    binding: if g.weak {
                        Binding::Weak
                    } else {
                        Binding::Global
                    },
                    visibility: if g.hidden {
                        Visibility::Hidden
                    } else {
                        s.visibility
                    },
                    place: place(p),
                    value,
                    name: g.name.clone(),
                    ..s.clone()
                }
            }
            _ => {
                // Still an extern: keep the first declaration's shape,
                // strong if any input needs it (a weak declaration may
                // come first), as libbpf does.
                let s = g
                    .decl
                    .as_ref()
                    .ok_or_else(|| Error::new(format!("symbol '{}' has no declaration", g.name)))?;
                Symbol {
                    binding: if g.strong_ref {
                        Binding::Global
                    } else {
                        Binding::Weak
                    },
                    visibility: if g.hidden {
                        Visibility::Hidden
                    } else {
                        s.visibility
                    },
                    name: g.name.clone(),
                    ..s.clone()
                }
            }
        };
        let id = SymbolId(symbols.len() as u32);
        global_ids[n] = Some(id);
        symbols.push(Symbol { id, ..sym });
    }
    Ok((symbols, global_ids))
}

/// Replaces the tags in the output's relocations by the numbered symbols
/// (`nconcat` section symbols come first), and sorts them by offset.
pub(super) fn untag_relocations(
    secs: &mut [OutSec],
    nconcat: usize,
    global_ids: &[Option<SymbolId>],
    res: &Resolution,
) -> Result<()> {
    for s in secs.iter_mut() {
        for r in &mut s.sec.relocs {
            let n = (r.symbol.0 & !TAG_MASK) as usize;
            r.symbol = match r.symbol.0 & TAG_MASK {
                TAG_SECTION => SymbolId(n as u32 + 1),
                TAG_LOCAL => SymbolId((1 + nconcat + n) as u32),
                _ => match global_ids.get(n).copied().flatten() {
                    Some(id) => id,
                    None => crate::bail!(
                        "section '{}' offset {:#x}: relocation against '{}', which is not linked",
                        s.sec.name,
                        r.offset,
                        res.globals.get(n).map_or("", |g| g.name.as_str())
                    ),
                },
            };
        }
        s.sec.relocs.sort_by_key(|r| r.offset);
    }
    Ok(())
}
