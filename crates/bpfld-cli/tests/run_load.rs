//! `bpfld run` on what only a loader can complete: `.kconfig` and `.ksyms`
//! externs resolved against the running kernel, program types aya 0.14
//! cannot load (syscall, lwt_*), and prog arrays filled from
//! `__array(values, ...)`. Real kernel; without bpf() each test prints
//! `SKIP ...` and passes.

mod common;
use common::*;

use serde_json::Value;

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
    // Typeless __ksym externs are kallsyms addresses (0 when weak and
    // missing).
    assert_eq!(seen["schedule_found"], 1);
    assert_eq!(seen["no_such_symbol_found"], 0);
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

#[test]
fn syscall_lwt_and_flow_dissector_programs_run() {
    if !bpf_allowed("syscall_lwt_and_flow_dissector_programs_run") {
        return;
    }
    let file = fx("run_prog_types.o");
    // syscall: the --data bytes are its context (a = 3, b = 4, sum), which
    // the kernel writes back: data_out holds a + b.
    let mut ctx = Vec::new();
    for n in [3u32, 4, 0] {
        ctx.extend_from_slice(&n.to_le_bytes());
    }
    let c = TempFile::new("ctx", &ctx);
    let v = run_json(&[&file, "--prog", "sys_add", "--data", &c.arg()]);
    assert_eq!(v["type"], "syscall");
    assert_eq!(v["retval"], 6);
    assert_eq!(v["data_out"], "030000000400000007000000");
    assert_eq!(v["duration_ns"], Value::Null);
    assert!(v["verified_insns"].as_u64().unwrap() > 0, "{v}");
    let o = run(&[
        "run",
        &file,
        "--prog",
        "sys_add",
        "--data",
        &c.arg(),
        "--repeat",
        "3",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("'sys_add' is a syscall program, which the kernel runs once"),
        "{}",
        stderr(&o)
    );

    // lwt_in: the verdict follows the packet's length.
    let v = run_json(&[&file, "--prog", "lwt_in_len"]);
    assert_eq!(v["type"], "lwt_in");
    assert_eq!(
        (v["retval"].clone(), v["action"].clone()),
        (0.into(), "BPF_OK".into())
    );
    let long = TempFile::new("long", &[0u8; 200]);
    let v = run_json(&[&file, "--prog", "lwt_in_len", "--data", &long.arg()]);
    assert_eq!(
        (v["retval"].clone(), v["action"].clone()),
        (2.into(), "BPF_DROP".into())
    );
    // lwt_out returns skb->len: the packet past its Ethernet header.
    let v = run_json(&[&file, "--prog", "lwt_out_mark", "--data", &long.arg()]);
    assert_eq!(v["type"], "lwt_out");
    assert_eq!(v["retval"], 200 - 14);
    let v = run_json(&[&file, "--prog", "lwt_xmit_ok", "--repeat", "3"]);
    assert_eq!(
        (v["type"].clone(), v["retval"].clone()),
        ("lwt_xmit".into(), 0.into())
    );
    assert_eq!(v["repeat"], 3);
    // lwt_seg6local loads (the verifier accepts it) but the kernel has no
    // test run for the type: the error says so.
    let o = run(&["run", &file, "--prog", "seg6_ok"]);
    let err = stderr(&o);
    if o.status.success() {
        assert!(stdout(&o).contains("(lwt_seg6local)"));
    } else {
        assert!(
            err.contains("this kernel cannot test-run lwt_seg6local programs"),
            "{err}"
        );
    }

    // flow_dissector: BPF_DROP when the first byte is 0xff.
    let mut pkt = vec![0u8; 60];
    let v = run_json(&[&file, "--prog", "flow_first"]);
    assert_eq!(
        (v["type"].clone(), v["action"].clone()),
        ("flow_dissector".into(), "BPF_OK".into())
    );
    pkt[0] = 0xff;
    let p = TempFile::new("ff", &pkt);
    let v = run_json(&[&file, "--prog", "flow_first", "--data", &p.arg()]);
    assert_eq!(
        (v["retval"].clone(), v["action"].clone()),
        (2.into(), "BPF_DROP".into())
    );
}

#[test]
fn prog_array_slots_from_values_are_filled() {
    if !bpf_allowed("prog_array_slots_from_values_are_filled") {
        return;
    }
    let file = fx("run_tail.o");
    // The tail call lands in tail_drop: XDP_DROP, and tail_drop counted.
    let v = run_json(&[&file, "--prog", "tail_caller"]);
    assert_eq!(v["action"], "XDP_DROP", "{v}");
    assert_eq!(
        v["maps"][".bss"][0]["formatted"]["value"][".bss"][0]["drop_runs"],
        1
    );
    let jumps = v["maps"]["jumps"].as_array().unwrap();
    assert_eq!(jumps.len(), 1, "{v}");
    assert_eq!(jumps[0]["key"], "01000000");
    // The callee alone drops too.
    let v = run_json(&[&file, "--prog", "tail_drop"]);
    assert_eq!(v["action"], "XDP_DROP");
    // A tail call from a subprogram needs the object's BTF in the kernel.
    let v = run_json(&[&file, "--prog", "tail_caller_sub"]);
    assert_eq!(
        v["maps"][".bss"][0]["formatted"]["value"][".bss"][0]["drop_runs"], 1,
        "{v}"
    );
}

/// The keys of the JSON object starting at `text`'s first `{`, in the order
/// printed (serde_json's Value would sort them).
fn top_level_keys(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("  \"") && !l.starts_with("   "))
        .filter_map(|l| l.trim().split('"').nth(1).map(str::to_string))
        .collect()
}

