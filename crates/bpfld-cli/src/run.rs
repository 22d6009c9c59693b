//! `bpfld run`: load an object into the kernel, run one program with
//! BPF_PROG_TEST_RUN, and show its verdict, timing, output and maps.

use std::fmt::Write as _;
use std::path::Path;

use bpfld::model::btf::TypeId;
use bpfld::{Error, Result};
use bpfld_kernel::{MapDump, ProgKind, RunOptions, RunResult};

pub struct Args<'a> {
    pub file: &'a Path,
    pub prog: Option<&'a str>,
    pub data: Option<&'a Path>,
    /// Run every packet of this capture (pcap or pcapng) instead.
    pub pcap: Option<&'a Path>,
    /// Write the packet as the program left it (a pcap with --pcap).
    pub data_out: Option<&'a Path>,
    pub repeat: u32,
    pub json: bool,
    /// Show only these maps (all when empty).
    pub maps: &'a [String],
    /// Show entries whose value is all zero too.
    pub all: bool,
    /// `VAR=VALUE` globals set before load.
    pub sets: &'a [String],
    /// `(NAME, KEY=VALUE)` map entries written before the run.
    pub map_updates: &'a [(String, String)],
}

pub fn run(args: &Args<'_>) -> Result<()> {
    let in_file = |e: Error| e.in_file(args.file.display());
    // A file, or the object inside an image (`oci-archive:`, `oci:`).
    let (_, object) = crate::input::read_object_arg(&args.file.to_string_lossy())?;
    let data = match args.data {
        Some(p) => Some(std::fs::read(p).map_err(|e| {
            in_file(Error::new(format!(
                "cannot read packet file {}: {e}",
                p.display()
            )))
        })?),
        None => None,
    };
    let capture = match args.pcap {
        Some(p) => {
            let in_pcap = |e: Error| e.in_file(p.display());
            let bytes =
                std::fs::read(p).map_err(|e| in_pcap(Error::new(format!("cannot read: {e}"))))?;
            let cap = bpfld::pcap::parse(&bytes).map_err(in_pcap)?;
            if cap.packets.is_empty() {
                return Err(in_pcap(Error::new("the capture holds no packets")));
            }
            Some(cap)
        }
        None => None,
    };
    // bpfld's reader checks every part first, so hostile bytes get a clear
    // error instead of reaching aya's parser.
    let model = bpfld::read::elf::parse(&object).map_err(in_file)?;
    let globals = bpfld_kernel::encode_globals(&object, args.sets)
        .map_err(|e| in_file(Error::new(e.to_string())))?;
    let map_updates = bpfld_kernel::encode_map_updates(&object, args.map_updates)
        .map_err(|e| in_file(Error::new(e.to_string())))?;
    let opts = RunOptions {
        prog: args.prog,
        data: data.as_deref(),
        repeat: args.repeat,
        globals: &globals,
        map_updates: &map_updates,
        maps_after_last_only: true,
    };
    let packets: Vec<&[u8]> = match &capture {
        Some(c) => c.packets.iter().map(|p| p.data.as_slice()).collect(),
        None => vec![data.as_deref().unwrap_or(&bpfld_kernel::DEFAULT_PACKET)],
    };
    // aya's parser must not take the process down either.
    let outcome = std::panic::catch_unwind(|| bpfld_kernel::run_all(&object, &opts, &packets))
        .map_err(|_| {
            in_file(Error::new(
                "the loader (aya) failed on this object in a way it does not report as an error",
            ))
        })?;
    let mut results = outcome.map_err(|e| in_file(Error::new(e.to_string())))?;
    let Some(mut res) = results.pop() else {
        return Err(in_file(Error::new("no run result")));
    };
    results.push(res.clone());
    let shown = select_maps(&mut res, args.maps, args.all).map_err(in_file)?;
    let types = MapTypes::of(&model);
    if let Some(out) = args.data_out {
        let bytes = match &capture {
            Some(c) => {
                let left: Vec<bpfld::pcap::Packet> = results
                    .iter()
                    .zip(&c.packets)
                    .map(|(r, p)| bpfld::pcap::Packet {
                        data: r.data_out.clone(),
                        time_ns: p.time_ns,
                    })
                    .collect();
                bpfld::pcap::write_pcap(c.linktype, &left)
            }
            None => res.data_out.clone(),
        };
        bpfld::write::elf::write_atomic(out, &bytes).map_err(|e| e.in_file(out.display()))?;
    }
    let file = args.file.display().to_string();
    match (&capture, args.json) {
        (None, true) => crate::print_json(&to_json(&file, &res, &shown, &types)),
        (None, false) => crate::emit(&render_text(&res, &shown, &types)),
        (Some(_), true) => {
            let mut v = to_json(&file, &res, &shown, &types);
            if let Some(o) = v.as_object_mut() {
                for k in [
                    "retval",
                    "action",
                    "duration_ns",
                    "data_out",
                    "data_out_len",
                ] {
                    o.remove(k);
                }
                o.insert("runs".into(), runs_json(&results, &packets));
            }
            crate::print_json(&v)
        }
        (Some(_), false) => {
            let text = render_text(&res, &shown, &types);
            crate::emit(&runs_text(&results, &packets, &text))
        }
    }
}

