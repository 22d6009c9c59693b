//! Running a program with `BPF_PROG_TEST_RUN` on packet bytes, and what
//! the run leaves: return value, packet, every map.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use aya::programs::{Program, ProgramError, RawTracePointRunOptions, TestRun, TestRunOptions};

use crate::error::{chain, errno_text, permission_error, program_error, root_io_error};
use crate::error::{Error, ErrorKind, Result};
use crate::globals::{GlobalValue, MapUpdate};
use crate::init_slots::Slot;
use crate::load::{choose_program, load_object, LoadedObject};
use crate::maps::{dump_map, map_data, seed_map, MapDump};
use crate::prog_kind::{kind_of, type_name, ProgKind};
use crate::raw_load::{self, raw_spec, RawProg};

/// The packet used when none is given: a 64-byte all-zero Ethernet frame.
pub const DEFAULT_PACKET: [u8; 64] = [0; 64];

/// Room the program gets to grow the packet (`bpf_xdp_adjust_tail`,
/// `bpf_skb_change_tail`, ...) before the kernel would report ENOSPC.
const DATA_OUT_SLACK: usize = 64 * 1024;

/// What to run and on what.
#[derive(Debug, Clone, Default)]
pub struct RunOptions<'a> {
    /// The program's name (its function name); `None` when the object has
    /// exactly one program.
    pub prog: Option<&'a str>,
    /// Input packet; `None` means [`DEFAULT_PACKET`].
    pub data: Option<&'a [u8]>,
    /// How many times the kernel runs the program; 0 is taken as 1 (as the
    /// kernel does).
    pub repeat: u32,
    /// Globals given new initial values before load (`--set`).
    pub globals: &'a [GlobalValue],
    /// Map entries written after the maps are created, before the program
    /// is loaded (`--map-update`).
    pub map_updates: &'a [MapUpdate],
    /// Read the maps after the last packet only (the others' results have
    /// none): a capture of many packets need not dump every map each time.
    pub maps_after_last_only: bool,
}

/// The outcome of one test run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    /// The program that ran.
    pub program: String,
    pub kind: ProgKind,
    /// The program's return value, as the kernel reports it.
    pub retval: u32,
    /// The kernel's average duration of one run, in ns.
    pub duration_ns: u64,
    /// The repeat count used (at least 1).
    pub repeat: u32,
    /// The packet after the run.
    pub data_out: Vec<u8>,
    /// Every map of the object, sorted by name.
    pub maps: Vec<MapDump>,
    /// The verifier's processed-instruction count for the program, when
    /// the kernel reports it (`bpf_prog_info.verified_insns`, 5.16+).
    pub verified_insns: Option<u32>,
}

/// Loads `object` (an ELF eBPF object), runs one program and reads every map.
pub fn run(object: &[u8], opts: &RunOptions<'_>) -> Result<RunResult> {
    let data_in = opts.data.unwrap_or(&DEFAULT_PACKET);
    let mut results = run_all(object, opts, &[data_in])?;
    results
        .pop()
        .ok_or_else(|| Error::new(ErrorKind::Kernel, "no run result"))
}

/// Loads `object` once and runs its program on each packet in turn (each
/// `repeat` times), with the maps' contents after each run: the state one
/// packet leaves is what the next one sees.
pub fn run_packets(
    object: &[u8],
    prog: Option<&str>,
    packets: &[&[u8]],
    repeat: u32,
) -> Result<Vec<RunResult>> {
    let opts = RunOptions {
        prog,
        repeat,
        ..RunOptions::default()
    };
    run_all(object, &opts, packets)
}

