//! Listings compared with the reference tools on every fixture:
//! `bpfld disasm` with `llvm-objdump-19 -dr --no-show-raw-insn` (the brief
//! lets the `<...>` hints differ; today they do not, and the whole text is
//! compared), and `bpfld btf dump` with `bpftool btf dump file`, byte for
//! byte.

mod common;
use common::*;

/// Drops llvm-objdump's file header and the `<...>` hints after jump and
/// call targets, which the brief allows to differ.
fn normalize_objdump(text: &str) -> String {
    let start = text.find("Disassembly of section").unwrap_or(text.len());
    text[start..]
        .lines()
        .map(|l| {
            let is_insn = l.trim_start().split(':').next().is_some_and(|n| {
                !n.is_empty() && n.trim().chars().all(|c| c.is_ascii_digit()) && l.starts_with(' ')
            });
            match l.find(" <") {
                Some(i) if is_insn => l[..i].to_string(),
                _ => l.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn disasm_matches_llvm_objdump_on_every_fixture() {
    if !have_tool("llvm-objdump-19", "disasm parity") {
        return;
    }
    let mut compared = 0;
    for obj in fixture_objects() {
        let path = obj.to_str().unwrap();
        let ours = ok(&["disasm", path]);
        let theirs = tool_output("llvm-objdump-19", &["-dr", "--no-show-raw-insn", path]);
        assert!(theirs.status.success());
        let (a, b) = (
            normalize_objdump(&ours),
            normalize_objdump(&stdout(&theirs)),
        );
        if a != b {
            let diff: Vec<String> = a
                .lines()
                .zip(b.lines())
                .enumerate()
                .filter(|(_, (x, y))| x != y)
                .take(5)
                .map(|(i, (x, y))| format!("line {i}:\n  bpfld: {x}\n  llvm:  {y}"))
                .collect();
            panic!(
                "{path}: disassembly differs from llvm-objdump-19 ({} vs {} lines)\n{}",
                a.lines().count(),
                b.lines().count(),
                diff.join("\n")
            );
        }
        if a.contains("Disassembly of section") {
            compared += 1;
        }
    }
    assert!(compared > 5);
}

fn assert_same_btf_dump(path: &str) {
    let ours = run(&["btf", "dump", path]);
    let theirs = tool_output("bpftool", &["btf", "dump", "file", path]);
    assert!(theirs.status.success(), "bpftool failed on {path}");
    assert!(
        ours.status.success(),
        "bpfld failed on {path}: {}",
        stderr(&ours)
    );
    if ours.stdout != theirs.stdout {
        let (a, b) = (stdout(&ours), stdout(&theirs));
        let first = a
            .lines()
            .zip(b.lines())
            .enumerate()
            .find(|(_, (x, y))| x != y)
            .map(|(i, (x, y))| format!("line {i}:\n  bpfld:   {x}\n  bpftool: {y}"))
            .unwrap_or_else(|| {
                format!(
                    "lengths differ: {} vs {} lines",
                    a.lines().count(),
                    b.lines().count()
                )
            });
        panic!("{path}: btf dump differs from bpftool\n{first}");
    }
}

#[test]
fn btf_dump_matches_bpftool_on_every_fixture() {
    if !have_tool("bpftool", "btf dump parity") {
        return;
    }
    for obj in fixture_objects() {
        assert_same_btf_dump(obj.to_str().unwrap());
    }
}

#[test]
fn btf_dump_matches_bpftool_on_vmlinux() {
    if !have_tool("bpftool", "vmlinux btf dump parity") || !have_vmlinux("vmlinux btf dump parity")
    {
        return;
    }
    assert_same_btf_dump(VMLINUX);
}

/// The damaged files a listing reads past: `btf dump` reads only the
/// headers and `.BTF`, `disasm` leaves BTF to objdump's lenient reading,
/// so damage elsewhere lists as the reference tool lists it.
fn damaged(prefixes: &[&str], skip: &[&str]) -> Vec<String> {
    let dir = fixtures_dir().join("damaged");
    let mut v: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.ends_with(".o")
                && prefixes.iter().any(|x| name.starts_with(x))
                && !skip.iter().any(|x| name.contains(x))
        })
        .map(|p| p.to_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn btf_dump_reads_past_damage_outside_btf_as_bpftool_does() {
    if !have_tool("bpftool", "btf dump of damaged objects") {
        return;
    }
    let files = damaged(&["btf_ext_", "reloc_", "symbol_", "symtab_", "rel_"], &[]);
    assert!(files.len() >= 25, "only {} files", files.len());
    for path in files {
        assert_same_btf_dump(&path);
    }
}

#[test]
fn disasm_reads_past_damaged_btf_as_llvm_objdump_does() {
    if !have_tool("llvm-objdump-19", "disasm of damaged BTF") {
        return;
    }
    let files = damaged(&["btf_"], &[]);
    assert!(files.len() >= 25, "only {} files", files.len());
    let mut listed = 0;
    for path in files {
        let ours = run(&["disasm", &path]);
        if !ours.status.success() {
            // CO-RE lines need the BTF: then the whole object is checked,
            // and the error is the full reader's (as `inspect` gives it).
            let full = run(&["inspect", &path]);
            assert_eq!(stderr(&ours), stderr(&full), "{path}");
            continue;
        }
        let theirs = tool_output("llvm-objdump-19", &["-dr", "--no-show-raw-insn", &path]);
        assert!(theirs.status.success(), "{path}");
        assert_eq!(
            stdout(&ours),
            stdout(&theirs),
            "{path}: disassembly differs"
        );
        listed += 1;
    }
    assert!(listed >= 20, "only {listed} listed");
}

#[test]
fn listings_read_names_longer_than_a_page() {
    // The listings read files through a cache whose own string lookups
    // stop at 4 KiB; names must still come out whole.
    if !have_tool("clang-19", "long names")
        || !have_tool("llvm-objdump-19", "long names")
        || !have_tool("bpftool", "long names")
    {
        return;
    }
    let dir = tmpdir("long-names");
    let src = dir.join("long.c");
    let (sec, func) = ("x".repeat(5000), "f".repeat(5000));
    std::fs::write(
        &src,
        format!(
            "__attribute__((section(\"xdp/{sec}\"), used)) int {func}(void *ctx) {{ return 2; }}\n\
             char _license[] __attribute__((section(\"license\"), used)) = \"GPL\";\n"
        ),
    )
    .unwrap();
    let obj = dir.join("long.o");
    let built = std::process::Command::new("clang-19")
        .args(["-O2", "-g", "-target", "bpf", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .status()
        .unwrap();
    assert!(built.success());
    let path = obj.to_str().unwrap();
    let theirs = tool_output("llvm-objdump-19", &["-dr", "--no-show-raw-insn", path]);
    let ours = ok(&["disasm", path]);
    assert!(ours.contains(&func), "{ours}");
    assert_eq!(ours, stdout(&theirs));
    assert_same_btf_dump(path);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn listings_read_pipes() {
    // A pipe cannot seek: it is read whole, and lists like the file.
    use std::io::Write;
    use std::process::Stdio;
    let path = fixture("core.o");
    let bytes = std::fs::read(&path).unwrap();
    for cmd in [
        &["disasm"][..],
        &["disasm", "--json"],
        &["btf", "dump"],
        &["btf", "dump", "--json"],
    ] {
        let mut child = bpfld()
            .args(cmd)
            .arg("/dev/stdin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let data = bytes.clone();
        let writer = std::thread::spawn(move || stdin.write_all(&data));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(out.status.success(), "{cmd:?}: {}", stderr(&out));
        let mut args: Vec<&str> = cmd.to_vec();
        args.push(path.to_str().unwrap());
        let want = ok(&args).replace(path.to_str().unwrap(), "/dev/stdin");
        assert_eq!(stdout(&out), want, "{cmd:?}");
    }
}
