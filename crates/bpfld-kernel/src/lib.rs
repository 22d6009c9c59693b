//! The kernel side of bpfld: load an eBPF object with aya (maps and global
//! data created), load one of its programs, run it with `BPF_PROG_TEST_RUN`
//! on packet bytes, and read back every map.
//!
//! Everything here needs the `bpf()` syscall (root, or CAP_BPF plus
//! CAP_NET_ADMIN / CAP_PERFMON, or CAP_SYS_ADMIN); without it the error says
//! so ([`ErrorKind::PermissionDenied`]).
//!
//! Maps the object pins by name (`LIBBPF_PIN_BY_NAME`) are pinned in a
//! private directory under /sys/fs/bpf for the duration of the run and
//! unpinned afterwards: each run starts from the object's own initial state.
//!
//! Map values of per-CPU maps are returned as one byte string per key: the
//! values of every *possible* CPU, in CPU order, each exactly `value_size`
//! bytes long (the kernel's 8-byte padding between them is removed), so
//! `value.len() == value_size * cpus` (see [`MapDump::per_cpu`]).

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod btf_check;
pub mod btf_load;
pub mod netlink;
mod sys;
pub mod xdp;

use std::fmt;
use std::io;

use aya::maps::{Map, MapData, MapType};
use aya::programs::{Program, ProgramError, TestRun, TestRunOptions};
use aya::{Ebpf, EbpfError, EbpfLoader};

/// The packet used when none is given: a 64-byte all-zero Ethernet frame.
pub const DEFAULT_PACKET: [u8; 64] = [0; 64];

/// Room the program gets to grow the packet (`bpf_xdp_adjust_tail`,
/// `bpf_skb_change_tail`, ...) before the kernel would report ENOSPC.
const DATA_OUT_SLACK: usize = 64 * 1024;

/// Verifier log lines shown on a rejection.
pub const VERIFIER_TAIL_LINES: usize = 20;

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
}

/// The program types bpfld can run with `BPF_PROG_TEST_RUN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgKind {
    Xdp,
    SchedCls,
    SocketFilter,
    CgroupSkb,
    FlowDissector,
}

impl ProgKind {
    /// libbpf's name of the type (as in `bpftool prog show`).
    pub fn name(self) -> &'static str {
        match self {
            ProgKind::Xdp => "xdp",
            ProgKind::SchedCls => "sched_cls",
            ProgKind::SocketFilter => "socket_filter",
            ProgKind::CgroupSkb => "cgroup_skb",
            ProgKind::FlowDissector => "flow_dissector",
        }
    }

    /// The symbolic name of a return value, for the types whose return
    /// values are actions (XDP and TC); `None` otherwise or when unknown.
    pub fn action_name(self, retval: u32) -> Option<&'static str> {
        match self {
            ProgKind::Xdp => [
                "XDP_ABORTED",
                "XDP_DROP",
                "XDP_PASS",
                "XDP_TX",
                "XDP_REDIRECT",
            ]
            .get(retval as usize)
            .copied(),
            ProgKind::SchedCls => {
                if retval == u32::MAX {
                    return Some("TC_ACT_UNSPEC");
                }
                [
                    "TC_ACT_OK",
                    "TC_ACT_RECLASSIFY",
                    "TC_ACT_SHOT",
                    "TC_ACT_PIPE",
                    "TC_ACT_STOLEN",
                    "TC_ACT_QUEUED",
                    "TC_ACT_REPEAT",
                    "TC_ACT_REDIRECT",
                    "TC_ACT_TRAP",
                ]
                .get(retval as usize)
                .copied()
            }
            ProgKind::CgroupSkb => match retval {
                0 => Some("drop"),
                1 => Some("allow"),
                _ => None,
            },
            ProgKind::SocketFilter | ProgKind::FlowDissector => None,
        }
    }
}

