//! The static linker: several objects in, one object out, with libbpf's
//! meaning (`bpftool gen object`) and without its dead weight.
//!
//! The passes, in order: [`symbols::resolve`] settles every global name;
//! [`pieces::cut`] splits input sections along symbol boundaries so losing
//! weak definitions can be dropped; `layout` concatenates what is kept
//! section by section; `emit_symbols`, `emit_relocations` and `move_ext`
//! carry symbols, relocations (fixing up addends that live in instruction
//! immediates) and BTF.ext records over; `btf` merges the type
//! information.

pub mod btf;
pub mod compat;
pub mod component;
pub mod inline;
pub mod pieces;
pub mod symbols;

pub use component::{ComponentReport, LinkReport, Resolve};

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use crate::error::{Error, Result};
use crate::model::btf_ext::{CoreRelo, FuncInfo, LineInfo};
use crate::model::insn::{Insn, InsnIndex};
use crate::model::object::{
    Binding, Object, Reloc, RelocKind, Section, SectionId, SectionKind, Symbol, SymbolId,
    SymbolKind, SymbolPlace, Visibility,
};

use pieces::{Placed, Placement};
use symbols::Resolution;

/// One object to link, with the name errors use for it.
#[derive(Clone, Debug)]
pub struct Input {
    pub name: String,
    pub object: Object,
}

#[derive(Clone, Debug, Default)]
pub struct LinkOptions {
    /// Allow unresolved extern functions and variables (a partial link
    /// whose output is linked again later).
    pub relocatable: bool,
    /// Externs filled by functions of components.
    pub resolves: Vec<Resolve>,
    /// Maps that components share with each other and with the main
    /// inputs, by name (maps pinned by name are always shared).
    pub shared_maps: Vec<String>,
    /// Keep calls to resolved functions as calls instead of inlining
    /// their bodies into the callers (inlining is the default).
    pub no_inline: bool,
}

/// A linked object and the report of what went into it.
#[derive(Clone, Debug)]
pub struct Linked {
    pub object: Object,
    pub report: LinkReport,
}

const BPF_JMP_CALL: u8 = 0x85;
const BPF_LD_IMM64: u8 = 0x18;
const BPF_PSEUDO_CALL: u8 = 1;
const BPF_PSEUDO_FUNC: u8 = 4;

/// Whether the linker copies a section of this kind into the output by
/// concatenation.
fn is_concatenated(s: &Section) -> bool {
    match s.kind {
        SectionKind::Program
        | SectionKind::Data
        | SectionKind::Rodata
        | SectionKind::Bss
        | SectionKind::Maps
        | SectionKind::LegacyMaps => true,
        SectionKind::Other => {
            s.sh_type == 1 /* SHT_PROGBITS */
                && !s.name.starts_with(".debug")
                && s.name != component::LINKMAP_SECTION
        }
        _ => false,
    }
}

/// An output section being built.
struct OutSec {
    sec: Section,
    /// Bytes so far (for NOBITS: the size).
    size: u64,
}

/// Links `inputs` into one object.
pub fn link(inputs: &[Input], opts: &LinkOptions) -> Result<Object> {
    link_with(inputs, &[], opts).map(|l| l.object)
}

/// Renames the externs in `aliases` (an extern filled by the same function
/// as an earlier one takes that one's name) in an object and its BTF; the
/// object is copied only when it has such an extern.
fn apply_aliases<'a>(input: &'a Input, aliases: &HashMap<String, String>) -> Cow<'a, Input> {
    let touched = input
        .object
        .symbols
        .iter()
        .any(|s| s.is_extern() && aliases.contains_key(&s.name));
    if !touched {
        return Cow::Borrowed(input);
    }
    let mut input = input.clone();
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
    Cow::Owned(input)
}

