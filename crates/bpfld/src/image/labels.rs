//! The `io.ebpf.programs` and `io.ebpf.maps` labels of a bytecode image,
//! computed from an object with the names bpfman uses.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::object::Object;

/// Program and map names with their bpfman types, sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Labels {
    /// Program (function) name → program type, as bpfman reads them.
    pub programs: BTreeMap<String, String>,
    /// Map name → map type.
    pub maps: BTreeMap<String, String>,
}

impl Labels {
    /// The labels of an object: every entry program and every map it
    /// defines (not the `.data`/`.rodata`/`.bss` ones, not extern maps).
    pub fn of(obj: &Object) -> Result<Labels> {
        let summary = crate::show::inspect::summarize(obj)?;
        let mut labels = Labels::default();
        for p in &summary.programs {
            let t = program_type(&p.section).ok_or_else(|| {
                Error::new(format!(
                    "program '{}' in section '{}': bpfman has no program type for this section \
                     (it loads xdp, tc, tcx, kprobe, kretprobe, uprobe, uretprobe, tracepoint, \
                     fentry, fexit, lsm)",
                    p.name, p.section
                ))
            })?;
            labels.programs.insert(p.name.clone(), t.to_string());
        }
        for m in &summary.maps {
            if m.linkage == "extern" {
                continue;
            }
            let t = map_type(m.map_type).ok_or_else(|| {
                Error::new(format!(
                    "map '{}': type {} has no bpfman name",
                    m.name, m.map_type
                ))
            })?;
            labels.maps.insert(m.name.clone(), t);
        }
        Ok(labels)
    }

    /// The two label values: compact JSON objects, keys sorted.
    pub fn values(&self) -> (String, String) {
        let enc = |m: &BTreeMap<String, String>| {
            serde_json::to_string(m).expect("a map of strings always encodes")
        };
        (enc(&self.programs), enc(&self.maps))
    }

    /// Reads the two label values; each must be a JSON object of strings.
    pub fn parse(programs: &str, maps: &str) -> Result<Labels> {
        let dec = |label: &str, v: &str| -> Result<BTreeMap<String, String>> {
            serde_json::from_str(v).map_err(|e| {
                Error::new(format!(
                    "label {label} is not a JSON object of name → type strings: {e}"
                ))
            })
        };
        Ok(Labels {
            programs: dec(super::PROGRAMS_LABEL, programs)?,
            maps: dec(super::MAPS_LABEL, maps)?,
        })
    }
}

/// bpfman's program type for a section name, by its prefix (the whole
/// name, or the prefix followed by '/' or '.').
pub fn program_type(section: &str) -> Option<&'static str> {
    const TABLE: &[(&str, &str)] = &[
        ("xdp", "xdp"),
        ("tc", "tc"),
        ("classifier", "tc"),
        ("tcx", "tcx"),
        ("kprobe", "kprobe"),
        ("ksyscall", "kprobe"),
        ("kretprobe", "kretprobe"),
        ("kretsyscall", "kretprobe"),
        ("uprobe", "uprobe"),
        ("uretprobe", "uretprobe"),
        ("tracepoint", "tracepoint"),
        ("tp", "tracepoint"),
        ("fentry", "fentry"),
        ("fexit", "fexit"),
        ("lsm", "lsm"),
    ];
    TABLE
        .iter()
        .filter(|(p, _)| {
            section == *p
                || section
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('.'))
        })
        .max_by_key(|(p, _)| p.len())
        .map(|(_, t)| *t)
}

/// bpfman's name of a `BPF_MAP_TYPE_*` value: the kernel's (bpftool's)
/// name with `per_cpu` where it says `percpu`.
pub fn map_type(t: u32) -> Option<String> {
    crate::model::map_def::map_type_name(t).map(|n| n.replace("percpu", "per_cpu"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_prefixes_give_bpfman_types() {
        assert_eq!(program_type("xdp"), Some("xdp"));
        assert_eq!(program_type("xdp.frags"), Some("xdp"));
        assert_eq!(program_type("tc/ingress"), Some("tc"));
        assert_eq!(program_type("tcx/egress"), Some("tcx"));
        assert_eq!(program_type("kretprobe/do_exit"), Some("kretprobe"));
        assert_eq!(program_type("uretprobe//bin/sh:main"), Some("uretprobe"));
        assert_eq!(
            program_type("tp/syscalls/sys_enter_kill"),
            Some("tracepoint")
        );
        assert_eq!(program_type("fexit/do_unlinkat"), Some("fexit"));
        assert_eq!(program_type("lsm/file_open"), Some("lsm"));
        assert_eq!(program_type("xdpfoo"), None);
        assert_eq!(program_type("socket"), None);
    }

    #[test]
    fn map_names_follow_bpfman_spelling() {
        assert_eq!(map_type(6).as_deref(), Some("per_cpu_array"));
        assert_eq!(map_type(27).as_deref(), Some("ringbuf"));
        assert_eq!(map_type(3).as_deref(), Some("prog_array"));
        assert_eq!(map_type(99).as_deref(), None);
    }

    #[test]
    fn labels_must_be_json_objects_of_strings() {
        let l = Labels::parse(r#"{"pass":"xdp"}"#, "{}").unwrap();
        assert_eq!(l.programs["pass"], "xdp");
        let e = Labels::parse("not json", "{}").unwrap_err();
        assert!(e.to_string().contains("io.ebpf.programs"), "{e}");
        let e = Labels::parse("{}", r#"{"m":1}"#).unwrap_err();
        assert!(e.to_string().contains("io.ebpf.maps"), "{e}");
    }
}
