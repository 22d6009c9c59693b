//! The static linker: several objects in, one object out, with libbpf's
//! meaning (`bpftool gen object`) and without its dead weight.
//!
//! Two passes over the inputs, each holding one input at a time, so that
//! [`link_files`] needs memory for the output and one input, not for all
//! of them. The first feeds each input to a [`symbols::Resolver`], which
//! settles every global name. The second takes each input in turn:
//! [`pieces::cut`] splits its sections along symbol boundaries so losing
//! weak definitions can be dropped; `layout` appends what is kept to the
//! output sections; `emit_symbols`, `emit_relocations` and `move_ext` carry
//! symbols, relocations (fixing up addends that live in instruction
//! immediates) and BTF.ext records over; a [`btf::Merger`] appends its
//! type information. When linking files, code that is final waits in a
//! temporary file (`Spill`). `finish` then numbers the symbols and merges
//! the BTF.

pub mod btf;
pub mod compat;
pub mod component;
pub mod inline;
pub mod pieces;
pub mod symbols;

pub use component::{ComponentReport, LinkReport, Resolve};

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::btf::TypeId;
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
    /// Instructions moved to the spill file: `sec.insns` holds the ones
    /// after them.
    spilled: usize,
}

impl OutSec {
    fn insn_count(&self) -> usize {
        self.spilled + self.sec.insns.len()
    }

    /// Instruction slot `slot` of the section, which must not be spilled.
    fn insn_mut(&mut self, slot: usize) -> Result<&mut Insn> {
        let name = &self.sec.name;
        slot.checked_sub(self.spilled)
            .and_then(|k| self.sec.insns.get_mut(k))
            .ok_or_else(|| {
                Error::new(format!(
                    "section '{name}': instruction {slot} is not in memory (internal error)"
                ))
            })
    }
}

/// Code already final (an input's instructions, once the input is in)
/// waits in a temporary file until the link is done, so that the largest
/// part of the output is not in memory while the BTF is merged.
struct Spill {
    file: std::fs::File,
    /// (output section, instructions, file offset), in file order.
    chunks: Vec<(usize, usize, u64)>,
    /// Bytes written.
    len: u64,
}

impl crate::write::elf::SpilledCode for Spill {
    fn write_code(
        &mut self,
        index: usize,
        endian: crate::model::Endian,
        out: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        use std::io::{Read, Seek};
        // Object section `index` is output section `index - 1`.
        let Some(o) = index.checked_sub(1) else {
            return Ok(());
        };
        let mut buf = Vec::new();
        let mut encoded = Vec::new();
        for &(co, n, off) in &self.chunks {
            if co != o {
                continue;
            }
            self.file
                .seek(std::io::SeekFrom::Start(off))
                .map_err(Spill::io)?;
            buf.resize(n * SPILLED_INSN, 0);
            self.file.read_exact(&mut buf).map_err(Spill::io)?;
            encoded.clear();
            for b in buf.chunks_exact(SPILLED_INSN) {
                encoded
                    .extend_from_slice(&crate::write::insn::encode_slot(&Spill::decode(b), endian));
            }
            out(&encoded)?;
        }
        Ok(())
    }
}

/// Instructions kept in memory per output section before they are spilled.
const SPILL_AT: usize = 4096;
/// Bytes of one spilled instruction: code, dst, src, off, imm.
const SPILLED_INSN: usize = 9;