/// Links `inputs` with `components`, whose functions fill the externs
/// `opts.resolves` names; only what those functions need is pulled in.
pub fn link_with(inputs: &[Input], components: &[Input], opts: &LinkOptions) -> Result<Linked> {
    {
        let refs: Vec<&Input> = inputs.iter().collect();
        component::validate(&refs, components, &opts.resolves)?;
    }
    // Per component, in command-line order: (function, externs it fills).
    let mut order: Vec<usize> = Vec::new();
    let mut targets: HashMap<usize, Vec<(String, Vec<String>)>> = HashMap::new();
    for r in &opts.resolves {
        if !order.contains(&r.component) {
            order.push(r.component);
        }
        let t = targets.entry(r.component).or_default();
        match t.iter_mut().find(|(f, _)| *f == r.function) {
            Some((_, ex)) => ex.push(r.extern_name.clone()),
            None => t.push((r.function.clone(), vec![r.extern_name.clone()])),
        }
    }
    let mut aliases: HashMap<String, String> = HashMap::new();
    for t in targets.values() {
        for (_, ex) in t {
            for e in &ex[1..] {
                aliases.insert(e.clone(), ex[0].clone());
            }
        }
    }
    let mut shared: HashSet<String> = opts.shared_maps.iter().cloned().collect();
    let mut all: Vec<Cow<Input>> = inputs.iter().map(|i| apply_aliases(i, &aliases)).collect();
    let mut prepared = Vec::new();
    for &c in &order {
        let p = component::prepare(&components[c], &targets[&c], &shared)?;
        prepared.push((all.len(), p.roots.clone(), p.report.clone()));
        all.push(Cow::Owned(p.input));
    }
    let all: Vec<&Input> = all.iter().map(|c| c.as_ref()).collect();
    // Maps pinned by name in any input are one map.
    for input in &all {
        for m in crate::show::maps::map_defs(&input.object).unwrap_or_default() {
            if m.pinning == 1 {
                shared.insert(m.name);
            }
        }
    }
    let roots: HashSet<String> = prepared.iter().flat_map(|p| p.1.iter().cloned()).collect();
    let (object, cuts) = link_inner(&all, opts, &shared, &roots, |i| {
        prepared.iter().find(|p| p.0 == i).map(|p| p.1.clone())
    })?;
    let mut report = LinkReport::default();
    for (i, _, mut r) in prepared {
        r.insns = cuts
            .iter()
            .filter(|((ci, sid), _)| {
                *ci == i && all[i].object.section(*sid).is_some_and(|s| s.is_program())
            })
            .flat_map(|(_, ps)| ps.iter().filter(|p| p.keep))
            .map(|p| (p.end - p.start) / 8)
            .sum();
        // Only what was pulled in.
        let present: HashSet<&str> = object.symbols.iter().map(|s| s.name.as_str()).collect();
        r.functions.retain(|(_, to)| present.contains(to.as_str()));
        r.maps.retain(|(_, to)| present.contains(to.as_str()));
        r.globals.retain(|(_, to)| present.contains(to.as_str()));
        report.components.push(r);
    }
    let mut object = object;
    if !opts.no_inline {
        // A function filling several externs carries the first one's name.
        let primaries = |c: &ComponentReport| -> Vec<String> {
            let mut seen = HashSet::new();
            c.resolved
                .iter()
                .filter(|(_, f)| seen.insert(f.clone()))
                .map(|(e, _)| e.clone())
                .collect()
        };
        let names: Vec<String> = report.components.iter().flat_map(primaries).collect();
        let outcomes = inline::inline_functions(&mut object, &names);
        for c in &mut report.components {
            for e in primaries(c) {
                if let Some(o) = outcomes.iter().find(|o| o.function == e) {
                    c.inlining.push(component::Inlining::from(o));
                }
            }
        }
    }
    if !report.components.is_empty() {
        report.embed(&mut object)?;
    }
    Ok(Linked { object, report })
}

/// Every input section's pieces, kept or dropped.
type Cuts = HashMap<(usize, SectionId), Vec<pieces::Piece>>;