#[test]
fn json_fields_keep_the_documented_order() {
    if !bpf_allowed("json_fields_keep_the_documented_order") {
        return;
    }
    let file = fx("run_tail.o");
    let text = ok(&["run", &file, "--prog", "tail_caller", "--json"]);
    assert_eq!(
        top_level_keys(&text),
        [
            "file",
            "program",
            "type",
            "retval",
            "action",
            "duration_ns",
            "repeat",
            "data_out_len",
            "verified_insns",
            "data_out",
            "maps",
            "map_info"
        ]
    );
    // A map entry: key, value, then the typed form; map_info as listed.
    let v: Value = serde_json::from_str(&text).unwrap();
    let entry = text.split("\".bss\": [").nth(1).unwrap();
    let (k, val, f) = (
        entry.find("\"key\"").unwrap(),
        entry.find("\"value\"").unwrap(),
        entry.find("\"formatted\"").unwrap(),
    );
    assert!(k < val && val < f, "{text}");
    assert_eq!(v["map_info"]["jumps"]["type"], "prog_array");
    let info = text.split("\"map_info\"").nth(1).unwrap();
    let order: Vec<usize> = [
        "\"type\"",
        "\"key_size\"",
        "\"value_size\"",
        "\"max_entries\"",
        "\"per_cpu\"",
        "\"note\"",
        "\"zero_entries_not_shown\"",
    ]
    .iter()
    .map(|k| info.find(k).unwrap())
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{info}");

    // With a capture: one verdict per packet, fields as the README lists.
    let cap = fixture("pcap").join("three.pcap").display().to_string();
    let text = ok(&[
        "run",
        &file,
        "--prog",
        "tail_caller",
        "--pcap",
        &cap,
        "--json",
    ]);
    assert_eq!(
        top_level_keys(&text),
        [
            "file",
            "program",
            "type",
            "repeat",
            "verified_insns",
            "runs",
            "maps",
            "map_info"
        ]
    );
    let run0 = text.split("\"runs\": [").nth(1).unwrap();
    let run0 = &run0[..run0.find('}').unwrap()];
    let keys: Vec<&str> = run0
        .lines()
        .filter_map(|l| l.trim().split('"').nth(1))
        .collect();
    assert_eq!(
        keys,
        [
            "index",
            "retval",
            "action",
            "duration_ns",
            "data_in_len",
            "data_out_len",
            "data_out"
        ]
    );
}

