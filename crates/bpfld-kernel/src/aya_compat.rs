//! The copy of an object that aya 0.14 is handed: aya parses program
//! section names itself and refuses a whole object for one name it does not
//! know (libbpf's `tc`, `tcx/ingress`, `?raw_tp/...`, `syscall`, ...).
//! Its limits are not the user's: program sections are renamed, in a copy,
//! to names aya parses as the same program type, and sections aya cannot
//! load at all get a name aya parses but bpfld never loads, so the rest of
//! the object still runs. Which programs were hidden is kept, so that
//! choosing one of them gets a clear error.

use std::collections::HashMap;
use std::str::FromStr;

use aya_obj::ProgramSection;
use bpfld::model::btf::{Btf, BtfType, TypeData, TypeId};
use bpfld::model::object::{Binding, Object, SectionId, SectionKind, SymbolKind, SymbolPlace};

use crate::error::{Error, ErrorKind, Result};

/// An object ready for aya, and what the renaming hid.
pub(crate) struct AyaCopy {
    /// The bytes to hand to aya (the input itself when nothing was renamed).
    pub(crate) bytes: Vec<u8>,
    /// Programs whose section aya cannot load as the right type: name to
    /// libbpf's program type.
    pub(crate) unloadable: HashMap<String, &'static str>,
    /// Programs that cannot be loaded, though the object can: name to the
    /// reason (a CO-RE relocation that failed in a `?` program).
    pub(crate) refused: HashMap<String, String>,
    /// The slots the object fills itself, read before the copy rewrites
    /// prog arrays' `values`.
    pub(crate) slots: crate::init_slots::Slots,
}

