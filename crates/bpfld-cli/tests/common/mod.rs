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
    let o = run(args);
    assert!(o.status.success(), "bpfld {args:?} failed: {}", stderr(&o));
    stdout(&o)
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
