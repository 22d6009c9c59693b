//! Merging the BTF of the inputs: every input's types appended with their
//! ids translated, one VAR/FUNC kept per global name (the definition's, so
//! a resolved extern FUNC ends up with GLOBAL linkage), each extern checked
//! against its definition, DATASECs rebuilt for the output sections with
//! offsets moved like the data, and BTF.ext records translated.

use std::collections::{HashMap, HashSet};

use crate::error::{Error, Result};
use crate::model::btf::{
    Btf, BtfType, Kind, StringTable, TypeData, TypeId, VarSecinfo, BTF_VAR_GLOBAL_ALLOCATED,
};
use crate::model::object::{Object, Section, SectionId, SectionKind};

use super::compat;
use super::pieces::Placement;
use super::symbols::Resolution;
use super::{Input, MovedExt};

const BTF_FUNC_GLOBAL: u16 = 1;
const BTF_VAR_STATIC: u32 = 0;

/// Externs the loader resolves (`.kconfig`, `.ksyms`): never an error when
/// no input defines them.
pub fn special_externs(inputs: &[&Input]) -> HashSet<String> {
    let mut names = HashSet::new();
    for input in inputs {
        let Some(btf) = &input.object.btf else {
            continue;
        };
        for sec in [".kconfig", ".ksyms"] {
            if let Some(id) = btf.find_datasec(sec) {
                if let Ok(vars) = btf.datasec_vars(id) {
                    names.extend(vars.iter().map(|v| v.name.to_string()));
                }
            }
        }
    }
    names
}

fn is_non_static(t: &BtfType) -> bool {
    match &t.data {
        TypeData::Var { linkage, .. } => *linkage != BTF_VAR_STATIC,
        TypeData::Func { linkage, .. } => *linkage != 0,
        _ => false,
    }
}

/// Every non-static VAR and FUNC of `btf` by name (an object may hold
/// several, e.g. two externs renamed to one), the one a DATASEC lists
/// first (as libbpf prefers it).
fn globals_index(btf: &Btf) -> HashMap<&str, Vec<TypeId>> {
    let mut index: HashMap<&str, Vec<TypeId>> = HashMap::new();
    let mut listed: HashSet<TypeId> = HashSet::new();
    for (_, t) in btf.iter() {
        if let TypeData::Datasec { vars, .. } = &t.data {
            for v in vars {
                if let Some(vt) = btf.get(v.type_id) {
                    if is_non_static(vt) && listed.insert(v.type_id) {
                        if let Ok(n) = btf.name(vt.name_off) {
                            index.entry(n).or_default().push(v.type_id);
                        }
                    }
                }
            }
        }
    }
    for (id, t) in btf.iter() {
        if is_non_static(t) && !listed.contains(&id) {
            if let Ok(n) = btf.name(t.name_off) {
                index.entry(n).or_default().push(id);
            }
        }
    }
    index
}

/// The key and value types of a BTF-defined map's definition struct.
fn map_kv(btf: &Btf, var: TypeId) -> (Option<TypeId>, Option<TypeId>) {
    let Some(TypeData::Var { type_id, .. }) = btf.get(var).map(|t| &t.data) else {
        return (None, None);
    };
    let Ok(st) = btf.resolve(*type_id) else {
        return (None, None);
    };
    let Ok(members) = btf.members(st) else {
        return (None, None);
    };
    let pointee = |name: &str| {
        let m = members.iter().find(|m| m.name == name)?;
        crate::show::maps::pointee(btf, m.type_id).ok()
    };
    (pointee("key"), pointee("value"))
}

/// Checks one declaration or definition of a global against the chosen
/// one, with an error that shows both in C syntax.
fn check_compatible(
    name: &str,
    (fa, ba, ia): (&str, &Btf, TypeId),
    (fb, bb, ib): (&str, &Btf, TypeId),
    is_map: bool,
) -> Result<()> {
    let show = |btf: &Btf, id: TypeId| crate::show::c_type::prototype(btf, id, name);
    let fail = |why: String| {
        Error::new(format!(
            "'{name}' in {fb} does not match its definition in {fa} ({why}):\n  {fa}: {}\n  {fb}: {}",
            show(ba, ia),
            show(bb, ib)
        ))
    };
    if is_map {
        let def = |btf: &Btf, id: TypeId| -> Result<crate::show::maps::MapDef> {
            match btf.get(id).map(|t| &t.data) {
                Some(TypeData::Var { type_id, .. }) => {
                    crate::show::maps::parse_map_def(btf, *type_id, 0)
                }
                _ => crate::bail!("map '{name}' is not a BTF VAR"),
            }
        };
        let (da, db) = (def(ba, ia)?, def(bb, ib)?);
        compat::map_defs_match(&da, &db).map_err(|w| {
            Error::new(format!(
                "map '{name}' in {fb} does not match its definition in {fa}: {w}"
            ))
        })?;
        let ((ka, va), (kb, vb)) = (map_kv(ba, ia), map_kv(bb, ib));
        for (what, x, y) in [("key", ka, kb), ("value", va, vb)] {
            if let (Some(x), Some(y)) = (x, y) {
                compat::types_match(ba, x, bb, y, true).map_err(|w| {
                    Error::new(format!(
                        "map '{name}' in {fb} does not match its definition in {fa}: {what} types {} and {} ({w})",
                        crate::show::c_type::type_name(ba, x),
                        crate::show::c_type::type_name(bb, y)
                    ))
                })?;
            }
        }
        return Ok(());
    }
    compat::types_match(ba, ia, bb, ib, true).map_err(fail)
}