/// What a program section becomes in aya's copy.
enum Rename {
    Keep,
    To(String),
    /// aya has no loader for the type: renamed to a kprobe nobody loads.
    Hide(&'static str),
}

fn rename(section: &str) -> Rename {
    // libbpf's "?" prefix only turns autoload off; the type is the rest.
    let bare = section.strip_prefix('?').unwrap_or(section);
    let libbpf_type = bpfld::model::program::program_type(bare);
    if libbpf_type == Some("sched_cls") {
        // aya reads only the first piece of "classifier/...", and the rest
        // keeps names unique.
        return if section == "classifier" || section.starts_with("classifier/") {
            Rename::Keep
        } else {
            Rename::To(format!("classifier/{section}"))
        };
    }
    if ProgramSection::from_str(bare).is_ok() {
        return if bare == section {
            Rename::Keep
        } else {
            Rename::To(bare.to_string())
        };
    }
    Rename::Hide(libbpf_type.unwrap_or("unknown"))
}

/// Prepares `object` for aya (see the module documentation).
pub(crate) fn prepare(object: &[u8]) -> Result<AyaCopy> {
    let bad = |e: bpfld::Error| Error::new(ErrorKind::Object, e.to_string());
    let mut obj: Object = bpfld::Object::parse(object).map_err(bad)?;
    let slots = crate::init_slots::Slots::of(&obj);
    let mut new_names: HashMap<SectionId, String> = HashMap::new();
    let mut hidden: HashMap<SectionId, &'static str> = HashMap::new();
    for s in obj.sections.iter().filter(|s| s.is_program()) {
        if s.name == ".text" {
            continue;
        }
        match rename(&s.name) {
            Rename::Keep => {}
            Rename::To(n) => {
                new_names.insert(s.id, n);
            }
            Rename::Hide(t) => {
                new_names.insert(s.id, format!("kprobe/bpfld-unloadable/{}", s.name));
                hidden.insert(s.id, t);
            }
        }
    }
    unique_names(&obj, &mut new_names, &mut hidden);
    let mut unloadable = HashMap::new();
    for sym in &obj.symbols {
        let SymbolPlace::Section(id) = sym.place else {
            continue;
        };
        if sym.kind != SymbolKind::Func || sym.binding == Binding::Local {
            continue;
        }
        let Some(_) = obj.section(id).filter(|s| s.is_program()) else {
            continue;
        };
        if let Some(t) = hidden.get(&id) {
            unloadable.insert(sym.name.clone(), *t);
        }
    }
    // GCC writes empty .data/.bss/.rodata sections: libbpf makes no map of
    // them, aya makes one of value size 0, which the kernel refuses.
    let mut emptied = false;
    for s in obj.sections.iter_mut() {
        if matches!(
            s.kind,
            SectionKind::Data | SectionKind::Bss | SectionKind::Rodata
        ) && s.sh_size == 0
            && s.data.is_empty()
        {
            s.name = format!("bpfld.empty{}", s.name);
            s.kind = SectionKind::Other;
            emptied = true;
        }
    }
    let values_rewritten = obj.btf.as_mut().is_some_and(prog_array_values);
    let ints_rewritten = obj.btf.as_mut().is_some_and(int_encodings);
    let ringbufs_sized = obj
        .btf
        .as_mut()
        .is_some_and(crate::ringbuf_size::round_ringbufs);
    let externs_resolved =
        crate::externs::resolve(&mut obj, &mut crate::externs::RunningKernel::default())?;
    let made_static = crate::hidden_subprogs::make_static(&mut obj);
    // aya 0.14's CO-RE is partial: bpfld relocates and leaves aya none.
    let core =
        crate::core_reloc::apply(&mut obj, &mut crate::core_reloc::Targets::running_kernel())?;
    let refused = refused_programs(&obj, core.deferred);
    let core_applied = core.any;
    if new_names.is_empty()
        && !values_rewritten
        && !externs_resolved
        && !emptied
        && !ints_rewritten
        && !ringbufs_sized
        && !made_static
        && !core_applied
    {
        return Ok(AyaCopy {
            bytes: object.to_vec(),
            unloadable,
            refused,
            slots,
        });
    }
    for s in obj.sections.iter_mut() {
        if let Some(n) = new_names.remove(&s.id) {
            // .BTF.ext names its sections through the BTF string table.
            if let Some(btf) = obj.btf.as_mut() {
                if btf.find_string(&n).is_none() {
                    btf.add_string(&n);
                }
            }
            s.name = n;
        }
    }
    let bytes = obj.to_bytes().map_err(bad)?;
    Ok(AyaCopy {
        bytes,
        unloadable,
        refused,
        slots,
    })
}

/// Names the program each deferred failure is in: the global function
/// of its section whose bytes hold the instruction.
fn refused_programs(
    obj: &Object,
    deferred: Vec<(SectionId, usize, String)>,
) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = HashMap::new();
    for (section, at, why) in deferred {
        let byte = at as u64 * 8;
        let owner = obj.symbols.iter().find(|s| {
            s.kind == SymbolKind::Func
                && s.binding != Binding::Local
                && s.place == SymbolPlace::Section(section)
                && s.value <= byte
                && byte < s.value + s.size.max(1)
        });
        if let Some(sym) = owner {
            // The first failure is the one libbpf reports.
            out.entry(sym.name.clone()).or_insert(why);
        }
    }
    out
}

/// Makes every name in aya's copy unique. Dropping the "?" can give two
/// sections one name (`?raw_tp` and `raw_tp`), and .BTF.ext names the
/// section its func_info and line_info belong to: aya, and bpfld's own
/// reader, would then give one section the other's records. A renamed
/// section whose name is taken gets one more piece, which aya ignores
/// (`raw_tp/bpfld-1` parses as `raw_tp` does); when every such name means
/// something else to aya (`xdp/...`), it is hidden like the types aya
/// cannot load, and bpfld loads it itself.
fn unique_names(
    obj: &Object,
    new_names: &mut HashMap<SectionId, String>,
    hidden: &mut HashMap<SectionId, &'static str>,
) {
    let mut taken: std::collections::HashSet<String> = obj
        .sections
        .iter()
        .filter(|s| !new_names.contains_key(&s.id))
        .map(|s| s.name.clone())
        .collect();
    let mut ids: Vec<SectionId> = new_names.keys().copied().collect();
    ids.sort();
    let aya_reading = |n: &str| ProgramSection::from_str(n).ok().map(|p| format!("{p:?}"));
    for id in ids {
        let Some(name) = new_names.get(&id).cloned() else {
            continue;
        };
        if taken.insert(name.clone()) {
            continue;
        }
        let reading = aya_reading(&name);
        let other = (1..=16)
            .map(|n| format!("{name}/bpfld-{n}"))
            .find(|c| !taken.contains(c) && reading.is_some() && aya_reading(c) == reading);
        let unique = match other {
            Some(c) => c,
            None => {
                let original = obj.section(id).map_or("", |s| s.name.as_str());
                let bare = original.strip_prefix('?').unwrap_or(original);
                hidden.insert(
                    id,
                    bpfld::model::program::program_type(bare).unwrap_or("unknown"),
                );
                format!("kprobe/bpfld-unloadable/{original}")
            }
        };
        taken.insert(unique.clone());
        new_names.insert(id, unique);
    }
}