impl Spill {
    fn new() -> Result<Spill> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let err = |e: std::io::Error| {
            Error::new(format!(
                "cannot use a temporary file for the output's code: {e}"
            ))
        };
        let path = std::env::temp_dir().join(format!(
            ".bpfld-link-{}-{}.code",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(err)?;
        // Unlinked at once: the file goes away with the handle, whatever
        // happens to the link.
        std::fs::remove_file(&path).map_err(err)?;
        Ok(Spill {
            file,
            chunks: Vec::new(),
            len: 0,
        })
    }

    fn decode(b: &[u8]) -> Insn {
        let at = |k: usize| b.get(k).copied().unwrap_or(0);
        Insn {
            code: at(0),
            dst: at(1),
            src: at(2),
            off: i16::from_le_bytes([at(3), at(4)]),
            imm: i32::from_le_bytes([at(5), at(6), at(7), at(8)]),
        }
    }

    fn io(e: std::io::Error) -> Error {
        Error::new(format!("temporary file of the output's code: {e}"))
    }

    /// Moves the in-memory instructions of the code sections that hold
    /// enough of them to the file.
    fn spill(&mut self, outs: &mut [OutSec], all: bool) -> Result<()> {
        use std::io::Write;
        for (o, out) in outs.iter_mut().enumerate() {
            let n = out.sec.insns.len();
            if n == 0 || (!all && n < SPILL_AT) {
                continue;
            }
            let mut buf = Vec::with_capacity(n * SPILLED_INSN);
            for insn in &out.sec.insns {
                buf.push(insn.code);
                buf.push(insn.dst);
                buf.push(insn.src);
                buf.extend_from_slice(&insn.off.to_le_bytes());
                buf.extend_from_slice(&insn.imm.to_le_bytes());
            }
            self.file.write_all(&buf).map_err(Spill::io)?;
            self.chunks.push((o, n, self.len));
            self.len += buf.len() as u64;
            out.spilled += n;
            out.sec.insns.clear();
        }
        Ok(())
    }

    /// Puts every spilled instruction back in front of the ones in memory;
    /// `sections[o]` is output section `o`.
    fn restore(mut self, sections: &mut [&mut Section]) -> Result<()> {
        use std::io::{Read, Seek};
        let mut totals = vec![0usize; sections.len()];
        for &(o, n, _) in &self.chunks {
            if let Some(t) = totals.get_mut(o) {
                *t += n;
            }
        }
        let mut tails = Vec::with_capacity(sections.len());
        for (s, &t) in sections.iter_mut().zip(&totals) {
            let tail = std::mem::take(&mut s.insns);
            s.insns = Vec::with_capacity(t + tail.len());
            tails.push(tail);
        }
        self.file
            .seek(std::io::SeekFrom::Start(0))
            .map_err(Spill::io)?;
        let mut buf = Vec::new();
        for &(o, n, _) in &self.chunks {
            buf.resize(n * SPILLED_INSN, 0);
            self.file.read_exact(&mut buf).map_err(Spill::io)?;
            let Some(s) = sections.get_mut(o) else {
                crate::bail!("spilled code of output section {o}, which does not exist");
            };
            s.insns
                .extend(buf.chunks_exact(SPILLED_INSN).map(Spill::decode));
        }
        for (s, tail) in sections.iter_mut().zip(tails) {
            s.insns.extend(tail);
        }
        Ok(())
    }
}

/// Links `inputs` into one object.
pub fn link(inputs: &[Input], opts: &LinkOptions) -> Result<Object> {
    link_with(inputs, &[], opts).map(|l| l.object)
}

/// Whether an object has an extern that `aliases` renames.
fn has_aliases(input: &Input, aliases: &HashMap<String, String>) -> bool {
    !aliases.is_empty()
        && input
            .object
            .symbols
            .iter()
            .any(|s| s.is_extern() && aliases.contains_key(&s.name))
}

/// Renames the externs in `aliases` (an extern filled by the same function
/// as an earlier one takes that one's name) in an object and its BTF.
fn rename_aliases(input: &mut Input, aliases: &HashMap<String, String>) {
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
}

/// Where the linker gets an input from. It asks for each input twice (to
/// resolve symbols, then to copy it into the output) and holds one at a
/// time, so linking files needs memory for the output and one input rather
/// than for every input.
enum Source<'a> {
    Mem(&'a Input),
    /// A component, prepared with its own names.
    Owned(Box<Input>),
    /// A main input read up front (not a regular file: a pipe cannot be
    /// read twice).
    Held(Box<Input>),
    File(&'a Path),
}

impl Source<'_> {
    /// The input, with `aliases` applied to a main input (a component is
    /// prepared with its own names), and for a file a fingerprint of its
    /// bytes: both passes must see the same file.
    fn load(&self, aliases: &HashMap<String, String>) -> Result<(Cow<'_, Input>, u64)> {
        Ok(crate::read::workarounds::normalize_loaded(match self {
            Source::Mem(input) if has_aliases(input, aliases) => {
                let mut input = (*input).clone();
                rename_aliases(&mut input, aliases);
                (Cow::Owned(input), 0)
            }
            Source::Mem(input) => (Cow::Borrowed(*input), 0),
            Source::Owned(input) => (Cow::Borrowed(&**input), 0),
            Source::Held(input) if has_aliases(input, aliases) => {
                let mut input = (**input).clone();
                rename_aliases(&mut input, aliases);
                (Cow::Owned(input), 0)
            }
            Source::Held(input) => (Cow::Borrowed(&**input), 0),
            Source::File(path) => {
                let data = std::fs::read(path)
                    .map_err(|e| Error::new(format!("cannot read: {e}")).in_file(path.display()))?;
                let fingerprint = {
                    use std::hash::Hasher;
                    let mut h = crate::dedup::fxhash::FxHasher::default();
                    h.write(&data);
                    h.write_usize(data.len());
                    h.finish()
                };
                let mut input = Input {
                    name: path.display().to_string(),
                    object: crate::read::elf::parse(&data)
                        .map_err(|e| e.in_file(path.display()))?,
                };
                drop(data);
                if has_aliases(&input, aliases) {
                    rename_aliases(&mut input, aliases);
                }
                (Cow::Owned(input), fingerprint)
            }
        }))
    }
}

/// Links `inputs` with `components`, whose functions fill the externs
/// `opts.resolves` names; only what those functions need is pulled in.
pub fn link_with(inputs: &[Input], components: &[Input], opts: &LinkOptions) -> Result<Linked> {
    {
        let refs: Vec<&Input> = inputs.iter().collect();
        component::validate(&refs, components, &opts.resolves)?;
    }
    link_sources(
        inputs.iter().map(Source::Mem).collect(),
        components,
        opts,
        true,
    )
    .map(|l| l.0)
}

/// [`link_with`] reading the main inputs from `paths` (named by their
/// paths in errors) as it goes: each file is read twice, and only one is
/// held in memory at a time. With `opts.resolves`, which are checked
/// against every input's externs first, the inputs are read up front.
pub fn link_files(paths: &[PathBuf], components: &[Input], opts: &LinkOptions) -> Result<Linked> {
    if !opts.resolves.is_empty() {
        let mut inputs = Vec::with_capacity(paths.len());
        for path in paths {
            inputs.push(Input {
                name: path.display().to_string(),
                object: crate::read::elf::read_file(path)?,
            });
        }
        return link_with(&inputs, components, opts);
    }
    link_sources(file_sources(paths)?, components, opts, true).map(|l| l.0)
}

/// [`link_files`] writing the output to `output` (atomically, see
/// [`crate::write::elf::write_object_atomic`]): the output's code goes from
/// the linker's temporary file to `output` without coming back into memory.
pub fn link_files_to(
    paths: &[PathBuf],
    components: &[Input],
    opts: &LinkOptions,
    output: &Path,
) -> Result<LinkReport> {
    let writing = |e: Error| e.context(format!("writing {}", output.display()));
    if !opts.resolves.is_empty() {
        let linked = link_files(paths, components, opts)?;
        crate::write::elf::write_object_atomic(output, linked.object).map_err(writing)?;
        return Ok(linked.report);
    }
    let (linked, spill) = link_sources(file_sources(paths)?, components, opts, false)?;
    let mut spill = spill;
    let code = spill
        .as_mut()
        .map(|s| s as &mut dyn crate::write::elf::SpilledCode);
    crate::write::elf::write_object_atomic_with(output, linked.object, code).map_err(writing)?;
    Ok(linked.report)
}

/// Regular files are read when the link needs them; anything else (a
/// pipe, `<(...)`) once, up front.
fn file_sources(paths: &[PathBuf]) -> Result<Vec<Source<'_>>> {
    paths
        .iter()
        .map(|p| {
            if std::fs::metadata(p).is_ok_and(|m| m.is_file()) {
                Ok(Source::File(p.as_path()))
            } else {
                Ok(Source::Held(Box::new(Input {
                    name: p.display().to_string(),
                    object: crate::read::elf::read_file(p)?,
                })))
            }
        })
        .collect()
}