impl fmt::Display for ProgKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One map after the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapDump {
    /// aya's name: the map's symbol, or `.data`, `.bss`, `.rodata`, ...
    pub name: String,
    /// The map type in libbpf's spelling (`array`, `percpu_hash`, ...).
    pub map_type: String,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    /// For per-CPU maps, the number of possible CPUs; each value is then
    /// `cpus` values of `value_size` bytes, concatenated in CPU order.
    pub per_cpu: Option<usize>,
    /// Entries in the kernel's iteration order.
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
    /// Why entries could not be read, for maps whose contents are not
    /// readable by key (queues, ring buffers, prog arrays, ...).
    pub note: Option<String>,
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

/// What went wrong, for callers that react differently (tests skip on
/// [`ErrorKind::PermissionDenied`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `bpf()` refused (EPERM) or absent (ENOSYS).
    PermissionDenied,
    /// The verifier rejected the program.
    Verifier,
    /// `--prog` names no program, or the choice is ambiguous, or there is none.
    NoSuchProgram,
    /// The program's type cannot be run with `BPF_PROG_TEST_RUN`.
    NotRunnable,
    /// The object could not be parsed or its maps created.
    Object,
    /// Any other failure of a kernel call.
    Kernel,
}

/// A failure with a message meant for people (may span several lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    verifier: Option<VerifierReport>,
}

/// The useful part of a verifier rejection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierReport {
    /// The last instruction the verifier printed, e.g. `0: (61) r2 = *(u32 *)(r1 +4096)`.
    pub instruction: Option<String>,
    /// The line that says why, e.g. `invalid bpf_context access off=4096 size=4`.
    pub reason: Option<String>,
    /// The last [`VERIFIER_TAIL_LINES`] lines of the log.
    pub tail: Vec<String>,
}

impl Error {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            verifier: None,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Present for [`ErrorKind::Verifier`].
    pub fn verifier(&self) -> Option<&VerifierReport> {
        self.verifier.as_ref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

const PERMISSION_HINT: &str = "the bpf() syscall was refused: run as root, or with CAP_BPF and \
     CAP_NET_ADMIN (or CAP_SYS_ADMIN); check also kernel.unprivileged_bpf_disabled";
const NOSYS_HINT: &str = "the bpf() syscall is not available (ENOSYS): the kernel lacks \
     CONFIG_BPF_SYSCALL or a seccomp filter blocks it";

/// The io::Error at the bottom of an error chain, if any.
fn root_io_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a io::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut found = None;
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            found = Some(io);
        }
        cur = err.source();
    }
    found
}

/// EPERM / ENOSYS anywhere in the chain become the permission error.
fn permission_error(e: &(dyn std::error::Error + 'static)) -> Option<Error> {
    match root_io_error(e)?.raw_os_error()? {
        libc::EPERM => Some(Error::new(ErrorKind::PermissionDenied, PERMISSION_HINT)),
        libc::ENOSYS => Some(Error::new(ErrorKind::PermissionDenied, NOSYS_HINT)),
        _ => None,
    }
}

/// The whole error chain on one line: aya's top-level messages alone
/// ("failed to create map `x`") drop the errno.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(err) = cur {
        let m = err.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = err.source();
    }
    s
}

/// `EACCES: Permission denied`, or io::Error's text for unlisted errnos.
fn errno_text(e: &io::Error) -> String {
    let name = match e.raw_os_error() {
        Some(libc::EPERM) => "EPERM",
        Some(libc::EACCES) => "EACCES",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::E2BIG) => "E2BIG",
        Some(libc::ENOSPC) => "ENOSPC",
        Some(libc::ENOMEM) => "ENOMEM",
        Some(libc::EFAULT) => "EFAULT",
        Some(libc::ENOENT) => "ENOENT",
        Some(libc::EOPNOTSUPP) => "EOPNOTSUPP",
        Some(524) => "ENOTSUPP",
        _ => return e.to_string(),
    };
    let text = e.to_string();
    // io::Error prints "Permission denied (os error 13)"; keep the words.
    let words = text.split(" (os error").next().unwrap_or(&text);
    format!("{name}: {words}")
}

