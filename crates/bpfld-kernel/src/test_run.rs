//! Running a program with `BPF_PROG_TEST_RUN` on packet bytes, and what
//! the run leaves: return value, packet, every map.

use std::time::Duration;

use aya::programs::{Program, ProgramError, RawTracePointRunOptions, TestRun, TestRunOptions};

use crate::error::{chain, errno_text, permission_error, program_error, root_io_error};
use crate::error::{Error, ErrorKind, Result};
use crate::globals::{GlobalValue, MapUpdate};
use crate::load::{choose_program, load_object};
use crate::maps::{dump_map, map_data, seed_map, MapDump};
use crate::prog_kind::{kind_of, type_name, ProgKind};

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
    if let Some(t) = loaded.unloadable.get(&name) {
        return Err(Error::new(
            ErrorKind::NotRunnable,
            format!(
                "program '{name}' is of type {t}, which bpfld cannot load yet \
                 (runnable types: {RUNNABLE})"
            ),
        ));
    }
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
    let prog = ebpf
        .program_mut(&name)
        .ok_or_else(|| Error::new(ErrorKind::NoSuchProgram, format!("no program '{name}'")))?;
    let not_runnable = |prog: &Program| {
        Error::new(
            ErrorKind::NotRunnable,
            format!(
                "program '{name}' is of type {}, which bpfld cannot run with BPF_PROG_TEST_RUN \
                 (runnable types: {RUNNABLE})",
                type_name(prog)
            ),
        )
    };
    let kind = kind_of(prog).ok_or_else(|| not_runnable(prog))?;
    let repeat = repeat.max(1);
    // Each runnable type is its own aya struct with its own load() and
    // test_run(): `$body` runs with `$p` bound to whichever it is.
    macro_rules! runnable {
        ($prog:expr, $p:ident => $body:expr) => {
            match $prog {
                Program::Xdp($p) => $body,
                Program::SchedClassifier($p) => $body,
                Program::SocketFilter($p) => $body,
                Program::ReusePortSocketFilter($p) => $body,
                Program::CgroupSkb($p) => $body,
                Program::FlowDissector($p) => $body,
                other => return Err(not_runnable(other)),
            }
        };
    }
    if kind == ProgKind::RawTracepoint && repeat > 1 {
        return Err(Error::new(
            ErrorKind::NotRunnable,
            format!(
                "program '{name}' is a raw_tracepoint program, which the kernel runs once \
                 per BPF_PROG_TEST_RUN: a repeat count does not apply"
            ),
        ));
    }
    let verified = if let Program::RawTracePoint(p) = prog {
        p.load().map_err(|e| program_error(&name, e, "loading"))?;
        p.info().ok().and_then(|i| i.verified_instruction_count())
    } else {
        runnable!(prog, p => {
            p.load().map_err(|e| program_error(&name, e, "loading"))?;
            p.info().ok().and_then(|i| i.verified_instruction_count())
        })
    };
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
            let ran = runnable!(prog, p => p.test_run(test));
            let res = ran.map_err(|e| test_run_error(&name, kind, data_in.len(), e))?;
            data_out.truncate((res.data_size_out as usize).min(data_out.len()));
            (res.return_value, res.duration, data_out)
        };

        let mut maps = Vec::new();
        if !opts.maps_after_last_only || results.len() + 1 == packets.len() {
            for (map_name, map) in ebpf.maps() {
                maps.push(dump_map(map_name, map_data(map))?);
            }
            maps.sort_by(|a, b| a.name.cmp(&b.name));
        }

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

/// The program types `bpfld run` runs, for messages.
const RUNNABLE: &str =
    "xdp, sched_cls (tc, tcx, classifier), socket_filter, cgroup_skb, flow_dissector, raw_tracepoint";

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
    let hint = match io.raw_os_error() {
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
