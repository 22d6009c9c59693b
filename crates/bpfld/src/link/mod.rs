//! The static linker: several objects in, one object out, with libbpf's
//! meaning (`bpftool gen object`) and without its dead weight.
//!
//! The passes, in the order the driver below runs them, one file each:
//!
//! 1. `resolve.rs`: `--resolve EXTERN=FILE:FUNCTION` checked and grouped
//!    per component instance; `isolate.rs` renames each instance's
//!    globals (`counter` becomes `counter__slot0`) so it merges with
//!    nothing by accident.
//! 2. First pass over the inputs (`input.rs` loads them and checks their
//!    byte order): `symbols.rs` settles every global name (strong beats
//!    weak, two strong are an error, unresolved externs are an error
//!    unless `--relocatable`; a later input's `license` and `version`
//!    symbols go with its copy of the section).
//! 3. Second pass, one input at a time: `pieces.rs` cuts its sections
//!    along symbol boundaries so losing weak definitions (and, for a
//!    component, what its resolved functions do not reach) are dropped;
//!    `sections.rs` appends the kept pieces to the output sections;
//!    `symtab.rs` carries its symbols over, `relocations.rs` its
//!    relocations (moving addends that live in instruction immediates);
//!    `btf.rs` appends its types and `datasec.rs` records its DATASEC
//!    entries; `btf_ext.rs` moves its func_info, line_info and CO-RE
//!    records. Code that is final waits in a temporary file (`spill.rs`)
//!    when linking files.
//! 4. Finish: `symtab.rs` numbers the symbols, `sections.rs` puts
//!    `license` and `version` last, `btf.rs` keeps one VAR/FUNC per
//!    global (checking each copy with `compat.rs`), `datasec.rs` rebuilds
//!    the DATASECs (and checks their layout), the types are deduplicated
//!    (static VARs kept apart: each is its own input's variable) and
//!    `btf_ext.rs` moves the records onto them.
//! 5. `inline/` replaces calls to resolved functions by their bodies,
//!    `limits.rs` checks every program against the kernel's limits (maps,
//!    instructions, stack), and `report.rs` (what each extern resolved
//!    to, what came with it, what was inlined) is stored in the output.
//!
//! Both passes hold one input at a time, so [`link_files`] needs memory
//! for the output and one input, not for all of them. Map definitions
//! and the C spelling of types (for errors) come from the model.

pub(crate) mod btf;
pub(crate) mod btf_ext;
pub(crate) mod compat;
pub(crate) mod datasec;
// The inlining pass on its own is public only with the `internals`
// feature (see lib.rs); users turn it on and off with
// `LinkOptions::no_inline`.
#[cfg(feature = "internals")]
#[allow(missing_docs)]
pub mod inline;
#[cfg(not(feature = "internals"))]
pub(crate) mod inline;
pub(crate) mod input;
pub(crate) mod isolate;
pub mod limits;
pub(crate) mod optimize;
pub(crate) mod pieces;
pub(crate) mod relocations;
pub(crate) mod report;
pub(crate) mod resolve;
pub(crate) mod sections;
pub(crate) mod spill;
pub(crate) mod symbols;
pub(crate) mod symtab;
#[cfg(test)]
mod tests;

pub use input::Input;
pub use isolate::own_data_name;
pub use report::{
    CalledJson, ComponentJson, ComponentReport, InlinedJson, Inlining, InsnCounts, LinkReport,
    RenameJson, ResolveJson, LINKMAP_SECTION,
};
pub use resolve::Resolve;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::object::{Object, Section, SectionId, SectionKind, Symbol, SymbolPlace};

use input::Source;
use pieces::Placement;
use sections::{OutSec, Sizes};
use spill::Spill;
use symbols::Resolution;

/// How [`link`] and friends link: the link's options, as fields or
/// built up:
///
/// ```
/// use bpfld::link::LinkOptions;
///
/// let opts = LinkOptions::default()
///     .resolve("slot0", 0, "xdp_count")
///     .share("config")
///     .inline(false);
/// assert_eq!(opts.resolves[0].function, "xdp_count");
/// assert_eq!(opts.shared_maps, ["config"]);
/// assert!(opts.no_inline && !opts.relocatable);
/// ```
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
    /// Leave inlined code as inlining left it, without the optimisation
    /// pass across it (`link/optimize/`; on by default).
    pub no_optimize: bool,
}

impl LinkOptions {
    /// These options with extern `extern_name` filled by `function` of
    /// component `component` (an index into the components).
    #[must_use]
    pub fn resolve(
        mut self,
        extern_name: impl Into<String>,
        component: usize,
        function: impl Into<String>,
    ) -> Self {
        self.resolves.push(Resolve {
            extern_name: extern_name.into(),
            component,
            function: function.into(),
        });
        self
    }

    /// These options with map `name` shared by the components and the
    /// main inputs.
    #[must_use]
    pub fn share(mut self, name: impl Into<String>) -> Self {
        self.shared_maps.push(name.into());
        self
    }