/// BTF as GCC writes it, made loadable. GCC marks `signed char` both
/// SIGNED and CHAR, an INT encoding the
/// kernel's BTF check refuses; libbpf then loads without BTF, aya creates
/// the maps with type ids of BTF the kernel never got and fails. In aya's
/// copy such an INT keeps only its SIGNED bit (names and sizes are what
/// matters for loading). Returns whether anything changed.
fn int_encodings(btf: &mut Btf) -> bool {
    const SIGNED: u32 = 1;
    const CHAR: u32 = 2;
    const BOOL: u32 = 4;
    let mut changed = false;
    for t in btf.types.iter_mut() {
        let TypeData::Int { data, .. } = &mut t.data else {
            continue;
        };
        let enc = *data >> 24;
        if matches!(enc, 0 | SIGNED | CHAR | BOOL) {
            continue;
        }
        let keep = [SIGNED, CHAR, BOOL]
            .into_iter()
            .find(|b| enc & b != 0)
            .unwrap_or(0);
        *data = (keep << 24) | (*data & 0x00ff_ffff);
        changed = true;
    }
    // GCC also writes unnamed FUNCs (for helper declarations), which the
    // kernel refuses; nothing refers to them by name.
    let anon: Vec<usize> = btf
        .types
        .iter()
        .enumerate()
        .filter(|(_, t)| t.name_off == 0 && matches!(t.data, TypeData::Func { .. }))
        .map(|(i, _)| i)
        .collect();
    for i in anon {
        let name = btf.add_string(&format!("bpfld_anon_func_{i}"));
        if let Some(t) = btf.types.get_mut(i) {
            t.name_off = name;
            changed = true;
        }
    }
    changed
}

/// The type behind typedefs and modifiers.
fn skip_mods(btf: &Btf, mut id: TypeId) -> TypeId {
    for _ in 0..32 {
        match btf.get(id).map(|t| &t.data) {
            Some(
                TypeData::Typedef(t)
                | TypeData::Const(t)
                | TypeData::Volatile(t)
                | TypeData::Restrict(t)
                | TypeData::TypeTag(t),
            ) => id = *t,
            _ => break,
        }
    }
    id
}

