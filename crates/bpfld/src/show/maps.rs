//! Map definitions and externs as listings show them.

use std::collections::HashMap;

use crate::model::btf::{Btf, TypeData};
use crate::model::map_def::MapDef;
use crate::model::object::Object;

/// One line describing a map.
pub fn describe(m: &MapDef) -> String {
    let mut s = format!(
        "{:<20} {:<16} max_entries={}",
        m.name,
        m.type_name
            .map(str::to_string)
            .unwrap_or_else(|| format!("type {}", m.map_type)),
        m.max_entries
    );
    match (&m.key_type, m.key_size) {
        (Some(t), Some(n)) => s += &format!(" key={t} ({n} bytes)"),
        (None, Some(n)) => s += &format!(" key_size={n}"),
        _ => {}
    }
    match (&m.value_type, m.value_size) {
        (Some(t), Some(n)) => s += &format!(" value={t} ({n} bytes)"),
        (None, Some(n)) => s += &format!(" value_size={n}"),
        _ => {}
    }
    if m.map_flags != 0 {
        s += &format!(" flags={:#x}", m.map_flags);
    }
    if m.pinning != 0 {
        s += &format!(" pinning={}", m.pinning);
    }
    if let Some(extra) = m.map_extra {
        s += &format!(" map_extra={extra:#x}");
    }
    if let Some(inner) = &m.inner {
        s += &format!(
            " inner=[{}]",
            describe(inner)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    if m.linkage != "global" {
        s += &format!(" ({})", m.linkage);
    }
    s
}

/// Extern names the BTF puts in `.kconfig`, `.ksyms` or `.maps`, with the
/// kind of extern each is.
pub fn extern_classes(obj: &Object) -> HashMap<&str, &'static str> {
    let mut classes = HashMap::new();
    let Some(btf) = &obj.btf else {
        return classes;
    };
    // Each loader section's variables once, by name.
    let mut by_name: HashMap<String, &'static str> = HashMap::new();
    for (sec, kind) in [
        (".kconfig", "kconfig"),
        (".ksyms", "ksym"),
        (".maps", "map"),
    ] {
        let Some(id) = btf.find_datasec(sec) else {
            continue;
        };
        let Ok(vars) = btf.datasec_vars(id) else {
            continue;
        };
        for v in vars {
            let is_func = matches!(
                btf.get(v.var_id).map(|t| &t.data),
                Some(TypeData::Func { .. })
            );
            by_name
                .entry(v.name.to_string())
                .or_insert(if is_func { "kfunc" } else { kind });
        }
    }
    for sym in obj.symbols.iter().filter(|s| s.is_extern()) {
        if let Some(&kind) = by_name.get(&sym.name) {
            classes.insert(sym.name.as_str(), kind);
        }
    }
    classes
}

/// Number of types in a BTF blob (not counting void).
pub fn type_count(btf: &Btf) -> usize {
    btf.types.len().saturating_sub(1)
}
