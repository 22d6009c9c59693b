//! `bpfld xdp compose`: several XDP programs as one, without freplace.
//!
//! A dispatcher is synthesised (`dispatcher.rs`) with one extern slot per
//! component, ordered by run priority (then command-line order) as
//! libxdp orders them; every component is linked in as its own instance
//! through the linker's `--resolve` machinery, so its maps and globals stay
//! its own. The composition's manifest travels in the object's BTF, which
//! the kernel keeps with the loaded program.

mod action;
pub(crate) mod dispatcher;
pub(crate) mod run_config;

use crate::error::{Error, Result};
use crate::link::{self, Input, LinkOptions, LinkReport, Resolve};
use crate::model::object::{Binding, Object, SymbolKind, SymbolPlace};

pub use action::{ChainActions, XdpAction};
pub use dispatcher::DISPATCHER;

/// One component as the user names it.
#[derive(Clone, Debug)]
pub struct ComponentSpec {
    /// How errors and the manifest name it (usually the file path).
    pub file: String,
    /// The object holding its XDP program.
    pub object: Object,
    /// The XDP program to use; the object's only one when `None`.
    pub program: Option<String>,
    /// Overrides of the component's own metadata.
    pub priority: Option<u32>,
    /// The chain-call actions, overriding the component's metadata.
    pub chain: Option<ChainActions>,
    /// Its place in the composition running now, when it is one of its
    /// components: libxdp orders programs already loaded before new ones
    /// of equal priority and name, and keeps their order.
    pub running: Option<usize>,
}

impl ComponentSpec {
    /// Component `object`, named `file` in errors and in the manifest,
    /// with its own metadata (program, priority, chain-call actions).
    pub fn new(file: impl Into<String>, object: Object) -> Self {
        ComponentSpec {
            file: file.into(),
            object,
            program: None,
            priority: None,
            chain: None,
            running: None,
        }
    }

    /// The component whose ELF object is `bytes`, named `name`.
    pub fn from_bytes(name: impl Into<String>, bytes: &[u8]) -> Result<Self> {
        let name = name.into();
        let object = Object::parse(bytes).map_err(|e| e.in_file(&name))?;
        Ok(Self::new(name, object))
    }

    /// The component in the ELF file at `path`, named by its path.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let object = crate::read::elf::read_file(path)?;
        Ok(Self::new(path.display().to_string(), object))
    }

    /// This component with the XDP program `name` (needed when the
    /// object has several).
    #[must_use]
    pub fn with_program(mut self, name: impl Into<String>) -> Self {
        self.program = Some(name.into());
        self
    }

    /// This component with run priority `priority` (lower runs first).
    #[must_use]
    pub fn with_priority(mut self, priority: u32) -> Self {
        self.priority = Some(priority);
        self
    }

    /// This component with chain-call actions `chain`.
    #[must_use]
    pub fn with_chain(mut self, chain: ChainActions) -> Self {
        self.chain = Some(chain);
        self
    }
}

/// A component's place in the composition.
#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct Placed {
    /// Its position among the components as given (command-line order).
    pub index: usize,
    /// The component's name as given (usually its file path).
    pub file: String,
    /// Its XDP program.
    pub program: String,
    /// Its run priority: lower runs first.
    pub priority: u32,
    /// The chain-call actions (serialized as their names).
    pub chain: ChainActions,
    /// The slot (extern) it fills, which also suffixes its maps' names.
    pub slot: String,
    /// Its object's identity: the canonical path (see [`path_key`]), empty
    /// when the file cannot be found. Two spellings of one file (`./x.o`,
    /// `/abs/x.o`, `d/../x.o`) have the same key, so a replacement knows
    /// the component it already runs.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path: String,
}

/// The key a file is known by in a manifest: its canonical path, or, when
/// that is too long for a BTF name, `#` and a 64-bit FNV-1a hash of it;
/// empty when the file cannot be resolved.
pub fn path_key(file: &str) -> String {
    let Ok(canon) = std::fs::canonicalize(file) else {
        return String::new();
    };
    let canon = canon.to_string_lossy().into_owned();
    if escape(&canon).len() <= 200 {
        return canon;
    }
    let hash = canon.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("#{hash:016x}")
}

