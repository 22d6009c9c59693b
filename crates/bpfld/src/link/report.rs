//! The link report: what each `--resolve` extern (or composed component)
//! resolved to, what came with it under which final name, and whether it
//! was inlined. Built by the link, stored in the output (section
//! `.bpfld.linkmap`, JSON) and rendered by one [`Display`](fmt::Display)
//! for `--print-map` and `bpfld inspect`.

use std::fmt;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::object::{Object, SectionId, SectionKind};

/// What one component instance contributed, for the link report.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ComponentReport {
    pub component: String,
    pub label: String,
    /// extern → function it resolved to.
    pub resolved: Vec<(String, String)>,
    /// Instructions pulled in from this component.
    pub insns: u64,
    /// Maps and global variables pulled in: (original name, final name).
    pub maps: Vec<(String, String)>,
    pub globals: Vec<(String, String)>,
    /// Functions pulled in besides the resolved ones: (original, final).
    pub functions: Vec<(String, String)>,
    /// What became of each resolved function's calls.
    #[serde(default)]
    pub inlining: Vec<Inlining>,
}

/// Whether a resolved function was inlined into its callers, or why not.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Inlining {
    pub function: String,
    /// Callers it was inlined into, one per call site.
    pub into: Vec<String>,
    /// Why (some of) its calls stay calls.
    pub called_because: Option<String>,
}

impl From<&super::inline::Outcome> for Inlining {
    fn from(o: &super::inline::Outcome) -> Inlining {
        Inlining {
            function: o.function.clone(),
            into: o.inlined_into.clone(),
            called_because: o.called_because.clone(),
        }
    }
}

/// The link report: what each extern resolved to and what came with it.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct LinkReport {
    pub components: Vec<ComponentReport>,
}

/// The section that carries the link report inside a linked object, as
/// JSON; loaders ignore it (no flags, not a known section).
pub const LINKMAP_SECTION: &str = ".bpfld.linkmap";

impl LinkReport {
    /// Stores the report in the object (replacing an earlier one).
    pub fn embed(&self, obj: &mut Object) -> Result<()> {
        let json = serde_json::to_vec(self)
            .map_err(|e| Error::new(format!("cannot encode the link report: {e}")))?;
        obj.sections.retain(|s| s.name != LINKMAP_SECTION);
        let id = SectionId(obj.sections.len() as u32);
        let size = json.len() as u64;
        obj.sections.push(crate::model::object::Section {
            sh_size: size,
            data: json,
            ..crate::model::object::Section::empty(id, LINKMAP_SECTION, SectionKind::Other, 1)
        });
        Ok(())
    }

    /// The report a linked object carries, if any.
    pub fn from_object(obj: &Object) -> Option<LinkReport> {
        let s = obj.section_by_name(LINKMAP_SECTION)?;
        serde_json::from_slice(&s.data).ok()
    }
}

/// The report as `--print-map` prints it (and `bpfld inspect` shows it,
/// indented): per component instance, the externs it fills, what came
/// with it and what became of its calls.
impl fmt::Display for LinkReport {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.components {
            for (e, f) in &c.resolved {
                writeln!(out, "{e} = {}:{f}", c.component)?;
            }
            writeln!(
                out,
                "  instance '{}': {} instructions pulled in",
                c.label, c.insns
            )?;
            for (what, list) in [
                ("function", &c.functions),
                ("map", &c.maps),
                ("global", &c.globals),
            ] {
                for (from, to) in list {
                    writeln!(out, "  {what} {from} -> {to}")?;
                }
            }
            for i in &c.inlining {
                if !i.into.is_empty() {
                    writeln!(out, "  inlined {} into {}", i.function, i.into.join(", "))?;
                }
                if let Some(why) = &i.called_because {
                    writeln!(out, "  called {} (not inlined: {why})", i.function)?;
                }
            }
        }
        Ok(())
    }
}
