//! Verifying every program of an object and reporting what the kernel's
//! verifier says about each: its verdict and its own statistics
//! (processed instructions, states, time, stack depth), and on a
//! rejection the end of its log and the source line of the instruction it
//! stopped at.
//!
//! aya creates the maps and global data (so `--set` values are frozen
//! into `.rodata` as for a run); the programs are relocated by aya's
//! object crate against those maps and then loaded by bpfld's own
//! `BPF_PROG_LOAD` with `BPF_LOG_STATS`, since aya gives the kernel no log
//! buffer when a load succeeds. The program type and expected attach type
//! come from the section name, as libbpf reads it, so programs aya cannot
//! load itself (`syscall`, `lwt_*`, ...) are verified too.

use std::collections::{HashMap, HashSet};
use std::os::fd::AsFd;

use aya_obj::btf::Btf as AyaBtf;

use crate::error::{errno_text, Error, ErrorKind, Result};
use crate::globals::GlobalValue;
use crate::load::{choose_program, load_object, program_sections};
use crate::prog_kind::prog_spec;
use crate::prog_load::{
    loaded_size, prog_load, ProgLoad, LOG_LEVEL_ALL_PATHS, LOG_LEVEL_INSNS, LOG_LEVEL_STATS,
};
use crate::relocate::{Relocated, Step};
use crate::verifier_log::{digest_verifier_log, VerifierReport};

/// What to verify.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions<'a> {
    /// Only this program (its function name); every program when `None`.
    pub prog: Option<&'a str>,
    /// Globals given new initial values before load (`--set`).
    pub globals: &'a [GlobalValue],
}

/// The verifier's statistics footer, as the kernel prints it
/// (`processed N insns (limit ..) max_states_per_insn M total_states T
/// peak_states P mark_read K`, `verification time X usec`, `stack depth
/// A+B`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifierStats {
    /// Instructions the verifier processed (`bpf_prog_info.verified_insns`).
    pub verified_insns: u64,
    pub max_states_per_insn: u64,
    pub total_states: u64,
    pub peak_states: u64,
    /// `mark_read` (kernels that no longer print it: `None`).
    pub mark_read: Option<u64>,
    /// Verification time in microseconds.
    pub duration_us: Option<u64>,
    /// Stack depth of each subprogram, in the kernel's order.
    pub stack_depth: Vec<u32>,
}

/// A source line from the program's line_info (`.BTF.ext`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLine {
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// The line's text as the compiler recorded it.
    pub text: String,
}

/// Why a program did not load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The kernel's error (`EACCES: Permission denied`), or why bpfld could
    /// not load the program at all.
    pub error: String,
    /// The verifier log digested (empty when there was no log).
    pub report: VerifierReport,
    /// The index of the instruction the verifier stopped at.
    pub insn: Option<usize>,
    /// That instruction's source line.
    pub source: Option<SourceLine>,
}

/// One program's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramVerdict {
    /// The program's name (its function name).
    pub name: String,
    /// Its section, as written in the object.
    pub section: String,
    /// libbpf's name of its type (`xdp`, `sched_cls`, ...).
    pub prog_type: String,
    /// libbpf's name of its expected attach type, when it has one.
    pub attach_type: Option<String>,
    /// Instructions handed to the kernel (the program with its subprograms).
    pub insns: usize,
    /// The verifier's statistics; `None` when the kernel printed none.
    pub stats: Option<VerifierStats>,
    /// Instructions after the verifier's rewrites (loaded programs only).
    pub xlated_insns: Option<u32>,
    /// JIT-compiled size in bytes (loaded programs only, 0 without JIT).
    pub jited_bytes: Option<u32>,
    /// Why it failed; `None` when it loaded.
    pub rejection: Option<Rejection>,
    /// For the dispatcher of a composed XDP object (`bpfld xdp compose`):
    /// each component's instructions in it, in run order.
    pub components: Vec<ComponentShare>,
}