    /// These options with resolved functions inlined (the default) or
    /// kept as calls.
    #[must_use]
    pub fn inline(mut self, inline: bool) -> Self {
        self.no_inline = !inline;
        self
    }

    /// These options with the optimisation pass over inlined code on (the
    /// default) or off.
    #[must_use]
    pub fn optimize(mut self, optimize: bool) -> Self {
        self.no_optimize = !optimize;
        self
    }

    /// These options allowing unresolved externs (a partial link) or not.
    #[must_use]
    pub fn relocatable(mut self, relocatable: bool) -> Self {
        self.relocatable = relocatable;
        self
    }
}

/// A linked object and the report of what went into it.
#[derive(Clone, Debug)]
pub struct Linked {
    /// The linked object.
    pub object: Object,
    /// What each component contributed.
    pub report: LinkReport,
}

/// Links `inputs` into one object.
pub fn link(inputs: &[Input], opts: &LinkOptions) -> Result<Object> {
    link_with(inputs, &[], opts).map(|l| l.object)
}

/// Links `inputs` with `components`, whose functions fill the externs
/// `opts.resolves` names; only what those functions need is pulled in.
pub fn link_with(inputs: &[Input], components: &[Input], opts: &LinkOptions) -> Result<Linked> {
    {
        let refs: Vec<&Input> = inputs.iter().collect();
        resolve::validate(&refs, components, &opts.resolves)?;
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
    link_sources(input::file_sources(paths)?, components, opts, true).map(|l| l.0)
}

/// [`link_files`] writing the output to `output` atomically (a temporary
/// file in the same directory, then a rename, as [`crate::write_atomic`]
/// does): the output's code goes from the linker's temporary file to
/// `output`. (It is read back once, to be
/// checked against the kernel's limits, see [`limits`].)
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
    let (linked, spill) = link_sources(input::file_sources(paths)?, components, opts, false)?;
    let mut spill = spill;
    let code = spill
        .as_mut()
        .map(|s| s as &mut dyn crate::write::elf::SpilledCode);
    crate::write::elf::write_object_atomic_with(output, linked.object, code).map_err(writing)?;
    Ok(linked.report)
}

/// The in-memory form of [`link_with`]: objects as bytes in, the linked
/// object's bytes out, ready for a loader such as `aya::Ebpf::load`.
/// `inputs` and `components` are (name for errors, bytes) pairs;
/// `opts.resolves` index into `components`.
///
/// ```
/// use bpfld::link::{link_bytes, LinkOptions};
/// use bpfld::Object;
///
/// // A dispatcher whose `extern int slot0(struct xdp_md *)` (and slot1,
/// // slot2) are filled by functions of two components.
/// let dispatcher = include_bytes!("../../../../fixtures/res_dispatcher.o");
/// let count = include_bytes!("../../../../fixtures/comp_count.o");
/// let mark = include_bytes!("../../../../fixtures/comp_mark.o");
/// let opts = LinkOptions::default()
///     .resolve("slot0", 0, "xdp_count")
///     .resolve("slot1", 1, "xdp_mark")
///     .resolve("slot2", 1, "mark_verdict");
/// let bytes = link_bytes(
///     &[("res_dispatcher.o", dispatcher)],
///     &[("comp_count.o", count), ("comp_mark.o", mark)],
///     &opts,
/// )?;
/// let linked = Object::parse(&bytes)?;
/// // Each component instance keeps its own map, renamed after its label.
/// assert!(linked.symbols.iter().any(|s| s.name == "counter__slot0"));
/// assert!(!linked.symbols.iter().any(|s| s.is_extern() && s.name.starts_with("slot")));
/// # Ok::<(), bpfld::Error>(())
/// ```
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

/// The pipeline: components isolated, the inputs linked, resolved
/// functions inlined, the kernel's limits checked, the report stored.
/// With `restore` false, code waits in a temporary file until the link
/// is done (the limits need it back, so the returned file is always
/// `None` today; writers still take one).
fn link_sources(
    mut sources: Vec<Source<'_>>,
    components: &[Input],
    opts: &LinkOptions,
    restore: bool,
) -> Result<(Linked, Option<Spill>)> {
    let plan = resolve::plan(&opts.resolves);
    let shared: HashSet<String> = opts.shared_maps.iter().cloned().collect();
    // Each component instance becomes one more input, after the main ones.
    let mut instances = Vec::new();
    for (c, targets) in &plan.instances {
        let normal = input::normalize(Cow::Borrowed(&components[*c]));
        let p = isolate::prepare(&normal, targets, &shared)?;
        instances.push((sources.len(), p.roots, p.report));
        sources.push(Source::Owned(Box::new(p.input)));
    }
    let roots: HashSet<String> = instances.iter().flat_map(|p| p.1.iter().cloned()).collect();
    let (mut object, kept_insns, mut spill) = link_inputs(
        &sources,
        &plan.aliases,
        opts,
        shared,
        &roots,
        |i| instances.iter().find(|p| p.0 == i).map(|p| p.1.clone()),
        restore,
    )?;
    check_shared_maps(&opts.shared_maps, &object, components)?;
    let mut report = LinkReport::from_instances(
        instances
            .into_iter()
            .map(|(i, _, r)| (r, kept_insns.get(i).copied().unwrap_or(0))),
        &object,
    );
    // The kernel's limits are checked on all of the code: what waits in
    // the linker's temporary file comes back first.
    if let Some(spill) = spill.take() {
        let mut outs: Vec<&mut Section> = object.sections.iter_mut().skip(1).collect();
        spill.restore(&mut outs)?;
    }
    // Without components there is nothing to inline.
    if !opts.no_inline && !report.components.is_empty() {
        let (outcomes, optimized) = inline::inline_and_optimize(
            &mut object,
            &report.resolved_functions(),
            !opts.no_optimize,
        );
        report.add_inlining(&outcomes);
        if let Some(o) = optimized {
            report.add_optimization(&o);
        }
    }
    limits::check(&object, &report)?;
    if !report.components.is_empty() {
        report.embed(&mut object)?;
    }
    Ok((Linked { object, report }, spill))
}

