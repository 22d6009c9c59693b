//! `bpfld run` on what only a loader can complete: `.kconfig` and `.ksyms`
//! externs resolved against the running kernel, program types aya 0.14
//! cannot load (syscall, lwt_*), and prog arrays filled from
//! `__array(values, ...)`. Real kernel; without bpf() each test prints
//! `SKIP ...` and passes.

mod common;
use common::*;

use std::path::PathBuf;

use serde_json::Value;

fn fx(name: &str) -> String {
    fixture(name).display().to_string()
}

fn run_json(args: &[&str]) -> Value {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = ok(&all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}"))
}

/// `CONFIG_NAME`'s value in the running kernel's configuration.
fn kconfig(name: &str) -> Option<String> {
    let o = tool_output(
        "sh",
        &[
            "-c",
            "zcat /proc/config.gz 2>/dev/null || cat /boot/config-$(uname -r)",
        ],
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")).map(str::to_string))
}

fn kernel_version() -> u64 {
    let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut n = r
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let (a, b, c) = (n.next().unwrap(), n.next().unwrap(), n.next().unwrap_or(0));
    (a << 16) + (b << 8) + c.min(255)
}

struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str, bytes: &[u8]) -> TempFile {
        let p = std::env::temp_dir().join(format!("bpfld-run-load-{}-{tag}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        TempFile(p)
    }
    fn arg(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn kconfig_and_ksym_externs_are_resolved_from_the_running_kernel() {
    if !bpf_allowed("kconfig_and_ksym_externs_are_resolved_from_the_running_kernel") {
        return;
    }
    let Some(hz) = kconfig("CONFIG_HZ") else {
        eprintln!("SKIP kconfig_and_ksym_externs...: no kernel configuration readable");
        return;
    };
    let v = run_json(&[&fx("run_externs.o")]);
    let syscall = kconfig("CONFIG_BPF_SYSCALL").as_deref() == Some("y");
    assert_eq!(v["action"], if syscall { "XDP_PASS" } else { "XDP_DROP" });
    let seen = &v["maps"][".bss"][0]["formatted"]["value"][".bss"][0]["seen"];
    assert_eq!(seen["version"], kernel_version(), "{v}");
    assert_eq!(seen["hz"].to_string(), hz);
    assert_eq!(seen["bpf_syscall"], u8::from(syscall));
    let tri = match kconfig("CONFIG_NET_CLS_BPF").as_deref() {
        Some("y") => 1,
        Some("m") => 2,
        _ => 0,
    };
    assert_eq!(seen["net_cls_bpf"], tri);
    let host = kconfig("CONFIG_DEFAULT_HOSTNAME").unwrap_or_default();
    let host: String = host.trim_matches('"').chars().take(7).collect();
    assert_eq!(seen["hostname"], host);
    // Weak externs nobody provides are zero.
    assert_eq!(seen["not_a_config"], 0);
    assert_eq!(seen["unknown_linux"], 0);
    // The weak kfunc is missing: its call was dead code.
    assert_eq!(seen["missing_kfunc_called"], 0);
    // The typed __ksym variable is usable where the kernel lists its address.
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
    let listed = kallsyms
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some("bpf_prog_active"));
    assert_eq!(seen["prog_active_read"], u8::from(listed));
}

#[test]
fn a_strong_kconfig_extern_the_kernel_lacks_is_named() {
    if !bpf_allowed("a_strong_kconfig_extern_the_kernel_lacks_is_named") {
        return;
    }
    let file = fx("run_externs_strong.o");
    let o = run(&["run", &file]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    assert_eq!(
        stderr(&o),
        format!(
            "bpfld: error: {file}: __kconfig extern 'CONFIG_BPFLD_NOT_A_CONFIG' is not set in the \
             running kernel's configuration (declare it __weak to default it to zero)\n"
        )
    );
}