pub fn merge(
    inputs: &[&Input],
    res: &Resolution,
    placement: &Placement,
    moved: MovedExt,
    make_static: &HashSet<String>,
    object: &mut Object,
) -> Result<()> {
    if inputs.iter().all(|i| i.object.btf.is_none()) {
        return Ok(());
    }
    let mut out = Btf::new(object.endian);
    let mut strings = StringTable::from_btf(&out);
    let mut maps: Vec<Option<Vec<TypeId>>> = Vec::with_capacity(inputs.len());
    for input in inputs {
        maps.push(match &input.object.btf {
            Some(btf) => Some(
                out.append_types(btf, &mut strings)
                    .map_err(|e| e.in_section(".BTF").in_file(&input.name))?,
            ),
            None => None,
        });
    }
    let n = out.types.len();
    let mut drop = vec![false; n];
    for (i, t) in out.types.iter().enumerate() {
        if t.kind() == Kind::Datasec {
            drop[i] = true;
        }
    }

    // Every input's globals by name, in input order: one pass over the
    // inputs instead of one lookup per (global, input) pair.
    let mut by_name: HashMap<&str, Vec<(usize, TypeId, TypeId)>> = HashMap::new();
    // Each input's `.maps` VARs, found once rather than per global.
    let mut map_vars: Vec<HashSet<TypeId>> = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        let mut vars = HashSet::new();
        if let (Some(btf), Some(map)) = (&input.object.btf, &maps[i]) {
            for (name, ids) in globals_index(btf) {
                for id in ids {
                    if let Some(&o) = map.get(id.0 as usize) {
                        by_name.entry(name).or_default().push((i, id, o));
                    }
                }
            }
            if let Some(vs) = btf
                .find_datasec(".maps")
                .and_then(|d| btf.datasec_vars(d).ok())
            {
                vars.extend(vs.iter().map(|v| v.var_id));
            }
        }
        map_vars.push(vars);
    }
    // One VAR/FUNC per global name; every other copy aliases it.
    // alias[out id]: the kept copy (itself when kept); a table, not a map,
    // because every id of every output type goes through it.
    let mut alias: Vec<TypeId> = (0..n as u32).map(TypeId).collect();
    let mut defined_in: HashMap<TypeId, usize> = HashMap::new();
    for g in &res.globals {
        // (input, input id, out id)
        let cands: &[(usize, TypeId, TypeId)] =
            by_name.get(g.name.as_str()).map_or(&[], Vec::as_slice);
        let Some(&chosen) = g
            .def
            .and_then(|(di, _)| cands.iter().find(|c| c.0 == di))
            .or(cands.first())
        else {
            continue;
        };
        let (ci, cid, cout) = chosen;
        let cbtf = inputs[ci].object.btf.as_ref().expect("candidate has BTF");
        let is_map = map_vars[ci].contains(&cid);
        for &(i, id, o) in cands {
            if o == cout {
                continue;
            }
            let btf = inputs[i].object.btf.as_ref().expect("candidate has BTF");
            check_compatible(
                &g.name,
                (&inputs[ci].name, cbtf, cid),
                (&inputs[i].name, btf, id),
                is_map,
            )?;
            drop[o.0 as usize] = true;
            if let Some(a) = alias.get_mut(o.0 as usize) {
                *a = cout;
            }
        }
        if g.def.is_some() {
            defined_in.insert(cout, ci);
            // Functions that fill a component slot are verified in their
            // caller's context, like any hidden function.
            if make_static.contains(&g.name) {
                if let Some(t) = out.get_mut(cout) {
                    if let TypeData::Func { linkage, .. } = &mut t.data {
                        *linkage = 0;
                    }
                }
                continue;
            }
            // A definition's linkage is what the kernel must see.
            if let Some(t) = out.get_mut(cout) {
                match &mut t.data {
                    TypeData::Func { linkage, .. } if *linkage != 0 => *linkage = BTF_FUNC_GLOBAL,
                    TypeData::Var { linkage, .. } if *linkage != BTF_VAR_STATIC => {
                        *linkage = BTF_VAR_GLOBAL_ALLOCATED
                    }
                    _ => {}
                }
            }
        }
    }
    let resolve = |id: TypeId| alias.get(id.0 as usize).copied().unwrap_or(id);

    // DATASECs for the output sections (and the loader's ephemeral ones).
    let mut datasecs: Vec<(String, u32, Vec<VarSecinfo>)> = Vec::new();
    let mut seen: HashSet<(String, TypeId)> = HashSet::new();
    for (i, input) in inputs.iter().enumerate() {
        let (Some(btf), Some(map)) = (&input.object.btf, &maps[i]) else {
            continue;
        };
        for (_, t) in btf.iter() {
            let TypeData::Datasec { vars, size } = &t.data else {
                continue;
            };
            let sec_name = btf.name(t.name_off).unwrap_or("");
            let elf_sec: Option<&Section> = input.object.section_by_name(sec_name);
            for v in vars {
                let Some(&mapped) = map.get(v.type_id.0 as usize) else {
                    continue;
                };
                let id = resolve(mapped);
                // A global is listed where it is defined.
                if let Some(&di) = defined_in.get(&id) {
                    if di != i {
                        continue;
                    }
                }
                // clang leaves global variables' offsets at 0 in DATASECs;
                // their symbols know where they are.
                let in_offset = match (btf.get(v.type_id).map(|t| &t.data), elf_sec) {
                    (
                        Some(TypeData::Var {
                            linkage: BTF_VAR_GLOBAL_ALLOCATED,
                            ..
                        }),
                        Some(s),
                    ) => {
                        let var_name = btf.type_name(v.type_id);
                        input
                            .object
                            .symbols
                            .iter()
                            .find(|sym| {
                                sym.name == var_name
                                    && sym.place == crate::model::object::SymbolPlace::Section(s.id)
                            })
                            .map_or(v.offset, |sym| sym.value as u32)
                    }
                    _ => v.offset,
                };
                let (name, offset) = match elf_sec {
                    Some(s) if is_placed_kind(s) => {
                        match placement.map(i, s.id, u64::from(in_offset)) {
                            Some((o, off)) => (out_section_name(object, o), off as u32),
                            None => continue, // a dropped weak definition
                        }
                    }
                    _ => (sec_name.to_string(), v.offset),
                };
                if !seen.insert((name.clone(), id)) {
                    continue;
                }
                let entry = match datasecs.iter().position(|d| d.0 == name) {
                    Some(p) => p,
                    None => {
                        datasecs.push((name.clone(), 0, Vec::new()));
                        datasecs.len() - 1
                    }
                };
                if elf_sec.is_none() {
                    datasecs[entry].1 = datasecs[entry].1.max(*size);
                }
                datasecs[entry].2.push(VarSecinfo {
                    type_id: id,
                    offset,
                    size: v.size,
                });
            }
            // A section that has BTF but no variables still gets a DATASEC.
            if vars.is_empty() {
                let name = match elf_sec {
                    Some(s) if is_placed_kind(s) => match placement.map(i, s.id, 0) {
                        Some((o, _)) => out_section_name(object, o),
                        None => continue,
                    },
                    _ => sec_name.to_string(),
                };
                if !datasecs.iter().any(|d| d.0 == name) {
                    // Without an ELF section behind it, its own size stands.
                    let size = if elf_sec.is_none() { *size } else { 0 };
                    datasecs.push((name, size, Vec::new()));
                }
            }
        }
    }
    // Output order: by output section, then the loader's sections.
    let order = |name: &str| {
        object
            .sections
            .iter()
            .position(|s| s.name == name)
            .unwrap_or(usize::MAX)
    };
    datasecs.sort_by_key(|d| order(&d.0));
    let mut new_datasecs = Vec::new();
    for (name, eph_size, mut vars) in datasecs {
        vars.sort_by_key(|v| v.offset);
        let size = match object.sections.iter().find(|s| s.name == name) {
            Some(s) => s.sh_size as u32,
            None => eph_size,
        };
        let name_off = strings.add(name.as_bytes());
        new_datasecs.push(BtfType::new(
            name_off,
            false,
            TypeData::Datasec { size, vars },
        ));
    }

    // Compact: drop the inputs' DATASECs and the aliased copies.
    let mut new_id = vec![TypeId::VOID; n];
    let mut next = 1u32;
    for (i, slot) in new_id.iter_mut().enumerate().skip(1) {
        if !drop[i] {
            *slot = TypeId(next);
            next += 1;
        }
    }
    let final_id = |id: TypeId| -> TypeId {
        let id = resolve(id);
        new_id.get(id.0 as usize).copied().unwrap_or(TypeId::VOID)
    };
    let mut types = Vec::with_capacity(next as usize + new_datasecs.len());
    types.push(out.types[0].clone());
    for (i, t) in out.types.iter().enumerate().skip(1) {
        if drop[i] {
            continue;
        }
        let mut t = t.clone();
        t.map_ids(final_id);
        types.push(t);
    }
    for mut t in new_datasecs {
        t.map_ids(final_id);
        types.push(t);
    }
    out.types = types;

    // BTF.ext records, with their input's ids and strings translated.
    for s in &mut object.sections {
        s.func_info.clear();
        s.line_info.clear();
        s.core_relos.clear();
    }
    // Line info repeats the same few file names and source lines: translate
    // each input string once.
    let mut str_cache: Vec<HashMap<u32, u32>> = vec![HashMap::new(); inputs.len()];
    let mut input_str = |i: usize, off: u32, strings: &mut StringTable| -> Result<u32> {
        if let Some(&out_off) = str_cache.get(i).and_then(|c| c.get(&off)) {
            return Ok(out_off);
        }
        let btf = inputs[i].object.btf.as_ref().ok_or_else(|| {
            Error::new(format!("{}: .BTF.ext records without .BTF", inputs[i].name))
        })?;
        let out_off = strings.add(
            btf.name_bytes(off)
                .map_err(|e| e.in_file(&inputs[i].name))?,
        );
        if let Some(c) = str_cache.get_mut(i) {
            c.insert(off, out_off);
        }
        Ok(out_off)
    };
    let input_type = |i: usize, id: u32| -> TypeId {
        maps[i]
            .as_ref()
            .and_then(|m| m.get(id as usize).copied())
            .map(final_id)
            .unwrap_or(TypeId::VOID)
    };
    for (i, o, mut r) in moved.func_info {
        r.type_id = input_type(i, r.type_id).0;
        object.sections[o].func_info.push(r);
    }
    for (i, o, mut r) in moved.line_info {
        r.file_name_off = input_str(i, r.file_name_off, &mut strings)?;
        r.line_off = input_str(i, r.line_off, &mut strings)?;
        object.sections[o].line_info.push(r);
    }
    for (i, o, mut r) in moved.core_relos {
        r.type_id = input_type(i, r.type_id).0;
        r.access_str_off = input_str(i, r.access_str_off, &mut strings)?;
        object.sections[o].core_relos.push(r);
    }
    let mut has_ext = false;
    for s in &mut object.sections {
        s.func_info.sort_by_key(|r| r.insn);
        s.line_info.sort_by_key(|r| r.insn);
        s.core_relos.sort_by_key(|r| r.insn);
        if !(s.func_info.is_empty() && s.line_info.is_empty() && s.core_relos.is_empty()) {
            has_ext = true;
            strings.add(s.name.as_bytes());
        }
    }
    out.strings = strings.bytes;
    // Every input brought its own copy of the shared types: deduplicate
    // (libbpf's rules, plus identical VARs), then move the BTF.ext records
    // onto the surviving ids and strings.
    // Only the old string table is needed afterwards, not a copy of every
    // type.
    let mut old_strings = Btf::new(out.endian);
    old_strings.strings = out.strings.clone();
    let mut d = crate::dedup::dedup_owned(out)?;
    d.remap_sections(&old_strings, &mut object.sections)?;
    // (remap_sections also keeps the names of sections with records.)
    object.btf = Some(d.btf);
    push_section(object, ".BTF", SectionKind::Btf);
    if has_ext {
        push_section(object, ".BTF.ext", SectionKind::BtfExt);
    }
    Ok(())
}

fn is_placed_kind(s: &Section) -> bool {
    !matches!(
        s.kind,
        SectionKind::Null | SectionKind::Rel | SectionKind::SymTab | SectionKind::StrTab
    )
}

fn out_section_name(object: &Object, o: usize) -> String {
    object
        .sections
        .get(o + 1)
        .map(|s| s.name.clone())
        .unwrap_or_default()
}

fn push_section(object: &mut Object, name: &str, kind: SectionKind) {
    let id = SectionId(object.sections.len() as u32);
    object.sections.push(Section {
        sh_addralign: 4,
        ..Section::empty(id, name, kind, 1)
    });
}