/// The kernel reports no duration for raw tracepoint and syscall runs.
fn duration_json(r: &RunResult) -> serde_json::Value {
    if matches!(r.kind, ProgKind::RawTracepoint | ProgKind::Syscall) {
        serde_json::Value::Null
    } else {
        r.duration_ns.into()
    }
}

/// One verdict per packet of a capture, for JSON.
fn runs_json(results: &[RunResult], packets: &[&[u8]]) -> serde_json::Value {
    results
        .iter()
        .zip(packets)
        .enumerate()
        .map(|(i, (r, p))| {
            serde_json::json!({
                "index": i,
                "retval": r.retval,
                "action": r.kind.action_name(r.retval),
                "duration_ns": duration_json(r),
                "data_in_len": p.len(),
                "data_out_len": r.data_out.len(),
                "data_out": hex(&r.data_out),
            })
        })
        .collect()
}

/// The single-run listing with its verdict lines replaced by a table of
/// every packet's verdict.
fn runs_text(results: &[RunResult], packets: &[&[u8]], single: &str) -> String {
    let mut s = String::new();
    let mut lines = single.lines();
    if let Some(first) = lines.next() {
        s.push_str(first);
        s.push('\n');
    }
    let _ = writeln!(s, "runs: {} packets", results.len());
    let _ = writeln!(
        s,
        "  {:>5}  {:>10}  {:<16}  {:>11}  {:>6}  {:>7}",
        "index", "retval", "action", "duration_ns", "len_in", "len_out"
    );
    for (i, (r, p)) in results.iter().zip(packets).enumerate() {
        let _ = writeln!(
            s,
            "  {:>5}  {:>10}  {:<16}  {:>11}  {:>6}  {:>7}",
            i,
            r.retval,
            r.kind.action_name(r.retval).unwrap_or("-"),
            r.duration_ns,
            p.len(),
            r.data_out.len()
        );
    }
    for l in lines.filter(|l| {
        !(l.starts_with("retval: ") || l.starts_with("duration: ") || l.starts_with("data_out: "))
    }) {
        s.push_str(l);
        s.push('\n');
    }
    s
}

/// Per map (in the result's order): how many entries were left out because
/// their value is all zero.
pub struct Shown {
    pub zero_entries: Vec<usize>,
}

/// Keeps the maps named in `names` (all when empty; an unknown name is an
/// error listing the maps) and, unless `all`, only their entries whose
/// value is not all zero (xdp-filter's arrays are 65536 zero entries each).
pub fn select_maps(res: &mut RunResult, names: &[String], all: bool) -> Result<Shown> {
    if let Some(unknown) = names
        .iter()
        .find(|n| !res.maps.iter().any(|m| &&m.name == n))
    {
        let list: Vec<&str> = res.maps.iter().map(|m| m.name.as_str()).collect();
        return Err(Error::new(if list.is_empty() {
            format!("--map {unknown}: the object has no maps")
        } else {
            format!(
                "--map {unknown}: no such map; the object's maps are: {}",
                list.join(", ")
            )
        }));
    }
    if !names.is_empty() {
        res.maps.retain(|m| names.contains(&m.name));
    }
    let mut zero_entries = Vec::with_capacity(res.maps.len());
    for m in &mut res.maps {
        let before = m.entries.len();
        if !all {
            m.entries.retain(|(_, v)| v.iter().any(|&b| b != 0));
        }
        zero_entries.push(before - m.entries.len());
    }
    Ok(Shown { zero_entries })
}

