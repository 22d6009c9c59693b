//! The link report: what each `--resolve` extern (or composed component)
//! resolved to, what came with it under which final name, and whether it
//! was inlined. Built by the link, stored in the output (section
//! `.bpfld.linkmap`, JSON) and rendered by one [`Display`](fmt::Display)
//! for `--print-map` and `bpfld inspect`.

pub use crate::model::object::LINKMAP_SECTION;
use std::collections::HashSet;
use std::fmt;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::object::{Object, SectionId, SectionKind};

/// What one component instance contributed, for the link report.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ComponentReport {
    /// The component as named to the linker (`FILE[#TAG]`).
    pub component: String,
    /// The instance: the first extern it fills, which suffixes its names.
    pub label: String,
    /// extern → function it resolved to.
    pub resolved: Vec<(String, String)>,
    /// Instructions pulled in from this component.
    pub insns: u64,
    /// Maps pulled in: (original name, final name).
    pub maps: Vec<(String, String)>,
    /// Global variables pulled in: (original name, final name).
    pub globals: Vec<(String, String)>,
    /// Functions pulled in besides the resolved ones: (original, final).
    pub functions: Vec<(String, String)>,
    /// What became of each resolved function's calls.
    #[serde(default)]
    pub inlining: Vec<Inlining>,
    /// Its inlined instructions before and after the optimisation pass
    /// (absent when the pass did not run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimized: Option<InsnCounts>,
}

/// Instructions before and after the optimisation pass.
#[derive(Clone, Copy, Debug, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct InsnCounts {
    /// Instructions as inlining left them.
    pub before: u64,
    /// Instructions once optimised.
    pub after: u64,
}

/// Whether a resolved function was inlined into its callers, or why not.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Inlining {
    /// The function, by its name in the output.
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
    /// Every component instance, in link order.
    pub components: Vec<ComponentReport>,
    /// The whole output's instructions before and after the optimisation
    /// pass (absent when the pass did not run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimized: Option<InsnCounts>,
}

const SHT_PROGBITS: u32 = 1;
const SHT_STRTAB: u32 = 3;

impl LinkReport {
    /// The report of the component instances linked into `object`, each
    /// with the instructions it brought; only what was pulled in is
    /// listed.
    pub(super) fn from_instances(
        instances: impl Iterator<Item = (ComponentReport, u64)>,
        object: &Object,
    ) -> LinkReport {
        let mut report = LinkReport::default();
        for (mut r, insns) in instances {
            r.insns = insns;
            let present: HashSet<&str> = object.symbols.iter().map(|s| s.name.as_str()).collect();
            r.functions.retain(|(_, to)| present.contains(to.as_str()));
            r.maps.retain(|(_, to)| present.contains(to.as_str()));
            r.globals.retain(|(_, to)| present.contains(to.as_str()));
            report.components.push(r);
        }
        report
    }

    /// The resolved functions by their names in the output: a function
    /// filling several externs carries the first one's name.
    pub(super) fn resolved_functions(&self) -> Vec<String> {
        self.components.iter().flat_map(primaries).collect()
    }

    /// Records what the inliner did with each resolved function.
    pub(super) fn add_inlining(&mut self, outcomes: &[super::inline::Outcome]) {
        for c in &mut self.components {
            for e in primaries(c) {
                if let Some(o) = outcomes.iter().find(|o| o.function == e) {
                    c.inlining.push(Inlining::from(o));
                }
            }
        }
    }

    /// Records the optimisation pass's counts: the total, and per
    /// component those of its inlined functions.
    pub(super) fn add_optimization(&mut self, o: &super::inline::Optimized) {
        self.optimized = Some(InsnCounts {
            before: o.total.0,
            after: o.total.1,
        });
        for c in &mut self.components {
            let mine: HashSet<String> = primaries(c)
                .into_iter()
                .chain(c.functions.iter().map(|f| f.1.clone()))
                .collect();
            let (before, after) = o
                .by_function
                .iter()
                .filter(|(f, _, _)| mine.contains(f))
                .fold((0, 0), |(b, a), (_, x, y)| (b + x, a + y));
            if before > 0 {
                c.optimized = Some(InsnCounts { before, after });
            }
        }
    }