/// The run order of a slot `compN` (N); slots of another form last.
fn slot_number(slot: &str) -> usize {
    slot.strip_prefix("comp")
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

/// `SLOT: FILE:PROGRAM priority N chain ACTIONS`, as compose, attach and
/// status print a component.
impl std::fmt::Display for Placed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}:{} priority {} chain {}",
            self.slot, self.file, self.program, self.priority, self.chain
        )
    }
}

/// A composition: the object and where each component went.
#[derive(Clone, Debug)]
pub struct Composed {
    /// The composed object, with program [`DISPATCHER`].
    pub object: Object,
    /// The components in run order.
    pub order: Vec<Placed>,
    /// Components after one that never continues: they could never run.
    pub unreachable: Vec<String>,
    /// Whether the composition is frags-capable (`xdp.frags`): only when
    /// every component is, as libxdp's dispatcher.
    pub frags: bool,
    /// The components (`FILE:PROGRAM`) that are not frags-capable.
    pub without_frags: Vec<String>,
    /// What the link put in, per component.
    pub report: LinkReport,
}

impl Composed {
    /// A line on multi-buffer packets (`xdp.frags`), when there is
    /// something to say: the composition takes them (every component
    /// does), or some components would but others do not, so it does not.
    pub fn frags_note(&self) -> Option<String> {
        if self.frags {
            return Some(
                "xdp.frags: every component takes multi-buffer packets, so the composition does\n"
                    .into(),
            );
        }
        if self.without_frags.len() < self.order.len() + self.unreachable.len() {
            return Some(format!(
                "not xdp.frags: {} cannot take multi-buffer packets, so the composition cannot (it needs a device MTU that fits one page)\n",
                self.without_frags.join(", ")
            ));
        }
        None
    }
}

impl Composed {
    /// A line on the optimisation pass, when it ran: instructions before
    /// and after, in all and per component (`SLOT before->after`).
    pub fn insns_note(&self) -> Option<String> {
        let total = self.report.optimized?;
        let per: Vec<String> = self
            .report
            .components
            .iter()
            .filter_map(|c| {
                let o = c.optimized?;
                Some(format!("{} {}->{}", c.label, o.before, o.after))
            })
            .collect();
        Some(format!(
            "optimised: {} instructions, {} before ({})\n",
            total.after,
            total.before,
            per.join(", ")
        ))
    }
}

/// Prefix of the BTF DATASEC names that carry the manifest.
pub(crate) const MANIFEST_PREFIX: &str = ".bpfld.xdp.";

/// Where an XDP program of section `section` runs when not on an
/// interface: a devmap or a cpumap entry (libbpf's `xdp/devmap`,
/// `xdp.frags/devmap`, `xdp/cpumap`, `xdp.frags/cpumap`).
fn attach_target(section: &str) -> Option<&'static str> {
    let rest = section
        .strip_prefix("xdp.frags/")
        .or_else(|| section.strip_prefix("xdp/"))?;
    match rest {
        "devmap" => Some("devmap"),
        "cpumap" => Some("cpumap"),
        _ => None,
    }
}

/// The XDP programs of an object: global functions in sections libbpf
/// loads as XDP.
pub fn xdp_programs(obj: &Object) -> Vec<(String, String)> {
    obj.symbols
        .iter()
        .filter(|s| s.kind == SymbolKind::Func && s.binding != Binding::Local)
        .filter_map(|s| match s.place {
            SymbolPlace::Section(id) => obj.section(id).and_then(|sec| {
                (sec.is_program() && crate::model::program::program_type(&sec.name) == Some("xdp"))
                    .then(|| (s.name.clone(), sec.name.clone()))
            }),
            _ => None,
        })
        .collect()
}

/// A manifest value: printable ASCII without spaces, and without '/',
/// which aya rewrites in DATASEC names: those three are `%XX`-escaped.
pub fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'%' | b'/' | b' ' => out.push_str(&format!("%{b:02X}")),
            0x21..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The value [`escape`] made `v` from.