fn object_error(e: EbpfError) -> Error {
    if let EbpfError::ProgramError(pe) = e {
        return program_error("", pe, "loading the object");
    }
    if let Some(p) = permission_error(&e) {
        return p;
    }
    let text = chain(&e);
    // aya 0.14 knows sched_cls only by the section name "classifier".
    let hint = if text.contains("invalid program section `tc") {
        " (aya 0.14 loads sched_cls programs only from SEC(\"classifier\"); \
         libbpf's \"tc\" and \"tcx/...\" section names are not recognised)"
    } else {
        ""
    };
    Error::new(
        ErrorKind::Object,
        format!("cannot load the object: {text}{hint}"),
    )
}

fn program_error(program: &str, e: ProgramError, doing: &str) -> Error {
    if let ProgramError::LoadError {
        io_error,
        verifier_log,
    } = &e
    {
        let log = verifier_log.to_string();
        let errno = io_error.raw_os_error();
        if log.trim().is_empty() && matches!(errno, Some(libc::EPERM) | Some(libc::ENOSYS)) {
            if let Some(p) = permission_error(&e) {
                return p;
            }
        }
        return verifier_error(program, io_error, &log);
    }
    permission_error(&e).unwrap_or_else(|| {
        Error::new(
            ErrorKind::Kernel,
            format!("program '{program}': {doing}: {}", chain(&e)),
        )
    })
}

/// Digests a verifier log into the instruction it stopped at, the reason,
/// and the last lines.
pub fn digest_verifier_log(log: &str) -> VerifierReport {
    let lines: Vec<&str> = log.lines().map(str::trim_end).collect();
    // Trailing blank lines carry nothing.
    let end = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(0, |i| i + 1);
    let lines = &lines[..end];
    let tail: Vec<String> = lines[lines.len().saturating_sub(VERIFIER_TAIL_LINES)..]
        .iter()
        .map(|l| l.to_string())
        .collect();
    let insn_at = lines.iter().rposition(|l| is_insn_line(l));
    let mut instruction = insn_at.map(|i| insn_text(lines[i]));
    // The reason follows the last instruction printed; without one, it is
    // the last line that is not the statistics footer.
    let reason = match insn_at {
        Some(i) => lines[i + 1..]
            .iter()
            .find(|l| !l.trim().is_empty() && !is_insn_line(l) && !is_stats_line(l))
            .map(|l| l.to_string()),
        None => lines
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty() && !is_stats_line(l))
            .map(|l| l.to_string()),
    };
    // "infinite loop detected at insn 18", "... from insn 3 to 1": the
    // instruction the reason names, when the log printed it.
    if let Some(n) = reason.as_deref().and_then(named_insn) {
        let prefix = format!("{n}: (");
        if let Some(l) = lines.iter().rev().find(|l| l.starts_with(&prefix)) {
            instruction = Some(insn_text(l));
        }
    }
    VerifierReport {
        instruction,
        reason,
        tail,
    }
}

