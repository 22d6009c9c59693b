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
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use aya_obj::btf::{Btf as AyaBtf, BtfKind};

use crate::error::{errno_text, Error, ErrorKind, Result};
use crate::globals::GlobalValue;
use crate::load::{choose_program, load_object};
use crate::maps::map_data;
use crate::prog_load::{
    loaded_size, prog_load, ProgLoad, LOG_LEVEL_ALL_PATHS, LOG_LEVEL_INSNS, LOG_LEVEL_STATS,
};
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

const BPF_F_SLEEPABLE: u32 = 1 << 4;
const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;

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
    let copy = crate::aya_compat::prepare(object)?;
    let mut obj =
        aya_obj::Object::parse(&copy.bytes).map_err(|e| obj_err(crate::error::chain(&e)))?;

    // The same steps, in the same order, as aya's own loader.
    let features = aya::features();
    let btf_bytes = match features.btf() {
        Some(f) => obj
            .fixup_and_sanitize_btf(f)
            .map_err(|e| obj_err(format!("BTF: {}", crate::error::chain(&e))))?
            .map(|b| b.to_bytes()),
        None => None,
    };
    // A BTF the kernel refuses: the programs are loaded without it (as
    // aya does), and a rejection says so.
    // The BTF the object's maps were created with, when bpfld created
    // them: the verifier matches kptrs and list/rbtree nodes by BTF object.
    let (btf_fd, btf_refused): (Option<OwnedFd>, Option<String>) = match btf_bytes.as_deref() {
        Some(_) if loaded.btf_fd.is_some() => (
            loaded.btf_fd.as_ref().and_then(|f| f.try_clone().ok()),
            None,
        ),
        Some(b) => match crate::sys::btf_load(b, None) {
            Ok(fd) => (Some(fd), None),
            Err(e) => (None, Some(errno_text(&e))),
        },
        None => (None, None),
    };
    let kernel_btf = AyaBtf::from_sys_fs().ok();
    if let Some(k) = &kernel_btf {
        obj.relocate_btf(k)
            .map_err(|e| obj_err(format!("CO-RE: {}", crate::error::chain(&e))))?;
    }
    let map_objs = obj.maps.clone();
    let fds: Vec<(String, i32)> = loaded
        .ebpf
        .maps()
        .map(|(n, m)| (n.to_string(), map_data(m).fd().as_fd().as_raw_fd()))
        .collect();
    let text_sections: HashSet<usize> = obj.functions.keys().map(|(s, _)| *s).collect();
    obj.relocate_maps(
        fds.iter()
            .filter_map(|(n, fd)| map_objs.get(n).map(|m| (n.as_str(), *fd, m))),
        &text_sections,
    )
    .map_err(|e| obj_err(crate::error::chain(&e)))?;
    obj.relocate_calls(&text_sections)
        .map_err(|e| obj_err(crate::error::chain(&e)))?;
    obj.sanitize_functions(features);

    let sections = program_sections(&model);
    let struct_ops = if sections.values().any(|s| s.starts_with("struct_ops")) {
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
        let spec = match prog_spec(&section, kernel_btf.as_ref(), st_ops) {
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
        let func_info = f.func_info.func_info_bytes();
        let line_info = f.line_info.line_info_bytes();
        let load = ProgLoad {
            prog_type: spec.prog_type,
            expected_attach_type: spec.attach,
            flags: spec.flags,
            name,
            insns: &f.instructions,
            license: &p.license,
            kern_version: p.kernel_version.unwrap_or(0),
            btf_fd: btf_fd.as_ref().map(|f| f.as_fd()),
            func_info: (&func_info, f.func_info_rec_size as u32),
            line_info: (&line_info, f.line_info_rec_size as u32),
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

/// Program (function) name to the name of its section in `obj`.
fn program_sections(obj: &bpfld::model::object::Object) -> HashMap<String, String> {
    use bpfld::model::object::{Binding, SymbolKind, SymbolPlace};
    let mut out = HashMap::new();
    for s in &obj.symbols {
        let SymbolPlace::Section(id) = s.place else {
            continue;
        };
        if s.kind != SymbolKind::Func || s.binding == Binding::Local {
            continue;
        }
        if let Some(sec) = obj
            .section(id)
            .filter(|x| x.is_program() && x.name != ".text")
        {
            out.insert(s.name.clone(), sec.name.clone());
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

/// How to load a program of a section: its type, expected attach type,
/// flags and BTF target, as libbpf derives them from the section name.
#[derive(Debug)]
struct Spec {
    prog_type: u32,
    type_name: &'static str,
    attach: u32,
    attach_name: Option<&'static str>,
    flags: u32,
    attach_btf_id: u32,
}

// enum bpf_prog_type
const SOCKET_FILTER: u32 = 1;
const KPROBE: u32 = 2;
const SCHED_CLS: u32 = 3;
const SCHED_ACT: u32 = 4;
const TRACEPOINT: u32 = 5;
const XDP: u32 = 6;
const PERF_EVENT: u32 = 7;
const CGROUP_SKB: u32 = 8;
const CGROUP_SOCK: u32 = 9;
const LWT_IN: u32 = 10;
const LWT_OUT: u32 = 11;
const LWT_XMIT: u32 = 12;
const SOCK_OPS: u32 = 13;
const SK_SKB: u32 = 14;
const CGROUP_DEVICE: u32 = 15;
const SK_MSG: u32 = 16;
const RAW_TRACEPOINT: u32 = 17;
const CGROUP_SOCK_ADDR: u32 = 18;
const LWT_SEG6LOCAL: u32 = 19;
const LIRC_MODE2: u32 = 20;
const SK_REUSEPORT: u32 = 21;
const FLOW_DISSECTOR: u32 = 22;
const CGROUP_SYSCTL: u32 = 23;
const RAW_TRACEPOINT_WRITABLE: u32 = 24;
const CGROUP_SOCKOPT: u32 = 25;
const TRACING: u32 = 26;
const STRUCT_OPS: u32 = 27;
const LSM: u32 = 29;
const SK_LOOKUP: u32 = 30;
const SYSCALL: u32 = 31;
const NETFILTER: u32 = 32;

/// `enum bpf_attach_type` values and libbpf's names for them.
const ATTACH: &[(&str, u32)] = &[
    ("cgroup_inet_ingress", 0),
    ("cgroup_inet_egress", 1),
    ("cgroup_inet_sock_create", 2),
    ("cgroup_sock_ops", 3),
    ("sk_skb_stream_parser", 4),
    ("sk_skb_stream_verdict", 5),
    ("cgroup_device", 6),
    ("sk_msg_verdict", 7),
    ("cgroup_inet4_bind", 8),
    ("cgroup_inet6_bind", 9),
    ("cgroup_inet4_connect", 10),
    ("cgroup_inet6_connect", 11),
    ("cgroup_inet4_post_bind", 12),
    ("cgroup_inet6_post_bind", 13),
    ("cgroup_udp4_sendmsg", 14),
    ("cgroup_udp6_sendmsg", 15),
    ("lirc_mode2", 16),
    ("flow_dissector", 17),
    ("cgroup_sysctl", 18),
    ("cgroup_udp4_recvmsg", 19),
    ("cgroup_udp6_recvmsg", 20),
    ("cgroup_getsockopt", 21),
    ("cgroup_setsockopt", 22),
    ("trace_raw_tp", 23),
    ("trace_fentry", 24),
    ("trace_fexit", 25),
    ("modify_return", 26),
    ("lsm_mac", 27),
    ("trace_iter", 28),
    ("cgroup_inet4_getpeername", 29),
    ("cgroup_inet6_getpeername", 30),
    ("cgroup_inet4_getsockname", 31),
    ("cgroup_inet6_getsockname", 32),
    ("xdp_devmap", 33),
    ("cgroup_inet_sock_release", 34),
    ("xdp_cpumap", 35),
    ("sk_lookup", 36),
    ("xdp", 37),
    ("sk_skb_verdict", 38),
    ("sk_reuseport_select", 39),
    ("sk_reuseport_select_or_migrate", 40),
    ("trace_kprobe_multi", 42),
    ("lsm_cgroup", 43),
    ("netfilter", 45),
    ("tcx_ingress", 46),
    ("tcx_egress", 47),
    ("trace_uprobe_multi", 48),
    ("cgroup_unix_connect", 49),
    ("cgroup_unix_sendmsg", 50),
    ("cgroup_unix_recvmsg", 51),
    ("cgroup_unix_getpeername", 52),
    ("cgroup_unix_getsockname", 53),
    ("netkit_primary", 54),
    ("netkit_peer", 55),
    ("trace_kprobe_session", 56),
];

fn attach(name: &'static str) -> (u32, Option<&'static str>) {
    let v = ATTACH
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(0, |(_, v)| *v);
    (v, Some(name))
}

/// The cgroup/... attach points: (section tail, program type, attach type).
const CGROUP: &[(&str, u32, &str)] = &[
    ("skb", CGROUP_SKB, ""),
    ("sock", CGROUP_SOCK, "cgroup_inet_sock_create"),
    ("sock_create", CGROUP_SOCK, "cgroup_inet_sock_create"),
    ("sock_release", CGROUP_SOCK, "cgroup_inet_sock_release"),
    ("post_bind4", CGROUP_SOCK, "cgroup_inet4_post_bind"),
    ("post_bind6", CGROUP_SOCK, "cgroup_inet6_post_bind"),
    ("bind4", CGROUP_SOCK_ADDR, "cgroup_inet4_bind"),
    ("bind6", CGROUP_SOCK_ADDR, "cgroup_inet6_bind"),
    ("connect4", CGROUP_SOCK_ADDR, "cgroup_inet4_connect"),
    ("connect6", CGROUP_SOCK_ADDR, "cgroup_inet6_connect"),
    ("connect_unix", CGROUP_SOCK_ADDR, "cgroup_unix_connect"),
    ("sendmsg4", CGROUP_SOCK_ADDR, "cgroup_udp4_sendmsg"),
    ("sendmsg6", CGROUP_SOCK_ADDR, "cgroup_udp6_sendmsg"),
    ("sendmsg_unix", CGROUP_SOCK_ADDR, "cgroup_unix_sendmsg"),
    ("recvmsg4", CGROUP_SOCK_ADDR, "cgroup_udp4_recvmsg"),
    ("recvmsg6", CGROUP_SOCK_ADDR, "cgroup_udp6_recvmsg"),
    ("recvmsg_unix", CGROUP_SOCK_ADDR, "cgroup_unix_recvmsg"),
    ("getpeername4", CGROUP_SOCK_ADDR, "cgroup_inet4_getpeername"),
    ("getpeername6", CGROUP_SOCK_ADDR, "cgroup_inet6_getpeername"),
    (
        "getpeername_unix",
        CGROUP_SOCK_ADDR,
        "cgroup_unix_getpeername",
    ),
    ("getsockname4", CGROUP_SOCK_ADDR, "cgroup_inet4_getsockname"),
    ("getsockname6", CGROUP_SOCK_ADDR, "cgroup_inet6_getsockname"),
    (
        "getsockname_unix",
        CGROUP_SOCK_ADDR,
        "cgroup_unix_getsockname",
    ),
    ("sysctl", CGROUP_SYSCTL, "cgroup_sysctl"),
    ("getsockopt", CGROUP_SOCKOPT, "cgroup_getsockopt"),
    ("setsockopt", CGROUP_SOCKOPT, "cgroup_setsockopt"),
    ("dev", CGROUP_DEVICE, "cgroup_device"),
];

fn type_name(t: u32) -> &'static str {
    match t {
        SOCKET_FILTER => "socket_filter",
        KPROBE => "kprobe",
        SCHED_CLS => "sched_cls",
        SCHED_ACT => "sched_act",
        TRACEPOINT => "tracepoint",
        XDP => "xdp",
        PERF_EVENT => "perf_event",
        CGROUP_SKB => "cgroup_skb",
        CGROUP_SOCK => "cgroup_sock",
        LWT_IN => "lwt_in",
        LWT_OUT => "lwt_out",
        LWT_XMIT => "lwt_xmit",
        SOCK_OPS => "sock_ops",
        SK_SKB => "sk_skb",
        CGROUP_DEVICE => "cgroup_device",
        SK_MSG => "sk_msg",
        RAW_TRACEPOINT => "raw_tracepoint",
        CGROUP_SOCK_ADDR => "cgroup_sock_addr",
        LWT_SEG6LOCAL => "lwt_seg6local",
        LIRC_MODE2 => "lirc_mode2",
        SK_REUSEPORT => "sk_reuseport",
        FLOW_DISSECTOR => "flow_dissector",
        CGROUP_SYSCTL => "cgroup_sysctl",
        RAW_TRACEPOINT_WRITABLE => "raw_tracepoint_writable",
        CGROUP_SOCKOPT => "cgroup_sockopt",
        TRACING => "tracing",
        STRUCT_OPS => "struct_ops",
        LSM => "lsm",
        SK_LOOKUP => "sk_lookup",
        SYSCALL => "syscall",
        NETFILTER => "netfilter",
        _ => "unknown",
    }
}

/// How libbpf would load a program of `section` (see [`Spec`]); an error
/// names what bpfld cannot load.
fn prog_spec(
    section: &str,
    kernel_btf: Option<&AyaBtf>,
    struct_ops: Option<std::result::Result<(u32, u32), String>>,
) -> std::result::Result<Spec, String> {
    let bare = section.strip_prefix('?').unwrap_or(section);
    let (head, tail) = match bare.split_once('/') {
        Some((h, t)) => (h, Some(t)),
        None => (bare, None),
    };
    let sleepable = head.ends_with(".s");
    let base = head.strip_suffix(".s").unwrap_or(head);
    let mut flags = if sleepable { BPF_F_SLEEPABLE } else { 0 };
    let none = (0, None);
    let mut btf_target: Option<(String, BtfKind)> = None;
    let (prog_type, (at, at_name)) = match base {
        "xdp" | "xdp.frags" => {
            if base == "xdp.frags" {
                flags |= BPF_F_XDP_HAS_FRAGS;
            }
            let a = match tail {
                Some("devmap") => attach("xdp_devmap"),
                Some("cpumap") => attach("xdp_cpumap"),
                _ => attach("xdp"),
            };
            (XDP, a)
        }
        "tc" | "tcx" => (
            SCHED_CLS,
            match tail {
                Some("ingress") => attach("tcx_ingress"),
                Some("egress") => attach("tcx_egress"),
                _ => none,
            },
        ),
        "netkit" => (
            SCHED_CLS,
            match tail {
                Some("primary") => attach("netkit_primary"),
                Some("peer") => attach("netkit_peer"),
                _ => none,
            },
        ),
        "classifier" => (SCHED_CLS, none),
        "action" => (SCHED_ACT, none),
        "socket" => (SOCKET_FILTER, none),
        "sk_reuseport" => (
            SK_REUSEPORT,
            if tail == Some("migrate") {
                attach("sk_reuseport_select_or_migrate")
            } else {
                attach("sk_reuseport_select")
            },
        ),
        "kprobe" | "kretprobe" | "uprobe" | "uretprobe" | "ksyscall" | "kretsyscall" | "usdt" => {
            (KPROBE, none)
        }
        "kprobe.multi" | "kretprobe.multi" => (KPROBE, attach("trace_kprobe_multi")),
        "kprobe.session" => (KPROBE, attach("trace_kprobe_session")),
        "uprobe.multi" | "uretprobe.multi" => (KPROBE, attach("trace_uprobe_multi")),
        "tracepoint" | "tp" => (TRACEPOINT, none),
        "raw_tracepoint" | "raw_tp" => (RAW_TRACEPOINT, none),
        "raw_tracepoint.w" | "raw_tp.w" => (RAW_TRACEPOINT_WRITABLE, none),
        "tp_btf" | "fentry" | "fexit" | "fmod_ret" | "iter" | "lsm" | "lsm_cgroup" => {
            let target = tail.ok_or_else(|| {
                format!("section '{section}' names no attach target (expected {head}/NAME)")
            })?;
            if target.contains(':') {
                return Err(format!(
                    "section '{section}': attaching to a kernel module's function is not \
                     supported by bpfld verify"
                ));
            }
            let (ty, a, name, kind) = match base {
                "tp_btf" => (
                    TRACING,
                    "trace_raw_tp",
                    format!("btf_trace_{target}"),
                    BtfKind::Typedef,
                ),
                "fentry" => (TRACING, "trace_fentry", target.to_string(), BtfKind::Func),
                "fexit" => (TRACING, "trace_fexit", target.to_string(), BtfKind::Func),
                "fmod_ret" => (TRACING, "modify_return", target.to_string(), BtfKind::Func),
                "iter" => (
                    TRACING,
                    "trace_iter",
                    format!("bpf_iter_{target}"),
                    BtfKind::Func,
                ),
                "lsm" => (LSM, "lsm_mac", format!("bpf_lsm_{target}"), BtfKind::Func),
                _ => (
                    LSM,
                    "lsm_cgroup",
                    format!("bpf_lsm_{target}"),
                    BtfKind::Func,
                ),
            };
            btf_target = Some((name, kind));
            (ty, attach(a))
        }
        "syscall" => {
            // libbpf loads every syscall program sleepable.
            flags |= BPF_F_SLEEPABLE;
            (SYSCALL, none)
        }
        "perf_event" => (PERF_EVENT, none),
        "lwt_in" => (LWT_IN, none),
        "lwt_out" => (LWT_OUT, none),
        "lwt_xmit" => (LWT_XMIT, none),
        "lwt_seg6local" => (LWT_SEG6LOCAL, none),
        "sockops" => (SOCK_OPS, attach("cgroup_sock_ops")),
        "sk_skb" => (
            SK_SKB,
            match tail {
                Some("stream_parser") => attach("sk_skb_stream_parser"),
                Some("stream_verdict") => attach("sk_skb_stream_verdict"),
                Some("verdict") => attach("sk_skb_verdict"),
                _ => none,
            },
        ),
        "sk_msg" => (SK_MSG, attach("sk_msg_verdict")),
        "lirc_mode2" => (LIRC_MODE2, attach("lirc_mode2")),
        "flow_dissector" => (FLOW_DISSECTOR, attach("flow_dissector")),
        "cgroup_skb" => (
            CGROUP_SKB,
            match tail {
                Some("ingress") => attach("cgroup_inet_ingress"),
                Some("egress") => attach("cgroup_inet_egress"),
                _ => none,
            },
        ),
        "cgroup" => {
            let t = tail.unwrap_or("");
            let Some((_, ty, a)) = CGROUP.iter().find(|(n, _, _)| *n == t) else {
                return Err(format!("section '{section}': unknown cgroup attach point"));
            };
            (*ty, if a.is_empty() { none } else { attach(a) })
        }
        "sk_lookup" => (SK_LOOKUP, attach("sk_lookup")),
        "netfilter" => (NETFILTER, attach("netfilter")),
        "freplace" => {
            return Err(format!(
                "section '{section}': an extension (freplace) program needs the program it \
                 replaces, which bpfld verify does not load"
            ))
        }
        "struct_ops" => {
            // Verified as the member of the kernel's struct that the
            // object's struct_ops map points at it from.
            let (type_id, member) = struct_ops.unwrap_or_else(|| {
                Err(format!(
                    "section '{section}': no struct_ops map of the object points at this program"
                ))
            })?;
            return Ok(Spec {
                prog_type: STRUCT_OPS,
                type_name: "struct_ops",
                attach: member,
                attach_name: None,
                flags,
                attach_btf_id: type_id,
            });
        }
        _ => return Err(format!("section '{section}': unknown program type")),
    };
    let mut attach_btf_id = 0;
    if let Some((name, kind)) = btf_target {
        let k = kernel_btf.ok_or_else(|| {
            format!("section '{section}': the kernel's BTF (/sys/kernel/btf/vmlinux) is needed to find {name}")
        })?;
        attach_btf_id = k
            .id_by_type_name_kind(&name, kind)
            .map_err(|_| format!("section '{section}': {name} is not in the kernel's BTF"))?;
    }
    Ok(Spec {
        prog_type,
        type_name: type_name(prog_type),
        attach: at,
        attach_name: at_name,
        flags,
        attach_btf_id,
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
    fn section_names_give_libbpf_types() {
        let s = prog_spec("xdp", None, None).unwrap();
        assert_eq!((s.prog_type, s.attach, s.flags), (XDP, 37, 0));
        let s = prog_spec("xdp.frags/devmap", None, None).unwrap();
        assert_eq!((s.attach, s.flags), (33, BPF_F_XDP_HAS_FRAGS));
        let s = prog_spec("cgroup/connect4", None, None).unwrap();
        assert_eq!(
            (s.type_name, s.attach_name),
            ("cgroup_sock_addr", Some("cgroup_inet4_connect"))
        );
        let s = prog_spec("?syscall", None, None).unwrap();
        assert_eq!((s.type_name, s.flags), ("syscall", BPF_F_SLEEPABLE));
        assert!(prog_spec("fentry/foo", None, None)
            .unwrap_err()
            .contains("kernel's BTF"));
        assert!(prog_spec("struct_ops/x", None, None).is_err());
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