fn link_inner(
    inputs: &[&Input],
    opts: &LinkOptions,
    shared: &HashSet<String>,
    make_static: &HashSet<String>,
    component_roots: impl Fn(usize) -> Option<Vec<String>>,
) -> Result<(Object, Cuts)> {
    let Some(first) = inputs.first() else {
        crate::bail!("nothing to link: no input objects");
    };
    let endian = first.object.endian;
    for input in inputs {
        if input.object.endian != endian {
            crate::bail!(
                "{}: byte order differs from {} (cannot link little- and big-endian objects)",
                input.name,
                first.name
            );
        }
    }

    let res = symbols::resolve(inputs, shared)?;
    let special = btf::special_externs(inputs);
    if !opts.relocatable {
        check_unresolved(inputs, &res, &special)?;
    }

    // Cut and mark what is dropped: the bodies of losing weak definitions.
    let mut cuts: HashMap<(usize, SectionId), Vec<pieces::Piece>> = HashMap::new();
    for (i, input) in inputs.iter().enumerate() {
        for s in input.object.sections.iter().filter(|s| is_concatenated(s)) {
            let mut ps = pieces::cut(&input.object, s.id);
            for p in &mut ps {
                if let Some(owner) = p.owner {
                    if res.is_loser(i, owner) {
                        p.keep = false;
                    }
                }
            }
            cuts.insert((i, s.id), ps);
        }
        if let Some(roots) = component_roots(i) {
            let mut mine: HashMap<SectionId, Vec<pieces::Piece>> = input
                .object
                .sections
                .iter()
                .filter_map(|s| cuts.remove(&(i, s.id)).map(|ps| (s.id, ps)))
                .collect();
            component::pull_in(&input.object, &roots, &mut mine);
            for (sid, ps) in mine {
                cuts.insert((i, sid), ps);
            }
        }
    }
    let is_component: Vec<bool> = (0..inputs.len())
        .map(|i| component_roots(i).is_some())
        .collect();

    let (mut outs, mut placement) = layout(inputs, &cuts, &is_component)?;

    single_sections(inputs, &mut outs, &mut placement, &is_component)?;

    let sym_map = emit_symbols(inputs, &res, &placement, &outs, &is_component)?;
    let mut symbols = sym_map.symbols;

    emit_relocations(
        inputs,
        &placement,
        &sym_map.map,
        &sym_map.section_syms,
        &mut outs,
    )?;
    let moved = move_ext(inputs, &placement);

    let mut sections: Vec<Section> = Vec::with_capacity(outs.len() + 1);
    sections.push(null_section());
    for (n, o) in outs.into_iter().enumerate() {
        let mut sec = o.sec;
        sec.id = SectionId(n as u32 + 1);
        if sec.kind == SectionKind::Bss {
            sec.sh_size = o.size;
        } else if sec.kind == SectionKind::Program {
            sec.sh_size = sec.insns.len() as u64 * 8;
        } else {
            sec.sh_size = sec.data.len() as u64;
        }
        sections.push(sec);
    }
    // Section symbols point at output indices (+1 for the null section).
    for s in &mut symbols {
        if let SymbolPlace::Section(id) = s.place {
            s.place = SymbolPlace::Section(SectionId(id.0 + 1));
        }
    }

    let mut object = Object {
        endian,
        sections,
        symbols,
        btf: None,
        btf_ext_raw: None,
    };
    btf::merge(inputs, &res, &placement, moved, make_static, &mut object)?;
    Ok((object, cuts))
}

fn null_section() -> Section {
    Section {
        sh_addralign: 0,
        ..Section::empty(SectionId(0), "", SectionKind::Null, 0)
    }
}