/// One component's part of a composed dispatcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentShare {
    /// Its place in the manifest, its slot, object file and program.
    pub index: usize,
    pub slot: String,
    pub file: String,
    pub program: String,
    /// Instructions of the loaded program that are the component's; `None`
    /// when they cannot be told apart (an inlined component whose object
    /// cannot be read, or whose source files another component shares).
    pub static_insns: Option<usize>,
    /// Instructions the verifier processed there (from its instruction
    /// log); `None` when the log could not be had or the component's
    /// instructions cannot be told apart.
    pub verified_insns: Option<u64>,
    /// Its inlined instructions before and after bpfld's optimisation
    /// pass, from the link report the composition carries; `None` when the
    /// pass did not run (`--no-optimize`, a called component).
    pub optimized: Option<bpfld::link::InsnCounts>,
}

impl ProgramVerdict {
    pub fn success(&self) -> bool {
        self.rejection.is_none()
    }

    /// The sum of the subprograms' stack depths (veristat's `stack_depth`).
    pub fn stack_depth_total(&self) -> Option<u64> {
        self.stats
            .as_ref()
            .filter(|s| !s.stack_depth.is_empty())
            .map(|s| s.stack_depth.iter().map(|&d| u64::from(d)).sum())
    }
}

/// Room for the statistics-only log, and for the instruction log of a
/// rejection (the kernel keeps its end when it overflows, which is the
/// part shown).
const STATS_LOG_SIZE: usize = 64 * 1024;
const FULL_LOG_SIZE: usize = 16 * 1024 * 1024;

fn obj_err(what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Object, what.to_string())
}