#[test]
fn gcc_objects_run() {
    if !bpf_allowed("gcc_objects_run") {
        return;
    }
    // GCC writes empty .data/.bss sections, `signed char` as SIGNED|CHAR
    // and unnamed FUNCs: the kernel refuses the last two in BTF, and aya
    // made a zero-sized map of the first.
    let v = run_json(&[&fx("gcc/xdp_pass.o")]);
    assert_eq!(v["action"], "XDP_PASS");
    assert!(v["maps"].get(".bss").is_none(), "{v}");
    let v = run_json(&[
        &fx("gcc/comp_count.o"),
        "--prog",
        "xdp_count",
        "--repeat",
        "3",
    ]);
    assert_eq!(v["action"], "XDP_PASS");
    // counter[0] gained `step` (1) per run.
    assert_eq!(v["maps"]["counter"][0]["value"], "0300000000000000", "{v}");
}

#[test]
fn global_data_with_a_spin_lock_and_a_list_head_runs() {
    if !bpf_allowed("global_data_with_a_spin_lock_and_a_list_head_runs") {
        return;
    }
    // .data.A holds a bpf_spin_lock, a counter (41) and a list head: the
    // kernel refuses the lock in a map created without BTF, and list nodes
    // checked against a head of another BTF object.
    let file = fx("run_locked.o");
    let v = run_json(&[&file, "--prog", "locked_count", "--repeat", "2"]);
    assert_eq!(v["type"], "sched_cls");
    assert_eq!(v["retval"], 43, "{v}");
    let a = &v["maps"][".data.A"][0]["formatted"]["value"][".data.A"];
    let count = a
        .as_array()
        .unwrap()
        .iter()
        .find_map(|f| f.get("count"))
        .unwrap_or_else(|| panic!("no count in {v}"));
    assert_eq!(count, 43, "{v}");
    let v = run_json(&[&file, "--prog", "list_round_trip"]);
    assert_eq!(v["retval"], 7, "{v}");
    assert!(v["verified_insns"].as_u64().unwrap() > 0, "{v}");
    // The same in an inner map, reached through the outer map's slot 0
    // the object fills itself (-1 when it stays empty): runs * 10 + 5.
    let v = run_json(&[&file, "--prog", "inner_round_trip", "--repeat", "2"]);
    assert_eq!(v["retval"], 25, "{v}");
    assert_eq!(
        v["maps"]["inner"][0]["formatted"]["value"]["runs"], 2,
        "{v}"
    );
}

/// The machine's page size, as `getconf PAGESIZE` says.
fn page_size() -> u64 {
    let o = tool_output("getconf", &["PAGESIZE"]);
    assert!(o.status.success(), "getconf PAGESIZE: {}", stderr(&o));
    stdout(&o).trim().parse().unwrap()
}

#[test]
fn ring_buffers_get_the_size_libbpf_rounds_them_to() {
    if !bpf_allowed("ring_buffers_get_the_size_libbpf_rounds_them_to") {
        return;
    }
    // max_entries 1000 for a ring buffer and for the inner map template of
    // a hash of maps, 8 for a user ring buffer: the kernel creates only a
    // power-of-two number of pages, the size libbpf rounds them up to.
    let v = run_json(&[&fx("run_ringbuf.o")]);
    // The inner map in slot 0 is `rb` (the object fills the slot), and
    // writing into it worked.
    assert_eq!(v["action"], "XDP_PASS", "{v}");
    let page = page_size();
    for (map, ty) in [("rb", "ringbuf"), ("urb", "user_ringbuf")] {
        assert_eq!(v["map_info"][map]["type"], ty, "{v}");
        assert_eq!(v["map_info"][map]["max_entries"], page, "{v}");
    }
    assert_eq!(v["maps"]["rb_hash"][0]["key"], "00000000", "{v}");
}