pub fn unescape(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn manifest_line(p: &Placed) -> String {
    // DATASEC names are printable text up to the kernel's 512-byte limit.
    // (At most 200 bytes of file and of path, 512 in all.)
    let mut file = escape(&p.file);
    if file.len() > 200 {
        file = format!("...{}", &file[file.len() - 197..]);
    }
    let path = if p.path.is_empty() {
        String::new()
    } else {
        format!(" path={}", escape(&p.path))
    };
    format!(
        "{MANIFEST_PREFIX}{} slot={} prog={} file={}{path} priority={} chain={}",
        p.index,
        p.slot,
        escape(&p.program),
        file,
        p.priority,
        p.chain
    )
}

/// Reads a composition's manifest back from BTF (of the object, or of a
/// loaded program).
pub fn read_manifest(btf: &crate::model::btf::Btf) -> Vec<Placed> {
    let mut out = Vec::new();
    for (_, t) in btf.iter() {
        if !matches!(t.data, crate::model::btf::TypeData::Datasec { .. }) {
            continue;
        }
        let Ok(name) = btf.name(t.name_off) else {
            continue;
        };
        let Some(rest) = name.strip_prefix(MANIFEST_PREFIX) else {
            continue;
        };
        let mut words = rest.split(' ');
        let Some(Ok(index)) = words.next().map(str::parse) else {
            continue;
        };
        let mut p = Placed {
            index,
            file: String::new(),
            program: String::new(),
            priority: 0,
            chain: ChainActions::NONE,
            slot: String::new(),
            path: String::new(),
        };
        for w in words {
            match w.split_once('=') {
                Some(("slot", v)) => p.slot = v.into(),
                Some(("prog", v)) => p.program = unescape(v),
                Some(("file", v)) => p.file = unescape(v),
                Some(("path", v)) => p.path = unescape(v),
                Some(("priority", v)) => p.priority = v.parse().unwrap_or(0),
                Some(("chain", v)) => {
                    p.chain = v
                        .split(',')
                        .filter_map(|a| a.parse::<XdpAction>().ok())
                        .collect()
                }
                _ => {}
            }
        }
        out.push(p);
    }
    // Run order: the order packets meet them.
    out.sort_by_key(|p| (slot_number(&p.slot), p.index));
    out
}

/// The instruction count of function `name` of `obj` (its own body, as
/// libbpf counts an unloaded program); 0 when it cannot be found.
fn function_insns(obj: &Object, name: &str) -> u64 {
    obj.symbols
        .iter()
        .find(|s| s.name == name && s.kind == SymbolKind::Func)
        .map_or(0, |s| s.size / 8)
}

/// The callee-saved registers r6-r9 (bit n = rn) that function `name` of
/// `obj` writes; all four when it cannot be found.
fn callee_saved_written(obj: &Object, name: &str) -> u16 {
    let all = 0x3c0;
    let Some(sym) = obj
        .symbols
        .iter()
        .find(|s| s.name == name && s.kind == SymbolKind::Func)
    else {
        return all;
    };
    let SymbolPlace::Section(id) = sym.place else {
        return all;
    };
    let code = obj.section(id).and_then(|s| {
        let a = usize::try_from(sym.value / 8).ok()?;
        let b = usize::try_from(sym.value.checked_add(sym.size)? / 8).ok()?;
        s.insns.get(a..b)
    });
    code.map_or(all, |c| crate::link::inline::registers_written(c) & all)
}

/// How [`compose`] builds the composition.
///
/// ```
/// use bpfld::compose::ComposeOptions;
///
/// let opts = ComposeOptions::default().share("counters").inline(false);
/// assert_eq!(opts.shared_maps, ["counters"]);
/// assert!(!opts.inline);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ComposeOptions {
    /// Maps the components share, by name (each component keeps its own
    /// copy of every other map; maps pinned by name are always shared).
    pub shared_maps: Vec<String>,
    /// Inline the components' bodies into the dispatcher where that is
    /// safe (the default), or keep each one a called function.
    pub inline: bool,
    /// Run the optimisation pass over the inlined code (the default):
    /// chain-call compares threaded, packet pointers and proven bounds
    /// kept across components, dead code removed.
    pub optimize: bool,
}