/// libbpf fills a prog array from `__array(values, int (void *))`, a member
/// whose elements point to a function prototype; aya 0.14 reads every
/// `values` member as a map-in-map's inner map and refuses the object.
/// In aya's copy such a member becomes `__uint(value_size, 4)` (the slots
/// start empty). Returns whether anything changed.
fn prog_array_values(btf: &mut Btf) -> bool {
    let mut members: Vec<(TypeId, usize)> = Vec::new();
    for t in &btf.types {
        let TypeData::Datasec { vars, .. } = &t.data else {
            continue;
        };
        if btf.name(t.name_off).ok() != Some(".maps") {
            continue;
        }
        for v in vars {
            let Some(TypeData::Var { type_id, .. }) = btf.get(v.type_id).map(|t| &t.data) else {
                continue;
            };
            let sid = skip_mods(btf, *type_id);
            let Some(TypeData::Struct { members: ms, .. }) = btf.get(sid).map(|t| &t.data) else {
                continue;
            };
            for (i, m) in ms.iter().enumerate() {
                if btf.name(m.name_off).ok() != Some("values") {
                    continue;
                }
                let Some(TypeData::Array { elem, .. }) = btf.get(m.type_id).map(|t| &t.data) else {
                    continue;
                };
                let Some(TypeData::Ptr(to)) = btf.get(skip_mods(btf, *elem)).map(|t| &t.data)
                else {
                    continue;
                };
                if matches!(
                    btf.get(skip_mods(btf, *to)).map(|t| &t.data),
                    Some(TypeData::FuncProto { .. })
                ) {
                    members.push((sid, i));
                }
            }
        }
    }
    let Some(int) = btf
        .types
        .iter()
        .position(|t| matches!(t.data, TypeData::Int { .. }))
    else {
        return false;
    };
    if members.is_empty() {
        return false;
    }
    let int = TypeId(int as u32);
    let array = btf.add_type(BtfType::new(
        0,
        false,
        TypeData::Array {
            elem: int,
            index: int,
            nelems: 4,
        },
    ));
    let ptr = btf.add_type(BtfType::new(0, false, TypeData::Ptr(array)));
    let name = match btf.find_string("value_size") {
        Some(off) => off,
        None => btf.add_string("value_size"),
    };
    for (sid, i) in members {
        let Some(t) = btf.get_mut(sid) else {
            continue;
        };
        let kind_flag = t.kind_flag;
        if let TypeData::Struct { size, members } = &mut t.data {
            members[i].name_off = name;
            members[i].type_id = ptr;
            // `values` is a flexible array at the struct's end; the pointer
            // replacing it must fit in the struct (the kernel checks), so
            // it shares the slot of the member before it, as in a union.
            let end = size.saturating_mul(8);
            if !kind_flag && members[i].offset.saturating_add(64) > end && end >= 64 {
                members[i].offset = end - 64;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_names_aya_knows() {
        assert!(matches!(rename("tc"), Rename::To(n) if n == "classifier/tc"));
        assert!(matches!(rename("tcx/ingress"), Rename::To(n) if n == "classifier/tcx/ingress"));
        assert!(matches!(rename("?tc"), Rename::To(n) if n == "classifier/?tc"));
        assert!(matches!(rename("classifier"), Rename::Keep));
        assert!(matches!(rename("xdp"), Rename::Keep));
        assert!(matches!(rename("?raw_tp/sys_enter"), Rename::To(n) if n == "raw_tp/sys_enter"));
        assert!(matches!(rename("syscall"), Rename::Hide("syscall")));
        assert!(matches!(rename("lwt_in"), Rename::Hide("lwt_in")));
        assert!(matches!(rename("abc"), Rename::Hide("unknown")));
    }

    #[test]
    fn a_copy_with_sections_named_apart_reads_back() {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/run_dup_sections.o");
        let original = std::fs::read(&p).unwrap();
        let copy = prepare(&original).unwrap();
        // `?socket` and `socket` would both be `socket`: .BTF.ext could not
        // tell their records apart (the reader refused the copy).
        let back = bpfld::Object::parse(&copy.bytes).unwrap();
        let code = |o: &Object| -> Vec<(String, usize, usize, usize)> {
            o.sections
                .iter()
                .filter(|s| s.is_program() && s.name != ".text")
                .map(|s| {
                    (
                        s.name.clone(),
                        s.insns.len(),
                        s.func_info.len(),
                        s.line_info.len(),
                    )
                })
                .collect()
        };
        let (before, after) = (code(&bpfld::Object::parse(&original).unwrap()), code(&back));
        let names: Vec<&str> = after.iter().map(|c| c.0.as_str()).collect();
        // `xdp/...` means another attach type to aya: that one is hidden,
        // and bpfld loads it itself.
        assert_eq!(
            names,
            [
                "socket/bpfld-1",
                "socket",
                "kprobe/bpfld-unloadable/?xdp",
                "xdp"
            ]
        );
        // Each section keeps its own code and its own records.
        for (b, a) in before.iter().zip(&after) {
            assert_eq!((b.1, b.2, b.3), (a.1, a.2, a.3), "{} became {}", b.0, a.0);
        }
        assert_eq!(after[1].2, 2, "two programs' func_info in `socket`");
        assert_eq!(copy.unloadable.get("xdp_opt"), Some(&"xdp"));
        assert_eq!(copy.unloadable.len(), 1);
    }
}
