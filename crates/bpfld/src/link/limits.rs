//! The limits the kernel enforces when it loads a program, checked on a
//! linked object before it is written, so that `link` and `xdp compose`
//! refuse what the kernel would refuse at load (or attach) time, naming
//! the program and the components that brought what is too much:
//!
//! - at most [`MAX_USED_MAPS`] maps used by one program (the kernel's
//!   `MAX_USED_MAPS`); each data section a program uses (`.data`,
//!   `.rodata`, `.bss`, `.data.compN`, ...) is one map;
//! - at most [`MAX_INSNS`] instructions in one program, as libbpf loads it
//!   (its own code and every subprogram it reaches): the kernel's size
//!   limit for a privileged loader (`BPF_COMPLEXITY_LIMIT_INSNS`). The
//!   verifier's count of processed instructions has the same limit but
//!   depends on the paths it explores, which only the kernel knows;
//! - at most [`MAX_STACK`] bytes of stack along a call chain, each frame
//!   rounded up to 32 bytes as the kernel rounds it. Frames are measured
//!   from the code as the inliner measures them (`inline/graph.rs`); a
//!   program with a frame that cannot be measured is not checked for it.
//!   Only chains that run through a component's code are refused: the
//!   frames are upper bounds (the verifier counts the stack it sees used),
//!   so a chain the inputs already had is left to the kernel, which may
//!   accept less than the code suggests.
//!
//! Code the inliner cannot decode is not checked at all: the kernel
//! still is.

use crate::error::{Error, Result};
use crate::model::object::Object;

use super::inline::{program_uses, ProgramUse};
use super::LinkReport;

/// The most maps one program may use (the kernel's `MAX_USED_MAPS`).
pub const MAX_USED_MAPS: usize = 64;

/// The most instructions one program may have when a privileged loader
/// loads it (the kernel's `BPF_COMPLEXITY_LIMIT_INSNS`).
pub const MAX_INSNS: u64 = 1_000_000;

/// The most stack, in bytes, along one call chain (the kernel's
/// `MAX_BPF_STACK`).
pub const MAX_STACK: u32 = super::inline::MAX_STACK;

/// What one program of a linked object takes of the kernel's limits.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ProgramSize {
    /// The program (its function's name).
    pub program: String,
    /// Its section.
    pub section: String,
    /// Its instructions and those of every subprogram it reaches (at most
    /// [`MAX_INSNS`]).
    pub insns: u64,
    /// The maps it uses, data sections included (at most
    /// [`MAX_USED_MAPS`]).
    pub maps: Vec<String>,
    /// The stack along its deepest call chain (at most [`MAX_STACK`]);
    /// `None` when a frame cannot be measured.
    pub stack: Option<u32>,
}

/// Every program of the linked `obj` with what it takes of the kernel's
/// limits; empty when its code cannot be decoded.
pub fn programs(obj: &Object) -> Vec<ProgramSize> {
    program_uses(obj)
        .unwrap_or_default()
        .into_iter()
        .map(|p| ProgramSize {
            program: p.name,
            section: p.section,
            insns: p.insns,
            maps: p.maps,
            stack: p.stack.map(|s| s.0),
        })
        .collect()
}

/// Checks every program of the linked `obj` against the kernel's limits;
/// the error names each program over one, and with the link's `report`,
/// the components that brought its maps, instructions or functions.
pub fn check(obj: &Object, report: &LinkReport) -> Result<()> {
    // Code the inliner cannot decode is left to the kernel.
    let Ok(programs) = program_uses(obj) else {
        return Ok(());
    };
    let problems: Vec<String> = programs.iter().flat_map(|p| exceeded(p, report)).collect();
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::new(format!(
        "the kernel would refuse to load the output: {}",
        problems.join("; ")
    )))
}

/// Where a map, by its name in the output, came from: the component
/// instance that brought it, if any.
fn map_owner<'a>(report: &'a LinkReport, map: &str) -> Option<&'a str> {
    report
        .components
        .iter()
        .find(|c| {
            c.maps.iter().any(|(_, to)| to == map)
                || map.strip_prefix(".data.") == Some(c.label.as_str())
        })
        .map(|c| c.component.as_str())
}

/// The component instance whose function `f` (by its name in the output)
/// is: an extern it fills, or a function it brought.
fn function_owner<'a>(report: &'a LinkReport, f: &str) -> Option<&'a str> {
    report
        .components
        .iter()
        .find(|c| {
            c.resolved.iter().any(|(e, _)| e == f) || c.functions.iter().any(|(_, to)| to == f)
        })
        .map(|c| c.component.as_str())
}

/// At most `n` names, then how many more.
fn some(names: &[&str], n: usize) -> String {
    let mut s = names.iter().take(n).copied().collect::<Vec<_>>().join(", ");
    if names.len() > n {
        s.push_str(&format!(" and {} more", names.len() - n));
    }
    s
}

