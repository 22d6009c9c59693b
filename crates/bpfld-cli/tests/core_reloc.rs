//! CO-RE relocations applied by bpfld (crates/bpfld-kernel/src/core_reloc)
//! against the running kernel: fixtures/core_kinds.o uses every relocation
//! kind and stores each result in a global; `bpfld run` must leave there
//! what the kernel's BTF (/sys/kernel/btf/vmlinux, read with bpfld's BTF
//! reader) says, and what libbpf computes for the same object
//! (tools/corpus-run). An instruction that does not hold the value its
//! relocation describes is refused with the file, section, instruction
//! and access string named; in a `?` program (fixtures/core_optional.o)
//! only that program is refused, as libbpf refuses it.
//!
//! These tests need the bpf() syscall. When it is refused (EPERM, not root)
//! each test prints `SKIP ...` and passes; any other failure fails.

mod common;
use common::*;

use std::collections::BTreeMap;

use bpfld::model::btf::{int_encoding, Btf, Kind, TypeData, TypeId, BTF_INT_SIGNED};

/// The .bss variables `bpfld run` leaves, by name.
fn bpfld_values(obj: &str) -> BTreeMap<String, u64> {
    let v = run_json(&[obj, "--all"]);
    let entries = v["maps"][".bss"].as_array().expect(".bss dumped");
    let vars = entries[0]["formatted"]["value"][".bss"]
        .as_array()
        .expect(".bss formatted by variable");
    let mut out = BTreeMap::new();
    for var in vars {
        for (name, value) in var.as_object().unwrap() {
            let n = value
                .as_u64()
                .unwrap_or_else(|| panic!("{name} = {value} is not a u64"));
            out.insert(name.clone(), n);
        }
    }
    out
}

fn kernel_btf() -> Btf {
    Btf::parse(&std::fs::read(VMLINUX).unwrap()).unwrap()
}

fn named(btf: &Btf, kind: Kind, name: &str) -> TypeId {
    btf.find_by_name(kind, name)
        .unwrap_or_else(|| panic!("the kernel has no {} {name}", kind.name()))
}

/// `(bit offset, bitfield size, type)` of member `name` of `id`, looking
/// into anonymous members.
fn member(btf: &Btf, id: TypeId, name: &str) -> Option<(u64, u32, TypeId)> {
    for m in btf.members(btf.resolve(id).ok()?).ok()? {
        if m.name == name {
            return Some((u64::from(m.bit_offset), m.bitfield_size, m.type_id));
        }
        if m.name.is_empty() {
            if let Some((off, bits, t)) = member(btf, m.type_id, name) {
                return Some((u64::from(m.bit_offset) + off, bits, t));
            }
        }
    }
    None
}

fn field(btf: &Btf, st: &str, name: &str) -> (u64, u32, TypeId) {
    member(btf, named(btf, Kind::Struct, st), name)
        .unwrap_or_else(|| panic!("the kernel's {st} has no {name}"))
}

fn signed(btf: &Btf, id: TypeId) -> u64 {
    let t = btf.get(btf.resolve(id).unwrap()).unwrap();
    match t.data {
        TypeData::Int { data, .. } => u64::from(int_encoding(data) & BTF_INT_SIGNED != 0),
        _ => 0,
    }
}

/// LSHIFT_U64 and RSHIFT_U64 of a bitfield, as bpf_core_read.h uses them:
/// the smallest load of the field's size or more that holds the bits,
/// read into a u64 and shifted left then right (little-endian).
fn shifts(btf: &Btf, bit_off: u64, bits: u32, ty: TypeId) -> (u64, u64, u64, u64) {
    let mut size = btf.size_of(ty).unwrap();
    let mut byte_off = bit_off / 8 / size * size;
    while bit_off + u64::from(bits) - byte_off * 8 > size * 8 {
        size *= 2;
        byte_off = bit_off / 8 / size * size;
    }
    let lshift = 64 - (bit_off + u64::from(bits) - byte_off * 8);
    (byte_off, size, lshift, 64 - u64::from(bits))
}

fn enumerator(btf: &Btf, enum_name: &str, name: &str) -> u64 {
    let id = btf
        .find_by_name(Kind::Enum, enum_name)
        .or_else(|| btf.find_by_name(Kind::Enum64, enum_name))
        .unwrap_or_else(|| panic!("the kernel has no enum {enum_name}"));
    match &btf.get(id).unwrap().data {
        TypeData::Enum { values, .. } => values
            .iter()
            .find(|v| btf.name(v.name_off).unwrap() == name)
            .map(|v| v.val as i32 as i64 as u64),
        TypeData::Enum64 { values, .. } => values
            .iter()
            .find(|v| btf.name(v.name_off).unwrap() == name)
            .map(|v| v.val),
        _ => None,
    }
    .unwrap_or_else(|| panic!("enum {enum_name} has no {name}"))
}

