//! Hostile input: every command over the committed damaged-file corpus
//! (fixtures/damaged) ends with a clear one-paragraph error or a listing,
//! never a panic or a hang, and writes no file.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const COMMANDS: &[&[&str]] = &[
    &["inspect"],
    &["inspect", "--json"],
    &["disasm"],
    &["disasm", "--json"],
    &["btf", "dump"],
    &["btf", "dump", "--json"],
    &["link", "-o", "out.o"],
    &["link", "-o", "out.o", "--relocatable"],
    &["xdp", "compose", "-o", "out.o"],
    &["run"],
];

/// What a command may write (in the test's working directory).
const OUTPUT: &str = "out.o";

/// Generous: a healthy run takes milliseconds; this only catches hangs.
const HANG: Duration = Duration::from_secs(20);

fn damaged_files() -> Vec<PathBuf> {
    let dir = fixtures_dir().join("damaged");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures/damaged exists")
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            !(name.ends_with(".md") || name.ends_with(".py"))
        })
        .collect();
    v.sort();
    v
}

struct Outcome {
    success: bool,
    code: Option<i32>,
    stderr: String,
}

fn run_bounded(args: &[&str], cwd: &Path) -> Outcome {
    let mut child = bpfld()
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bpfld starts");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return Outcome {
                success: status.success(),
                code: status.code(),
                stderr: err,
            };
        }
        if start.elapsed() > HANG {
            let _ = child.kill();
            panic!("bpfld {args:?} still running after {HANG:?}: a hang");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn every_command_on_every_damaged_file_fails_cleanly() {
    let files = damaged_files();
    assert!(
        files.len() >= 20,
        "damaged corpus too small: {}",
        files.len()
    );
    let cwd = std::env::temp_dir().join(format!("bpfld-damaged-{}", std::process::id()));
    std::fs::create_dir_all(&cwd).unwrap();
    for file in &files {
        let path = file.to_str().unwrap();
        let name = file.file_name().unwrap().to_str().unwrap();
        let mut failures = 0;
        for cmd in COMMANDS {
            let mut args: Vec<&str> = cmd.to_vec();
            args.push(path);
            let out = run_bounded(&args, &cwd);
            assert!(
                !out.stderr.contains("panicked") && out.code.is_some() && out.code != Some(101),
                "bpfld {args:?} crashed: {}",
                out.stderr
            );
            let written = cwd.join(OUTPUT);
            if out.success {
                let _ = std::fs::remove_file(&written);
                continue;
            }
            assert!(
                !written.exists(),
                "bpfld {args:?} failed but left {OUTPUT} behind"
            );
            failures += 1;
            assert_eq!(out.code, Some(1), "bpfld {args:?}: exit code");
            let text = out.stderr.trim_end();
            assert!(
                text.starts_with("bpfld: error: ") && text.contains(path),
                "bpfld {args:?}: error must start with 'bpfld: error:' and name the file:\n{text}"
            );
            assert!(
                !text.contains("\n\n") && text.len() < 2000,
                "bpfld {args:?}: error is not one short paragraph:\n{text}"
            );
        }
        // Every damaged file is damaged for the command that reads it whole.
        assert!(
            failures > 0,
            "{name}: every command accepted it; is it damaged at all?"
        );
    }
    let left: Vec<_> = std::fs::read_dir(&cwd).unwrap().collect();
    assert!(left.is_empty(), "commands left files behind: {left:?}");
    std::fs::remove_dir_all(&cwd).unwrap();
}

#[test]
fn missing_file_and_non_bpf_elf_are_named() {
    let o = run(&["inspect", "/nonexistent/x.o"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("/nonexistent/x.o: cannot read"),
        "{}",
        stderr(&o)
    );

    let exe = env!("CARGO_BIN_EXE_bpfld");
    let o = run(&["disasm", exe]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not a BPF object: e_machine is 62"),
        "{}",
        stderr(&o)
    );
}