/// The number after the first "insn " in a verifier message.
fn named_insn(reason: &str) -> Option<u32> {
    let rest = &reason[reason.find("insn ")? + 5..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// An instruction line without the register state the verifier appends
/// (after "  ; " at log level 2, or directly as " 9: R0=..." when a jump's
/// target state follows on the same line).
fn insn_text(line: &str) -> String {
    let mut end = line.find("  ;").unwrap_or(line.len());
    // Skip "N: (" itself, then look for a state " M: R".
    let body_start = line.find(": (").map_or(0, |i| i + 3);
    let bytes = line.as_bytes();
    let mut i = body_start;
    while i < end {
        if bytes[i] == b' ' {
            let digits = bytes[i + 1..end]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits > 0 && line[i + 1 + digits..end].starts_with(": R") {
                end = i;
                break;
            }
        }
        i += 1;
    }
    line[..end].trim_end().to_string()
}

/// `12: (61) r2 = ...`: an instruction as the verifier prints it (state
/// lines such as `12: R1=ctx()` have no opcode in parentheses).
fn is_insn_line(l: &str) -> bool {
    let Some((num, rest)) = l.split_once(": (") else {
        return false;
    };
    !num.is_empty()
        && num.bytes().all(|b| b.is_ascii_digit())
        && rest.len() > 3
        && rest.as_bytes()[..2].iter().all(u8::is_ascii_hexdigit)
        && rest.as_bytes()[2] == b')'
}

fn is_stats_line(l: &str) -> bool {
    l.starts_with("processed ")
        || l.starts_with("verification time")
        || l.starts_with("stack depth")
        || l.starts_with("-- END PROG LOAD LOG --")
}

fn verifier_error(program: &str, io_error: &io::Error, log: &str) -> Error {
    let report = digest_verifier_log(log);
    let mut m = format!(
        "program '{program}' rejected by the verifier ({})",
        errno_text(io_error)
    );
    if let Some(i) = &report.instruction {
        m.push_str(&format!("\n  at instruction {i}"));
    }
    if let Some(r) = &report.reason {
        m.push_str(&format!("\n  reason: {r}"));
    }
    if report.tail.is_empty() {
        m.push_str("\n  (the verifier left no log)");
    } else {
        m.push_str(&format!(
            "\n  verifier log (last {} lines):",
            report.tail.len()
        ));
        for l in &report.tail {
            m.push_str("\n    ");
            m.push_str(l);
        }
    }
    Error {
        kind: ErrorKind::Verifier,
        message: m,
        verifier: Some(report),
    }
}

fn kind_of(p: &Program) -> Option<ProgKind> {
    Some(match p {
        Program::Xdp(_) => ProgKind::Xdp,
        Program::SchedClassifier(_) => ProgKind::SchedCls,
        Program::SocketFilter(_) | Program::ReusePortSocketFilter(_) => ProgKind::SocketFilter,
        Program::CgroupSkb(_) => ProgKind::CgroupSkb,
        Program::FlowDissector(_) => ProgKind::FlowDissector,
        _ => return None,
    })
}

/// libbpf's name of any program type (as `bpftool prog show` prints it),
/// for messages.
fn type_name(p: &Program) -> &'static str {
    if let Some(k) = kind_of(p) {
        return k.name();
    }
    match p {
        Program::KProbe(_) | Program::UProbe(_) => "kprobe",
        Program::TracePoint(_) => "tracepoint",
        Program::RawTracePoint(_) => "raw_tracepoint",
        Program::BtfTracePoint(_) | Program::FEntry(_) | Program::FExit(_) | Program::Iter(_) => {
            "tracing"
        }
        Program::Lsm(_) | Program::LsmCgroup(_) => "lsm",
        Program::PerfEvent(_) => "perf_event",
        Program::SkMsg(_) => "sk_msg",
        Program::SkSkb(_) => "sk_skb",
        Program::SockOps(_) => "sock_ops",
        Program::CgroupSock(_) => "cgroup_sock",
        Program::CgroupSockAddr(_) => "cgroup_sock_addr",
        Program::CgroupSockopt(_) => "cgroup_sockopt",
        Program::CgroupSysctl(_) => "cgroup_sysctl",
        Program::CgroupDevice(_) => "cgroup_device",
        Program::LircMode2(_) => "lirc_mode2",
        Program::SkLookup(_) => "sk_lookup",
        Program::SkReuseport(_) => "sk_reuseport",
        Program::Extension(_) => "ext",
        _ => "unknown",
    }
}

/// Names of the object's programs, sorted.
fn program_names(ebpf: &Ebpf) -> Vec<String> {
    let mut v: Vec<String> = ebpf.programs().map(|(n, _)| n.to_string()).collect();
    v.sort();
    v
}

fn choose_program(ebpf: &Ebpf, wanted: Option<&str>) -> Result<String> {
    let names = program_names(ebpf);
    match wanted {
        Some(w) if names.iter().any(|n| n == w) => Ok(w.to_string()),
        Some(w) => Err(Error::new(
            ErrorKind::NoSuchProgram,
            if names.is_empty() {
                format!("no program named '{w}': the object has no programs")
            } else {
                format!(
                    "no program named '{w}'; the object's programs are: {}",
                    names.join(", ")
                )
            },
        )),
        None => match names.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(Error::new(
                ErrorKind::NoSuchProgram,
                "the object has no programs",
            )),
            _ => Err(Error::new(
                ErrorKind::NoSuchProgram,
                format!(
                    "the object has {} programs; choose one with --prog: {}",
                    names.len(),
                    names.join(", ")
                ),
            )),
        },
    }
}