/// Each `--share NAME` must name a map that the output or a component
/// declares: a misspelt name would otherwise leave the maps apart without
/// a word.
fn check_shared_maps(names: &[String], out: &Object, components: &[Input]) -> Result<()> {
    let maps = |obj: &Object| -> Vec<String> {
        obj.symbols
            .iter()
            .filter(|s| match s.place {
                SymbolPlace::Section(id) => obj.section(id).is_some_and(|sec| {
                    matches!(sec.kind, SectionKind::Maps | SectionKind::LegacyMaps)
                }),
                _ => false,
            })
            .map(|s| s.name.clone())
            .collect()
    };
    let mut known: Vec<String> = maps(out);
    for c in components {
        known.extend(maps(&c.object));
    }
    for name in names {
        if !known.contains(name) {
            known.sort();
            known.dedup();
            return Err(Error::new(format!(
                "--share {name}: no input or component has a map of that name (maps: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    Ok(())
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

/// The two passes over `sources` and the finish: returns the object, the
/// instructions each input brought, and the temporary code file when
/// `restore` is false.
fn link_inputs(
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
    let mut byte_order = input::ByteOrder::default();
    let mut resolver = symbols::Resolver::default();
    let mut fingerprints = Vec::with_capacity(sources.len());
    let mut special = HashSet::new();
    let mut sizes: HashMap<String, Sizes> = HashMap::new();
    let mut locals = 0usize;
    for (i, src) in sources.iter().enumerate() {
        let (input, fingerprint) = src.load(aliases)?;
        fingerprints.push(fingerprint);
        byte_order.see(&input);
        // Maps pinned by name in any input are one map.
        shared.extend(crate::model::map_def::pinned_by_name(&input.object));
        btf::special_externs(&input, &mut special);
        resolver.add(i, &input);
        Sizes::add_input(&mut sizes, &input, component_roots(i).is_some());
        locals += symtab::local_count(&input);
    }
    let endian = byte_order.finish()?;
    let res = resolver.finish(&shared)?;
    let names = res.input_names.clone();
    if !opts.relocatable {
        symbols::check_unresolved(&names, &res, &special)?;
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

/// The second pass for input `i`: its kept pieces, symbols, relocations,
/// types and BTF.ext records go into the output.
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
    for s in input
        .object
        .sections
        .iter()
        .filter(|s| sections::is_concatenated(s))
    {
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
        resolve::pull_in(&input.object, &roots, &mut cuts);
    }
    out.kept_insns[i] = cuts
        .iter()
        .filter(|(sid, _)| input.object.section(**sid).is_some_and(|s| s.is_program()))
        .flat_map(|(_, ps)| ps.iter().filter(|p| p.keep))
        .map(|p| (p.end - p.start) / 8)
        .sum();

    let mut placement = Placement::default();
    sections::layout(i, input, &cuts, is_component, out, &mut placement)?;
    if !is_component {
        sections::single_sections(i, input, out, &mut placement)?;
    }
    let sym_map = symtab::emit_symbols(i, input, res, &placement, out)?;
    relocations::emit_relocations(i, input, &placement, &sym_map, &mut out.secs)?;
    let types = out.merger.add(i, input, res, &placement)?;
    btf_ext::move_ext(i, input, &placement, &types, out)
}

/// Numbers the symbols, puts `license` and `version` after the other
/// sections, and merges the BTF; the code comes back from the temporary
/// file last (with `restore`).
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
    let singles = sections::append_singles(&mut secs, single);
    let (symbols, global_ids) = symtab::number(
        &secs[..nconcat],
        locals,
        &res,
        &def_place,
        names,
        is_component,
        |o| singles.out_index(o),
    )?;
    symtab::untag_relocations(&mut secs, nconcat, &global_ids, &res)?;
    let mut object = Object {
        endian,
        sections: sections::assemble(secs),
        symbols,
        btf: None,
        btf_ext_raw: None,
    };
    merger.finish(res, make_static, |o| singles.out_index(o), &mut object)?;
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