/// Verifies every program of `object` (or the one `opts.prog` names): each
/// is loaded alone, with the object's maps, and the verifier's verdict and
/// statistics are read from its log. A program the verifier rejects is a
/// [`ProgramVerdict`] with a [`Rejection`], not an error; errors are for
/// objects that cannot be read or whose maps cannot be created.
pub fn verify(object: &[u8], opts: &VerifyOptions<'_>) -> Result<Vec<ProgramVerdict>> {
    let model = bpfld::Object::parse(object).map_err(obj_err)?;
    // Without bpf() at all, say so once; an EPERM for one program later is
    // that program's verdict (lockdown refuses some types to root too).
    crate::error::probe_bpf()?;
    let loaded = load_object(object, opts.globals)?;
    if let Some(w) = opts.prog {
        choose_program(&loaded.ebpf, Some(w))?;
    }
    let relocated = crate::relocate::relocate(&loaded.bytes, &loaded.ebpf).map_err(|e| {
        let text = crate::error::chain(&*e.error);
        obj_err(match e.step {
            Step::Btf => format!("BTF: {text}"),
            Step::CoRe => format!("CO-RE: {text}"),
            Step::Parse | Step::Maps | Step::Calls => text,
        })
    })?;
    let Relocated {
        obj,
        btf_bytes,
        btf_fd,
        btf_refused,
        kernel_btf,
        // CO-RE left undone (no kernel BTF): the verifier's verdicts say
        // what that breaks.
        core_skipped: _,
        exception_cb_errors,
    } = relocated;
    // Read for CO-RE only when the object has CO-RE relocations; the
    // attach targets of tracing programs are looked up in it too.
    let kernel_btf = kernel_btf.or_else(|| AyaBtf::from_sys_fs().ok());
    // The BTF the object's maps were created with, when bpfld created
    // them: the verifier matches kptrs and list/rbtree nodes by BTF object.
    let (btf_fd, btf_refused) = match (&btf_bytes, &loaded.btf_fd) {
        (Some(_), Some(f)) => match f.try_clone() {
            Ok(fd) => (Some(fd), None),
            Err(_) => (btf_fd, btf_refused),
        },
        _ => (btf_fd, btf_refused),
    };

    let sections = program_sections(&model);
    // libbpf's "?" (autoload off) comes before the type: `?struct_ops/x`.
    let struct_ops = if sections
        .values()
        .any(|s| s.trim_start_matches('?').starts_with("struct_ops"))
    {
        struct_ops_members(&model)
    } else {
        HashMap::new()
    };
    let strings = btf_bytes.as_deref().map(btf_strings).unwrap_or_default();
    let manifest = model
        .btf
        .as_ref()
        .map(bpfld::compose::read_manifest)
        .unwrap_or_default();
    let btf_model = btf_bytes.as_deref().and_then(|b| bpfld::Btf::parse(b).ok());
    let mut names: Vec<&String> = obj
        .programs
        .keys()
        .filter(|n| opts.prog.is_none_or(|w| w == n.as_str()))
        .collect();
    names.sort();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let p = &obj.programs[name];
        let Some(f) = obj.functions.get(&p.function_key()) else {
            continue;
        };
        let section = sections.get(name.as_str()).cloned().unwrap_or_default();
        let mut v = ProgramVerdict {
            name: name.clone(),
            section: section.clone(),
            prog_type: String::new(),
            attach_type: None,
            insns: f.instructions.len(),
            stats: None,
            xlated_insns: None,
            jited_bytes: None,
            rejection: None,
            components: Vec::new(),
        };
        let st_ops = struct_ops.get(name.as_str()).cloned();
        let spec = match prog_spec(&section, kernel_btf.as_ref(), st_ops).and_then(|s| {
            // libbpf refuses the program before loading it, as bpfld does.
            match exception_cb_errors
                .get(name.as_str())
                .or_else(|| loaded.refused.get(name.as_str()))
            {
                Some(why) => Err(why.clone()),
                None => Ok(s),
            }
        }) {
            Ok(s) => s,
            Err(why) => {
                v.prog_type = bpfld::model::program::program_type(
                    section.strip_prefix('?').unwrap_or(&section),
                )
                .unwrap_or("unknown")
                .to_string();
                v.rejection = Some(Rejection {
                    error: why,
                    report: digest_verifier_log(""),
                    insn: None,
                    source: None,
                });
                out.push(v);
                continue;
            }
        };
        v.prog_type = spec.type_name.to_string();
        v.attach_type = spec.attach_name.map(str::to_string);
        let load = ProgLoad {
            prog_type: spec.prog_type,
            expected_attach_type: spec.attach,
            flags: spec.flags,
            name,
            function: f,
            license: &p.license,
            kern_version: p.kernel_version.unwrap_or(0),
            btf_fd: btf_fd.as_ref().map(|f| f.as_fd()),
            attach_btf_id: spec.attach_btf_id,
        };
        let (fd, log) = prog_load(&load, LOG_LEVEL_STATS, STATS_LOG_SIZE);
        match fd {
            Ok(fd) => {
                v.stats = parse_stats(&log);
                if let Ok(s) = loaded_size(&fd) {
                    v.xlated_insns = Some(s.xlated_insns);
                    v.jited_bytes = Some(s.jited_bytes);
                    // The footer can be missing (a log too small): the
                    // count is in the program's info too.
                    if v.stats.is_none() && s.verified_insns > 0 {
                        v.stats = Some(VerifierStats {
                            verified_insns: u64::from(s.verified_insns),
                            ..VerifierStats::default()
                        });
                    }
                }
            }
            Err(e) => {
                // Again with the instruction-level log, for the reason and
                // the instruction it stopped at.
                let (_, full) = prog_load(&load, LOG_LEVEL_INSNS | LOG_LEVEL_STATS, FULL_LOG_SIZE);
                v.stats = parse_stats(&log).or_else(|| parse_stats(&full));
                let report = digest_verifier_log(if full.trim().is_empty() { &log } else { &full });
                let insn = report.instruction.as_deref().and_then(insn_index);
                let source = insn.and_then(|i| source_line(&f.line_info.line_info, &strings, i));
                let mut error = errno_text(&e);
                if let Some(why) = &btf_refused {
                    error.push_str(&format!(
                        "; loaded without the object's BTF, which the kernel refused ({why})"
                    ));
                }
                v.rejection = Some(Rejection {
                    error,
                    report,
                    insn,
                    source,
                });
            }
        }
        if name == bpfld::compose::DISPATCHER && !manifest.is_empty() {
            // The verifier's whole walk, instruction by instruction, to
            // split its count by component (level 1 keeps only the path
            // that failed); only a complete log is used.
            let (_, full) = prog_load(&load, LOG_LEVEL_ALL_PATHS | LOG_LEVEL_STATS, FULL_LOG_SIZE);
            let processed = v
                .stats
                .as_ref()
                .and_then(|st| processed_per_insn(&full, f.instructions.len(), st.verified_insns));
            v.components = component_shares(
                &manifest,
                f,
                btf_model.as_ref(),
                &strings,
                processed.as_deref(),
            );
            if let Some(report) = bpfld::link::LinkReport::from_object(&model) {
                for share in &mut v.components {
                    share.optimized = report
                        .components
                        .iter()
                        .find(|c| c.label == share.slot)
                        .and_then(|c| c.optimized);
                }
            }
        }
        out.push(v);
    }
    Ok(out)
}