/// What the kernel's BTF says every variable of core_kinds.c must hold.
fn expected(k: &Btf, local: &Btf) -> BTreeMap<String, u64> {
    let task = named(k, Kind::Struct, "task_struct");
    let (pid, _, pid_t) = field(k, "task_struct", "pid");
    let (comm, _, comm_t) = field(k, "task_struct", "comm");
    let (execve, execve_bits, execve_t) = field(k, "task_struct", "in_execve");
    let (fork, fork_bits, fork_t) = field(k, "task_struct", "init_private_fork_class");
    let (daddr, _, _) = field(k, "iphdr", "daddr");
    let (anc, _, anc_t) = field(k, "cgroup", "ancestors");
    let anc_elem = match k.get(k.resolve(anc_t).unwrap()).unwrap().data {
        TypeData::Array { elem, .. } => elem,
        _ => panic!("cgroup.ancestors is not an array"),
    };
    let (execve_off, execve_size, execve_lshift, execve_rshift) =
        shifts(k, execve, execve_bits, execve_t);
    let (_, _, fork_lshift, fork_rshift) = shifts(k, fork, fork_bits, fork_t);
    // The local task_struct's `char comm[16]` is signed (clang's BPF
    // target); TYPE_MATCHES needs the kernel's char to be too.
    let char_signed = match &k.get(comm_t).unwrap().data {
        TypeData::Array { elem, .. } => signed(k, *elem),
        _ => panic!("task_struct.comm is not an array"),
    };
    let local_task = local
        .find_by_name(Kind::Struct, "task_struct")
        .expect("the fixture's task_struct");
    let v: [(&str, u64); 39] = [
        ("pid_off", pid / 8),
        ("pid_size", k.size_of(pid_t).unwrap()),
        ("pid_exists", 1),
        ("pid_signed", signed(k, pid_t)),
        ("comm2_off", comm / 8 + 2),
        ("comm_size", k.size_of(comm_t).unwrap()),
        ("execve_off", execve_off),
        ("execve_size", execve_size),
        ("execve_lshift", execve_lshift),
        ("execve_rshift", execve_rshift),
        ("execve_signed", signed(k, execve_t)),
        ("fork_class_lshift", fork_lshift),
        ("fork_class_rshift", fork_rshift),
        ("mine_pid_off", pid / 8),
        ("missing_exists", 0),
        ("missing_read", 7777),
        ("daddr_off", daddr / 8),
        ("ancestors2_off", anc / 8 + 2 * k.size_of(anc_elem).unwrap()),
        ("task_exists", 1),
        ("task_size", k.size_of(task).unwrap()),
        ("task_matches", char_signed),
        ("task_local_id", u64::from(local_task.0)),
        ("task_kernel_id", u64::from(task.0)),
        ("pid_t_exists", 1),
        (
            "pid_t_size",
            k.size_of(named(k, Kind::Typedef, "pid_t")).unwrap(),
        ),
        ("list_head_matches", 1),
        ("mine_matches", 0),
        ("no_such_exists", 0),
        ("no_such_size", 0),
        ("no_such_kernel_id", 0),
        ("tgid_exists", 1),
        ("sid_value", enumerator(k, "pid_type", "PIDTYPE_SID")),
        ("enum_missing_exists", 0),
        ("enum_missing_read", 8888),
        ("user_exists", 1),
        (
            "user_value",
            enumerator(k, "perf_callchain_context", "PERF_CONTEXT_USER"),
        ),
        ("enum64_missing_exists", 0),
        ("tgid_matches", 1),
        // in_execve is 0 outside execve(), stored plus one.
        ("execve_read", 1),
    ];
    v.into_iter().map(|(n, x)| (n.to_string(), x)).collect()
}

#[test]
fn every_relocation_kind_gives_what_the_kernels_btf_says() {
    let test = "every_relocation_kind_gives_what_the_kernels_btf_says";
    if !bpf_allowed(test) || !have_vmlinux(test) {
        return;
    }
    let obj = fx("core_kinds.o");
    let local = bpfld::Object::read_file(&obj).unwrap().btf.unwrap();
    let want = expected(&kernel_btf(), &local);
    let got = bpfld_values(&obj);
    assert_eq!(got, want);
}

#[test]
fn libbpf_relocates_core_kinds_the_same() {
    let test = "libbpf_relocates_core_kinds_the_same";
    if !bpf_allowed(test) || !have_vmlinux(test) || !have_tool("gcc", test) {
        return;
    }
    let Some(runner) = corpus_runner(test, None) else {
        return;
    };
    let obj = fx("core_kinds.o");
    let ours = bpfld_values(&obj);
    let mut args = vec![obj.clone()];
    for name in ours.keys() {
        args.push("--get".into());
        args.push(format!(".bss:{name}"));
    }
    let o = std::process::Command::new(&runner)
        .args(&args)
        .output()
        .unwrap();
    assert!(o.status.success(), "libbpf: {}", stderr(&o));
    let theirs: BTreeMap<String, u64> = stdout(&o)
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(n, _)| *n != "SYS_getpgid")
        .map(|(n, v)| (n.to_string(), v.parse::<i64>().unwrap() as u64))
        .collect();
    assert_eq!(ours, theirs);
}

