//! `bpfld run`: load an object into the kernel, run one program with
//! BPF_PROG_TEST_RUN, and show its verdict, timing, output and maps.

use std::fmt::Write as _;
use std::path::Path;

use bpfld::{Error, Result};
use bpfld_kernel::{MapDump, RunOptions, RunResult};

pub struct Args<'a> {
    pub file: &'a Path,
    pub prog: Option<&'a str>,
    pub data: Option<&'a Path>,
    pub repeat: u32,
    pub json: bool,
}

pub fn run(args: &Args<'_>) -> Result<()> {
    let in_file = |e: Error| e.in_file(args.file.display());
    let object =
        std::fs::read(args.file).map_err(|e| in_file(Error::new(format!("cannot read: {e}"))))?;
    let data = match args.data {
        Some(p) => Some(std::fs::read(p).map_err(|e| {
            in_file(Error::new(format!(
                "cannot read packet file {}: {e}",
                p.display()
            )))
        })?),
        None => None,
    };
    let opts = RunOptions {
        prog: args.prog,
        data: data.as_deref(),
        repeat: args.repeat,
    };
    // bpfld's reader checks every part first, so hostile bytes get a clear
    // error instead of reaching aya's parser.
    bpfld::read::elf::parse(&object).map_err(in_file)?;
    // aya's parser must not take the process down either.
    let outcome = std::panic::catch_unwind(|| bpfld_kernel::run(&object, &opts)).map_err(|_| {
        in_file(Error::new(
            "the loader (aya) failed on this object in a way it does not report as an error",
        ))
    })?;
    let res = outcome.map_err(|e| in_file(Error::new(e.to_string())))?;
    if args.json {
        crate::print_json(&to_json(&args.file.display().to_string(), &res))
    } else {
        crate::emit(&render_text(&res))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Per-CPU values split by CPU, others as one piece.
fn value_parts<'v>(m: &MapDump, value: &'v [u8]) -> Vec<&'v [u8]> {
    match m.per_cpu {
        Some(_) if m.value_size > 0 => value.chunks(m.value_size as usize).collect(),
        _ => vec![value],
    }
}

pub fn render_text(r: &RunResult) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "program: {} ({})", r.program, r.kind);
    match r.kind.action_name(r.retval) {
        Some(a) => {
            let _ = writeln!(s, "retval: {} ({a})", r.retval);
        }
        None => {
            let _ = writeln!(s, "retval: {}", r.retval);
        }
    }
    let _ = writeln!(
        s,
        "duration: {} ns per run (average over {} run{})",
        r.duration_ns,
        r.repeat,
        if r.repeat == 1 { "" } else { "s" }
    );
    let _ = writeln!(s, "data_out: {} bytes", r.data_out.len());
    if let Some(n) = r.verified_insns {
        let _ = writeln!(s, "verifier: {n} instructions processed");
    }
    if r.maps.is_empty() {
        s.push_str("maps: none\n");
        return s;
    }
    s.push_str("maps:\n");
    for m in &r.maps {
        let _ = write!(
            s,
            "  {} ({}, key {} B, value {} B, max_entries {}",
            m.name, m.map_type, m.key_size, m.value_size, m.max_entries
        );
        if let Some(n) = m.per_cpu {
            let _ = write!(s, ", {n} CPUs");
        }
        let _ = writeln!(s, "): {} entries", m.entries.len());
        if let Some(note) = &m.note {
            let _ = writeln!(s, "    ({note})");
        }
        for (k, v) in &m.entries {
            let parts = value_parts(m, v);
            if m.per_cpu.is_some() {
                let _ = writeln!(s, "    {}:", hex(k));
                for (cpu, p) in parts.iter().enumerate() {
                    let _ = writeln!(s, "      cpu{cpu}: {}", hex(p));
                }
            } else {
                let _ = writeln!(s, "    {}: {}", hex(k), hex(v));
            }
        }
    }
    s
}

pub fn to_json(file: &str, r: &RunResult) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let mut maps = Map::new();
    let mut info = Map::new();
    for m in &r.maps {
        let entries: Vec<Value> = m
            .entries
            .iter()
            .map(|(k, v)| {
                let mut e = json!({ "key": hex(k), "value": hex(v) });
                if m.per_cpu.is_some() {
                    e["per_cpu"] = value_parts(m, v).into_iter().map(hex).collect();
                }
                e
            })
            .collect();
        maps.insert(m.name.clone(), Value::Array(entries));
        info.insert(
            m.name.clone(),
            json!({
                "type": m.map_type,
                "key_size": m.key_size,
                "value_size": m.value_size,
                "max_entries": m.max_entries,
                "per_cpu": m.per_cpu,
                "note": m.note,
            }),
        );
    }
    json!({
        "file": file,
        "program": r.program,
        "type": r.kind.name(),
        "retval": r.retval,
        "action": r.kind.action_name(r.retval),
        "duration_ns": r.duration_ns,
        "repeat": r.repeat,
        "data_out_len": r.data_out.len(),
        "verified_insns": r.verified_insns,
        "data_out": hex(&r.data_out),
        "maps": maps,
        "map_info": info,
    })
}