/// How many times the verifier processed each instruction, read from its
/// instruction-level log: every `N: (op) ...` line, and every pruned visit
/// (`from M to N: safe`, `N: safe`), which the kernel counts as well.
/// `None` unless the counts add up to the kernel's own total (a log cut
/// short, say).
fn processed_per_insn(log: &str, insns: usize, total: u64) -> Option<Vec<u32>> {
    let mut counts = vec![0u32; insns];
    for l in log.lines() {
        let l = l.trim_end();
        let at = if let Some(rest) = l.strip_prefix("from ") {
            // "from 5 to 10: safe", "from 5 to 10 (speculative execution): safe"
            if !l.ends_with(": safe") {
                continue;
            }
            rest.split(" to ")
                .nth(1)
                .and_then(|t| t.split([':', ' ']).next())
                .and_then(|n| n.parse::<usize>().ok())
        } else {
            let Some((num, rest)) = l.split_once(": ") else {
                continue;
            };
            if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let is_insn = rest.len() > 3
                && rest.as_bytes()[0] == b'('
                && rest.as_bytes()[1..3].iter().all(u8::is_ascii_hexdigit)
                && rest.as_bytes()[3] == b')';
            if !(is_insn || rest == "safe") {
                continue;
            }
            num.parse::<usize>().ok()
        };
        if let Some(c) = at.and_then(|i| counts.get_mut(i)) {
            *c += 1;
        }
    }
    let sum: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    (sum == total).then_some(counts)
}