    /// Stores the report in the object (replacing an earlier one).
    pub fn embed(&self, obj: &mut Object) -> Result<()> {
        let json = serde_json::to_vec(self)
            .map_err(|e| Error::new(format!("cannot encode the link report: {e}")))?;
        // A valid string table: a NUL, then the JSON (which escapes every
        // control character, so holds no NUL) as one NUL-terminated string.
        let mut data = Vec::with_capacity(json.len() + 2);
        data.push(0);
        data.extend_from_slice(&json);
        data.push(0);
        obj.sections.retain(|s| s.name != LINKMAP_SECTION);
        let id = SectionId(obj.sections.len() as u32);
        obj.sections.push(crate::model::object::Section {
            sh_size: data.len() as u64,
            data,
            ..crate::model::object::Section::empty(
                id,
                LINKMAP_SECTION,
                SectionKind::Other,
                SHT_STRTAB,
            )
        });
        Ok(())
    }

    /// The report a linked object carries, if any (either form).
    pub fn from_object(obj: &Object) -> Option<LinkReport> {
        let s = obj.section_by_name(LINKMAP_SECTION)?;
        let json = match s.sh_type {
            SHT_STRTAB => s
                .data
                .strip_prefix(&[0])
                .and_then(|d| d.strip_suffix(&[0]))?,
            SHT_PROGBITS => &s.data[..],
            _ => return None,
        };
        serde_json::from_slice(json).ok()
    }
}

/// One component instance of a [`LinkReport`] as `bpfld link --json` and
/// `bpfld xdp compose --json` show it: the same field names in both.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ComponentJson {
    /// The component as named on the command line (`FILE[#TAG]`).
    pub file: String,
    /// The instance: the first extern it fills, which suffixes the names
    /// of its maps and globals (`compN` in a composition).
    pub instance: String,
    /// The externs it fills, each with the function filling it.
    pub resolves: Vec<ResolveJson>,
    /// Instructions pulled in from it.
    pub insns: u64,
    /// What it brought under which final name.
    pub renames: Vec<RenameJson>,
    /// Resolved functions inlined into their callers.
    pub inlined: Vec<InlinedJson>,
    /// Resolved functions (some of) whose calls stay calls, and why.
    pub called: Vec<CalledJson>,
    /// Its inlined instructions before and after the optimisation pass
    /// (`null` when the pass did not run: `--no-optimize`, nothing inlined).
    pub optimized: Option<InsnCounts>,
}

/// An extern and the function that fills it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ResolveJson {
    /// The extern's name.
    #[serde(rename = "extern")]
    pub extern_name: String,
    /// The component's function filling it.
    pub function: String,
}

/// A map, global variable or function pulled in under its final name.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RenameJson {
    /// `map`, `global` or `function`.
    pub kind: &'static str,
    /// Its name in the component.
    pub from: String,
    /// Its name in the output.
    pub to: String,
}

/// A function inlined into its callers.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct InlinedJson {
    /// The function (by its name in the output).
    pub function: String,
    /// The callers it was inlined into, one per call site.
    pub into: Vec<String>,
}

/// A function that stays called.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CalledJson {
    /// The function (by its name in the output).
    pub function: String,
    /// Why it is not inlined.
    pub because: String,
}

impl LinkReport {
    /// Every component instance as `--json` shows it.
    pub fn json(&self) -> Vec<ComponentJson> {
        self.components.iter().map(ComponentJson::from).collect()
    }
}

/// A report as `{"components": [...]}` in the `--json` vocabulary (or
/// `null`), for listings that show one.
pub(crate) fn serialize_components<S: serde::Serializer>(
    report: &Option<LinkReport>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Components {
        components: Vec<ComponentJson>,
    }
    report
        .as_ref()
        .map(|r| Components {
            components: r.json(),
        })
        .serialize(s)
}

