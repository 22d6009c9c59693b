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
    let model = bpfld::Object::parse(&object).map_err(in_file)?;
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
        bpfld::write_atomic(out, &bytes).map_err(|e| e.in_file(out.display()))?;
    }
    let file = args.file.display().to_string();
    match (&capture, args.json) {
        (None, true) => crate::print_json(&to_json(&file, &res, &shown, &types, None)),
        (None, false) => crate::emit(&render_text(&res, &shown, &types)),
        (Some(_), true) => {
            let runs = runs_json(&results, &packets);
            crate::print_json(&to_json(&file, &res, &shown, &types, Some(runs)))
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
fn runs_json(results: &[RunResult], packets: &[&[u8]]) -> Json {
    Json::A(
        results
            .iter()
            .zip(packets)
            .enumerate()
            .map(|(i, (r, p))| {
                obj(vec![
                    ("index", i.into()),
                    ("retval", r.retval.into()),
                    ("action", r.kind.action_name(r.retval).into()),
                    ("duration_ns", duration_json(r).into()),
                    ("data_in_len", p.len().into()),
                    ("data_out_len", r.data_out.len().into()),
                    ("data_out", hex(&r.data_out).into()),
                ])
            })
            .collect(),
    )
}

/// JSON whose objects keep their keys in the order written (serde_json's
/// own map sorts them): `bpfld run --json` prints its fields in the
/// documented order.
pub enum Json {
    V(serde_json::Value),
    O(Vec<(String, Json)>),
    A(Vec<Json>),
}

impl<T: Into<serde_json::Value>> From<T> for Json {
    fn from(v: T) -> Json {
        Json::V(v.into())
    }
}

fn obj(fields: Vec<(&str, Json)>) -> Json {
    Json::O(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

impl serde::Serialize for Json {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Json::V(v) => v.serialize(s),
            Json::O(fields) => {
                let mut m = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
            Json::A(items) => {
                let mut q = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    q.serialize_element(v)?;
                }
                q.end()
            }
        }
    }
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

/// The run as JSON; with `runs` (a capture) the single-run verdict fields
/// give way to one verdict per packet.
pub fn to_json(
    file: &str,
    r: &RunResult,
    shown: &Shown,
    types: &MapTypes,
    runs: Option<Json>,
) -> Json {
    use serde_json::{json, Value};
    let mut maps = Vec::new();
    let mut info = Vec::new();
    for (i, m) in r.maps.iter().enumerate() {
        let entries: Vec<Json> = m
            .entries
            .iter()
            .map(|(k, v)| {
                let mut e = vec![("key", hex(k).into()), ("value", hex(v).into())];
                // bpftool's "formatted": typed key and value (or per-CPU
                // values); global data has no typed key.
                let mut formatted = Vec::new();
                if !types.is_data(&m.name) {
                    if let Some(fk) = types.format(&m.name, true, k) {
                        formatted.push(("key", fk.into()));
                    }
                }
                if m.per_cpu.is_some() {
                    let parts = value_parts(m, v);
                    let hexes: Vec<Value> = parts.iter().map(|p| hex(p).into()).collect();
                    e.push(("per_cpu", hexes.into()));
                    let typed: Option<Vec<Json>> = parts
                        .iter()
                        .enumerate()
                        .map(|(cpu, p)| {
                            types
                                .format(&m.name, false, p)
                                .map(|fv| obj(vec![("cpu", cpu.into()), ("value", fv.into())]))
                        })
                        .collect();
                    if let Some(t) = typed {
                        formatted.push(("values", Json::A(t)));
                    }
                } else if let Some(fv) = types.format(&m.name, false, v) {
                    formatted.push(("value", fv.into()));
                }
                if !formatted.is_empty() {
                    e.push(("formatted", obj(formatted)));
                }
                obj(e)
            })
            .collect();
        maps.push((m.name.clone(), Json::A(entries)));
        info.push((
            m.name.clone(),
            obj(vec![
                ("type", m.map_type.clone().into()),
                ("key_size", m.key_size.into()),
                ("value_size", m.value_size.into()),
                ("max_entries", m.max_entries.into()),
                ("per_cpu", json!(m.per_cpu).into()),
                ("note", json!(m.note).into()),
                (
                    "zero_entries_not_shown",
                    shown.zero_entries.get(i).copied().unwrap_or(0).into(),
                ),
            ]),
        ));
    }
    let mut out: Vec<(&str, Json)> = vec![
        ("file", file.into()),
        ("program", r.program.clone().into()),
        ("type", r.kind.name().into()),
    ];
    let single = runs.is_none();
    if single {
        out.push(("retval", r.retval.into()));
        out.push(("action", r.kind.action_name(r.retval).into()));
        out.push(("duration_ns", duration_json(r).into()));
    }
    out.push(("repeat", r.repeat.into()));
    if single {
        out.push(("data_out_len", r.data_out.len().into()));
    }
    out.push(("verified_insns", r.verified_insns.into()));
    if single {
        out.push(("data_out", hex(&r.data_out).into()));
    }
    if let Some(runs) = runs {
        out.push(("runs", runs));
    }
    out.push(("maps", Json::O(maps)));
    out.push(("map_info", Json::O(info)));
    obj(out)
}