/// Each component's instructions in the dispatcher: a component called as
/// a subprogram is the range its func_info names (the component's slot);
/// an inlined one is the code whose line_info names one of the component
/// object's source files (when that object can be read and no other
/// component shares the file).
fn component_shares(
    manifest: &[bpfld::compose::Placed],
    f: &aya_obj::Function,
    btf: Option<&bpfld::model::btf::Btf>,
    strings: &[u8],
    processed: Option<&[u32]>,
) -> Vec<ComponentShare> {
    let n = f.instructions.len();
    let mut owner: Vec<Option<usize>> = vec![None; n];
    let mut called = vec![false; manifest.len()];
    // Subprograms named after a slot.
    let mut starts: Vec<(usize, Option<String>)> = f
        .func_info
        .func_info
        .iter()
        .map(|fi| {
            let name = btf
                .and_then(|b| b.get(bpfld::model::btf::TypeId(fi.type_id)))
                .and_then(|t| btf?.name(t.name_off).ok())
                .map(str::to_string);
            (fi.insn_off as usize, name)
        })
        .collect();
    starts.sort_by_key(|(o, _)| *o);
    for (i, (start, name)) in starts.iter().enumerate() {
        let end = starts.get(i + 1).map_or(n, |(o, _)| *o).min(n);
        if let Some(c) = manifest.iter().position(|p| Some(&p.slot) == name.as_ref()) {
            for o in owner.iter_mut().take(end).skip(*start) {
                *o = Some(c);
            }
            called[c] = true;
        }
    }
    // Inlined bodies: by source file.
    let files: Vec<HashSet<String>> = manifest.iter().map(source_files).collect();
    let mut lines: Vec<&aya_obj::generated::bpf_line_info> = f.line_info.line_info.iter().collect();
    lines.sort_by_key(|l| l.insn_off);
    for (i, l) in lines.iter().enumerate() {
        let Some(file) = string_at(strings, l.file_name_off) else {
            continue;
        };
        let holders: Vec<usize> = (0..files.len())
            .filter(|&c| files[c].contains(&file))
            .collect();
        let [c] = holders.as_slice() else {
            continue;
        };
        let start = l.insn_off as usize;
        let end = lines.get(i + 1).map_or(n, |x| x.insn_off as usize).min(n);
        for o in owner.iter_mut().take(end).skip(start) {
            if o.is_none() {
                *o = Some(*c);
            }
        }
    }
    // An inlined component is measured when its source files are known
    // and its own.
    let measured: Vec<bool> = (0..manifest.len())
        .map(|c| {
            called[c]
                || (!files[c].is_empty()
                    && files[c]
                        .iter()
                        .all(|f| (0..files.len()).all(|d| d == c || !files[d].contains(f))))
        })
        .collect();
    manifest
        .iter()
        .enumerate()
        .map(|(c, p)| ComponentShare {
            index: p.index,
            slot: p.slot.clone(),
            file: p.file.clone(),
            program: p.program.clone(),
            static_insns: measured[c].then(|| owner.iter().filter(|o| **o == Some(c)).count()),
            verified_insns: processed.filter(|_| measured[c]).map(|counts| {
                counts
                    .iter()
                    .zip(&owner)
                    .filter(|(_, o)| **o == Some(c))
                    .map(|(&k, _)| u64::from(k))
                    .sum()
            }),
            optimized: None,
        })
        .collect()
}

/// The source files a component object's line_info names (empty when the
/// object cannot be read).
fn source_files(p: &bpfld::compose::Placed) -> HashSet<String> {
    let mut out = HashSet::new();
    let path = if p.path.is_empty() || p.path.starts_with('#') {
        &p.file
    } else {
        &p.path
    };
    let Ok(bytes) = std::fs::read(path) else {
        return out;
    };
    let Ok(obj) = bpfld::Object::parse(&bytes) else {
        return out;
    };
    let Some(btf) = &obj.btf else {
        return out;
    };
    for s in &obj.sections {
        for l in &s.line_info {
            if let Ok(name) = btf.name(l.file_name_off) {
                out.insert(name.to_string());
            }
        }
    }
    out
}

