//! `bpfld verify`: load every program of an object and show what the
//! kernel's verifier says about each (veristat's statistics), the end of
//! its log and the source line where it rejects one, and for a composed
//! XDP object each component's share of the dispatcher.

use std::fmt::Write as _;
use std::path::Path;

use bpfld::{Error, Result};
use bpfld_kernel::{ComponentShare, ProgramVerdict, VerifyOptions};

pub struct Args<'a> {
    pub file: &'a Path,
    pub prog: Option<&'a str>,
    /// `VAR=VALUE` globals set before load.
    pub sets: &'a [String],
    pub json: bool,
    pub csv: bool,
}

/// veristat's CSV columns, in its order (its default CSV output).
pub const CSV_COLUMNS: &[&str] = &[
    "file_name",
    "prog_name",
    "verdict",
    "duration",
    "total_insns",
    "total_states",
    "peak_states",
    "max_states_per_insn",
    "max_mark_read_len",
    "prog_size",
    "prog_size_jited",
    "prog_type",
    "attach_type",
    "stack_depth",
];

pub fn verify(args: &Args<'_>) -> Result<()> {
    let in_file = |e: Error| e.in_file(args.file.display());
    let (_, object) = crate::input::read_object_arg(&args.file.to_string_lossy())?;
    // bpfld's reader checks every part first, so hostile bytes get a clear
    // error instead of reaching aya's parser.
    bpfld::Object::parse(&object).map_err(in_file)?;
    let globals = bpfld_kernel::encode_globals(&object, args.sets)
        .map_err(|e| in_file(Error::new(e.to_string())))?;
    let opts = VerifyOptions {
        prog: args.prog,
        globals: &globals,
    };
    let outcome =
        std::panic::catch_unwind(|| bpfld_kernel::verify(&object, &opts)).map_err(|_| {
            in_file(Error::new(
                "the loader (aya) failed on this object in a way it does not report as an error",
            ))
        })?;
    let verdicts = outcome.map_err(|e| in_file(Error::new(e.to_string())))?;
    let file = args.file.display().to_string();
    if args.json {
        crate::print_json(&to_json(&file, &verdicts))?;
    } else if args.csv {
        crate::emit(&to_csv(&file, &verdicts))?;
    } else {
        crate::emit(&to_text(&file, &verdicts))?;
    }
    let failed: Vec<&str> = verdicts
        .iter()
        .filter(|v| !v.success())
        .map(|v| v.name.as_str())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(in_file(Error::new(format!(
            "{} of {} programs failed verification: {}",
            failed.len(),
            verdicts.len(),
            failed.join(", ")
        ))))
    }
}

fn verdict_word(v: &ProgramVerdict) -> &'static str {
    if v.success() {
        "success"
    } else {
        "failure"
    }
}

/// A number, or `-` when the kernel did not say.
fn or_dash<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |n| n.to_string())
}

/// The header of the component table: what its numbers are.
const SHARES_NOTE: &str = "static: the loaded program's instructions that are \
the component's; verified: the instructions the verifier processed there, counted \
from its instruction log; rest: the dispatcher's own code and code no single \
component owns; -: cannot be told apart (an inlined component's object unreadable, \
or its source files shared)";