/// `btf` with the variables of global data placed where their symbols are:
/// the compiler may leave every DATASEC offset 0 for the loader to fill
/// (libbpf does so from the symbol table).
fn data_offsets(
    obj: &bpfld::model::object::Object,
    btf: &bpfld::model::btf::Btf,
) -> bpfld::model::btf::Btf {
    use bpfld::model::btf::TypeData;
    use bpfld::model::object::SymbolPlace;
    let mut out = btf.clone();
    for sec in &obj.sections {
        let Some(ds) = btf.find_datasec(&sec.name) else {
            continue;
        };
        let names: Vec<String> = btf
            .datasec_vars(ds)
            .unwrap_or_default()
            .iter()
            .map(|v| v.name.to_string())
            .collect();
        let Some(TypeData::Datasec { vars, .. }) = out.get_mut(ds).map(|t| &mut t.data) else {
            continue;
        };
        for (v, name) in vars.iter_mut().zip(&names) {
            if let Some(sym) = obj
                .symbols
                .iter()
                .find(|s| s.place == SymbolPlace::Section(sec.id) && &s.name == name)
            {
                v.offset = u32::try_from(sym.value).unwrap_or(v.offset);
            }
        }
    }
    out
}

/// The BTF types of every map's key and value, from the object.
pub struct MapTypes {
    btf: Option<bpfld::model::btf::Btf>,
    /// Map name to (key type, value type); a DATASEC for global data.
    types: std::collections::HashMap<String, (Option<TypeId>, Option<TypeId>)>,
}

impl MapTypes {
    pub fn of(obj: &bpfld::model::object::Object) -> MapTypes {
        let mut types = std::collections::HashMap::new();
        let Some(btf) = &obj.btf else {
            return MapTypes { btf: None, types };
        };
        let btf = &data_offsets(obj, btf);
        let pointee = |id| bpfld::model::map_def::pointee(btf, id).ok();
        if let Some(maps) = btf.find_datasec(".maps") {
            for v in btf.datasec_vars(maps).unwrap_or_default() {
                let Ok(def) = btf.resolve(v.type_id) else {
                    continue;
                };
                let mut key = None;
                let mut value = None;
                for m in btf.members(def).unwrap_or_default() {
                    match m.name {
                        "key" => key = pointee(m.type_id),
                        "value" => value = pointee(m.type_id),
                        _ => {}
                    }
                }
                types.insert(v.name.to_string(), (key, value));
            }
        }
        for sec in &obj.sections {
            if matches!(
                sec.kind,
                bpfld::model::object::SectionKind::Data
                    | bpfld::model::object::SectionKind::Rodata
                    | bpfld::model::object::SectionKind::Bss
            ) {
                if let Some(ds) = btf.find_datasec(&sec.name) {
                    types.insert(sec.name.clone(), (None, Some(ds)));
                }
            }
        }
        MapTypes {
            btf: Some(btf.clone()),
            types,
        }
    }

    fn format(&self, map: &str, key: bool, bytes: &[u8]) -> Option<serde_json::Value> {
        let btf = self.btf.as_ref()?;
        let (k, v) = self.types.get(map)?;
        let id = if key { (*k)? } else { (*v)? };
        Some(bpfld::show::value::format(btf, id, bytes))
    }