fn check_unresolved(
    inputs: &[&Input],
    res: &Resolution,
    special: &std::collections::HashSet<String>,
) -> Result<()> {
    let mut missing = Vec::new();
    for g in &res.globals {
        if g.def.is_some() || special.contains(&g.name) {
            continue;
        }
        // A weak extern may stay unresolved; the loader sees zero.
        let all_weak = g.wanted_by.iter().all(|&i| {
            inputs[i]
                .object
                .symbols
                .iter()
                .filter(|s| s.name == g.name && s.place == SymbolPlace::Undefined)
                .all(|s| s.binding == Binding::Weak)
        });
        if all_weak {
            continue;
        }
        let who: Vec<&str> = g
            .wanted_by
            .iter()
            .map(|&i| inputs[i].name.as_str())
            .collect();
        let called = g.wanted_by.iter().any(|&i| {
            let obj = &inputs[i].object;
            obj.sections.iter().flat_map(|s| &s.relocs).any(|r| {
                r.kind == RelocKind::Bpf64_32
                    && obj.symbol(r.symbol).is_some_and(|s| s.name == g.name)
            })
        });
        let kind = if called { SymbolKind::Func } else { g.kind };
        missing.push(format!(
            "{} '{}' (needed by {})",
            symbols::kind_word(kind),
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

/// Concatenates the kept pieces of every concatenated section, by name in
/// input order, each input's chunk aligned to its own alignment.
fn layout(
    inputs: &[&Input],
    cuts: &HashMap<(usize, SectionId), Vec<pieces::Piece>>,
    is_component: &[bool],
) -> Result<(Vec<OutSec>, Placement)> {
    let mut outs: Vec<OutSec> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut placement = Placement::default();
    for (i, input) in inputs.iter().enumerate() {
        for s in input.object.sections.iter().filter(|s| is_concatenated(s)) {
            let ps = &cuts[&(i, s.id)];
            // A component's code is called, not attached: it goes to .text,
            // the only code section libbpf accepts calls into.
            let out_name = if is_component[i] && s.is_program() {
                ".text".to_string()
            } else {
                s.name.clone()
            };
            if is_component[i] && ps.iter().all(|p| !p.keep) {
                continue;
            }
            let o = match by_name.get(&out_name) {
                Some(&o) => {
                    let out = &outs[o].sec;
                    if out.sh_type != s.sh_type || out.kind != s.kind {
                        crate::bail!(
                            "{}: section '{}' has type {} but an earlier input's section of that name has type {}",
                            input.name,
                            s.name,
                            s.sh_type,
                            out.sh_type
                        );
                    }
                    o
                }
                None => {
                    let mut sec = s.clone();
                    sec.name = out_name.clone();
                    sec.data.clear();
                    sec.insns.clear();
                    sec.relocs.clear();
                    sec.func_info.clear();
                    sec.line_info.clear();
                    sec.core_relos.clear();
                    sec.sh_addralign = 1;
                    outs.push(OutSec { sec, size: 0 });
                    by_name.insert(out_name.clone(), outs.len() - 1);
                    outs.len() - 1
                }
            };
            let out = &mut outs[o];
            let align = s.sh_addralign.max(1);
            if !align.is_power_of_two() {
                crate::bail!(
                    "{}: section '{}': alignment {align} is not a power of two",
                    input.name,
                    s.name
                );
            }
            out.sec.sh_addralign = out.sec.sh_addralign.max(align);
            let is_code = s.kind == SectionKind::Program;
            let chunk = out.size.next_multiple_of(if is_code { 8 } else { align });
            pad_to(out, chunk, s.kind);
            for p in ps.iter().filter(|p| p.keep) {
                // Keep each piece's alignment within the chunk: the largest
                // power of two dividing its original offset, up to the
                // section's alignment.
                let piece_align = if p.start == 0 {
                    align
                } else {
                    (1u64 << p.start.trailing_zeros()).min(align)
                };
                let at = out
                    .size
                    .next_multiple_of(piece_align.max(if is_code { 8 } else { 1 }));
                pad_to(out, at, s.kind);
                match s.kind {
                    SectionKind::Bss => out.size += p.end - p.start,
                    SectionKind::Program => {
                        let (a, b) = ((p.start / 8) as usize, (p.end / 8) as usize);
                        out.sec
                            .insns
                            .extend_from_slice(&s.insns[a..b.min(s.insns.len())]);
                        out.size = out.sec.insns.len() as u64 * 8;
                    }
                    _ => {
                        let (a, b) = (p.start as usize, p.end as usize);
                        out.sec
                            .data
                            .extend_from_slice(&s.data[a..b.min(s.data.len())]);
                        out.size = out.sec.data.len() as u64;
                    }
                }
                placement.add(
                    i,
                    s.id,
                    Placed {
                        start: p.start,
                        end: p.end,
                        out_sec: o,
                        out_off: at,
                    },
                );
            }
            if ps.iter().all(|p| !p.keep) || ps.is_empty() {
                // Even an empty chunk places its start, for symbols at 0.
                placement.add(
                    i,
                    s.id,
                    Placed {
                        start: 0,
                        end: 0,
                        out_sec: o,
                        out_off: chunk,
                    },
                );
            }
        }
    }
    Ok((outs, placement))
}

fn pad_to(out: &mut OutSec, at: u64, kind: SectionKind) {
    match kind {
        SectionKind::Bss => out.size = out.size.max(at),
        SectionKind::Program => {
            // Code chunks are whole instructions; `at` is a multiple of 8.
            while (out.sec.insns.len() as u64) * 8 < at {
                out.sec.insns.push(Insn::default());
            }
            out.size = out.sec.insns.len() as u64 * 8;
        }
        _ => {
            out.sec.data.resize(at as usize, 0);
            out.size = at;
        }
    }
}

/// `license` and `version`: kept once; inputs that disagree are an error.
fn single_sections(
    inputs: &[&Input],
    outs: &mut Vec<OutSec>,
    placement: &mut Placement,
    is_component: &[bool],
) -> Result<()> {
    for kind in [SectionKind::License, SectionKind::Version] {
        let mut first: Option<(&str, &Section)> = None;
        let o = outs.len();
        for (i, input) in inputs.iter().enumerate() {
            if is_component[i] {
                continue; // the main inputs' license governs
            }
            for s in input.object.sections.iter().filter(|s| s.kind == kind) {
                // Every copy maps onto the one kept, so their symbols
                // (`_license`) resolve to it.
                placement.add(
                    i,
                    s.id,
                    Placed {
                        start: 0,
                        end: s.data.len() as u64,
                        out_sec: o,
                        out_off: 0,
                    },
                );
                match first {
                    None => first = Some((&input.name, s)),
                    Some((name, f)) => {
                        let trim = |d: &[u8]| -> Vec<u8> {
                            let end = d.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
                            d[..end].to_vec()
                        };
                        if trim(&f.data) != trim(&s.data) {
                            crate::bail!(
                                "section '{}' differs: {} has {:?} but {} has {:?}",
                                s.name,
                                name,
                                String::from_utf8_lossy(&trim(&f.data)),
                                input.name,
                                String::from_utf8_lossy(&trim(&s.data))
                            );
                        }
                    }
                }
            }
        }
        if let Some((_, s)) = first {
            let mut sec = s.clone();
            sec.relocs.clear();
            outs.push(OutSec {
                size: sec.data.len() as u64,
                sec,
            });
        }
    }
    Ok(())
}

struct SymbolMap {
    symbols: Vec<Symbol>,
    /// (input, input symbol) → output symbol.
    map: HashMap<(usize, SymbolId), SymbolId>,
    /// Output section index → its STT_SECTION symbol.
    section_syms: HashMap<usize, SymbolId>,
}

fn emit_symbols(
    inputs: &[&Input],
    res: &Resolution,
    placement: &Placement,
    outs: &[OutSec],
    is_component: &[bool],
) -> Result<SymbolMap> {
    let mut symbols = vec![Symbol {
        id: SymbolId(0),
        name: String::new(),
        binding: Binding::Local,
        visibility: Visibility::Default,
        kind: SymbolKind::NoType,
        place: SymbolPlace::Undefined,
        value: 0,
        size: 0,
        st_other: 0,
    }];
    let push = |symbols: &mut Vec<Symbol>, mut s: Symbol| -> SymbolId {
        let id = SymbolId(symbols.len() as u32);
        s.id = id;
        symbols.push(s);
        id
    };
    let mut section_syms = HashMap::new();
    for (o, out) in outs.iter().enumerate() {
        if matches!(out.sec.kind, SectionKind::License | SectionKind::Version) {
            continue;
        }
        let id = push(
            &mut symbols,
            Symbol {
                id: SymbolId(0),
                name: out.sec.name.clone(),
                binding: Binding::Local,
                visibility: Visibility::Default,
                kind: SymbolKind::Section,
                place: SymbolPlace::Section(SectionId(o as u32)),
                value: 0,
                size: 0,
                st_other: 0,
            },
        );
        section_syms.insert(o, id);
    }

    let mut map = HashMap::new();
    let place_of = |i: usize, s: &Symbol| -> Option<(SymbolPlace, u64)> {
        match s.place {
            SymbolPlace::Section(id) => placement
                .map_symbol(i, id, s.value, s.size)
                .map(|(o, off)| (SymbolPlace::Section(SectionId(o as u32)), off)),
            other => Some((other, s.value)),
        }
    };
    // Locals, input by input.
    for (i, input) in inputs.iter().enumerate() {
        for s in &input.object.symbols {
            if s.id.0 == 0 || s.binding != Binding::Local || s.kind == SymbolKind::File {
                continue;
            }
            if s.kind == SymbolKind::Section {
                if let SymbolPlace::Section(id) = s.place {
                    if let Some((o, _)) = placement.map(i, id, 0) {
                        if let Some(&sym) = section_syms.get(&o) {
                            map.insert((i, s.id), sym);
                        }
                    }
                }
                continue;
            }
            let Some((place, value)) = place_of(i, s) else {
                continue; // in a dropped piece
            };
            let id = push(
                &mut symbols,
                Symbol {
                    place,
                    value,
                    ..s.clone()
                },
            );
            map.insert((i, s.id), id);
        }
    }
    // Globals, in first-seen order.
    let mut global_ids: HashMap<&str, SymbolId> = HashMap::new();
    for g in &res.globals {
        let sym = match g.def {
            Some((i, sid)) => {
                let s = &inputs[i].object.symbols[sid.0 as usize];
                let Some((place, value)) = place_of(i, s) else {
                    if is_component[i] {
                        continue; // not pulled in
                    }
                    crate::bail!(
                        "{}: symbol '{}' lies outside the sections that are linked",
                        inputs[i].name,
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
                    place,
                    value,
                    ..s.clone()
                }
            }
            None => {
                // Still an extern: keep the first declaration's shape.
                let s = g
                    .wanted_by
                    .iter()
                    .find_map(|&i| {
                        inputs[i]
                            .object
                            .symbols
                            .iter()
                            .find(|s| s.name == g.name && s.place == SymbolPlace::Undefined)
                    })
                    .ok_or_else(|| Error::new(format!("symbol '{}' has no declaration", g.name)))?;
                Symbol {
                    visibility: if g.hidden {
                        Visibility::Hidden
                    } else {
                        s.visibility
                    },
                    ..s.clone()
                }
            }
        };
        global_ids.insert(g.name.as_str(), push(&mut symbols, sym));
    }
    for (i, input) in inputs.iter().enumerate() {
        for s in input.object.symbols.iter().filter(|s| {
            s.id.0 != 0
                && s.binding != Binding::Local
                && !matches!(s.kind, SymbolKind::Section | SymbolKind::File)
        }) {
            if let Some(&id) = global_ids.get(s.name.as_str()) {
                map.insert((i, s.id), id);
            }
        }
    }
    Ok(SymbolMap {
        symbols,
        map,
        section_syms,
    })
}

fn is_call(insn: &Insn) -> bool {
    insn.code == BPF_JMP_CALL
}

/// Carries relocations over, and re-targets calls and addresses whose
/// addend lives in the instruction's immediate.
fn emit_relocations(
    inputs: &[&Input],
    placement: &Placement,
    sym_map: &HashMap<(usize, SymbolId), SymbolId>,
    section_syms: &HashMap<usize, SymbolId>,
    outs: &mut [OutSec],
) -> Result<()> {
    for (i, input) in inputs.iter().enumerate() {
        let obj = &input.object;
        for s in obj.sections.iter().filter(|s| is_concatenated(s)) {
            let at = |off: u64| format!("{}: section '{}' offset {off:#x}", input.name, s.name);
            let is_code = s.kind == SectionKind::Program;
            let mut relocated = std::collections::HashSet::new();
            for r in &s.relocs {
                let Some((o, off)) = placement.map(i, s.id, r.offset) else {
                    continue; // the piece was dropped
                };
                relocated.insert(r.offset / 8);
                let sym = obj.symbol(r.symbol).ok_or_else(|| {
                    Error::new(format!(
                        "{}: relocation against missing symbol {}",
                        at(r.offset),
                        r.symbol.0
                    ))
                })?;
                if sym.kind == SymbolKind::Section {
                    if !is_code {
                        crate::bail!(
                            "{}: relocation against section symbol '{}' outside code is not supported",
                            at(r.offset),
                            sym.name
                        );
                    }
                    let SymbolPlace::Section(target_sec) = sym.place else {
                        crate::bail!("{}: section symbol without a section", at(r.offset));
                    };
                    let slot = (off / 8) as usize;
                    let insn = outs[o].sec.insns[slot];
                    let sym_off = sym.value as i64;
                    // Where the instruction points inside the target section.
                    let (target, kind) = if is_call(&insn) {
                        (sym_off + (i64::from(insn.imm) + 1) * 8, 0)
                    } else if insn.code == BPF_LD_IMM64 && insn.src == BPF_PSEUDO_FUNC {
                        (sym_off + (i64::from(insn.imm) / 8 + 1) * 8, 1)
                    } else if insn.code == BPF_LD_IMM64 {
                        (sym_off + i64::from(insn.imm as u32), 2)
                    } else {
                        crate::bail!(
                            "{}: relocation {} against section '{}' on an instruction that is neither a call nor ld_imm64",
                            at(r.offset),
                            r.kind.name(),
                            sym.name
                        );
                    };
                    let Some((to, toff)) = u64::try_from(target)
                        .ok()
                        .and_then(|t| placement.map(i, target_sec, t))
                    else {
                        crate::bail!(
                            "{}: refers to offset {target:#x} of section '{}', which is not linked",
                            at(r.offset),
                            sym.name
                        );
                    };
                    let new_imm = match kind {
                        0 => (toff / 8) as i64 - 1,
                        1 => ((toff / 8) as i64 - 1) * 8,
                        _ => toff as i64,
                    };
                    let Ok(new_imm) = i32::try_from(new_imm) else {
                        crate::bail!("{}: target offset overflows the immediate", at(r.offset));
                    };
                    outs[o].sec.insns[slot].imm = new_imm;
                    let Some(&symbol) = section_syms.get(&to) else {
                        crate::bail!("{}: target section has no section symbol", at(r.offset));
                    };
                    outs[o].sec.relocs.push(Reloc {
                        offset: off,
                        kind: r.kind,
                        symbol,
                    });
                    continue;
                }
                let Some(&new_sym) = sym_map.get(&(i, r.symbol)) else {
                    // A local symbol in a dropped piece.
                    crate::bail!(
                        "{}: relocation against '{}', which is not linked",
                        at(r.offset),
                        sym.name
                    );
                };
                outs[o].sec.relocs.push(Reloc {
                    offset: off,
                    kind: r.kind,
                    symbol: new_sym,
                });
            }
            if is_code {
                fix_local_calls(input, i, s, placement, &relocated, section_syms, outs)?;
            }
        }
    }
    for out in outs.iter_mut() {
        out.sec.relocs.sort_by_key(|r| r.offset);
    }
    Ok(())
}

/// Calls to a function of the same section carry no relocation: their
/// immediate is relative to the call. Re-target them after the move.
fn fix_local_calls(
    input: &Input,
    i: usize,
    s: &Section,
    placement: &Placement,
    relocated: &std::collections::HashSet<u64>,
    section_syms: &HashMap<usize, SymbolId>,
    outs: &mut [OutSec],
) -> Result<()> {
    let mut slot = 0usize;
    while slot < s.insns.len() {
        let insn = s.insns[slot];
        let width = if insn.code == BPF_LD_IMM64 { 2 } else { 1 };
        if is_call(&insn) && insn.src == BPF_PSEUDO_CALL && !relocated.contains(&(slot as u64)) {
            if let Some((o, off)) = placement.map(i, s.id, slot as u64 * 8) {
                let target = slot as i64 + i64::from(insn.imm) + 1;
                let Some((to, toff)) = u64::try_from(target)
                    .ok()
                    .and_then(|t| placement.map(i, s.id, t * 8))
                else {
                    crate::bail!(
                        "{}: section '{}' instruction {slot}: call to instruction {target}, which is not linked",
                        input.name,
                        s.name
                    );
                };
                let new_slot = (off / 8) as i64;
                let t = (toff / 8) as i64;
                if to == o {
                    outs[o].sec.insns[new_slot as usize].imm = (t - new_slot - 1) as i32;
                } else {
                    outs[o].sec.insns[new_slot as usize].imm = (t - 1) as i32;
                    let Some(&symbol) = section_syms.get(&to) else {
                        crate::bail!(
                            "{}: section '{}': call target section has no section symbol",
                            input.name,
                            s.name
                        );
                    };
                    outs[o].sec.relocs.push(Reloc {
                        offset: off,
                        kind: RelocKind::Bpf64_32,
                        symbol,
                    });
                }
            }
        }
        slot += width;
    }
    Ok(())
}

/// BTF.ext records moved with their instructions, still naming types and
/// strings of their input's BTF; the BTF merge translates those.
#[derive(Debug, Default)]
pub struct MovedExt {
    /// (input, output section index in the object, record).
    pub func_info: Vec<(usize, usize, FuncInfo)>,
    pub line_info: Vec<(usize, usize, LineInfo)>,
    pub core_relos: Vec<(usize, usize, CoreRelo)>,
}

/// Moves func_info, line_info and CO-RE records with their instructions.
fn move_ext(inputs: &[&Input], placement: &Placement) -> MovedExt {
    let mut moved = MovedExt::default();
    for (i, input) in inputs.iter().enumerate() {
        for s in input.object.sections.iter().filter(|s| s.is_program()) {
            // Output section indices are shifted by one for the null section.
            let map = |insn: InsnIndex| {
                placement
                    .map(i, s.id, u64::from(insn.0) * 8)
                    .map(|(o, off)| (o + 1, InsnIndex((off / 8) as u32)))
            };
            for r in &s.func_info {
                if let Some((o, insn)) = map(r.insn) {
                    moved.func_info.push((i, o, FuncInfo { insn, ..*r }));
                }
            }
            for r in &s.line_info {
                if let Some((o, insn)) = map(r.insn) {
                    moved.line_info.push((i, o, LineInfo { insn, ..*r }));
                }
            }
            for r in &s.core_relos {
                if let Some((o, insn)) = map(r.insn) {
                    moved.core_relos.push((i, o, CoreRelo { insn, ..*r }));
                }
            }
        }
    }
    moved
}

/// The in-memory form of [`link_with`]: objects as bytes in, the linked
/// object's bytes out, ready for a loader such as `aya::Ebpf::load`.
/// `inputs` and `components` are (name for errors, bytes) pairs;
/// `opts.resolves` index into `components`.
pub fn link_bytes(
    inputs: &[(&str, &[u8])],
    components: &[(&str, &[u8])],
    opts: &LinkOptions,
) -> Result<Vec<u8>> {
    let read = |list: &[(&str, &[u8])]| -> Result<Vec<Input>> {
        list.iter()
            .map(|(name, bytes)| {
                Ok(Input {
                    name: name.to_string(),
                    object: crate::read::elf::parse(bytes).map_err(|e| e.in_file(name))?,
                })
            })
            .collect()
    };
    let linked = link_with(&read(inputs)?, &read(components)?, opts)?;
    crate::write::elf::to_bytes(&linked.object)
}