pub fn to_text(file: &str, verdicts: &[ProgramVerdict]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "file: {file}");
    if verdicts.is_empty() {
        s.push_str("no programs\n");
        return s;
    }
    let head = [
        "program",
        "type",
        "verdict",
        "insns",
        "verified",
        "states",
        "peak",
        "max/insn",
        "mark_read",
        "time_us",
        "stack",
    ];
    let rows: Vec<Vec<String>> = verdicts
        .iter()
        .map(|v| {
            let st = v.stats.as_ref();
            vec![
                v.name.clone(),
                v.prog_type.clone(),
                verdict_word(v).to_string(),
                v.insns.to_string(),
                or_dash(st.map(|s| s.verified_insns)),
                or_dash(st.map(|s| s.total_states)),
                or_dash(st.map(|s| s.peak_states)),
                or_dash(st.map(|s| s.max_states_per_insn)),
                or_dash(st.and_then(|s| s.mark_read)),
                or_dash(st.and_then(|s| s.duration_us)),
                st.filter(|s| !s.stack_depth.is_empty()).map_or_else(
                    || "-".to_string(),
                    |s| {
                        s.stack_depth
                            .iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join("+")
                    },
                ),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..head.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([head[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            // Names left, numbers right.
            if i < 3 {
                let _ = write!(l, "{:<w$}  ", c, w = widths[i]);
            } else {
                let _ = write!(l, "{:>w$}  ", c, w = widths[i]);
            }
        }
        l.trim_end().to_string() + "\n"
    };
    s.push_str(&line(head.to_vec()));
    for r in &rows {
        s.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    for v in verdicts {
        if let Some(r) = &v.rejection {
            let _ = writeln!(s, "\n{}: rejected ({})", v.name, r.error);
            if let Some(i) = &r.report.instruction {
                let _ = writeln!(s, "  at: {i}");
            }
            if let Some(src) = &r.source {
                let _ = writeln!(s, "  source: {}:{}: {}", src.file, src.line, src.text);
            }
            if let Some(why) = &r.report.reason {
                let _ = writeln!(s, "  reason: {why}");
            }
            if r.report.tail.is_empty() {
                s.push_str("  (the kernel gave no verifier log)\n");
            } else {
                let _ = writeln!(s, "  verifier log (last {} lines):", r.report.tail.len());
                for l in &r.report.tail {
                    let _ = writeln!(s, "    {l}");
                }
            }
        }
        if !v.components.is_empty() {
            let _ = writeln!(s, "\n{}: instructions per component", v.name);
            let _ = writeln!(s, "  ({SHARES_NOTE})");
            let _ = writeln!(
                s,
                "  {:<6}  {:<32}  {:>6}  {:>6}  {:>8}  {:>6}  {:>10}",
                "slot", "component", "static", "share", "verified", "share", "optimised"
            );
            let total_static: usize = v.insns.max(1);
            let total_verified: u64 = v.stats.as_ref().map_or(0, |s| s.verified_insns).max(1);
            for c in &v.components {
                let _ = writeln!(
                    s,
                    "  {:<6}  {:<32}  {:>6}  {}  {:>8}  {}  {:>10}",
                    c.slot,
                    format!("{}:{}", c.file, c.program),
                    or_dash(c.static_insns),
                    c.static_insns.map_or_else(
                        || "     -".to_string(),
                        |n| format!("{:>5.1}%", 100.0 * n as f64 / total_static as f64)
                    ),
                    or_dash(c.verified_insns),
                    c.verified_insns.map_or_else(
                        || "     -".to_string(),
                        |n| format!("{:>5.1}%", 100.0 * n as f64 / total_verified as f64)
                    ),
                    // Before and after bpfld's optimisation pass.
                    c.optimized
                        .map_or_else(|| "-".to_string(), |o| format!("{}->{}", o.before, o.after)),
                );
            }
            // The dispatcher's own code, and anything not attributed.
            let rest_static = v
                .components
                .iter()
                .map(|c| c.static_insns)
                .sum::<Option<usize>>()
                .map(|sum| v.insns.saturating_sub(sum));
            let rest_verified = v
                .components
                .iter()
                .map(|c| c.verified_insns)
                .sum::<Option<u64>>()
                .zip(v.stats.as_ref())
                .map(|(sum, st)| st.verified_insns.saturating_sub(sum));
            let _ = writeln!(
                s,
                "  {:<6}  {:<32}  {:>6}  {}  {:>8}  {}",
                "-",
                "(rest)",
                or_dash(rest_static),
                rest_static.map_or_else(
                    || "     -".to_string(),
                    |n| format!("{:>5.1}%", 100.0 * n as f64 / total_static as f64)
                ),
                or_dash(rest_verified),
                rest_verified.map_or_else(
                    || "     -".to_string(),
                    |n| format!("{:>5.1}%", 100.0 * n as f64 / total_verified as f64)
                ),
            );
        }
    }
    s
}

/// A CSV field: quoted when it holds a comma, quote or line break.
fn csv_field(f: &str) -> String {
    if f.contains([',', '"', '\n']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f.to_string()
    }
}

/// veristat's CSV: its columns, its verdict words, durations in usec; a
/// number the kernel did not give is 0, as veristat writes it.
/// `prog_size` is the instruction count handed to the kernel and
/// `prog_size_jited` the JIT-compiled bytes, as in veristat.
pub fn to_csv(file: &str, verdicts: &[ProgramVerdict]) -> String {
    let mut s = CSV_COLUMNS.join(",") + "\n";
    let base = Path::new(file)
        .file_name()
        .map_or_else(|| file.to_string(), |n| n.to_string_lossy().into_owned());
    for v in verdicts {
        let st = v.stats.clone().unwrap_or_default();
        let row = [
            base.clone(),
            v.name.clone(),
            verdict_word(v).to_string(),
            st.duration_us.unwrap_or(0).to_string(),
            st.verified_insns.to_string(),
            st.total_states.to_string(),
            st.peak_states.to_string(),
            st.max_states_per_insn.to_string(),
            st.mark_read.unwrap_or(0).to_string(),
            // veristat's prog_size: the instructions handed to the kernel.
            v.insns.to_string(),
            v.jited_bytes.unwrap_or(0).to_string(),
            v.prog_type.clone(),
            // The expected attach type 0 has a name too, which veristat
            // prints for programs that have none.
            v.attach_type
                .clone()
                .unwrap_or_else(|| "cgroup_inet_ingress".to_string()),
            v.stack_depth_total().unwrap_or(0).to_string(),
        ];
        let cells: Vec<String> = row.iter().map(|c| csv_field(c)).collect();
        s.push_str(&cells.join(","));
        s.push('\n');
    }
    s
}

fn share_json(c: &ComponentShare) -> serde_json::Value {
    serde_json::json!({
        "index": c.index,
        "slot": c.slot,
        "file": c.file,
        "program": c.program,
        "static_insns": c.static_insns,
        "verified_insns": c.verified_insns,
        "optimized": c.optimized,
    })
}

pub fn to_json(file: &str, verdicts: &[ProgramVerdict]) -> serde_json::Value {
    use serde_json::json;
    verdicts
        .iter()
        .map(|v| {
            let st = v.stats.as_ref();
            let rejection = v.rejection.as_ref().map(|r| {
                json!({
                    "error": r.error,
                    "instruction": r.report.instruction,
                    "insn": r.insn,
                    "reason": r.report.reason,
                    "source": r.source.as_ref().map(|s| json!({
                        "file": s.file,
                        "line": s.line,
                        "column": s.column,
                        "text": s.text,
                    })),
                    "log_tail": r.report.tail,
                })
            });
            let mut o = json!({
                "file_name": file,
                "prog_name": v.name,
                "section": v.section,
                "prog_type": v.prog_type,
                "attach_type": v.attach_type,
                "verdict": verdict_word(v),
                "insns": v.insns,
                "verified_insns": st.map(|s| s.verified_insns),
                "total_states": st.map(|s| s.total_states),
                "peak_states": st.map(|s| s.peak_states),
                "max_states_per_insn": st.map(|s| s.max_states_per_insn),
                "mark_read": st.and_then(|s| s.mark_read),
                "duration_us": st.and_then(|s| s.duration_us),
                "stack_depth": st.map(|s| s.stack_depth.clone()),
                "xlated_insns": v.xlated_insns,
                "jited_bytes": v.jited_bytes,
                "rejection": rejection,
            });
            if !v.components.is_empty() {
                if let Some(m) = o.as_object_mut() {
                    m.insert("components_note".into(), SHARES_NOTE.into());
                    m.insert(
                        "components".into(),
                        v.components.iter().map(share_json).collect(),
                    );
                }
            }
            o
        })
        .collect()
}