#[test]
fn an_instruction_that_does_not_hold_the_local_value_is_refused() {
    let test = "an_instruction_that_does_not_hold_the_local_value_is_refused";
    if !bpf_allowed(test) || !have_vmlinux(test) {
        return;
    }
    // The first relocation is the offset of task_struct.pid, a constant
    // moved into a register: another constant there is not what the
    // relocation describes.
    let mut obj = bpfld::Object::read_file(fixture("core_kinds.o")).unwrap();
    let btf = obj.btf.clone().unwrap();
    let sec = obj
        .sections
        .iter_mut()
        .find(|s| s.name == "raw_tp/sys_enter")
        .unwrap();
    let r = sec.core_relos[0];
    let at = r.insn.0 as usize;
    assert_eq!(btf.name(r.access_str_off).unwrap(), "0:0");
    sec.insns[at].imm += 1;
    let imm = sec.insns[at].imm;
    let bad = TempFile::new("core-bad.o", &obj.to_bytes().unwrap());
    let o = run(&["run", &bad.arg()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    let want = format!(
        "section 'raw_tp/sys_enter', instruction #{at}: CO-RE relocation <byte_off> of \
         [{}] STRUCT 'task_struct' access \"0:0\": the instruction holds immediate {}",
        r.type_id, imm
    );
    assert!(
        err.contains(&bad.arg()) && err.contains(&want),
        "{err}\nwants {want}"
    );
}

#[test]
fn a_failed_relocation_in_an_optional_program_refuses_only_that_program() {
    let test = "a_failed_relocation_in_an_optional_program_refuses_only_that_program";
    if !bpf_allowed(test) || !have_vmlinux(test) {
        return;
    }
    // core_opt_size (?raw_tp) has one relocation: the size of task_struct,
    // a constant moved into a register; damage it.
    let mut obj = bpfld::Object::read_file(fixture("core_optional.o")).unwrap();
    let sec = obj
        .sections
        .iter_mut()
        .find(|s| s.name == "?raw_tp/sys_enter")
        .unwrap();
    assert_eq!(sec.core_relos.len(), 1);
    let at = sec.core_relos[0].insn.0 as usize;
    sec.insns[at].imm += 1;
    let bad = TempFile::new("core-optional-bad.o", &obj.to_bytes().unwrap());

    // The program that is always loaded still runs.
    let v = run_json(&[&bad.arg(), "--prog", "core_always"]);
    assert_eq!(v["retval"], 2, "{v}");

    // Asking for the damaged one names its relocation.
    let o = run(&["run", &bad.arg(), "--prog", "core_opt_size"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    let want = format!(
        "program 'core_opt_size' cannot be loaded: section '?raw_tp/sys_enter', instruction \
         #{at}: CO-RE relocation <type_size> of"
    );
    assert!(err.contains(&want), "{err}\nwants {want}");

    // verify: one verdict each, the rejection carrying the same reason.
    let o = run(&["verify", &bad.arg(), "--json"]);
    assert!(!o.status.success(), "a rejected program fails verify");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let by_name = |n: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|p| p["prog_name"] == n)
            .unwrap_or_else(|| panic!("no {n} in {v}"))
            .clone()
    };
    assert_eq!(by_name("core_always")["verdict"], "success", "{v}");
    let opt = by_name("core_opt_size");
    assert_eq!(opt["verdict"], "failure", "{v}");
    let why = opt["rejection"]["error"].as_str().unwrap();
    assert!(why.contains("CO-RE relocation <type_size>"), "{why}");

    // libbpf does the same: the object loads without the "?" program,
    // which it does not relocate, and that program alone is refused.
    let Some(runner) = corpus_runner(test, None) else {
        return;
    };
    let libbpf = |mode: &str| {
        let o = std::process::Command::new(&runner)
            .args([bad.arg().as_str(), mode])
            .output()
            .unwrap();
        (o.status.success(), stdout(&o), stderr(&o))
    };
    let (loaded, out, err) = libbpf("--loadall");
    assert!(loaded, "libbpf refuses the object: {err}");
    assert!(out.lines().any(|l| l.starts_with("core_always ")), "{out}");
    assert!(!out.contains("core_opt_size"), "{out}");
    let (_, out, err) = libbpf("--each-prog");
    assert!(
        out.lines()
            .any(|l| l.starts_with("core_always ") && !l.contains("failed")),
        "{out}{err}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("core_opt_size failed")),
        "{out}{err}"
    );
}