/// [`run_packets`] with every option ([`RunOptions::data`] is ignored:
/// the packets are `packets`).
pub fn run_all(object: &[u8], opts: &RunOptions<'_>, packets: &[&[u8]]) -> Result<Vec<RunResult>> {
    let (prog, repeat) = (opts.prog, opts.repeat);
    let mut loaded = load_object(object, opts.globals)?;
    let name = choose_program(&loaded.ebpf, prog)?;
    if let Some(why) = loaded.refused.get(&name) {
        return Err(Error::new(
            ErrorKind::Object,
            format!("program '{name}' cannot be loaded: {why}"),
        ));
    }
    // Types aya has no loader for: bpfld loads those it can run itself.
    let raw = match loaded.unloadable.get(&name) {
        Some(t) => Some(raw_of(&loaded, &name).ok_or_else(|| {
            Error::new(
                ErrorKind::NotRunnable,
                format!(
                    "program '{name}' is of type {t}, which bpfld cannot load yet \
                     (runnable types: {RUNNABLE})"
                ),
            )
        })?),
        None => None,
    };
    let slots = std::mem::replace(&mut loaded.prog_slots, Ok(Vec::new()))?;
    {
        let ebpf = &mut loaded.ebpf;
        for u in opts.map_updates {
            let Some(map) = ebpf.map(&u.map) else {
                let mut names: Vec<&str> = ebpf.maps().map(|(n, _)| n).collect();
                names.sort();
                return Err(Error::new(
                    ErrorKind::Object,
                    format!(
                        "{}: no map named '{}'; the object's maps are: {}",
                        u.text,
                        u.map,
                        names.join(", ")
                    ),
                ));
            };
            seed_map(map_data(map), u)?;
        }
    }
    let repeat = repeat.max(1);
    if let Some(how) = raw {
        return run_raw(&mut loaded, &name, how, &slots, opts, packets, repeat);
    }
    let ebpf = &mut loaded.ebpf;
    let prog = ebpf
        .program_mut(&name)
        .ok_or_else(|| Error::new(ErrorKind::NoSuchProgram, format!("no program '{name}'")))?;
    let kind = kind_of(prog).ok_or_else(|| not_runnable(&name, prog))?;
    if kind == ProgKind::RawTracepoint && repeat > 1 {
        return Err(Error::new(
            ErrorKind::NotRunnable,
            format!(
                "program '{name}' is a raw_tracepoint program, which the kernel runs once \
                 per BPF_PROG_TEST_RUN: a repeat count does not apply"
            ),
        ));
    }
    if let Err(e) = load_aya(prog, &name) {
        // aya loads with a BTF of its own, not the one bpfld created the
        // maps with: the verifier refuses list/rbtree nodes and local
        // kptrs then. bpfld loads the program itself, with that BTF, as
        // libbpf reads its section. That load is the one libbpf makes, so
        // its verdict stands, a rejection too: aya's may be a complaint
        // about its own BTF ("expected=ptr_node" for a ptr_node).
        let how = raw_of(&loaded, &name).filter(|h| h.kind == kind);
        if let (Some(how), Some(_)) = (how, &loaded.btf_fd) {
            return run_raw(&mut loaded, &name, how, &slots, opts, packets, repeat);
        }
        return Err(e);
    }
    let ebpf = &mut loaded.ebpf;
    let Some(prog) = ebpf.program_mut(&name) else {
        return Err(Error::new(
            ErrorKind::NoSuchProgram,
            format!("no program '{name}'"),
        ));
    };
    let verified = prog
        .info()
        .ok()
        .and_then(|i| i.verified_instruction_count());
    fill_slots(&mut loaded, &slots, None)?;
    let ebpf = &mut loaded.ebpf;
    let mut results = Vec::with_capacity(packets.len());
    for data_in in packets {
        let prog = ebpf
            .program_mut(&name)
            .ok_or_else(|| Error::new(ErrorKind::NoSuchProgram, format!("no program '{name}'")))?;
        let (retval, duration, data_out) = if let Program::RawTracePoint(p) = prog {
            // A raw tracepoint gets no packet: its context is the
            // tracepoint's u64 arguments (all zero here), run once.
            let res = p
                .test_run(RawTracePointRunOptions::new())
                .map_err(|e| test_run_error(&name, kind, data_in.len(), e))?;
            (res.return_value, Duration::ZERO, Vec::new())
        } else {
            let mut data_out = vec![0u8; data_in.len() + DATA_OUT_SLACK];
            let test = TestRunOptions {
                data_in: Some(data_in),
                data_out: Some(&mut data_out),
                repeat,
                ..TestRunOptions::new()
            };
            let ran = runnable!(prog, p => p.test_run(test), other => return Err(not_runnable(&name, other)));
            let res = ran.map_err(|e| test_run_error(&name, kind, data_in.len(), e))?;
            data_out.truncate((res.data_size_out as usize).min(data_out.len()));
            (res.return_value, res.duration, data_out)
        };
        let maps = if !opts.maps_after_last_only || results.len() + 1 == packets.len() {
            dump_all(ebpf)?
        } else {
            Vec::new()
        };
        results.push(RunResult {
            program: name.clone(),
            kind,
            retval,
            duration_ns: u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX),
            repeat: if kind == ProgKind::RawTracepoint {
                1
            } else {
                repeat
            },
            data_out,
            maps,
            verified_insns: verified,
        });
    }
    Ok(results)
}

