//! Shared helpers for the end-to-end tests: the built binary, the fixtures,
//! and the reference tools (llvm-objdump-19, bpftool) when present.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bpfld() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bpfld"))
}

/// Runs bpfld with `args`.
pub fn run(args: &[&str]) -> Output {
    bpfld().args(args).output().expect("bpfld runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs bpfld and asserts success, returning stdout.
pub fn ok(args: &[&str]) -> String {
    succeeded(&run(args), args)
}

/// The stdout of a bpfld run with `args` that must have succeeded.
pub fn succeeded(o: &Output, args: &[&str]) -> String {
    assert!(o.status.success(), "bpfld {args:?} failed: {}", stderr(o));
    stdout(o)
}

/// bpfld to be run inside network namespace `ns` (through `ip netns
/// exec`, which also gives it a bpffs of its own).
pub fn bpfld_in_netns(ns: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_bpfld")]);
    c
}

/// An OCI archive as a command-line argument (`oci-archive:PATH`).
pub fn oci_archive(path: &Path) -> String {
    format!("oci-archive:{}", path.display())
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn fixtures_dir() -> PathBuf {
    root().join("fixtures")
}

pub fn fixture(name: &str) -> PathBuf {
    fixtures_dir().join(name)
}

/// A fixture's path as a command-line argument.
pub fn fx(name: &str) -> String {
    fixture(name).display().to_string()
}

/// `bpfld run ARGS --json`, parsed.
pub fn run_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = ok(&all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}"))
}

/// A file of `bytes` in the temp dir (a packet, a context), removed when
/// dropped.
pub struct TempFile(PathBuf);

impl TempFile {
    pub fn new(tag: &str, bytes: &[u8]) -> TempFile {
        let p = std::env::temp_dir().join(format!("bpfld-file-{}-{tag}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        TempFile(p)
    }

    pub fn arg(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Every committed fixture object, sorted.
pub fn fixture_objects() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "o"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no fixture objects in fixtures/");
    v
}

/// Whether an external tool is on PATH; says so loudly when it is not, so a
/// skipped comparison shows in the test output.
pub fn have_tool(tool: &str, test: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIP {test}: {tool} is not installed (scripts/test.sh installs it)");
    }
    found
}

pub fn tool_output(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd).args(args).output().expect("tool runs")
}

pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

pub fn have_vmlinux(test: &str) -> bool {
    let found = Path::new(VMLINUX).exists();
    if !found {
        eprintln!("SKIP {test}: {VMLINUX} does not exist on this kernel");
    }
    found
}

pub fn tmpdir(tag: &str) -> PathBuf {
    static DIRS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = DIRS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("bpfld-link-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Whether libbpf (bpftool prog loadall) accepts the object.
pub fn libbpf_loads(obj: &Path) -> Result<(), String> {
    static LOADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = LOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pin = format!("/sys/fs/bpf/bpfld-link-test-{}-{n}", std::process::id());
    let _ = std::fs::remove_dir_all(&pin);
    let o = tool_output("bpftool", &["prog", "loadall", obj.to_str().unwrap(), &pin]);
    let _ = std::fs::remove_dir_all(&pin);
    unpin_by_name(obj);
    if o.status.success() {
        Ok(())
    } else {
        Err(stderr(&o))
    }
}

/// libbpf pins maps declared `LIBBPF_PIN_BY_NAME` in /sys/fs/bpf and
/// reuses them on the next load: remove the ones this object pinned, so
/// no state leaks from one test (or run) into the next.
pub fn unpin_by_name(obj: &Path) {
    let o = run(&["inspect", "--json", obj.to_str().unwrap()]);
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&o.stdout) else {
        return;
    };
    for m in v["maps"].as_array().into_iter().flatten() {
        if m["pinning"] == 1 {
            if let Some(name) = m["name"].as_str() {
                let _ = std::fs::remove_file(format!("/sys/fs/bpf/{name}"));
            }
        }
    }
}

/// Loads the object with libbpf and runs one program with
/// `bpftool prog run` on a 64-byte zero frame; returns its return value.
pub fn run_libbpf(obj: &Path, prog: &str) -> i64 {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pin = format!("/sys/fs/bpf/bpfld-link-run-{}-{n}", std::process::id());
    let _ = std::fs::remove_dir_all(&pin);
    let o = tool_output("bpftool", &["prog", "loadall", obj.to_str().unwrap(), &pin]);
    unpin_by_name(obj);
    assert!(o.status.success(), "libbpf refuses {obj:?}: {}", stderr(&o));
    let pkt = std::env::temp_dir().join(format!("bpfld-pkt-{}-{n}", std::process::id()));
    std::fs::write(&pkt, [0u8; 64]).unwrap();
    let o = tool_output(
        "bpftool",
        &[
            "prog",
            "run",
            "pinned",
            &format!("{pin}/{prog}"),
            "data_in",
            pkt.to_str().unwrap(),
        ],
    );
    let _ = std::fs::remove_dir_all(&pin);
    let _ = std::fs::remove_file(&pkt);
    let text = format!("{}{}", stdout(&o), stderr(&o));
    let ret = text
        .split("Return value: ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|r| r.trim().parse().ok());
    ret.unwrap_or_else(|| panic!("bpftool prog run {prog}: {text}"))
}

/// Runs one program with `bpfld run --json` (aya) and returns (retval, maps).
pub fn run_prog(obj: &Path, prog: &str) -> (i64, serde_json::Value) {
    // --all: callers compare whole maps, zero entries included.
    let o = run(&[
        "run",
        obj.to_str().unwrap(),
        "--prog",
        prog,
        "--json",
        "--all",
    ]);
    assert!(
        o.status.success(),
        "bpfld run {obj:?} {prog}: {}",
        stderr(&o)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("run --json is JSON");
    (
        v["retval"].as_i64().expect("retval"),
        cpu_blind(v["maps"].clone()),
    )
}

/// Per-CPU values land on whichever CPU ran the test: compare them as a
/// sorted list, not by CPU.
pub fn cpu_blind(mut maps: serde_json::Value) -> serde_json::Value {
    if let Some(obj) = maps.as_object_mut() {
        for entries in obj.values_mut() {
            for e in entries.as_array_mut().into_iter().flatten() {
                if let Some(list) = e.get_mut("per_cpu").and_then(|l| l.as_array_mut()) {
                    list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                    e["value"] = serde_json::Value::Null;
                    if let Some(f) = e.get_mut("formatted").and_then(|f| f.as_object_mut()) {
                        f.remove("values");
                    }
                }
            }
        }
    }
    maps
}

pub fn kernel_available() -> bool {
    let ok = Path::new("/sys/fs/bpf").exists() && have_tool("bpftool", "link kernel checks");
    if !ok {
        eprintln!("SKIP link kernel checks: no bpffs or bpftool");
    }
    ok
}

/// Whether bpf() works here (asked once per test binary); says so loudly
/// when it does not, so the skipped kernel checks show in the output.
pub fn bpf_allowed(test: &str) -> bool {
    static ALLOWED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let r = ALLOWED.get_or_init(|| match bpfld_kernel::probe_bpf() {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == bpfld_kernel::ErrorKind::PermissionDenied => Err(e.to_string()),
        Err(e) => panic!("bpf() probe failed for a reason other than permission: {e}"),
    });
    match r {
        Ok(()) => true,
        Err(why) => {
            eprintln!("SKIP {test}: {why}");
            false
        }
    }
}

/// tools/corpus-run (the corpus's reference loader) built with gcc, linked
/// with the system's libbpf, or with the static one under `libbpf_dir`
/// (`include/`, `lib/libbpf.a`); `None` (said loudly) when gcc or the
/// system's libbpf is missing. A build against `libbpf_dir` must succeed.
pub fn corpus_runner(test: &str, libbpf_dir: Option<&Path>) -> Option<PathBuf> {
    if !have_tool("gcc", test) {
        return None;
    }
    let out = tmpdir("corpus-runner").join("corpus_run");
    let src = root().join("tools/corpus-run/corpus_run.c");
    let mut args: Vec<String> = vec!["-O2".into()];
    if let Some(dir) = libbpf_dir {
        args.push(format!("-I{}", dir.join("include").display()));
    }
    args.extend(["-o".into(), path_str(&out), path_str(&src)]);
    match libbpf_dir {
        Some(dir) => args.extend([
            path_str(&dir.join("lib/libbpf.a")),
            "-lelf".into(),
            "-lz".into(),
        ]),
        None => args.push("-lbpf".into()),
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = tool_output("gcc", &args);
    if !o.status.success() {
        if let Some(dir) = libbpf_dir {
            panic!("corpus_run with {}: {}", dir.display(), stderr(&o));
        }
        eprintln!(
            "SKIP {test}: cannot build corpus_run with libbpf: {}",
            stderr(&o)
        );
        return None;
    }
    Some(out)
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("UTF-8 path").to_string()
}