/// Links `sources`; with `restore` false, code that waited in a temporary
/// file is left there (and returned) rather than read back.
fn link_sources(
    mut sources: Vec<Source<'_>>,
    components: &[Input],
    opts: &LinkOptions,
    restore: bool,
) -> Result<(Linked, Option<Spill>)> {
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
    let shared: HashSet<String> = opts.shared_maps.iter().cloned().collect();
    let mut prepared = Vec::new();
    for &c in &order {
        let normal = crate::read::workarounds::normalize(Cow::Borrowed(&components[c]));
        let p = component::prepare(&normal, &targets[&c], &shared)?;
        prepared.push((sources.len(), p.roots.clone(), p.report.clone()));
        sources.push(Source::Owned(Box::new(p.input)));
    }
    let roots: HashSet<String> = prepared.iter().flat_map(|p| p.1.iter().cloned()).collect();
    let (object, kept_insns, spill) = link_inner(
        &sources,
        &aliases,
        opts,
        shared,
        &roots,
        |i| prepared.iter().find(|p| p.0 == i).map(|p| p.1.clone()),
        restore,
    )?;
    let mut report = LinkReport::default();
    for (i, _, mut r) in prepared {
        r.insns = kept_insns.get(i).copied().unwrap_or(0);
        // Only what was pulled in.
        let present: HashSet<&str> = object.symbols.iter().map(|s| s.name.as_str()).collect();
        r.functions.retain(|(_, to)| present.contains(to.as_str()));
        r.maps.retain(|(_, to)| present.contains(to.as_str()));
        r.globals.retain(|(_, to)| present.contains(to.as_str()));
        report.components.push(r);
    }
    let mut object = object;
    let mut spill = spill;
    // Without components there is nothing to inline (and the code may
    // still be in the linker's temporary file).
    if !opts.no_inline && !report.components.is_empty() {
        if let Some(spill) = spill.take() {
            let mut outs: Vec<&mut Section> = object.sections.iter_mut().skip(1).collect();
            spill.restore(&mut outs)?;
        }
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
    Ok((Linked { object, report }, spill))
}

/// Placeholder output indices of `license` and `version`, which follow
/// every concatenated section, whose number is known only at the end.
const SINGLE_OUT: [usize; 2] = [0xffff_fff0, 0xffff_fff1];

/// Output symbols are numbered only at the end (section symbols, then
/// locals, then globals); until then relocations name them by kind and
/// index in the top two bits.
const TAG_SECTION: u32 = 1 << 30;
const TAG_LOCAL: u32 = 2 << 30;
const TAG_GLOBAL: u32 = 3 << 30;
const TAG_MASK: u32 = 3 << 30;

fn tagged(tag: u32, index: usize) -> Result<SymbolId> {
    match u32::try_from(index) {
        Ok(n) if n < 1 << 30 => Ok(SymbolId(tag | n)),
        _ => crate::bail!("too many symbols in the output"),
    }
}

/// Everything the output gets from the inputs, filled one input at a time.
struct Out {
    secs: Vec<OutSec>,
    by_name: HashMap<String, usize>,
    /// `license` and `version` as kept: (input that brought it, section).
    single: [Option<(String, Section)>; 2],
    /// Local symbols, placed (placeholder output section indices).
    locals: Vec<Symbol>,
    /// Per global (as in the resolution): where its definition landed;
    /// `Some(None)` when it lies in no kept piece.
    def_place: Vec<Option<Option<(SymbolPlace, u64)>>>,
    /// Per input: the instructions of its kept code pieces.
    kept_insns: Vec<u64>,
    merger: btf::Merger,
    /// What every output section will hold at most, by name, from the
    /// first pass: reserved up front, so the output never grows by copying.
    sizes: HashMap<String, Sizes>,
    /// Where final code waits when linking files.
    spill: Option<Spill>,
}

/// Upper bounds of an output section's contents.
#[derive(Clone, Copy, Debug, Default)]
struct Sizes {
    insns: usize,
    relocs: usize,
    func_info: usize,
    line_info: usize,
    core_relos: usize,
}

impl Sizes {
    fn add(&mut self, s: &Section) {
        self.insns += s.insns.len();
        self.relocs += s.relocs.len();
        self.func_info += s.func_info.len();
        self.line_info += s.line_info.len();
        self.core_relos += s.core_relos.len();
    }
}

fn link_inner(
    sources: &[Source<'_>],
    aliases: &HashMap<String, String>,
    opts: &LinkOptions,
    mut shared: HashSet<String>,
    make_static: &HashSet<String>,
    component_roots: impl Fn(usize) -> Option<Vec<String>>,
    restore: bool,
) -> Result<(Object, Vec<u64>, Option<Spill>)> {
    if sources.is_empty() {
        crate::bail!("nothing to link: no input objects");
    }
    // First pass: what symbol resolution needs of each input.
    let mut first: Option<(crate::model::Endian, String)> = None;
    let mut resolver = symbols::Resolver::default();
    let mut fingerprints = Vec::with_capacity(sources.len());
    let mut mixed: Option<String> = None;
    let mut special = HashSet::new();
    let mut sizes: HashMap<String, Sizes> = HashMap::new();
    let mut locals = 0usize;
    for (i, src) in sources.iter().enumerate() {
        let (input, fingerprint) = src.load(aliases)?;
        fingerprints.push(fingerprint);
        match &first {
            None => first = Some((input.object.endian, input.name.clone())),
            Some((endian, name)) if *endian != input.object.endian && mixed.is_none() => {
                // Reported once every input has been read, as before
                // resolution.
                mixed = Some(format!(
                    "{}: byte order differs from {} (cannot link little- and big-endian objects)",
                    input.name, name
                ));
            }
            Some(_) => {}
        }
        // Maps pinned by name in any input are one map.
        for m in crate::show::maps::map_defs(&input.object).unwrap_or_default() {
            if m.pinning == 1 {
                shared.insert(m.name);
            }
        }
        btf::special_externs(&input, &mut special);
        resolver.add(i, &input);
        let component = component_roots(i).is_some();
        for s in input.object.sections.iter().filter(|s| is_concatenated(s)) {
            let name = if component && s.is_program() {
                ".text"
            } else {
                s.name.as_str()
            };
            match sizes.get_mut(name) {
                Some(t) => t.add(s),
                None => {
                    let mut t = Sizes::default();
                    t.add(s);
                    sizes.insert(name.to_string(), t);
                }
            }
        }
        locals += input
            .object
            .symbols
            .iter()
            .filter(|s| s.binding == Binding::Local)
            .count();
    }
    let Some((endian, _)) = first else {
        crate::bail!("nothing to link: no input objects");
    };
    if let Some(e) = mixed {
        crate::bail!("{e}");
    }
    let res = resolver.finish(&shared)?;
    let names = res.input_names.clone();
    if !opts.relocatable {
        check_unresolved(&names, &res, &special)?;
    }
    let is_component: Vec<bool> = (0..sources.len())
        .map(|i| component_roots(i).is_some())
        .collect();

    // Second pass: each input's kept pieces, symbols, relocations, BTF and
    // BTF.ext records go into the output, and the input is dropped.
    let mut out = Out {
        secs: Vec::new(),
        by_name: HashMap::new(),
        single: [None, None],
        locals: Vec::with_capacity(locals),
        def_place: vec![None; res.globals.len()],
        kept_insns: vec![0; sources.len()],
        merger: btf::Merger::new(endian),
        sizes,
        // Without a usable temporary directory, the code stays in memory.
        spill: if sources.iter().any(|s| matches!(s, Source::File(_))) {
            Spill::new().ok()
        } else {
            None
        },
    };
    for (i, src) in sources.iter().enumerate() {
        let (input, fingerprint) = src.load(aliases)?;
        if fingerprints.get(i) != Some(&fingerprint) {
            crate::bail!("{}: the file changed while it was being linked", input.name);
        }
        add_input(
            i,
            &input,
            &res,
            is_component[i],
            component_roots(i),
            &mut out,
        )?;
        // This input's instructions are final.
        if let Some(spill) = &mut out.spill {
            spill.spill(&mut out.secs, false)?;
        }
    }
    finish(
        out,
        res,
        &names,
        endian,
        make_static,
        &is_component,
        restore,
    )
}

/// Copies input `i` into the output.
fn add_input(
    i: usize,
    input: &Input,
    res: &Resolution,
    is_component: bool,
    roots: Option<Vec<String>>,
    out: &mut Out,
) -> Result<()> {
    // Cut, and mark what is dropped: the bodies of losing weak definitions.
    let mut cuts: HashMap<SectionId, Vec<pieces::Piece>> = HashMap::new();
    for s in input.object.sections.iter().filter(|s| is_concatenated(s)) {
        let mut ps = pieces::cut(&input.object, s.id);
        for p in &mut ps {
            if let Some(owner) = p.owner {
                if res.is_loser(i, owner) {
                    p.keep = false;
                }
            }
        }
        cuts.insert(s.id, ps);
    }
    if let Some(roots) = roots {
        component::pull_in(&input.object, &roots, &mut cuts);
    }
    out.kept_insns[i] = cuts
        .iter()
        .filter(|(sid, _)| input.object.section(**sid).is_some_and(|s| s.is_program()))
        .flat_map(|(_, ps)| ps.iter().filter(|p| p.keep))
        .map(|p| (p.end - p.start) / 8)
        .sum();

    let mut placement = Placement::default();
    layout(i, input, &cuts, is_component, out, &mut placement)?;
    if !is_component {
        single_sections(i, input, out, &mut placement)?;
    }
    let sym_map = emit_symbols(i, input, res, &placement, out)?;
    emit_relocations(i, input, &placement, &sym_map, &mut out.secs)?;
    let types = out.merger.add(i, input, res, &placement)?;
    move_ext(i, input, &placement, &types, out)
}

/// Numbers the symbols, puts `license` and `version` after the other
/// sections, and merges the BTF.
fn finish(
    out: Out,
    res: Resolution,
    names: &[String],
    endian: crate::model::Endian,
    make_static: &HashSet<String>,
    is_component: &[bool],
    restore: bool,
) -> Result<(Object, Vec<u64>, Option<Spill>)> {
    let Out {
        mut secs,
        single,
        locals,
        def_place,
        kept_insns,
        merger,
        spill,
        ..
    } = out;
    let nconcat = secs.len();
    let mut single_at = [usize::MAX; 2];
    for (k, s) in single.into_iter().enumerate() {
        if let Some((_, sec)) = s {
            single_at[k] = secs.len();
            secs.push(OutSec {
                size: sec.data.len() as u64,
                sec,
                spilled: 0,
            });
        }
    }
    let out_index = |o: usize| match SINGLE_OUT.iter().position(|&p| p == o) {
        Some(k) => single_at[k],
        None => o,
    };
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
    for (o, s) in secs.iter().enumerate().take(nconcat) {
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
                    ..s.symbol(&g.name)
                }
            }
            _ => {
                // Still an extern: keep the first declaration's shape.
                let s = g
                    .decl
                    .as_ref()
                    .ok_or_else(|| Error::new(format!("symbol '{}' has no declaration", g.name)))?;
                Symbol {
                    visibility: if g.hidden {
                        Visibility::Hidden
                    } else {
                        s.visibility
                    },
                    ..s.symbol(&g.name)
                }
            }
        };
        let id = SymbolId(symbols.len() as u32);
        global_ids[n] = Some(id);
        symbols.push(Symbol { id, ..sym });
    }
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

    let mut sections: Vec<Section> = Vec::with_capacity(secs.len() + 3);
    sections.push(null_section());
    for (n, o) in secs.into_iter().enumerate() {
        let count = o.insn_count();
        let mut sec = o.sec;
        sec.id = SectionId(n as u32 + 1);
        if sec.kind == SectionKind::Bss {
            sec.sh_size = o.size;
        } else if sec.kind == SectionKind::Program {
            sec.sh_size = count as u64 * 8;
        } else {
            sec.sh_size = sec.data.len() as u64;
        }
        sections.push(sec);
    }
    let mut object = Object {
        endian,
        sections,
        symbols,
        btf: None,
        btf_ext_raw: None,
    };
    merger.finish(res, make_static, out_index, &mut object)?;
    // The code comes back once the BTF is done (or goes from the file to
    // the output).
    match spill {
        Some(spill) if restore => {
            let mut outs: Vec<&mut Section> =
                object.sections.iter_mut().skip(1).take(nconcat).collect();
            spill.restore(&mut outs)?;
            Ok((object, kept_insns, None))
        }
        spill => Ok((object, kept_insns, spill)),
    }
}

