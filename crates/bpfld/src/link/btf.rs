//! Merging the BTF of the inputs: every input's types appended with their
//! ids translated (and deduplicated as they grow), one VAR/FUNC kept per
//! global name (the definition's, so a resolved extern FUNC ends up with
//! GLOBAL linkage), each other copy checked against it ([`compat`]),
//! DATASECs rebuilt for the output sections ([`datasec`]), the BTF.ext
//! records moved onto the final types ([`super::btf_ext`]).

use std::collections::{HashMap, HashSet};

use crate::error::{Error, Result};
use crate::model::btf::{
    Btf, BtfType, Kind, StringTable, TypeData, TypeId, BTF_VAR_GLOBAL_ALLOCATED,
};
use crate::model::object::{Object, Section, SectionId, SectionKind};

use super::compat;
use super::datasec::{self, DsOp};
use super::pieces::Placement;
use super::symbols::Resolution;
use super::Input;

const BTF_FUNC_GLOBAL: u16 = 1;
const BTF_VAR_STATIC: u32 = 0;

/// Externs the loader resolves (`.kconfig`, `.ksyms`): never an error when
/// no input defines them.
pub fn special_externs(input: &Input, names: &mut HashSet<String>) {
    let Some(btf) = &input.object.btf else {
        return;
    };
    for sec in [".kconfig", ".ksyms"] {
        if let Some(id) = btf.find_datasec(sec) {
            if let Ok(vars) = btf.datasec_vars(id) {
                names.extend(vars.iter().map(|v| v.name.to_string()));
            }
        }
    }
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

/// The BTF of the output while inputs are added one at a time: every
/// input's types appended with their ids translated, plus what the end of
/// the link needs to pick one VAR/FUNC per global name and rebuild the
/// DATASECs. Inputs need not stay in memory once added.
///
/// Every input brings its own copy of the types it shares with the others
/// (the same headers), so the types are deduplicated whenever they have
/// grown by half since the last time, which bounds them by about one and a
/// half times the output's. Deduplication keeps the first of equal types in place, so the
/// result is the one a single deduplication at the end would give. Types
/// are named by *merged ids* (the ids they would have without those
/// deduplications: `ids` maps them to the current ones), so nothing that
/// refers to them has to change.
pub struct Merger {
    out: Btf,
    /// The strings of `out`'s types.
    strings: StringTable,
    /// The strings of BTF.ext records (file names, source lines, CO-RE
    /// access strings), which the types do not reference.
    ext_strings: StringTable,
    /// Merged id → current id in `out`.
    ids: Vec<TypeId>,
    /// Types in `out` after the last deduplication.
    kept: usize,
    /// Copies of globals whose chosen copy comes in a later input, renamed
    /// until the end so that deduplication cannot make them the kept copy:
    /// (merged id, name).
    renamed: Vec<(TypeId, usize)>,
    any: bool,
    /// Input names, for errors.
    names: Vec<String>,
    /// Every input's non-static VARs and FUNCs of a global name, in input
    /// order: (global, input, merged id).
    cands: Vec<(u32, u32, TypeId)>,
    /// The merged ids of every input's `.maps` VARs.
    map_vars: HashSet<TypeId>,
    datasecs: Vec<DsOp>,
    /// The VARs of later inputs' `license` and `version` copies, which
    /// are not linked (merged ids).
    dropped: Vec<TypeId>,
}

/// Fewer types than this are not worth a deduplication pass.
const MIN_DEDUP: usize = 4096;

#[cfg(test)]
thread_local! {
    /// Tests deduplicate after every input, to show it changes nothing.
    pub(crate) static TEST_MIN_DEDUP: std::cell::Cell<Option<usize>> =
        const { std::cell::Cell::new(None) };
}

fn min_dedup() -> usize {
    #[cfg(test)]
    if let Some(n) = TEST_MIN_DEDUP.with(|c| c.get()) {
        return n;
    }
    MIN_DEDUP
}

impl Merger {
    pub fn new(endian: crate::model::Endian) -> Merger {
        let mut out = Btf::new(endian);
        let strings = StringTable::from_btf(&out);
        let ext_strings = StringTable::from_btf(&out);
        out.strings = Vec::new(); // held by `strings`
        Merger {
            out,
            strings,
            ext_strings,
            ids: vec![TypeId::VOID],
            kept: 1,
            renamed: Vec::new(),
            any: false,
            names: Vec::new(),
            cands: Vec::new(),
            map_vars: HashSet::new(),
            datasecs: Vec::new(),
            dropped: Vec::new(),
        }
    }

    /// Appends input `i`'s types, and records its globals and DATASEC
    /// entries (offsets moved through `placement`, which must hold this
    /// input's pieces). Returns the map from the input's type ids to merged
    /// ones, for its BTF.ext records; empty without BTF.
    pub fn add(
        &mut self,
        i: usize,
        input: &Input,
        res: &Resolution,
        placement: &Placement,
    ) -> Result<Vec<TypeId>> {
        if self.names.len() <= i {
            self.names.resize(i + 1, String::new());
        }
        self.names[i] = input.name.clone();
        let Some(btf) = &input.object.btf else {
            return Ok(Vec::new());
        };
        self.any = true;
        let current = self
            .out
            .append_types(btf, &mut self.strings)
            .map_err(|e| e.in_section(".BTF").in_file(&input.name))?;
        // Merged ids continue where the last input's ended.
        let base = self.ids.len() as u32 - 1;
        let map: Vec<TypeId> = (0..current.len() as u32)
            .map(|k| {
                if k == 0 {
                    TypeId::VOID
                } else {
                    TypeId(base + k)
                }
            })
            .collect();
        self.ids.extend(current.iter().skip(1).copied());
        for (name, ids) in globals_index(btf) {
            // Only globals have a copy to choose.
            let Some(g) = res.index(name) else {
                continue;
            };
            // The definition comes later: that copy is the one kept.
            let later = res.globals[g].def.is_some_and(|(di, _)| di > i);
            for id in ids {
                if let Some(&o) = map.get(id.0 as usize) {
                    self.cands.push((g as u32, i as u32, o));
                    if later {
                        let cur = current[id.0 as usize];
                        let placeholder = self
                            .strings
                            .add(format!(".bpfld.renamed.{}", o.0).as_bytes());
                        if let Some(t) = self.out.get_mut(cur) {
                            t.name_off = placeholder;
                        }
                        self.renamed.push((o, g));
                    }
                }
            }
        }
        if let Some(vs) = btf
            .find_datasec(".maps")
            .and_then(|d| btf.datasec_vars(d).ok())
        {
            self.map_vars.extend(
                vs.iter()
                    .filter_map(|v| map.get(v.var_id.0 as usize).copied()),
            );
        }
        datasec::record(
            i,
            input,
            btf,
            &map,
            placement,
            &mut self.datasecs,
            &mut self.dropped,
        );
        if self.out.types.len() - self.kept > (self.kept / 2).max(min_dedup()) {
            self.dedup()?;
        }
        Ok(map)
    }

    /// Deduplicates the types so far.
    fn dedup(&mut self) -> Result<()> {
        let endian = self.out.endian;
        let mut btf = std::mem::replace(&mut self.out, Btf::new(endian));
        btf.strings = std::mem::take(&mut self.strings.bytes);
        let d = crate::dedup::dedup_linked(btf)?;
        for id in &mut self.ids {
            *id = d.map.get(id.0 as usize).copied().unwrap_or(TypeId::VOID);
        }
        self.out = d.btf;
        self.strings = StringTable::from_btf(&self.out);
        self.out.strings = Vec::new();
        self.kept = self.out.types.len();
        Ok(())
    }

    /// The merged string offset of string `off` of `input`'s BTF; `cache`
    /// remembers this input's strings (line info repeats a few file names
    /// and source lines).
    pub fn string(
        &mut self,
        input: &Input,
        off: u32,
        cache: &mut HashMap<u32, u32>,
    ) -> Result<u32> {
        if let Some(&o) = cache.get(&off) {
            return Ok(o);
        }
        let btf =
            input.object.btf.as_ref().ok_or_else(|| {
                Error::new(format!("{}: .BTF.ext records without .BTF", input.name))
            })?;
        let o = self
            .ext_strings
            .add(btf.name_bytes(off).map_err(|e| e.in_file(&input.name))?);
        cache.insert(off, o);
        Ok(o)
    }

    /// Keeps one VAR/FUNC per global name (checking every other copy
    /// against it), rebuilds the DATASECs for `object`'s sections,
    /// translates the BTF.ext records its sections hold (type ids of the
    /// merged types, strings of the merged table), deduplicates, and adds
    /// `.BTF` and `.BTF.ext` to `object`. `out_index` names the output
    /// section of a [`Placement`] index.
    pub fn finish(
        self,
        res: Resolution,
        make_static: &HashSet<String>,
        out_index: impl Fn(usize) -> usize,
        object: &mut Object,
    ) -> Result<()> {
        let Merger {
            mut out,
            mut strings,
            ext_strings,
            ids,
            renamed,
            any,
            names,
            mut cands,
            map_vars,
            datasecs: ops,
            dropped,
            ..
        } = self;
        if !any {
            return Ok(());
        }
        // From here on, current ids.
        let cur = |id: TypeId| ids.get(id.0 as usize).copied().unwrap_or(TypeId::VOID);
        for c in &mut cands {
            c.2 = cur(c.2);
        }
        // Grouped by global, in input order.
        cands.sort_by_key(|c| c.0);
        let map_vars: HashSet<TypeId> = map_vars.into_iter().map(cur).collect();
        // DATASEC entries keep merged ids (static VARs never merge, see
        // `dedup_linked`, but each entry is its own either way).
        for (id, g) in renamed {
            let name = res.globals.get(g).map_or("", |g| g.name.as_str());
            let off = strings.add(name.as_bytes());
            if let Some(t) = out.get_mut(cur(id)) {
                t.name_off = off;
            }
        }
        let n = out.types.len();
        let mut drop = vec![false; n];
        for (i, t) in out.types.iter().enumerate() {
            if t.kind() == Kind::Datasec {
                drop[i] = true;
            }
        }
        let name_of = |i: usize| names.get(i).map_or("", String::as_str);

        // One VAR/FUNC per global name; every other copy aliases it.
        // alias[out id]: the kept copy (itself when kept); a table, not a
        // map, because every id of every output type goes through it.
        let mut alias: Vec<TypeId> = (0..n as u32).map(TypeId).collect();
        let mut defined_in: HashMap<TypeId, usize> = HashMap::new();
        // The checks read names: lend the merged types the string table.
        out.strings = std::mem::take(&mut strings.bytes);
        let mut rest = cands.as_slice();
        for (n, g) in res.globals.iter().enumerate() {
            let here = rest.partition_point(|c| c.0 as usize <= n);
            let mine: Vec<(usize, TypeId)> = rest[..here]
                .iter()
                .filter(|c| c.0 as usize == n)
                .map(|c| (c.1 as usize, c.2))
                .collect();
            rest = &rest[here..];
            let cands = mine.as_slice();
            let Some(&chosen) = g
                .def
                .and_then(|(di, _)| cands.iter().find(|c| c.0 == di))
                .or(cands.first())
            else {
                continue;
            };
            let (ci, cout) = chosen;
            let is_map = map_vars.contains(&cout);
            for &(i, o) in cands {
                if o == cout {
                    continue;
                }
                compat::check_compatible(
                    &g.name,
                    (name_of(ci), &out, cout),
                    (name_of(i), &out, o),
                    is_map,
                    g.def.is_some_and(|(di, _)| di == ci),
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
                        TypeData::Func { linkage, .. } if *linkage != 0 => {
                            *linkage = BTF_FUNC_GLOBAL
                        }
                        TypeData::Var { linkage, .. } if *linkage != BTF_VAR_STATIC => {
                            *linkage = BTF_VAR_GLOBAL_ALLOCATED
                        }
                        _ => {}
                    }
                }
            }
        }
        strings.bytes = std::mem::take(&mut out.strings);
        // Only the choices are needed from here on.
        // Copies of globals, whose entries are kept once (where defined).
        let global_copies: HashSet<TypeId> = cands.iter().map(|c| c.2).collect();
        std::mem::drop((res, cands, map_vars));
        let resolve = |id: TypeId| alias.get(id.0 as usize).copied().unwrap_or(id);

        // DATASECs for the output sections (and the loader's ephemeral ones).
        let new_datasecs = datasec::rebuild(
            ops,
            object,
            &out_index,
            cur,
            resolve,
            &defined_in,
            &global_copies,
            &mut strings,
        );

        // The VARs of dropped `license` copies, unless a kept entry names
        // the same type, and the DECL_TAGs on them.
        let listed: HashSet<TypeId> = new_datasecs
            .iter()
            .filter_map(|t| match &t.data {
                TypeData::Datasec { vars, .. } => Some(vars.iter().map(|v| v.type_id)),
                _ => None,
            })
            .flatten()
            .collect();
        for id in dropped {
            let id = resolve(cur(id));
            if !listed.contains(&id) {
                if let Some(d) = drop.get_mut(id.0 as usize) {
                    *d = true;
                }
            }
        }
        for (i, t) in out.types.iter().enumerate() {
            if let TypeData::DeclTag { target, .. } = &t.data {
                if drop.get(resolve(*target).0 as usize) == Some(&true) {
                    drop[i] = true;
                }
            }
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
        let old_types = std::mem::take(&mut out.types);
        let mut types = Vec::with_capacity(next as usize + new_datasecs.len());
        for (i, mut t) in old_types.into_iter().enumerate() {
            if i == 0 {
                types.push(t);
                continue;
            }
            if drop[i] {
                continue;
            }
            t.map_ids(final_id);
            types.push(t);
        }
        for mut t in new_datasecs {
            t.map_ids(final_id);
            types.push(t);
        }
        out.types = types;

        // BTF.ext records: their type ids were the merged ones.
        let has_ext = super::btf_ext::to_output_types(object, |id| final_id(cur(id)), &mut strings);
        out.strings = strings.bytes;
        // Deduplicate what the last inputs brought and what the merge made
        // equal (libbpf's rules, plus identical global VARs), then move the
        // BTF.ext records onto the surviving ids and strings, in place.
        // Static VARs stay apart: each is its own input's variable.
        let mut old_strings = Btf::new(out.endian);
        old_strings.strings = ext_strings.bytes;
        let d = crate::dedup::dedup_linked(out)?;
        let (mut btf, map) = (d.btf, d.map);
        // The records' strings are added to the table (held once: the
        // table's bytes become the BTF's at the end).
        let mut table = StringTable::from_btf(&btf);
        btf.strings = Vec::new();
        super::btf_ext::to_deduplicated(object, &map, &old_strings, &mut table)?;
        btf.strings = table.bytes;
        datasec::check_layout(&btf, object)?;
        object.btf = Some(btf);
        push_section(object, ".BTF", SectionKind::Btf);
        if has_ext {
            push_section(object, ".BTF.ext", SectionKind::BtfExt);
        }
        Ok(())
    }
}

fn push_section(object: &mut Object, name: &str, kind: SectionKind) {
    let id = SectionId(object.sections.len() as u32);
    object.sections.push(Section {
        sh_addralign: 4,
        ..Section::empty(id, name, kind, 1)
    });
}
