//! Relocation annotations: the type and value columns objdump prints for
//! a relocation.

use super::Listing;
use crate::model::object::{Reloc, RelocKind, SymbolKind, SymbolPlace};

/// Relocation type names as llvm prints them.
pub(super) fn reloc_name(kind: RelocKind) -> String {
    match kind {
        RelocKind::Unknown(_) => "Unknown".into(),
        k => k.name(),
    }
}

/// The value column of a relocation: the symbol's name, a section
/// symbol's section name, or `*ABS*` without a symbol.
pub(super) fn reloc_value(obj: &Listing<'_>, r: &Reloc) -> String {
    if r.symbol.0 == 0 {
        return "*ABS*".into();
    }
    let Some(sym) = obj.symbols.get(r.symbol.0 as usize) else {
        return format!("<symbol {}>", r.symbol.0);
    };
    if sym.kind == SymbolKind::Section {
        if let SymbolPlace::Section(id) = sym.place {
            if let Some(s) = obj.sections.get(id.0 as usize) {
                return s.name.to_string();
            }
        }
    }
    sym.name.clone()
}
