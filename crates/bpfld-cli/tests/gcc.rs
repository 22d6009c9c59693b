//! Objects compiled by GCC (`bpf-gcc -O2 -gbtf`, fixtures/gcc/*.o): read
//! and listed like the reference tools list them, and linked or composed,
//! alone or with clang's objects, into output whose BTF the kernel accepts
//! and whose programs run (GCC 12's own BTF is refused by the kernel, see
//! crates/bpfld/src/read/workarounds.rs).
//!
//! Kernel checks need the bpf() syscall; without it they print `SKIP ...`.

mod common;
use common::*;

use std::path::{Path, PathBuf};

fn gcc_fixture(name: &str) -> PathBuf {
    fixtures_dir().join("gcc").join(name)
}

fn gcc_fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixtures_dir().join("gcc"))
        .expect("fixtures/gcc exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "o"))
        .collect();
    v.sort();
    assert!(v.len() > 5, "GCC-built fixtures: {v:?}");
    v
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The `.BTF` section of an object bpfld wrote, as bytes.
fn btf_bytes(obj: &Path) -> Vec<u8> {
    let o = bpfld::Object::read_file(obj).unwrap_or_else(|e| panic!("{e}"));
    o.btf.as_ref().expect("output has BTF").to_bytes().unwrap()
}

/// The kernel's BTF verifier accepts the `.BTF` of `obj` as it is.
fn assert_kernel_accepts_btf(obj: &Path, test: &str) {
    if !bpf_allowed(test) {
        return;
    }
    bpfld_kernel::btf_load::load_btf(&btf_bytes(obj))
        .unwrap_or_else(|e| panic!("{}: the kernel rejects its BTF: {e}", obj.display()));
}

/// llvm-objdump's listing from the first section on, without the `<...>`
/// hints after jump targets (which the project's parity test also drops).
fn objdump_body(text: &str) -> String {
    let start = text.find("Disassembly of section").unwrap_or(text.len());
    text[start..]
        .lines()
        .map(|l| match l.find(" <") {
            Some(i) if l.starts_with(' ') && l.contains(":\t") => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn gcc_objects_are_read_and_listed_like_the_reference_tools() {
    let test = "gcc_objects_are_read_and_listed_like_the_reference_tools";
    let objdump = have_tool("llvm-objdump-19", test);
    let bpftool = have_tool("bpftool", test);
    for obj in gcc_fixtures() {
        let path = s(&obj);
        let inspect = run(&["inspect", path]);
        assert!(inspect.status.success(), "{path}: {}", stderr(&inspect));
        assert!(stdout(&inspect).contains("license: GPL"), "{path}");
        if objdump {
            let ours = ok(&["disasm", path]);
            let theirs = tool_output("llvm-objdump-19", &["-dr", "--no-show-raw-insn", path]);
            assert!(theirs.status.success());
            assert_eq!(
                objdump_body(&ours),
                objdump_body(&stdout(&theirs)),
                "{path}: disasm differs from llvm-objdump-19"
            );
        }
        if bpftool {
            let ours = ok(&["btf", "dump", path]);
            let theirs = tool_output("bpftool", &["btf", "dump", "file", path]);
            assert!(theirs.status.success());
            assert!(
                ours == stdout(&theirs),
                "{path}: btf dump differs from bpftool's"
            );
        }
    }
}

#[test]
fn a_gcc_fwd_with_a_size_is_read_with_a_warning() {
    // GCC 12 writes FWD 'pt_regs' with size/type field 6: read as 0.
    let obj = gcc_fixture("tracing.o");
    // Every command that reads the object's BTF says so, naming the file
    // (`disasm` reads it only for CO-RE records, which this one has not).
    let o = run(&["inspect", s(&obj)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!(
            "bpfld: warning: {}: section '.BTF': type [",
            s(&obj)
        )) && err.contains("FWD 'pt_regs'")
            && err.contains("read as 0"),
        "{err}"
    );
    let o = run(&["btf", "dump", s(&obj)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).starts_with(&format!("bpfld: warning: {}: section '.BTF'", s(&obj))));
    let o = run(&["inspect", s(&obj)]);
    assert!(stdout(&o).contains("kprobe/do_unlinkat"));
    // Raw BTF is still read strictly: the same bytes outside an object
    // are refused.
    let raw = btf_of_input(&obj);
    let dir = tmpdir("gcc-raw");
    let file = dir.join("tracing.btf");
    std::fs::write(&file, raw).unwrap();
    let o = run(&["btf", "dump", s(&file)]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("FWD 'pt_regs'") && stderr(&o).contains("must be 0"),
        "{}",
        stderr(&o)
    );
}

/// The `.BTF` bytes of a GCC object as GCC wrote them (a little-endian
/// ELF64, read directly: bpfld's reader would normalise them).
fn btf_of_input(obj: &Path) -> Vec<u8> {
    let d = std::fs::read(obj).unwrap();
    let (off, size) = raw_section(&d, ".BTF").expect("a .BTF section");
    d[off..off + size].to_vec()
}

#[test]
fn the_kernel_rejects_gcc_btf_as_written() {
    // What the linker's normalisation is for: GCC 12's BTF as it is.
    let test = "the_kernel_rejects_gcc_btf_as_written";
    if !bpf_allowed(test) {
        return;
    }
    let err = bpfld_kernel::btf_load::load_btf(&btf_of_input(&gcc_fixture("xdp_pass.o")))
        .expect_err("GCC 12's BTF is accepted by this kernel");
    assert!(err.to_string().contains("Unsupported encoding"), "{err}");
}

#[test]
fn gcc_objects_linked_alone_keep_btf_the_kernel_accepts() {
    let test = "gcc_objects_linked_alone_keep_btf_the_kernel_accepts";
    let dir = tmpdir("gcc-alone");
    // Those with no extern left unresolved.
    for name in [
        "xdp_pass.o",
        "xdp_drop.o",
        "comp_count.o",
        "comp_mark.o",
        "comp_tally.o",
        "lnk_static_b.o",
        "tracing.o",
        "btf_kinds.o",
    ] {
        let out = dir.join(name);
        ok(&["link", "-o", s(&out), s(&gcc_fixture(name))]);
        assert_kernel_accepts_btf(&out, test);
    }
    // The program gets the BTF (func_info) when libbpf loads it, and runs.
    let out = dir.join("xdp_pass.o");
    if bpf_allowed(test) && kernel_available() {
        let pin = format!("/sys/fs/bpf/bpfld-gcc-test-{}", std::process::id());
        let _ = std::fs::remove_dir_all(&pin);
        let o = tool_output("bpftool", &["prog", "loadall", s(&out), &pin]);
        assert!(o.status.success(), "{}", stderr(&o));
        let show = tool_output(
            "bpftool",
            &["-j", "prog", "show", "pinned", &format!("{pin}/xdp_pass")],
        );
        let _ = std::fs::remove_dir_all(&pin);
        let v: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
        assert!(v["btf_id"].as_u64().is_some(), "no btf_id: {v}");
        let (ret, _) = run_prog(&out, "xdp_pass");
        assert_eq!(ret, 2);
    }
}

#[test]
fn gcc_and_clang_objects_link_together_and_run() {
    let test = "gcc_and_clang_objects_link_together_and_run";
    let dir = tmpdir("gcc-mixed");
    // (inputs, program, its result): calls cross from one compiler's code
    // into the other's.
    let cases: [(&[PathBuf], &str, i64); 4] = [
        (
            &[gcc_fixture("lnk_fn_a.o"), fixture("lnk_fn_b.o")],
            "lnk_fn_a_prog",
            15,
        ),
        (
            &[fixture("lnk_fn_a.o"), gcc_fixture("lnk_fn_b.o")],
            "lnk_fn_b_prog",
            41,
        ),
        (
            &[gcc_fixture("lnk_static_a.o"), fixture("lnk_static_b.o")],
            "lnk_static_prog",
            323,
        ),
        (
            &[gcc_fixture("lnk_static_a.o"), gcc_fixture("lnk_static_b.o")],
            "lnk_static_prog",
            323,
        ),
    ];
    for (i, (inputs, prog, want)) in cases.iter().enumerate() {
        let out = dir.join(format!("mixed{i}.o"));
        let mut args = vec!["link", "-o", s(&out)];
        args.extend(inputs.iter().map(|p| s(p)));
        ok(&args);
        assert_kernel_accepts_btf(&out, test);
        if bpf_allowed(test) {
            let (ret, _) = run_prog(&out, prog);
            assert_eq!(ret, *want, "{inputs:?}: {prog}");
            if kernel_available() {
                libbpf_loads(&out).unwrap_or_else(|e| panic!("{inputs:?}: libbpf: {e}"));
            }
        }
    }
}

fn map_u64(maps: &serde_json::Value, name: &str) -> u64 {
    let hex = maps[name][0]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("no map {name}: {maps}"));
    let bytes: Vec<u8> = (0..16)
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    u64::from_le_bytes(bytes.try_into().unwrap())
}

#[test]
fn gcc_and_clang_xdp_programs_compose_and_run() {
    let test = "gcc_and_clang_xdp_programs_compose_and_run";
    let dir = tmpdir("gcc-compose");
    let count = format!("{}:xdp_count", s(&gcc_fixture("comp_count.o")));
    let mark = fixture("comp_mark.o");
    for (tag, extra) in [("inline", None), ("calls", Some("--no-inline"))] {
        let out = dir.join(format!("{tag}.o"));
        let mut args = vec!["xdp", "compose", "-o", s(&out)];
        args.extend(extra);
        args.extend([count.as_str(), s(&mark)]);
        ok(&args);
        assert_kernel_accepts_btf(&out, test);
        if bpf_allowed(test) {
            // comp_count (GCC) passes and counts 1, comp_mark (clang)
            // returns XDP_TX and counts 10.
            let (ret, maps) = run_prog(&out, "bpfld_xdp");
            assert_eq!(ret, 3, "{tag}: XDP_TX from comp_mark");
            assert_eq!(map_u64(&maps, "counter__comp0"), 1, "{tag}: {maps}");
            assert_eq!(map_u64(&maps, "counter__comp1"), 10, "{tag}: {maps}");
        }
    }
}

/// The bytes of section `name` of a little-endian ELF64 file, and where
/// they start: read directly, to see what a file holds before bpfld's
/// reader interprets it.
fn raw_section(d: &[u8], name: &str) -> Option<(usize, usize)> {
    let u16_at = |o: usize| u16::from_le_bytes([d[o], d[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(d[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(d[o..o + 8].try_into().unwrap()) as usize;
    let (shoff, shnum, shstrndx) = (u64_at(0x28), u16_at(0x3c), u16_at(0x3e));
    let header = |i: usize| shoff + i * 64;
    let names = u64_at(header(shstrndx) + 0x18);
    let mut wanted = name.as_bytes().to_vec();
    wanted.push(0);
    (0..shnum)
        .find(|&i| d[names + u32_at(header(i))..].starts_with(&wanted))
        .map(|i| (u64_at(header(i) + 0x18), u64_at(header(i) + 0x20)))
}

/// The relocation types (`ELF64_R_TYPE`) of relocation section `name`.
fn reloc_types(d: &[u8], name: &str) -> Vec<u32> {
    let (off, size) = raw_section(d, name).unwrap_or_else(|| panic!("no section {name}"));
    d[off..off + size]
        .chunks(16)
        .map(|r| u32::from_le_bytes(r[8..12].try_into().unwrap()))
        .collect()
}

#[test]
fn gcc_data_64_relocations_are_read_as_abs64_and_written_as_llvms() {
    let test = "gcc_data_64_relocations_are_read_as_abs64_and_written_as_llvms";
    // binutils 2.40's numbering: the prog array slot and the struct_ops
    // function pointers are R_BPF_DATA_64 (12).
    let tail = gcc_fixture("run_tail.o");
    let st_ops = gcc_fixture("verify_st_ops.o");
    assert_eq!(
        reloc_types(&std::fs::read(&tail).unwrap(), ".rel.maps"),
        [12]
    );
    assert_eq!(
        reloc_types(&std::fs::read(&st_ops).unwrap(), ".rel.struct_ops"),
        [12, 12, 12]
    );
    let o = run(&["inspect", s(&tail)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "bpfld: warning: {}: section '.rel.maps': R_BPF_DATA_64 (type 12 in binutils \
             2.40 and older) read as R_BPF_64_ABS64",
            s(&tail)
        )),
        "{}",
        stderr(&o)
    );
    // The link writes LLVM's R_BPF_64_ABS64 (2) and keeps the slot.
    let dir = tmpdir("gcc-data64");
    let out = dir.join("run_tail.o");
    ok(&["link", "-o", s(&out), s(&tail)]);
    assert_eq!(reloc_types(&std::fs::read(&out).unwrap(), ".rel.maps"), [2]);
    assert_kernel_accepts_btf(&out, test);
    if bpf_allowed(test) {
        // The slot is filled: the tail call from a subprogram (allowed
        // with the output's BTF) lands in tail_drop, which counts.
        let v = run_json(&[s(&out), "--prog", "tail_caller_sub"]);
        assert_eq!(
            v["maps"][".bss"][0]["formatted"]["value"][".bss"][0]["drop_runs"], 1,
            "{v}"
        );
        let v = run_json(&[s(&tail), "--prog", "tail_caller"]);
        assert_eq!(v["action"], "XDP_DROP", "{v}");
        if kernel_available() {
            libbpf_loads(&out).unwrap_or_else(|e| panic!("libbpf: {e}"));
        }
    }
    // Each struct_ops program is verified as the member its address fills.
    if bpf_allowed(test) && have_vmlinux(test) {
        let o = run(&["verify", s(&st_ops), "--json"]);
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 3, "{v}");
        assert!(
            v.as_array()
                .unwrap()
                .iter()
                .all(|p| p["verdict"] == "success"),
            "{v}"
        );
    }
}

#[test]
fn other_old_binutils_relocation_types_are_refused_by_name() {
    let dir = tmpdir("gcc-old-relocs");
    let bytes = std::fs::read(gcc_fixture("run_tail.o")).unwrap();
    // (relocation section, new type, what the error says)
    let cases = [
        (
            ".rel.maps",
            11,
            "section '.rel.maps': relocation 0 (offset 0x20): unknown BPF relocation type 11 \
             (R_BPF_DATA_32 in binutils 2.40 and older, which bpfld does not read)",
        ),
        // An address in code (tail_drop's ld_imm64 of drop_runs) means nothing.
        (
            ".relxdp",
            12,
            "section '.relxdp': relocation 0 (offset 0x0): unknown BPF relocation type 12 \
             (R_BPF_DATA_64 in binutils 2.40 and older, a 64-bit data word, which no instruction holds)",
        ),
    ];
    for (section, kind, want) in cases {
        let mut d = bytes.clone();
        let (off, _) = raw_section(&d, section).unwrap();
        d[off + 8..off + 12].copy_from_slice(&u32::to_le_bytes(kind));
        let file = dir.join(format!("type{kind}.o"));
        std::fs::write(&file, &d).unwrap();
        for cmd in ["inspect", "disasm"] {
            let o = run(&[cmd, s(&file)]);
            assert!(!o.status.success(), "{cmd} {section} type {kind}");
            assert!(stderr(&o).contains(want), "{cmd}: {}", stderr(&o));
        }
        let out = dir.join(format!("out{kind}.o"));
        let o = run(&["link", "-o", s(&out), s(&file)]);
        assert!(
            !o.status.success() && stderr(&o).contains(want),
            "{}",
            stderr(&o)
        );
        assert!(!out.exists(), "no partial output");
    }
}

#[test]
fn gcc_data_32_relocations_in_btf_ext_are_clangs_nodyld32() {
    // GCC 12 with binutils 2.40 writes R_BPF_DATA_32 (11) in .rel.BTF.ext
    // where clang writes R_BPF_64_NODYLD32 (4): the same object with the
    // old number reads, lists and links as clang's.
    let dir = tmpdir("gcc-data32");
    let clang = fixture("core_optional.o");
    let mut d = std::fs::read(&clang).unwrap();
    let types = reloc_types(&d, ".rel.BTF.ext");
    assert!(
        !types.is_empty() && types.iter().all(|t| *t == 4),
        "{types:?}"
    );
    let (off, size) = raw_section(&d, ".rel.BTF.ext").unwrap();
    for r in (off..off + size).step_by(16) {
        d[r + 8..r + 12].copy_from_slice(&11u32.to_le_bytes());
    }
    let old = dir.join("old.o");
    std::fs::write(&old, &d).unwrap();
    for cmd in ["inspect", "disasm"] {
        let o = run(&[cmd, s(&old)]);
        assert!(o.status.success(), "{cmd}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(
                "section '.rel.BTF.ext': R_BPF_DATA_32 (type 11 in binutils 2.40 and older) \
                 read as R_BPF_64_NODYLD32"
            ),
            "{cmd}: {}",
            stderr(&o)
        );
        let theirs = ok(&[cmd, s(&clang)]);
        assert_eq!(
            stdout(&o).replace(s(&old), s(&clang)),
            theirs,
            "{cmd} lists the same"
        );
    }
    // And links to the same bytes.
    let (a, b) = (dir.join("a.o"), dir.join("b.o"));
    ok(&["link", "-o", s(&a), s(&old)]);
    ok(&["link", "-o", s(&b), s(&clang)]);
    assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap());
}