impl From<&ComponentReport> for ComponentJson {
    fn from(c: &ComponentReport) -> ComponentJson {
        let renames = [
            ("function", &c.functions),
            ("map", &c.maps),
            ("global", &c.globals),
        ]
        .into_iter()
        .flat_map(|(kind, list)| {
            list.iter().map(move |(from, to)| RenameJson {
                kind,
                from: from.clone(),
                to: to.clone(),
            })
        })
        .collect();
        ComponentJson {
            file: c.component.clone(),
            instance: c.label.clone(),
            resolves: c
                .resolved
                .iter()
                .map(|(e, f)| ResolveJson {
                    extern_name: e.clone(),
                    function: f.clone(),
                })
                .collect(),
            insns: c.insns,
            renames,
            inlined: c
                .inlining
                .iter()
                .filter(|i| !i.into.is_empty())
                .map(|i| InlinedJson {
                    function: i.function.clone(),
                    into: i.into.clone(),
                })
                .collect(),
            called: c
                .inlining
                .iter()
                .filter_map(|i| {
                    Some(CalledJson {
                        function: i.function.clone(),
                        because: i.called_because.clone()?,
                    })
                })
                .collect(),
            optimized: c.optimized,
        }
    }
}

/// The externs of `c` that name its resolved functions in the output.
fn primaries(c: &ComponentReport) -> Vec<String> {
    let mut seen = HashSet::new();
    c.resolved
        .iter()
        .filter(|(_, f)| seen.insert(f.clone()))
        .map(|(e, _)| e.clone())
        .collect()
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
            if let Some(o) = c.optimized {
                writeln!(
                    out,
                    "  optimised: {} inlined instructions, {} before",
                    o.after, o.before
                )?;
            }
        }
        if let Some(o) = self.optimized {
            writeln!(
                out,
                "optimised: {} instructions in all, {} before",
                o.after, o.before
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> LinkReport {
        LinkReport {
            components: vec![ComponentReport {
                component: "a.o".into(),
                label: "comp0".into(),
                resolved: vec![("comp0".into(), "xdp_a".into())],
                insns: 12,
                maps: vec![("counter".into(), "counter__comp0".into())],
                globals: Vec::new(),
                functions: Vec::new(),
                inlining: Vec::new(),
                optimized: Some(InsnCounts {
                    before: 12,
                    after: 9,
                }),
            }],
            optimized: None,
        }
    }

    fn empty_object() -> Object {
        Object {
            endian: crate::model::Endian::Little,
            sections: vec![crate::model::object::Section::empty(
                SectionId(0),
                "",
                SectionKind::Null,
                0,
            )],
            symbols: Vec::new(),
            btf: None,
            btf_ext_raw: None,
        }
    }

    #[test]
    fn the_link_map_is_a_string_table_holding_the_json() {
        let mut obj = empty_object();
        report().embed(&mut obj).unwrap();
        let s = obj.section_by_name(LINKMAP_SECTION).unwrap();
        assert_eq!(s.sh_type, SHT_STRTAB);
        assert_eq!(s.data.first(), Some(&0));
        assert_eq!(s.data.last(), Some(&0));
        assert_eq!(s.data.iter().filter(|&&b| b == 0).count(), 2);
        assert_eq!(LinkReport::from_object(&obj), Some(report()));
    }

    #[test]
    fn the_first_form_is_still_read() {
        let mut obj = empty_object();
        let json = serde_json::to_vec(&report()).unwrap();
        obj.sections.push(crate::model::object::Section {
            sh_size: json.len() as u64,
            data: json,
            ..crate::model::object::Section::empty(
                SectionId(1),
                LINKMAP_SECTION,
                SectionKind::Other,
                SHT_PROGBITS,
            )
        });
        assert_eq!(LinkReport::from_object(&obj), Some(report()));
    }
}