fn null_section() -> Section {
    Section {
        sh_addralign: 0,
        ..Section::empty(SectionId(0), "", SectionKind::Null, 0)
    }
}

fn check_unresolved(
    names: &[String],
    res: &Resolution,
    special: &std::collections::HashSet<String>,
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

/// Appends the kept pieces of input `i`'s concatenated sections to the
/// output sections of their names (made on first sight, in input order),
/// each input's chunk aligned to its own alignment.
fn layout(
    i: usize,
    input: &Input,
    cuts: &HashMap<SectionId, Vec<pieces::Piece>>,
    is_component: bool,
    out: &mut Out,
    placement: &mut Placement,
) -> Result<()> {
    let (outs, by_name, sizes, spill) = (&mut out.secs, &mut out.by_name, &out.sizes, &out.spill);
    for s in input.object.sections.iter().filter(|s| is_concatenated(s)) {
        let Some(ps) = cuts.get(&s.id) else {
            continue;
        };
        // A component's code is called, not attached: it goes to .text,
        // the only code section libbpf accepts calls into.
        let out_name = if is_component && s.is_program() {
            ".text".to_string()
        } else {
            s.name.clone()
        };
        if is_component && ps.iter().all(|p| !p.keep) {
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
                let sec = Section {
                    id: s.id,
                    name: out_name.clone(),
                    kind: s.kind,
                    sh_type: s.sh_type,
                    sh_flags: s.sh_flags,
                    sh_addralign: 1,
                    sh_size: s.sh_size,
                    sh_link: s.sh_link,
                    sh_info: s.sh_info,
                    sh_entsize: s.sh_entsize,
                    ..Section::empty(s.id, &out_name, s.kind, s.sh_type)
                };
                let mut sec = sec;
                if let Some(t) = sizes.get(&out_name) {
                    if spill.is_none() {
                        sec.insns.reserve_exact(t.insns);
                    }
                    sec.relocs.reserve_exact(t.relocs);
                    sec.func_info.reserve_exact(t.func_info);
                    sec.line_info.reserve_exact(t.line_info);
                    sec.core_relos.reserve_exact(t.core_relos);
                }
                outs.push(OutSec {
                    sec,
                    size: 0,
                    spilled: 0,
                });
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
                    out.size = out.insn_count() as u64 * 8;
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
    Ok(())
}

fn pad_to(out: &mut OutSec, at: u64, kind: SectionKind) {
    match kind {
        SectionKind::Bss => out.size = out.size.max(at),
        SectionKind::Program => {
            // Code chunks are whole instructions; `at` is a multiple of 8.
            while (out.insn_count() as u64) * 8 < at {
                out.sec.insns.push(Insn::default());
            }
            out.size = out.insn_count() as u64 * 8;
        }
        _ => {
            out.sec.data.resize(at as usize, 0);
            out.size = at;
        }
    }
}

/// `license` and `version`: kept once; inputs that disagree are an error.
/// Every copy maps onto the one kept, so their symbols (`_license`)
/// resolve to it.
fn single_sections(
    i: usize,
    input: &Input,
    out: &mut Out,
    placement: &mut Placement,
) -> Result<()> {
    for (k, kind) in [SectionKind::License, SectionKind::Version]
        .into_iter()
        .enumerate()
    {
        for s in input.object.sections.iter().filter(|s| s.kind == kind) {
            placement.add(
                i,
                s.id,
                Placed {
                    start: 0,
                    end: s.data.len() as u64,
                    out_sec: SINGLE_OUT[k],
                    out_off: 0,
                },
            );
            match &out.single[k] {
                None => {
                    let mut sec = s.clone();
                    sec.relocs.clear();
                    out.single[k] = Some((input.name.clone(), sec));
                }
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
    Ok(())
}

/// Input `i`'s symbols as output symbols (tagged, see [`TAG_LOCAL`]):
/// locals are added to the output, and where a global definition landed
/// is recorded.
fn emit_symbols(
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

fn is_call(insn: &Insn) -> bool {
    insn.code == BPF_JMP_CALL
}

/// Carries input `i`'s relocations over, and re-targets calls and
/// addresses whose addend lives in the instruction's immediate.
fn emit_relocations(
    i: usize,
    input: &Input,
    placement: &Placement,
    sym_map: &HashMap<SymbolId, SymbolId>,
    outs: &mut [OutSec],
) -> Result<()> {
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
                let insn = *outs[o].insn_mut(slot)?;
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
                outs[o].insn_mut(slot)?.imm = new_imm;
                if SINGLE_OUT.contains(&to) {
                    crate::bail!("{}: target section has no section symbol", at(r.offset));
                }
                outs[o].sec.relocs.push(Reloc {
                    offset: off,
                    kind: r.kind,
                    symbol: tagged(TAG_SECTION, to)?,
                });
                continue;
            }
            let Some(&new_sym) = sym_map.get(&r.symbol) else {
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
            fix_local_calls(input, i, s, placement, &relocated, outs)?;
        }
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
                    outs[o].insn_mut(new_slot as usize)?.imm = (t - new_slot - 1) as i32;
                } else {
                    outs[o].insn_mut(new_slot as usize)?.imm = (t - 1) as i32;
                    if SINGLE_OUT.contains(&to) {
                        crate::bail!(
                            "{}: section '{}': call target section has no section symbol",
                            input.name,
                            s.name
                        );
                    }
                    outs[o].sec.relocs.push(Reloc {
                        offset: off,
                        kind: RelocKind::Bpf64_32,
                        symbol: tagged(TAG_SECTION, to)?,
                    });
                }
            }
        }
        slot += width;
    }
    Ok(())
}

/// Moves input `i`'s func_info, line_info and CO-RE records with their
/// instructions, their types and strings translated to the merged BTF's
/// (`types` maps the input's type ids).
fn move_ext(
    i: usize,
    input: &Input,
    placement: &Placement,
    types: &[TypeId],
    out: &mut Out,
) -> Result<()> {
    let ty = |id: u32| types.get(id as usize).copied().unwrap_or(TypeId::VOID).0;
    let mut cache = HashMap::new();
    for s in input.object.sections.iter().filter(|s| s.is_program()) {
        let map = |insn: InsnIndex| {
            placement
                .map(i, s.id, u64::from(insn.0) * 8)
                .map(|(o, off)| (o, InsnIndex((off / 8) as u32)))
        };
        for r in &s.func_info {
            if let Some((o, insn)) = map(r.insn) {
                out.secs[o].sec.func_info.push(FuncInfo {
                    insn,
                    type_id: ty(r.type_id),
                });
            }
        }
        for r in &s.line_info {
            if let Some((o, insn)) = map(r.insn) {
                let file_name_off = out.merger.string(input, r.file_name_off, &mut cache)?;
                let line_off = out.merger.string(input, r.line_off, &mut cache)?;
                out.secs[o].sec.line_info.push(LineInfo {
                    insn,
                    file_name_off,
                    line_off,
                    ..*r
                });
            }
        }
        for r in &s.core_relos {
            if let Some((o, insn)) = map(r.insn) {
                let access_str_off = out.merger.string(input, r.access_str_off, &mut cache)?;
                out.secs[o].sec.core_relos.push(CoreRelo {
                    insn,
                    type_id: ty(r.type_id),
                    access_str_off,
                    ..*r
                });
            }
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures")
            .join(name)
    }

    /// Fixture sets with externs both ways, a weak definition before the
    /// strong one (link_a's `weak_policy`), maps, variables and statics.
    const SETS: &[&[&str]] = &[
        &["link_a.o", "link_b.o"],
        &["link_b.o", "link_a.o"],
        &["lnk_fn_a.o", "lnk_fn_b.o"],
        &["lnk_vars_use.o", "lnk_vars_def.o"],
        &["lnk_maps_use.o", "lnk_maps_def.o"],
        &["lnk_static_a.o", "lnk_static_b.o"],
    ];

    fn paths(set: &[&str]) -> Vec<PathBuf> {
        set.iter().map(|n| fixture(n)).collect()
    }

    fn linked_bytes(set: &[&str]) -> Vec<u8> {
        let linked = link_files(&paths(set), &[], &LinkOptions::default()).unwrap();
        crate::write::elf::to_bytes(&linked.object).unwrap()
    }

    #[test]
    fn files_memory_and_direct_output_give_the_same_bytes() {
        for set in SETS {
            let from_files = linked_bytes(set);
            let inputs: Vec<Input> = paths(set)
                .iter()
                .map(|p| Input {
                    name: p.display().to_string(),
                    object: crate::read::elf::read_file(p).unwrap(),
                })
                .collect();
            let in_memory = link(&inputs, &LinkOptions::default()).unwrap();
            assert!(
                crate::write::elf::to_bytes(&in_memory).unwrap() == from_files,
                "{set:?}: link_files and link differ"
            );
            // The code goes from the temporary file straight to the output.
            let dir = std::env::temp_dir().join(format!("bpfld-link-test-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let out = dir.join(format!("{}.o", set.join("+")));
            link_files_to(&paths(set), &[], &LinkOptions::default(), &out).unwrap();
            let written = std::fs::read(&out).unwrap();
            std::fs::remove_file(&out).unwrap();
            assert!(written == from_files, "{set:?}: link_files_to differs");
            let _ = std::fs::remove_dir(&dir);
        }
    }

    #[test]
    fn a_pipe_is_read_once() {
        // `bpfld link -o out <(...) b.o`: a pipe cannot be read twice.
        let dir = std::env::temp_dir().join(format!("bpfld-pipe-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("a.o");
        let _ = std::fs::remove_file(&fifo);
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("no mkfifo; skipped");
            return;
        }
        let bytes = std::fs::read(fixture("lnk_fn_a.o")).unwrap();
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(fifo, bytes).unwrap())
        };
        let set = [fifo.clone(), fixture("lnk_fn_b.o")];
        let linked = link_files(&set, &[], &LinkOptions::default()).unwrap();
        writer.join().unwrap();
        std::fs::remove_file(&fifo).unwrap();
        let _ = std::fs::remove_dir(&dir);
        let got = crate::write::elf::to_bytes(&linked.object).unwrap();
        // The same as the regular files, but for the name in errors.
        assert!(got == linked_bytes(&["lnk_fn_a.o", "lnk_fn_b.o"]));
    }

    #[test]
    fn deduplicating_while_merging_changes_nothing() {
        for set in SETS {
            let once = linked_bytes(set);
            btf::TEST_MIN_DEDUP.with(|c| c.set(Some(1)));
            let every_input = linked_bytes(set);
            btf::TEST_MIN_DEDUP.with(|c| c.set(None));
            assert!(
                once == every_input,
                "{set:?}: output depends on when BTF is deduplicated"
            );
        }
    }

    #[test]
    fn spilled_code_is_written_back_in_order() {
        // More code than one spill chunk holds, in two code sections, read
        // back into memory and streamed to a file: the same instructions.
        let mut spill = Spill::new().unwrap();
        let insn = |k: usize| Insn {
            code: (k % 251) as u8,
            dst: (k % 11) as u8,
            src: (k % 7) as u8,
            off: k as i16,
            imm: -(k as i32),
        };
        let mut outs: Vec<OutSec> = (0..2)
            .map(|n| OutSec {
                sec: Section::empty(SectionId(n), "x", SectionKind::Program, 1),
                size: 0,
                spilled: 0,
            })
            .collect();
        let total = SPILL_AT * 3 + 5;
        for k in 0..total {
            outs[k % 2].sec.insns.push(insn(k));
            if k % 1000 == 999 {
                spill.spill(&mut outs, false).unwrap();
            }
        }
        assert!(outs.iter().all(|o| o.spilled > 0), "nothing was spilled");
        let want: Vec<Vec<Insn>> = (0..2)
            .map(|n| (0..total).filter(|k| k % 2 == n).map(insn).collect())
            .collect();
        let mut streamed = Vec::new();
        crate::write::elf::SpilledCode::write_code(
            &mut spill,
            1,
            crate::model::Endian::Little,
            &mut |b| {
                streamed.extend_from_slice(b);
                Ok(())
            },
        )
        .unwrap();
        let head = &want[0][..outs[0].spilled];
        assert_eq!(
            streamed,
            crate::write::insn::encode(head, crate::model::Endian::Little)
        );
        let mut secs: Vec<Section> = outs.into_iter().map(|o| o.sec).collect();
        let mut refs: Vec<&mut Section> = secs.iter_mut().collect();
        spill.restore(&mut refs).unwrap();
        for (s, w) in secs.iter().zip(&want) {
            assert_eq!(&s.insns, w);
        }
    }

    #[test]
    fn btf_ext_written_in_pieces_matches_from_sections() {
        for set in SETS {
            let obj = link_files(&paths(set), &[], &LinkOptions::default())
                .unwrap()
                .object;
            let btf = obj.btf.as_ref().unwrap();
            let whole = crate::write::btf_ext::from_sections(&obj, btf).unwrap();
            let mut pieces = Vec::new();
            crate::write::btf_ext::write_from_sections(&obj, btf, &mut |b| {
                pieces.extend_from_slice(b);
                Ok(())
            })
            .unwrap();
            assert!(!whole.is_empty());
            assert!(pieces == whole, "{set:?}: .BTF.ext bytes differ");
        }
    }
}