/// Loads `object` (an ELF eBPF object), runs one program and reads every map.
pub fn run(object: &[u8], opts: &RunOptions<'_>) -> Result<RunResult> {
    let data_in = opts.data.unwrap_or(&DEFAULT_PACKET);
    let mut results = run_packets(object, opts.prog, &[data_in], opts.repeat)?;
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
    let pins = PinDir::create();
    let mut loader = EbpfLoader::new();
    if let Some(p) = &pins {
        loader.default_map_pin_directory(&p.0);
    }
    let mut ebpf = loader.load(object).map_err(object_error)?;
    let name = choose_program(&ebpf, prog)?;
    let prog = ebpf
        .program_mut(&name)
        .ok_or_else(|| Error::new(ErrorKind::NoSuchProgram, format!("no program '{name}'")))?;
    let not_runnable = |prog: &Program| {
        Error::new(
            ErrorKind::NotRunnable,
            format!(
                "program '{name}' is of type {}, which bpfld cannot run with BPF_PROG_TEST_RUN \
                 (runnable types: xdp, sched_cls, socket_filter, cgroup_skb, flow_dissector)",
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
    let verified = runnable!(prog, p => {
        p.load().map_err(|e| program_error(&name, e, "loading"))?;
        p.info().ok().and_then(|i| i.verified_instruction_count())
    });
    let mut results = Vec::with_capacity(packets.len());
    for data_in in packets {
        let mut data_out = vec![0u8; data_in.len() + DATA_OUT_SLACK];
        let test = TestRunOptions {
            data_in: Some(data_in),
            data_out: Some(&mut data_out),
            repeat,
            ..TestRunOptions::new()
        };
        let prog = ebpf
            .program_mut(&name)
            .ok_or_else(|| Error::new(ErrorKind::NoSuchProgram, format!("no program '{name}'")))?;
        let ran = runnable!(prog, p => p.test_run(test));
        let res = ran.map_err(|e| test_run_error(&name, kind, data_in.len(), e))?;
        data_out.truncate((res.data_size_out as usize).min(data_out.len()));

        let mut maps = Vec::new();
        for (map_name, map) in ebpf.maps() {
            maps.push(dump_map(map_name, map_data(map))?);
        }
        maps.sort_by(|a, b| a.name.cmp(&b.name));

        results.push(RunResult {
            program: name.clone(),
            kind,
            retval: res.return_value,
            duration_ns: u64::try_from(res.duration.as_nanos()).unwrap_or(u64::MAX),
            repeat,
            data_out,
            maps,
            verified_insns: verified,
        });
    }
    Ok(results)
}

/// A private directory in bpffs for maps the object pins by name
/// (`LIBBPF_PIN_BY_NAME`), so that a run neither reuses a map pinned in
/// /sys/fs/bpf by someone else nor leaves a pin behind. Removed, with its
/// pins, on drop.
struct PinDir(std::path::PathBuf);

impl PinDir {
    /// `None` when /sys/fs/bpf is not writable (no bpffs mounted): aya then
    /// reports the failure if, and only if, the object pins a map.
    fn create() -> Option<PinDir> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        // bpffs refuses names with a dot.
        let dir =
            std::path::PathBuf::from(format!("/sys/fs/bpf/bpfld-run-{}-{n}", std::process::id()));
        std::fs::create_dir(&dir).ok().map(|()| PinDir(dir))
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        // Best effort: the pins are the only entries; unlinking a pin drops
        // its reference to the map.
        if let Ok(rd) = std::fs::read_dir(&self.0) {
            for e in rd.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

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

fn map_data(map: &Map) -> &MapData {
    match map {
        Map::Array(m)
        | Map::ArrayOfMaps(m)
        | Map::BloomFilter(m)
        | Map::CgroupArray(m)
        | Map::CgroupStorage(m)
        | Map::CgrpStorage(m)
        | Map::CpuMap(m)
        | Map::DevMap(m)
        | Map::DevMapHash(m)
        | Map::HashMap(m)
        | Map::HashOfMaps(m)
        | Map::InodeStorage(m)
        | Map::LpmTrie(m)
        | Map::LruHashMap(m)
        | Map::PerCpuArray(m)
        | Map::PerCpuCgroupStorage(m)
        | Map::PerCpuHashMap(m)
        | Map::PerCpuLruHashMap(m)
        | Map::PerfEventArray(m)
        | Map::ProgramArray(m)
        | Map::Queue(m)
        | Map::ReusePortSockArray(m)
        | Map::RingBuf(m)
        | Map::SockHash(m)
        | Map::SockMap(m)
        | Map::SkStorage(m)
        | Map::Stack(m)
        | Map::StackTraceMap(m)
        | Map::Unsupported(m)
        | Map::XskMap(m) => m,
    }
}

/// libbpf's spelling of the map types bpfld is likely to meet.
fn map_type_name(t: Option<MapType>, raw: &str) -> String {
    let s = match t {
        Some(MapType::Hash) => "hash",
        Some(MapType::Array) => "array",
        Some(MapType::ProgramArray) => "prog_array",
        Some(MapType::PerfEventArray) => "perf_event_array",
        Some(MapType::PerCpuHash) => "percpu_hash",
        Some(MapType::PerCpuArray) => "percpu_array",
        Some(MapType::StackTrace) => "stack_trace",
        Some(MapType::LruHash) => "lru_hash",
        Some(MapType::LruPerCpuHash) => "lru_percpu_hash",
        Some(MapType::LpmTrie) => "lpm_trie",
        Some(MapType::ArrayOfMaps) => "array_of_maps",
        Some(MapType::HashOfMaps) => "hash_of_maps",
        Some(MapType::DevMap) => "devmap",
        Some(MapType::CpuMap) => "cpumap",
        Some(MapType::Queue) => "queue",
        Some(MapType::Stack) => "stack",
        Some(MapType::RingBuf) => "ringbuf",
        Some(MapType::BloomFilter) => "bloom_filter",
        _ => return raw.to_string(),
    };
    s.to_string()
}

fn dump_map(name: &str, map: &MapData) -> Result<MapDump> {
    let info = map.info().map_err(|e| {
        permission_error(&e).unwrap_or_else(|| {
            Error::new(
                ErrorKind::Kernel,
                format!("map '{name}': cannot read its info: {}", chain(&e)),
            )
        })
    })?;
    let mtype = info.map_type().ok();
    let map_type = map_type_name(mtype, &format!("{mtype:?}"));
    let per_cpu = match mtype {
        Some(
            MapType::PerCpuHash
            | MapType::PerCpuArray
            | MapType::LruPerCpuHash
            | MapType::PerCpuCgroupStorage,
        ) => Some(aya::util::nr_cpus().map_err(|(file, e)| {
            Error::new(ErrorKind::Kernel, format!("cannot read {file}: {e}"))
        })?),
        _ => None,
    };
    let mut dump = MapDump {
        name: name.to_string(),
        map_type,
        key_size: info.key_size(),
        value_size: info.value_size(),
        max_entries: info.max_entries(),
        per_cpu,
        entries: Vec::new(),
        note: None,
    };
    if dump.key_size == 0 {
        dump.note = Some("keyless map: contents not readable by key".to_string());
        return Ok(dump);
    }
    let key_size = dump.key_size as usize;
    let value_size = dump.value_size as usize;
    // The kernel pads each CPU's value to 8 bytes in a per-CPU lookup.
    let stride = value_size.div_ceil(8) * 8;
    let buf_len = match per_cpu {
        Some(n) => stride * n,
        None => value_size,
    };
    let fd = map.fd();
    let mut key: Option<Vec<u8>> = None;
    // No key is visited twice without a concurrent delete, and nothing runs
    // now; the bound only guards against a kernel that restarts iteration.
    for _ in 0..dump.max_entries {
        let next = match sys::map_get_next_key(fd, key.as_deref(), key_size) {
            Ok(Some(k)) => k,
            Ok(None) => break,
            Err(e) => {
                dump.note = Some(format!("cannot iterate keys: {e}"));
                break;
            }
        };
        match sys::map_lookup(fd, &next, buf_len) {
            Ok(Some(v)) => {
                let value = match per_cpu {
                    Some(_) => v
                        .chunks(stride)
                        .flat_map(|c| &c[..value_size])
                        .copied()
                        .collect(),
                    None => v,
                };
                dump.entries.push((next.clone(), value));
            }
            // Deleted between the two calls: nothing to show.
            Ok(None) => {}
            Err(e) => {
                dump.note = Some(format!("cannot look up values: {e}"));
                break;
            }
        }
        key = Some(next);
    }
    Ok(dump)
}

/// Whether this process may use `bpf()`: creates and drops a one-entry
/// array map. `Err` carries the permission error; tests use it to skip.
pub fn probe_bpf() -> Result<()> {
    sys::probe_array_map().map_err(|e| match e.raw_os_error() {
        Some(libc::EPERM) => Error::new(ErrorKind::PermissionDenied, PERMISSION_HINT),
        Some(libc::ENOSYS) => Error::new(ErrorKind::PermissionDenied, NOSYS_HINT),
        _ => Error::new(ErrorKind::Kernel, format!("bpf() probe failed: {e}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real log of a ctx read out of bounds (kernel 6.x, level 1+4).
    const LOG: &str = "func#0 @0\n0: R1=ctx() R10=fp0\n; int bad(struct xdp_md *ctx) @ x.c:3\n\
0: (61) r0 = *(u32 *)(r1 +4096)\ninvalid bpf_context access off=4096 size=4\n\
processed 1 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n\n";

    #[test]
    fn digest_finds_instruction_and_reason() {
        let r = digest_verifier_log(LOG);
        assert_eq!(
            r.instruction.as_deref(),
            Some("0: (61) r0 = *(u32 *)(r1 +4096)")
        );
        assert_eq!(
            r.reason.as_deref(),
            Some("invalid bpf_context access off=4096 size=4")
        );
        assert_eq!(r.tail.len(), 6);
        assert!(r.tail.last().unwrap().starts_with("processed 1 insns"));
    }

    #[test]
    fn digest_keeps_only_the_tail() {
        let log: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let r = digest_verifier_log(&log);
        assert_eq!(r.tail.len(), VERIFIER_TAIL_LINES);
        assert_eq!(r.tail[0], "line 80");
        assert_eq!(r.instruction, None);
        assert_eq!(r.reason.as_deref(), Some("line 99"));
    }

    #[test]
    fn reason_naming_an_insn_picks_that_insn() {
        let log = "17: (b4) w0 = 2                       ; R0=2\n\
18: (ae) if w2 < w1 goto pc-10 9: R0=2 R1=scalar()\n\
17: (b4) w0 = 2\ninfinite loop detected at insn 18\ncur state: R0=2\n";
        let r = digest_verifier_log(log);
        assert_eq!(
            r.reason.as_deref(),
            Some("infinite loop detected at insn 18")
        );
        assert_eq!(
            r.instruction.as_deref(),
            Some("18: (ae) if w2 < w1 goto pc-10")
        );
        assert_eq!(
            insn_text("16: (61) r2 = *(u32 *)(r10 -4)        ; R2=1"),
            "16: (61) r2 = *(u32 *)(r10 -4)"
        );
    }

    #[test]
    fn state_lines_are_not_instructions() {
        assert!(!is_insn_line("0: R1=ctx() R10=fp0"));
        assert!(is_insn_line("12: (b7) r0 = 2"));
        assert!(!is_insn_line("(b7) r0 = 2"));
    }

    #[test]
    fn action_names() {
        assert_eq!(ProgKind::Xdp.action_name(2), Some("XDP_PASS"));
        assert_eq!(ProgKind::Xdp.action_name(5), None);
        assert_eq!(ProgKind::SchedCls.action_name(2), Some("TC_ACT_SHOT"));
        assert_eq!(
            ProgKind::SchedCls.action_name(u32::MAX),
            Some("TC_ACT_UNSPEC")
        );
        assert_eq!(ProgKind::SocketFilter.action_name(0), None);
    }
}