/// Each runnable type is its own aya struct with its own load() and
/// test_run(): `$body` runs with `$p` bound to whichever it is, `$other`
/// for the rest.
macro_rules! runnable {
    ($prog:expr, $p:ident => $body:expr, $o:ident => $other:expr) => {
        match $prog {
            Program::Xdp($p) => $body,
            Program::SchedClassifier($p) => $body,
            Program::SocketFilter($p) => $body,
            Program::ReusePortSocketFilter($p) => $body,
            Program::CgroupSkb($p) => $body,
            Program::FlowDissector($p) => $body,
            $o => $other,
        }
    };
}
use runnable;

fn not_runnable(name: &str, prog: &Program) -> Error {
    Error::new(
        ErrorKind::NotRunnable,
        format!(
            "program '{name}' is of type {}, which bpfld cannot run with BPF_PROG_TEST_RUN \
             (runnable types: {RUNNABLE})",
            type_name(prog)
        ),
    )
}

/// Loads an aya program of a runnable type (or a raw tracepoint).
fn load_aya(prog: &mut Program, name: &str) -> Result<()> {
    if let Program::RawTracePoint(p) = prog {
        return p.load().map_err(|e| program_error(name, e, "loading"));
    }
    runnable!(prog, p => p.load().map_err(|e| program_error(name, e, "loading")),
        other => Err(not_runnable(name, other)))
}

/// Every map of the object, sorted by name.
fn dump_all(ebpf: &aya::Ebpf) -> Result<Vec<MapDump>> {
    let mut maps = Vec::new();
    for (map_name, map) in ebpf.maps() {
        maps.push(dump_map(map_name, map_data(map))?);
    }
    maps.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(maps)
}

/// Puts the programs named in prog array initialisers into their slots,
/// loading each first (`raw`: the chosen program when bpfld loaded it).
/// Programs of types bpfld cannot load stay out, as if not initialised:
/// the chosen program cannot tail-call them anyway (a prog array holds
/// one type).
fn fill_slots(
    loaded: &mut LoadedObject,
    slots: &[Slot],
    raw: Option<(&str, &OwnedFd)>,
) -> Result<()> {
    let mut own: HashMap<String, OwnedFd> = HashMap::new();
    for slot in slots {
        let in_slot = |e: Error| {
            Error::new(
                e.kind(),
                format!(
                    "prog array '{}' slot {} (program '{}'): {}",
                    slot.map,
                    slot.index,
                    slot.target,
                    e.message()
                ),
            )
        };
        let fd: BorrowedFd<'_> = if let Some((_, fd)) = raw.filter(|(n, _)| *n == slot.target) {
            fd.as_fd()
        } else if loaded.unloadable.contains_key(&slot.target) {
            let Some(how) = raw_of(loaded, &slot.target) else {
                continue;
            };
            if !own.contains_key(&slot.target) {
                let fd = raw_load::load(
                    &loaded.bytes,
                    &loaded.ebpf,
                    &slot.target,
                    how,
                    loaded.btf_fd.as_ref().map(|f| f.as_fd()),
                )
                .map_err(in_slot)?;
                own.insert(slot.target.clone(), fd);
            }
            match own.get(&slot.target) {
                Some(fd) => fd.as_fd(),
                None => continue,
            }
        } else {
            let Some(prog) = loaded.ebpf.program_mut(&slot.target) else {
                continue;
            };
            if prog.fd().is_err() {
                if kind_of(prog).is_none() && !matches!(prog, Program::RawTracePoint(_)) {
                    continue;
                }
                load_aya(prog, &slot.target).map_err(in_slot)?;
            }
            let Some(prog) = loaded.ebpf.program(&slot.target) else {
                continue;
            };
            match prog.fd() {
                Ok(fd) => fd.as_fd(),
                Err(_) => continue,
            }
        };
        let prog_fd = fd.as_raw_fd() as u32;
        let Some(map) = loaded.ebpf.map(&slot.map) else {
            continue;
        };
        crate::sys::map_update(
            map_data(map).fd().as_fd(),
            &slot.index.to_ne_bytes(),
            &prog_fd.to_ne_bytes(),
        )
        .map_err(|e| {
            Error::new(
                ErrorKind::Kernel,
                format!(
                    "prog array '{}': cannot put program '{}' in slot {}: {}",
                    slot.map,
                    slot.target,
                    slot.index,
                    errno_text(&e)
                ),
            )
        })?;
    }
    Ok(())
}