/// What program `p` has over the kernel's limits, one sentence each.
fn exceeded(p: &ProgramUse, report: &LinkReport) -> Vec<String> {
    let mut out = Vec::new();
    if p.maps.len() > MAX_USED_MAPS {
        // By who brought them: each component, then the main inputs.
        let mut by: Vec<(Option<&str>, Vec<&str>)> = Vec::new();
        for m in &p.maps {
            let owner = map_owner(report, m);
            match by.iter_mut().find(|(o, _)| *o == owner) {
                Some((_, v)) => v.push(m),
                None => by.push((owner, vec![m])),
            }
        }
        by.sort_by_key(|(o, _)| o.is_none());
        let parts: Vec<String> = by
            .iter()
            .map(|(o, maps)| {
                let who = match o {
                    Some(c) => format!("component {c}"),
                    None if by.len() > 1 => "the main inputs".to_string(),
                    None => "its object".to_string(),
                };
                format!("{} from {who} ({})", maps.len(), some(maps, 6))
            })
            .collect();
        out.push(format!(
            "program '{}' uses {} maps, more than the {MAX_USED_MAPS} one program may use (MAX_USED_MAPS): {}",
            p.name,
            p.maps.len(),
            parts.join(", ")
        ));
    }
    if p.insns > MAX_INSNS {
        let mut parts: Vec<String> = report
            .components
            .iter()
            .filter(|c| c.insns > 0)
            .map(|c| format!("{} from component {}", c.insns, c.component))
            .collect();
        let brought: u64 = report.components.iter().map(|c| c.insns).sum();
        if !parts.is_empty() && brought < p.insns {
            parts.push(format!(
                "{} from the main inputs and the calls between them",
                p.insns - brought
            ));
        }
        let by = if parts.is_empty() {
            String::new()
        } else {
            format!(": {}", parts.join(", "))
        };
        out.push(format!(
            "program '{}' has {} instructions, more than the {MAX_INSNS} the kernel loads in one program (BPF_COMPLEXITY_LIMIT_INSNS){by}",
            p.name, p.insns
        ));
    }
    if let Some((depth, chain)) = &p.stack {
        // Frames measured from the code are upper bounds: the verifier
        // counts only the stack it sees used, and removes the spills of
        // bpf_fastcall calls. A chain that bpfld built (a component's
        // frame in it) is refused; one the inputs had already is the
        // kernel's to judge, as it is when libbpf links them.
        let built = chain
            .iter()
            .any(|(f, _)| function_owner(report, f).is_some());
        if *depth > MAX_STACK && built {
            let chain: Vec<String> = chain
                .iter()
                .map(|(f, bytes)| match function_owner(report, f) {
                    Some(c) => format!("{f} ({bytes} bytes, component {c})"),
                    None => format!("{f} ({bytes} bytes)"),
                })
                .collect();
            out.push(format!(
                "program '{}' needs {depth} bytes of stack along the call chain {}, more than the kernel's {MAX_STACK}",
                p.name,
                chain.join(" -> ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::insn::{Insn, R0};

    fn fixture(name: &str) -> Object {
        let path = format!("{}/../../fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        crate::read::elf::read_file(std::path::Path::new(&path)).unwrap()
    }

    /// `obj` with its program `name` replaced by `n` instructions.
    fn program_of(mut obj: Object, name: &str, n: usize) -> Object {
        let sym = obj.symbols.iter().position(|s| s.name == name).unwrap();
        let crate::model::object::SymbolPlace::Section(id) = obj.symbols[sym].place else {
            panic!("{name} has no section");
        };
        let sec = obj.sections.iter_mut().find(|s| s.id == id).unwrap();
        sec.insns = vec![Insn::mov64_imm(R0, 2); n - 1];
        sec.insns.push(Insn::exit());
        sec.relocs.clear();
        sec.sh_size = 8 * n as u64;
        obj.symbols[sym].value = 0;
        obj.symbols[sym].size = 8 * n as u64;
        obj.btf_ext_raw = None;
        obj
    }

    #[test]
    fn a_program_over_a_million_instructions_is_refused() {
        let ok = program_of(fixture("xdp_pass.o"), "xdp_pass", MAX_INSNS as usize);
        check(&ok, &LinkReport::default()).unwrap();
        let big = program_of(fixture("xdp_pass.o"), "xdp_pass", MAX_INSNS as usize + 1);
        let e = check(&big, &LinkReport::default()).unwrap_err().to_string();
        assert!(
            e.contains("program 'xdp_pass' has 1000001 instructions")
                && e.contains("BPF_COMPLEXITY_LIMIT_INSNS"),
            "{e}"
        );
    }

    #[test]
    fn maps_are_counted_with_data_sections_and_subprograms() {
        let uses = program_uses(&fixture("lim_maps65.o")).unwrap();
        assert_eq!(uses.len(), 1);
        assert_eq!(uses[0].maps.len(), 65);
        let e = check(&fixture("lim_maps65.o"), &LinkReport::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("program 'xdp_maps65' uses 65 maps, more than the 64")
                && e.contains("65 from its object (m0, m1,"),
            "{e}"
        );
        // A global in .data is a map too.
        let data = program_uses(&fixture("comp_data.o")).unwrap();
        assert!(
            data.iter().any(|p| p
                .maps
                .iter()
                .any(|m| m.starts_with(".data") || m.starts_with(".bss"))),
            "{data:?}"
        );
    }

    #[test]
    fn the_stack_is_summed_along_the_call_chain() {
        let uses = program_uses(&fixture("lim_stack.o")).unwrap();
        let (depth, chain) = uses[0].stack.clone().unwrap();
        assert_eq!(depth, 640);
        assert_eq!(
            chain,
            [
                ("xdp_deep".to_string(), 320),
                ("deep_helper".to_string(), 320)
            ]
        );
        // The object's own chain, no component in it: the kernel judges.
        check(&fixture("lim_stack.o"), &LinkReport::default()).unwrap();
        // Within the limits: nothing to say.
        check(&fixture("xdp_counter.o"), &LinkReport::default()).unwrap();
        assert_eq!(
            programs(&fixture("xdp_counter.o")),
            [ProgramSize {
                program: "xdp_count".into(),
                section: "xdp".into(),
                // Its own code (it calls no subprogram).
                insns: fixture("xdp_counter.o")
                    .symbols
                    .iter()
                    .find(|s| s.name == "xdp_count")
                    .unwrap()
                    .size
                    / 8,
                maps: vec!["packets".into(), "bytes".into()],
                stack: Some(32),
            }]
        );
    }
}
