//! What `link --json` and `xdp compose --json` print: one JSON vocabulary
//! with `xdp attach` and `xdp status` (a component is `index`, `file`,
//! `program`, `priority`, `chain` as action names, `slot`; a pinned map is
//! `name`, `path`, `created`).

use std::path::{Path, PathBuf};

use serde::Serialize;

use bpfld::compose::{Composed, Placed};
use bpfld::link::{CalledJson, ComponentJson, InlinedJson, LinkReport, RenameJson};
use bpfld::model::object::{Object, SymbolPlace};

/// `bpfld link --json`.
#[derive(Serialize)]
pub(crate) struct LinkJson {
    output: String,
    relocatable: bool,
    /// The main inputs, in link order.
    inputs: Vec<InputJson>,
    /// Each component instance `--resolve` pulled from.
    components: Vec<ComponentJson>,
    /// The inlined code's instructions before and after the optimisation
    /// pass, in all (`null` when it did not run).
    optimized: Option<bpfld::link::InsnCounts>,
    /// The output's programs with what they take of the kernel's limits
    /// (instructions, maps, stack).
    programs: Vec<bpfld::link::limits::ProgramSize>,
    /// The warnings printed on standard error (`FILE: what`).
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct InputJson {
    index: usize,
    file: String,
}

impl LinkJson {
    pub(crate) fn new(
        output: &Path,
        relocatable: bool,
        inputs: &[PathBuf],
        report: &LinkReport,
        linked: &Object,
    ) -> LinkJson {
        LinkJson {
            output: output.display().to_string(),
            relocatable,
            inputs: inputs
                .iter()
                .enumerate()
                .map(|(index, f)| InputJson {
                    index,
                    file: f.display().to_string(),
                })
                .collect(),
            components: report.json(),
            optimized: report.optimized,
            programs: bpfld::link::limits::programs(linked),
            warnings: bpfld::warnings_given(),
        }
    }
}

/// `bpfld xdp compose --json`.
#[derive(Serialize)]
pub(crate) struct ComposeJson {
    output: String,
    /// The composition's program (`bpfld_xdp`) and its section.
    program: &'static str,
    section: String,
    /// Whether it takes multi-buffer packets (`xdp.frags`).
    frags: bool,
    /// The components that keep it from `xdp.frags`.
    without_frags: Vec<ProgramJson>,
    /// In run order, each with what it brought into the composition.
    components: Vec<ComposedJson>,
    /// The composed program's inlined instructions before and after the
    /// optimisation pass (`null` when it did not run).
    optimized: Option<bpfld::link::InsnCounts>,
    /// Components after one that never continues the chain: never run.
    left_out: Vec<ProgramJson>,
    /// The composition's program with what it takes of the kernel's
    /// limits (instructions, maps, stack).
    programs: Vec<bpfld::link::limits::ProgramSize>,
    /// With `--pin-path`: the maps pinned by name and what will become of
    /// each (`created`: it will be pinned; else the pinned one is used).
    #[serde(skip_serializing_if = "Option::is_none")]
    pinned: Option<Vec<PinJson>>,
    /// With `--bpfman-manifest`: the resource written.
    #[serde(skip_serializing_if = "Option::is_none")]
    bpfman_manifest: Option<String>,
    warnings: Vec<String>,
}

/// A component named by file and program.
#[derive(Serialize)]
pub(crate) struct ProgramJson {
    file: String,
    program: String,
}

impl ProgramJson {
    /// From `FILE:PROGRAM` (a program name has no ':').
    pub(crate) fn parse(s: &str) -> ProgramJson {
        let (file, program) = s.rsplit_once(':').unwrap_or((s, ""));
        ProgramJson {
            file: file.to_string(),
            program: program.to_string(),
        }
    }
}

#[derive(Serialize)]
struct ComposedJson {
    #[serde(flatten)]
    placed: Placed,
    insns: u64,
    renames: Vec<RenameJson>,
    inlined: Vec<InlinedJson>,
    called: Vec<CalledJson>,
    optimized: Option<bpfld::link::InsnCounts>,
}

/// A map pinned by name (as `xdp attach --json` shows it).
#[derive(Serialize)]
pub(crate) struct PinJson {
    pub(crate) name: String,
    pub(crate) path: String,
    pub(crate) created: bool,
}

impl From<&bpfld_kernel::xdp::PinnedMap> for PinJson {
    fn from(p: &bpfld_kernel::xdp::PinnedMap) -> PinJson {
        PinJson {
            name: p.name.clone(),
            path: p.path.to_string_lossy().into_owned(),
            created: p.created,
        }
    }
}

/// The section of the program `name` of `obj`.
fn section_of(obj: &Object, name: &str) -> String {
    obj.symbols
        .iter()
        .find(|s| s.name == name)
        .and_then(|s| match s.place {
            SymbolPlace::Section(id) => obj.section(id).map(|sec| sec.name.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// The warning for a component left out of a composition (`FILE:PROGRAM`).
pub(crate) fn left_out_warning(component: &str) -> String {
    format!("left out: {component} (an earlier component never continues the chain, so it would never run)")
}

impl ComposeJson {
    pub(crate) fn new(
        output: &Path,
        composed: &Composed,
        pins: Option<&[bpfld_kernel::xdp::PinnedMap]>,
        bpfman_manifest: Option<&Path>,
    ) -> ComposeJson {
        let program = bpfld::compose::DISPATCHER;
        let instances = composed.report.json();
        ComposeJson {
            output: output.display().to_string(),
            program,
            section: section_of(&composed.object, program),
            frags: composed.frags,
            without_frags: composed
                .without_frags
                .iter()
                .map(|s| ProgramJson::parse(s))
                .collect(),
            components: composed
                .order
                .iter()
                .map(|p| {
                    let own = instances.iter().find(|c| c.instance == p.slot);
                    ComposedJson {
                        placed: p.clone(),
                        insns: own.map_or(0, |c| c.insns),
                        renames: own.map(|c| c.renames.clone()).unwrap_or_default(),
                        inlined: own.map(|c| c.inlined.clone()).unwrap_or_default(),
                        called: own.map(|c| c.called.clone()).unwrap_or_default(),
                        optimized: own.and_then(|c| c.optimized),
                    }
                })
                .collect(),
            optimized: composed.report.optimized,
            left_out: composed
                .unreachable
                .iter()
                .map(|s| ProgramJson::parse(s))
                .collect(),
            programs: bpfld::link::limits::programs(&composed.object),
            pinned: pins.map(|ps| ps.iter().map(PinJson::from).collect()),
            bpfman_manifest: bpfman_manifest.map(|p| p.display().to_string()),
            warnings: bpfld::warnings_given()
                .into_iter()
                .chain(composed.unreachable.iter().map(|u| left_out_warning(u)))
                .collect(),
        }
    }
}