/// For each program a struct_ops map of `obj` points at: the kernel's BTF
/// id of the map's struct type and the index of the member that points at
/// it (what libbpf loads a struct_ops program with), or why not.
fn struct_ops_members(
    obj: &bpfld::model::object::Object,
) -> HashMap<String, std::result::Result<(u32, u32), String>> {
    use bpfld::model::btf::TypeData;
    use bpfld::model::object::{SymbolKind, SymbolPlace};
    let mut out = HashMap::new();
    let Some(btf) = &obj.btf else {
        return out;
    };
    let kernel = std::fs::read("/sys/kernel/btf/vmlinux")
        .ok()
        .and_then(|b| bpfld::Btf::parse(&b).ok());
    for sec in &obj.sections {
        if sec.name != ".struct_ops" && sec.name != ".struct_ops.link" {
            continue;
        }
        let vars = btf
            .find_datasec(&sec.name)
            .and_then(|ds| btf.datasec_vars(ds).ok())
            .unwrap_or_default();
        for r in &sec.relocs {
            let Some(prog) = obj.symbol(r.symbol).filter(|s| s.kind == SymbolKind::Func) else {
                continue;
            };
            // The map variable holding the pointer, by its symbol.
            let Some(var_sym) = obj.symbols.iter().find(|s| {
                s.place == SymbolPlace::Section(sec.id)
                    && s.kind == SymbolKind::Object
                    && s.value <= r.offset
                    && r.offset < s.value + s.size
            }) else {
                continue;
            };
            let found = (|| {
                let var = vars
                    .iter()
                    .find(|v| v.name == var_sym.name)
                    .ok_or_else(|| format!("struct_ops map '{}' has no BTF", var_sym.name))?;
                let st = btf.resolve(var.type_id).map_err(|e| e.to_string())?;
                let st_name = btf
                    .get(st)
                    .and_then(|t| btf.name(t.name_off).ok())
                    .unwrap_or("");
                let bit = u32::try_from((r.offset - var_sym.value) * 8).unwrap_or(u32::MAX);
                let member = btf
                    .members(st)
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .find(|m| m.bit_offset == bit)
                    .map(|m| m.name.to_string())
                    .ok_or_else(|| {
                        format!(
                            "struct_ops map '{}': no member at offset {}",
                            var_sym.name,
                            bit / 8
                        )
                    })?;
                // libbpf's flavours: `struct tcp_congestion_ops___x`.
                let kname = st_name.split("___").next().unwrap_or(st_name);
                let k = kernel
                    .as_ref()
                    .ok_or("the kernel's BTF (/sys/kernel/btf/vmlinux) cannot be read")?;
                let (kid, kt) = k
                    .iter()
                    .find(|(_, t)| {
                        matches!(t.data, TypeData::Struct { .. })
                            && k.name(t.name_off).ok() == Some(kname)
                    })
                    .ok_or_else(|| format!("struct {kname} is not in the kernel's BTF"))?;
                let TypeData::Struct { members, .. } = &kt.data else {
                    return Err(format!("struct {kname} is not a struct"));
                };
                let idx = members
                    .iter()
                    .position(|m| k.name(m.name_off).ok() == Some(member.as_str()))
                    .ok_or_else(|| format!("the kernel's struct {kname} has no member {member}"))?;
                Ok((kid.0, idx as u32))
            })();
            out.entry(prog.name.clone()).or_insert(found);
        }
    }
    out
}

/// The index in `0: (61) r0 = ...`.
fn insn_index(line: &str) -> Option<usize> {
    line.split(':').next()?.trim().parse().ok()
}