impl Default for ComposeOptions {
    fn default() -> Self {
        ComposeOptions {
            shared_maps: Vec::new(),
            inline: true,
            optimize: true,
        }
    }
}

impl ComposeOptions {
    /// These options with map `name` shared between the components.
    #[must_use]
    pub fn share(mut self, name: impl Into<String>) -> Self {
        self.shared_maps.push(name.into());
        self
    }

    /// These options with every map of `names` shared.
    #[must_use]
    pub fn share_all<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.shared_maps.extend(names.into_iter().map(Into::into));
        self
    }

    /// These options with inlining on or off.
    #[must_use]
    pub fn inline(mut self, inline: bool) -> Self {
        self.inline = inline;
        self
    }

    /// These options with the optimisation pass over the inlined code on
    /// (the default) or off (`--no-optimize`).
    #[must_use]
    pub fn optimize(mut self, optimize: bool) -> Self {
        self.optimize = optimize;
        self
    }
}

/// Composes the components into one object with program `bpfld_xdp`
/// (see [`dispatcher::DISPATCHER`]): they run in priority order, each
/// one after the last only when that one's verdict is in its chain-call
/// set, as libxdp's dispatcher runs them.
///
/// ```
/// use bpfld::compose::{compose, ChainActions, ComponentSpec, ComposeOptions};
///
/// let pass = include_bytes!("../../../../fixtures/xdp_pass.o");
/// let count = include_bytes!("../../../../fixtures/comp_count.o");
/// let composed = compose(
///     &[
///         ComponentSpec::from_bytes("xdp_pass.o", pass)?,
///         ComponentSpec::from_bytes("comp_count.o", count)?
///             .with_program("xdp_count")
///             .with_priority(10)
///             .with_chain("pass,drop".parse()?),
///     ],
///     &ComposeOptions::default(),
/// )?;
/// // Lower priorities run first.
/// assert_eq!(composed.order[0].to_string(),
///            "comp0: comp_count.o:xdp_count priority 10 chain XDP_DROP,XDP_PASS");
/// assert_eq!(composed.order[1].chain, ChainActions::DEFAULT);
/// let elf: Vec<u8> = composed.object.to_bytes()?;
/// assert_eq!(&elf[..4], b"\x7fELF");
/// # Ok::<(), bpfld::Error>(())
/// ```
pub fn compose(specs: &[ComponentSpec], opts: &ComposeOptions) -> Result<Composed> {
    let shared_maps = &opts.shared_maps;
    let no_inline = !opts.inline;
    let optimize = opts.optimize;
    if specs.is_empty() {
        crate::bail!("nothing to compose: no components");
    }
    let endian = specs[0].object.endian;
    let mut placed = Vec::with_capacity(specs.len());
    let mut without_frags = Vec::new();
    let mut first_target: Option<(Option<&'static str>, String, String)> = None;
    for (i, spec) in specs.iter().enumerate() {
        if spec.object.endian != endian {
            crate::bail!("{}: byte order differs from {}", spec.file, specs[0].file);
        }
        let progs = xdp_programs(&spec.object);
        let list = || {
            let names: Vec<&str> = progs.iter().map(|p| p.0.as_str()).collect();
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };
        let (program, section) = match &spec.program {
            Some(name) => progs
                .iter()
                .find(|p| &p.0 == name)
                .cloned()
                .ok_or_else(|| {
                    Error::new(format!(
                        "{}: no XDP program '{name}' (its XDP programs are: {})",
                        spec.file,
                        list()
                    ))
                })?,
            None => match progs.as_slice() {
                [one] => one.clone(),
                [] => crate::bail!("{}: has no XDP program", spec.file),
                _ => crate::bail!(
                    "{}: has several XDP programs ({}); name one as {}:PROGRAM",
                    spec.file,
                    list(),
                    spec.file
                ),
            },
        };
        if !section.starts_with("xdp.frags") {
            without_frags.push(format!("{}:{program}", spec.file));
        }
        // Programs for a devmap or cpumap entry (libbpf's `xdp/devmap`,
        // `xdp/cpumap`) are loaded for that use and may read what only it
        // gives (`egress_ifindex`): all components must share one.
        let target = attach_target(&section);
        match &first_target {
            None => first_target = Some((target, format!("{}:{program}", spec.file), section.clone())),
            Some((t, who, sec)) if *t != target => crate::bail!(
                "{}:{program} (section '{section}') and {who} (section '{sec}') run in different places ({} and {}): they cannot be one program",
                spec.file,
                target.unwrap_or("an interface"),
                t.unwrap_or("an interface"),
            ),
            Some(_) => {}
        }
        let cfg = run_config::read(&spec.object, &program);
        placed.push(Placed {
            index: i,
            file: spec.file.clone(),
            program,
            priority: spec.priority.unwrap_or(cfg.priority),
            chain: spec.chain.unwrap_or(ChainActions::from_bits(cfg.chain)),
            slot: String::new(),
            path: path_key(&spec.file),
        });
    }
    // libxdp's run order: priority, then program name, then programs
    // already running before new ones (running ones in their order, new
    // ones shorter first), then command-line order (a stable sort).
    placed.sort_by_key(|p| {
        let spec = &specs[p.index];
        let then = match spec.running {
            Some(at) => (false, at as u64),
            None => (true, function_insns(&spec.object, &p.program)),
        };
        (p.priority, p.program.clone(), then)
    });
    let mut unreachable = Vec::new();
    if let Some(stop) = placed.iter().position(|p| p.chain.is_empty()) {
        unreachable = placed
            .drain(stop + 1..)
            .map(|p| format!("{}:{}", p.file, p.program))
            .collect();
    }
    for (n, p) in placed.iter_mut().enumerate() {
        p.slot = format!("comp{n}");
    }
    let slots: Vec<dispatcher::Slot> = placed
        .iter()
        .map(|p| dispatcher::Slot {
            extern_name: p.slot.clone(),
            description: format!("{}:{} (priority {})", p.file, p.program, p.priority),
            chain: p.chain.bits(),
        })
        .collect();
    let manifest: Vec<String> = placed.iter().map(manifest_line).collect();
    let frags = without_frags.is_empty();
    let base = if frags { "xdp.frags" } else { "xdp" };
    let section = match first_target.and_then(|t| t.0) {
        Some(target) => format!("{base}/{target}"),
        None => base.to_string(),
    };
    let section = section.as_str();
    // The context stays in a callee-saved register that no component
    // writes, if there is one (inlined bodies do not preserve r6-r9).
    let written = placed.iter().fold(0, |w, p| {
        w | callee_saved_written(&specs[p.index].object, &p.program)
    });
    let ctx_reg = (6..=9u8).rev().find(|r| written & (1 << r) == 0);
    let object = dispatcher::build(section, &slots, &manifest, ctx_reg, endian);
    let main = [Input {
        name: "<xdp dispatcher>".into(),
        object,
    }];
    // Every component its own instance, even the same file twice, with
    // its writable globals in a map of its own (`.data.compN`), which a
    // replacement hands to its successor like any other map.
    let components: Vec<Input> = placed
        .iter()
        .map(|p| {
            let mut object = specs[p.index].object.clone();
            link::isolate::own_data_section(&mut object, &p.slot)
                .map_err(|e| e.in_file(&p.file))?;
            Ok(Input {
                name: format!("{}#{}", p.file, p.slot),
                object,
            })
        })
        .collect::<Result<_>>()?;
    let resolves = placed
        .iter()
        .enumerate()
        .map(|(n, p)| Resolve {
            extern_name: p.slot.clone(),
            component: n,
            function: p.program.clone(),
        })
        .collect();
    let opts = LinkOptions {
        relocatable: false,
        resolves,
        shared_maps: shared_maps.to_vec(),
        no_inline,
        no_optimize: !optimize,
    };
    let linked = link::link_with(&main, &components, &opts)?;
    Ok(Composed {
        object: linked.object,
        order: placed,
        unreachable,
        frags,
        without_frags,
        report: linked.report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_lines_read_back() {
        let p = Placed {
            index: 3,
            file: "dir with space/x%y.o".into(),
            program: "xdp_prog".into(),
            priority: 7,
            chain: ChainActions::of([XdpAction::Pass, XdpAction::Tx]),
            slot: "comp3".into(),
            path: "/abs/dir with space/x%y.o".into(),
        };
        let line = manifest_line(&p);
        assert!(!line[1..].contains('/') && line.len() < 512, "{line}");
        let mut btf = crate::model::btf::Btf::new(crate::model::Endian::Little);
        let name = btf.add_string(&line);
        btf.add_type(crate::model::btf::BtfType::new(
            name,
            false,
            crate::model::btf::TypeData::Datasec {
                size: 1,
                vars: vec![],
            },
        ));
        assert_eq!(read_manifest(&btf), vec![p]);
    }

    #[test]
    fn path_keys_name_the_file_not_the_spelling() {
        let dir = std::env::temp_dir().join(format!("bpfld-path-key-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let f = dir.join("x.o");
        std::fs::write(&f, b"").unwrap();
        let key = path_key(f.to_str().unwrap());
        assert!(key.starts_with('/') && key.ends_with("/x.o"), "{key}");
        let spelled = dir.join("sub/../x.o");
        assert_eq!(path_key(spelled.to_str().unwrap()), key);
        assert_eq!(path_key(dir.join("none.o").to_str().unwrap()), "");
        // Too long for a BTF name: a hash, the same for every spelling.
        let mut deep = dir.clone();
        for _ in 0..12 {
            deep.push("a_rather_long_directory_name");
        }
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(deep.join("y.o"), b"").unwrap();
        let long = path_key(deep.join("y.o").to_str().unwrap());
        assert!(long.starts_with('#') && long.len() == 17, "{long}");
        let again = path_key(
            deep.join("../a_rather_long_directory_name/y.o")
                .to_str()
                .unwrap(),
        );
        assert_eq!(again, long);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn fixture_spec(file: &str, program: &str, running: Option<usize>) -> ComponentSpec {
        let path = format!("{}/../../fixtures/{file}", env!("CARGO_MANIFEST_DIR"));
        ComponentSpec {
            file: file.into(),
            object: crate::read::elf::read_file(std::path::Path::new(&path)).unwrap(),
            program: Some(program.into()),
            priority: None,
            chain: None,
            running,
        }
    }

    fn order(specs: &[ComponentSpec]) -> Vec<(usize, String)> {
        compose(specs, &ComposeOptions::default())
            .unwrap()
            .order
            .iter()
            .map(|p| (p.index, p.program.clone()))
            .collect()
    }

    #[test]
    fn ties_are_broken_as_libxdp_breaks_them() {
        // Equal priority: by program name, not command-line order.
        let pass = fixture_spec("xdp_pass.o", "xdp_pass", None);
        let count = fixture_spec("comp_count.o", "xdp_count", None);
        assert_eq!(
            order(&[pass.clone(), count.clone()]),
            [(1, "xdp_count".into()), (0, "xdp_pass".into())]
        );
        // Priority first.
        let first = ComponentSpec {
            priority: Some(49),
            ..pass.clone()
        };
        assert_eq!(
            order(&[count.clone(), first]),
            [(1, "xdp_pass".into()), (0, "xdp_count".into())]
        );
        // Same name: one running before a new one, running ones in their
        // running order.
        let running = |at| ComponentSpec {
            running: Some(at),
            ..count.clone()
        };
        let idx = |v: Vec<(usize, String)>| v.into_iter().map(|x| x.0).collect::<Vec<_>>();
        assert_eq!(idx(order(&[count.clone(), running(0)])), [1, 0]);
        assert_eq!(
            idx(order(&[running(3), count.clone(), running(1)])),
            [2, 0, 1]
        );
        // Two new ones alike: command-line order.
        assert_eq!(idx(order(&[count.clone(), count.clone()])), [0, 1]);
    }
}