/// How bpfld loads program `name` of `loaded` itself, from its section as
/// the object names it; `None` when it is of a type bpfld does not run.
fn raw_of(loaded: &LoadedObject, name: &str) -> Option<RawProg> {
    loaded.sections.get(name).and_then(|s| raw_spec(s))
}

/// Loads and runs a program bpfld loads itself (see [`raw_load`]).
fn run_raw(
    loaded: &mut LoadedObject,
    name: &str,
    how: RawProg,
    slots: &[Slot],
    opts: &RunOptions<'_>,
    packets: &[&[u8]],
    repeat: u32,
) -> Result<Vec<RunResult>> {
    let kind = how.kind;
    let once = matches!(kind, ProgKind::Syscall | ProgKind::RawTracepoint);
    if once && repeat > 1 {
        return Err(Error::new(
            ErrorKind::NotRunnable,
            format!(
                "program '{name}' is a {kind} program, which the kernel runs once per \
                 BPF_PROG_TEST_RUN: a repeat count does not apply"
            ),
        ));
    }
    let fd = raw_load::load(
        &loaded.bytes,
        &loaded.ebpf,
        name,
        how,
        loaded.btf_fd.as_ref().map(|f| f.as_fd()),
    )?;
    let verified = raw_load::verified_insns(&fd);
    fill_slots(loaded, slots, Some((name, &fd)))?;
    let mut results = Vec::with_capacity(packets.len());
    for data_in in packets {
        // The kernel runs these once and times nothing.
        let times = if once { 0 } else { repeat };
        let res = raw_load::test_run(&fd, kind, data_in, times, DATA_OUT_SLACK)
            .map_err(|e| raw_test_run_error(name, kind, data_in.len(), &e))?;
        let maps = if !opts.maps_after_last_only || results.len() + 1 == packets.len() {
            dump_all(&loaded.ebpf)?
        } else {
            Vec::new()
        };
        results.push(RunResult {
            program: name.to_string(),
            kind,
            retval: res.retval,
            duration_ns: res.duration_ns,
            repeat: if once { 1 } else { repeat },
            data_out: res.data_out,
            maps,
            verified_insns: verified,
        });
    }
    Ok(results)
}

/// The program types `bpfld run` runs, for messages.
const RUNNABLE: &str = "xdp, sched_cls (tc, tcx, classifier), socket_filter, cgroup_skb, \
     flow_dissector, raw_tracepoint, syscall, lwt_in, lwt_out, lwt_xmit, lwt_seg6local";

fn test_run_error(program: &str, kind: ProgKind, len: usize, e: ProgramError) -> Error {
    if let Some(p) = permission_error(&e) {
        return p;
    }
    let Some(io) = root_io_error(&e) else {
        return Error::new(
            ErrorKind::Kernel,
            format!(
                "program '{program}': BPF_PROG_TEST_RUN failed: {}",
                chain(&e)
            ),
        );
    };
    io_test_run_error(program, kind, len, io)
}

fn raw_test_run_error(program: &str, kind: ProgKind, len: usize, e: &std::io::Error) -> Error {
    if let Some(p) = permission_error(e) {
        return p;
    }
    io_test_run_error(program, kind, len, e)
}

fn io_test_run_error(program: &str, kind: ProgKind, len: usize, io: &std::io::Error) -> Error {
    let hint = match io.raw_os_error() {
        Some(libc::EINVAL) if kind == ProgKind::Syscall => format!(
            ": a syscall program's context is the --data bytes (at most 65535; {len} given)"
        ),
        Some(libc::EINVAL) if len < 14 => format!(
            ": the kernel refused the {len}-byte packet; a packet must hold at least an \
             Ethernet header (14 bytes)"
        ),
        Some(524) | Some(libc::EOPNOTSUPP) => {
            format!(": this kernel cannot test-run {kind} programs")
        }
        _ => String::new(),
    };
    Error::new(
        ErrorKind::Kernel,
        format!(
            "program '{program}': BPF_PROG_TEST_RUN failed ({}){hint}",
            errno_text(io)
        ),
    )
}