/// The string table of raw BTF, to read line_info's offsets.
fn btf_strings(btf: &[u8]) -> Vec<u8> {
    let u32_at = |o: usize| {
        btf.get(o..o + 4)
            .and_then(|s| s.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let (Some(hdr), Some(off), Some(len)) = (u32_at(4), u32_at(16), u32_at(20)) else {
        return Vec::new();
    };
    let start = hdr as usize + off as usize;
    btf.get(start..start + len as usize)
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

fn string_at(strings: &[u8], off: u32) -> Option<String> {
    let s = strings.get(off as usize..)?;
    let end = s.iter().position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&s[..end]).into_owned())
}

/// The line_info record covering instruction `insn`: the last one that
/// starts at or before it.
fn source_line(
    lines: &[aya_obj::generated::bpf_line_info],
    strings: &[u8],
    insn: usize,
) -> Option<SourceLine> {
    let rec = lines
        .iter()
        .filter(|l| l.insn_off as usize <= insn)
        .max_by_key(|l| l.insn_off)?;
    Some(SourceLine {
        file: string_at(strings, rec.file_name_off)?,
        line: rec.line_col >> 10,
        column: rec.line_col & 0x3ff,
        text: string_at(strings, rec.line_off)
            .unwrap_or_default()
            .trim()
            .to_string(),
    })
}

/// Reads the verifier's statistics footer from a log; `None` without one.
pub fn parse_stats(log: &str) -> Option<VerifierStats> {
    let mut stats: Option<VerifierStats> = None;
    let mut time = None;
    let mut depth = Vec::new();
    for l in log.lines() {
        let l = l.trim();
        if let Some(rest) = l.strip_prefix("processed ") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            let mut s = VerifierStats {
                verified_insns: words.first()?.parse().ok()?,
                ..VerifierStats::default()
            };
            for pair in words.windows(2) {
                let n = || pair[1].parse::<u64>().ok();
                match pair[0] {
                    "max_states_per_insn" => s.max_states_per_insn = n()?,
                    "total_states" => s.total_states = n()?,
                    "peak_states" => s.peak_states = n()?,
                    "mark_read" => s.mark_read = n(),
                    _ => {}
                }
            }
            stats = Some(s);
        } else if let Some(rest) = l.strip_prefix("verification time ") {
            time = rest.split_whitespace().next().and_then(|t| t.parse().ok());
        } else if let Some(rest) = l.strip_prefix("stack depth ") {
            depth = rest
                .split('+')
                .filter_map(|d| d.trim().parse().ok())
                .collect();
        }
    }
    stats.map(|mut s| {
        s.duration_us = time;
        s.stack_depth = depth;
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_footer_is_read() {
        let log = "func#0 @0\n0: R1=ctx() R10=fp0\n\
processed 12 insns (limit 1000000) max_states_per_insn 1 total_states 3 peak_states 2 mark_read 1\n\
verification time 41 usec\nstack depth 16+0+8\n";
        let s = parse_stats(log).unwrap();
        assert_eq!(s.verified_insns, 12);
        assert_eq!(s.max_states_per_insn, 1);
        assert_eq!(s.total_states, 3);
        assert_eq!(s.peak_states, 2);
        assert_eq!(s.mark_read, Some(1));
        assert_eq!(s.duration_us, Some(41));
        assert_eq!(s.stack_depth, vec![16, 0, 8]);
        assert_eq!(parse_stats("no footer\n"), None);
    }

    #[test]
    fn instruction_index_of_a_log_line() {
        assert_eq!(insn_index("12: (61) r0 = *(u32 *)(r1 +0)"), Some(12));
    }

    #[test]
    fn per_insn_counts_from_a_full_log() {
        // Two paths through insn 2; the second is pruned at 3.
        let log = "func#0 @0\nLive regs before insn:\n      0: .1........ (b7) r0 = 0\n\
0: R1=ctx() R10=fp0\n0: (b7) r0 = 0                        ; R0=0\n\
1: (15) if r1 == 0x0 goto pc+1        ; R1=ctx()\n2: (b7) r0 = 1\n3: (95) exit\n\
from 1 to 3: R0=0 R1=ctx() R10=fp0\n3: safe\n\
from 2 to 3 (speculative execution): safe\n";
        let c = processed_per_insn(log, 4, 6).unwrap();
        assert_eq!(c, vec![1, 1, 1, 3]);
        // A count that does not add up to the kernel's is not used.
        assert_eq!(processed_per_insn(log, 4, 7), None);
    }

    #[test]
    fn line_info_maps_an_instruction_to_its_line() {
        let strings = b"\0x.c\0int a = 1;\0".to_vec();
        let rec = |insn_off: u32, line: u32| aya_obj::generated::bpf_line_info {
            insn_off,
            file_name_off: 1,
            line_off: 5,
            line_col: line << 10 | 3,
        };
        let lines = [rec(0, 4), rec(5, 9)];
        let s = source_line(&lines, &strings, 7).unwrap();
        assert_eq!((s.file.as_str(), s.line, s.column), ("x.c", 9, 3));
        assert_eq!(s.text, "int a = 1;");
        assert_eq!(source_line(&lines, &strings, 2).unwrap().line, 4);
    }
}