    /// Global data: its "key" (the index 0) is not shown typed, as bpftool.
    fn is_data(&self, map: &str) -> bool {
        map.starts_with('.')
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

pub fn render_text(r: &RunResult, shown: &Shown, types: &MapTypes) -> String {
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
    if matches!(r.kind, ProgKind::RawTracepoint | ProgKind::Syscall) {
        let _ = writeln!(
            s,
            "duration: not reported for {} programs (run once)",
            r.kind
        );
    } else {
        let _ = writeln!(
            s,
            "duration: {} ns per run (average over {} run{})",
            r.duration_ns,
            r.repeat,
            if r.repeat == 1 { "" } else { "s" }
        );
    }
    let _ = writeln!(s, "data_out: {} bytes", r.data_out.len());
    if let Some(n) = r.verified_insns {
        let _ = writeln!(s, "verifier: {n} instructions processed");
    }
    if r.maps.is_empty() {
        s.push_str("maps: none\n");
        return s;
    }
    s.push_str("maps:\n");
    for (i, m) in r.maps.iter().enumerate() {
        let _ = write!(
            s,
            "  {} ({}, key {} B, value {} B, max_entries {}",
            m.name, m.map_type, m.key_size, m.value_size, m.max_entries
        );
        if let Some(n) = m.per_cpu {
            let _ = write!(s, ", {n} CPUs");
        }
        let _ = write!(s, "): {} entries", m.entries.len());
        match shown.zero_entries.get(i) {
            Some(&z) if z > 0 => {
                let _ = writeln!(s, " ({z} all-zero entries not shown; --all shows them)");
            }
            _ => s.push('\n'),
        }
        if let Some(note) = &m.note {
            let _ = writeln!(s, "    ({note})");
        }
        let text = |key: bool, bytes: &[u8]| match types.format(&m.name, key, bytes) {
            Some(v) if !(key && types.is_data(&m.name)) => v.to_string(),
            _ => hex(bytes),
        };
        for (k, v) in &m.entries {
            let parts = value_parts(m, v);
            if m.per_cpu.is_some() {
                let _ = writeln!(s, "    {}:", text(true, k));
                for (cpu, p) in parts.iter().enumerate() {
                    let _ = writeln!(s, "      cpu{cpu}: {}", text(false, p));
                }
            } else {
                let _ = writeln!(s, "    {}: {}", text(true, k), text(false, v));
            }
        }
    }
    s
}

pub fn to_json(file: &str, r: &RunResult, shown: &Shown, types: &MapTypes) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let mut maps = Map::new();
    let mut info = Map::new();
    for (i, m) in r.maps.iter().enumerate() {
        let entries: Vec<Value> = m
            .entries
            .iter()
            .map(|(k, v)| {
                let mut e = json!({ "key": hex(k), "value": hex(v) });
                // bpftool's "formatted": typed key and value (or per-CPU
                // values); global data has no typed key.
                let mut formatted = Map::new();
                if !types.is_data(&m.name) {
                    if let Some(fk) = types.format(&m.name, true, k) {
                        formatted.insert("key".into(), fk);
                    }
                }
                if m.per_cpu.is_some() {
                    let parts = value_parts(m, v);
                    e["per_cpu"] = parts.iter().map(|p| hex(p)).collect();
                    let typed: Option<Vec<Value>> = parts
                        .iter()
                        .enumerate()
                        .map(|(cpu, p)| {
                            types
                                .format(&m.name, false, p)
                                .map(|fv| json!({ "cpu": cpu, "value": fv }))
                        })
                        .collect();
                    if let Some(t) = typed {
                        formatted.insert("values".into(), Value::Array(t));
                    }
                } else if let Some(fv) = types.format(&m.name, false, v) {
                    formatted.insert("value".into(), fv);
                }
                if !formatted.is_empty() {
                    e["formatted"] = Value::Object(formatted);
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
                "zero_entries_not_shown": shown.zero_entries.get(i).copied().unwrap_or(0),
            }),
        );
    }
    json!({
        "file": file,
        "program": r.program,
        "type": r.kind.name(),
        "retval": r.retval,
        "action": r.kind.action_name(r.retval),
        "duration_ns": duration_json(r),
        "repeat": r.repeat,
        "data_out_len": r.data_out.len(),
        "verified_insns": r.verified_insns,
        "data_out": hex(&r.data_out),
        "maps": maps,
        "map_info": info,
    })
}