#[test]
fn xdp_program_with_a_local_kptr_in_a_map_value_runs() {
    if !bpf_allowed("xdp_program_with_a_local_kptr_in_a_map_value_runs") {
        return;
    }
    // The verifier matches bpf_obj_new's object against the map value's
    // __kptr field by BTF object: loaded with aya's own BTF it refuses
    // the program ("invalid kptr access").
    let file = fx("run_xdp_kptr.o");
    let v = run_json(&[&file]);
    assert_eq!(v["type"], "xdp", "{v}");
    assert_eq!(v["action"], "XDP_PASS", "{v}");
    assert!(v["verified_insns"].as_u64().unwrap() > 0, "{v}");
    // The second run takes back the object the first one stashed.
    let v = run_json(&[&file, "--repeat", "2"]);
    assert_eq!(v["action"], "XDP_TX", "{v}");
}

#[test]
fn a_rejection_is_the_one_libbpf_gets_not_the_one_of_ayas_btf() {
    let test = "a_rejection_is_the_one_libbpf_gets_not_the_one_of_ayas_btf";
    if !bpf_allowed(test) {
        return;
    }
    // run_xdp_kptr with the object taken back never dropped. With aya's
    // own BTF the kernel stops at the kptr store ("invalid kptr access");
    // the verdict that counts is the one of the load libbpf makes.
    let file = fx("run_xdp_kptr_leak.o");
    let o = run(&["run", &file]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("program 'xdp_stash' rejected by the verifier")
            && err.contains("reason: Unreleased reference"),
        "{err}"
    );
    assert!(!err.contains("invalid kptr access"), "{err}");
    if have_tool("bpftool", test) {
        let why = libbpf_loads(&fixture("run_xdp_kptr_leak.o")).unwrap_err();
        assert!(why.contains("Unreleased reference"), "{why}");
    }
}

#[test]
fn sections_named_apart_only_by_autoload_run_their_own_programs() {
    if !bpf_allowed("sections_named_apart_only_by_autoload_run_their_own_programs") {
        return;
    }
    // `?socket` before `socket` and `?xdp` before `xdp`, each program
    // returning its own constant.
    let file = fx("run_dup_sections.o");
    for (prog, ty, retval) in [
        ("sock_opt", "socket_filter", 11),
        ("sock_first", "socket_filter", 13),
        ("sock_second", "socket_filter", 15),
        ("xdp_opt", "xdp", 3),
        ("xdp_first", "xdp", 1),
        ("xdp_second", "xdp", 2),
    ] {
        let v = run_json(&[&file, "--prog", prog]);
        assert_eq!(v["type"], ty, "{prog}: {v}");
        assert_eq!(v["retval"], retval, "{prog}: {v}");
    }
}

#[test]
fn a_thrown_exception_returns_the_programs_exception_callbacks_value() {
    if !bpf_allowed("a_thrown_exception_returns_the_programs_exception_callbacks_value") {
        return;
    }
    // 0xee first: the program throws the second byte as its cookie, and
    // its exception callback (appended by the loader: nothing calls it)
    // returns 0x4000 + cookie.
    let mut throws = vec![0u8; 64];
    throws[0] = 0xee;
    throws[1] = 0x07;
    let pkt = TempFile::new("exception-throws", &throws);
    let v = run_json(&[&fx("run_exception.o"), "--data", &pkt.arg()]);
    assert_eq!(v["retval"], 0x4007, "{v}");
    let pkt = TempFile::new("exception-other", &[0x11; 64]);
    let v = run_json(&[&fx("run_exception.o"), "--data", &pkt.arg()]);
    assert_eq!(v["retval"], 0, "{v}");
}
