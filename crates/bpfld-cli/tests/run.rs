//! `bpfld run` against the real kernel: verdicts, maps after repeated runs,
//! timing, TC and socket-filter programs, verifier rejections and program
//! selection errors. Every object run here is also loaded with libbpf
//! (`bpftool prog loadall`), so the fixtures are not aya-only, except
//! run_tc_kinds.o: its `tcx/ingress` section is newer than the libbpf 1.1
//! bpftool links.
//!
//! These tests need the bpf() syscall. When it is refused (EPERM, not root)
//! each test prints `SKIP ...` and passes; any other failure fails.

mod common;
use common::*;

use serde_json::Value;

/// The entries of map `name` as (key hex, value hex).
fn entries(v: &Value, name: &str) -> Vec<(String, String)> {
    v["maps"][name]
        .as_array()
        .unwrap_or_else(|| panic!("no map {name} in {v}"))
        .iter()
        .map(|e| {
            (
                e["key"].as_str().unwrap().to_string(),
                e["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn le_hex_u64(n: u64) -> String {
    n.to_le_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn le_hex_u32(n: u32) -> String {
    n.to_le_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn xdp_return_values_and_action_names() {
    if !bpf_allowed("xdp_return_values_and_action_names") {
        return;
    }
    for (obj, retval, action) in [
        ("xdp_pass.o", 2, "XDP_PASS"),
        ("xdp_drop.o", 1, "XDP_DROP"),
        ("run_counter.o", 3, "XDP_TX"),
    ] {
        let text = ok(&["run", &fx(obj)]);
        assert!(
            text.contains(&format!("retval: {retval} ({action})\n")),
            "{obj}: {text}"
        );
        // The default packet is a 64-byte frame, returned unchanged.
        assert!(text.contains("data_out: 64 bytes\n"), "{obj}: {text}");
        let v = run_json(&[&fx(obj)]);
        assert_eq!(v["retval"], retval, "{obj}");
        assert_eq!(v["action"], action, "{obj}");
        assert_eq!(v["type"], "xdp");
        assert_eq!(v["data_out_len"], 64);
        assert_eq!(v["data_out"], "00".repeat(64));
    }
}

#[test]
fn computed_return_values_follow_the_packet() {
    if !bpf_allowed("computed_return_values_follow_the_packet") {
        return;
    }
    // fixtures/README.md: on bytes 1..=64, xdp_len = 64, xdp_sum4 = 10,
    // xdp_first_be = 0x0102.
    let p = TempFile::new("compute", &(1..=64).collect::<Vec<u8>>());
    for (prog, want) in [("xdp_len", 64), ("xdp_sum4", 10), ("xdp_first_be", 258)] {
        let v = run_json(&[&fx("xdp_compute.o"), "--prog", prog, "--data", &p.arg()]);
        assert_eq!(v["retval"], want, "{prog}");
        assert_eq!(v["program"], prog);
        // Not an action: no name.
        if want > 4 {
            assert_eq!(v["action"], Value::Null, "{prog}");
        }
    }
    // Packet length follows the data file.
    let short = TempFile::new("short", &[0u8; 20]);
    let v = run_json(&[
        &fx("xdp_compute.o"),
        "--prog",
        "xdp_len",
        "--data",
        &short.arg(),
    ]);
    assert_eq!(v["retval"], 20);
    assert_eq!(v["data_out_len"], 20);
}

#[test]
fn maps_after_repeated_runs() {
    if !bpf_allowed("maps_after_repeated_runs") {
        return;
    }
    // The kernel runs the program `repeat` times, and map updates persist
    // between the runs: each counter ends at the repeat count.
    let mut pkt = vec![0u8; 64];
    pkt[0] = 0x2a;
    let p = TempFile::new("counter", &pkt);
    let v = run_json(&[&fx("run_counter.o"), "--repeat", "7", "--data", &p.arg()]);
    assert_eq!(v["repeat"], 7);
    let zero = le_hex_u32(0);
    assert_eq!(entries(&v, "runs"), vec![(zero.clone(), le_hex_u64(7))]);
    assert_eq!(entries(&v, ".bss"), vec![(zero.clone(), le_hex_u64(7))]);
    assert_eq!(
        entries(&v, "by_first"),
        vec![(le_hex_u32(0x2a), le_hex_u64(7))]
    );

    // Per-CPU: one 8-byte value per possible CPU, concatenated; the runs all
    // happen on one CPU, so the values sum to 7.
    let cpus = v["map_info"]["per_cpu_runs"]["per_cpu"].as_u64().unwrap() as usize;
    assert!(cpus >= 1);
    let pc = &v["maps"]["per_cpu_runs"][0];
    let parts = pc["per_cpu"].as_array().unwrap();
    assert_eq!(parts.len(), cpus);
    assert_eq!(pc["value"].as_str().unwrap().len(), 16 * cpus);
    let sum: u64 = parts
        .iter()
        .map(|h| {
            let h = h.as_str().unwrap();
            let bytes: Vec<u8> = (0..8)
                .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            u64::from_le_bytes(bytes.try_into().unwrap())
        })
        .sum();
    assert_eq!(sum, 7);
    assert_eq!(v["map_info"]["runs"]["type"], "array");
    assert_eq!(v["map_info"]["per_cpu_runs"]["type"], "percpu_array");
    assert_eq!(v["map_info"]["by_first"]["type"], "hash");

    // Each run loads a fresh object: the counts start again from zero.
    let again = run_json(&[&fx("run_counter.o")]);
    assert_eq!(entries(&again, "runs"), vec![(zero.clone(), le_hex_u64(1))]);
    assert_eq!(entries(&again, "by_first"), vec![(zero, le_hex_u64(1))]);

    // The text listing shows the same entries, typed by BTF (u32 -> u64).
    let text = ok(&["run", &fx("run_counter.o"), "--repeat", "3"]);
    assert!(
        text.contains("  runs (array, key 4 B, value 8 B, max_entries 1): 1 entries\n    0: 3\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(", {cpus} CPUs): 1 entries\n")),
        "{text}"
    );
    assert!(text.contains("      cpu0: "), "{text}");
}

#[test]
fn repeat_reports_average_duration() {
    if !bpf_allowed("repeat_reports_average_duration") {
        return;
    }
    let v = run_json(&[&fx("run_counter.o"), "--repeat", "1000"]);
    assert_eq!(v["repeat"], 1000);
    // The kernel's average over 1000 runs of a program with four map
    // updates is not zero, and is far below a millisecond.
    let d = v["duration_ns"].as_u64().expect("duration_ns is a number");
    assert!(d > 0 && d < 1_000_000, "duration_ns {d}");
    let text = ok(&["run", &fx("xdp_pass.o"), "--repeat", "50"]);
    let line = text
        .lines()
        .find(|l| l.starts_with("duration: "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.ends_with(" ns per run (average over 50 runs)"),
        "{line}"
    );
    let n: u64 = line["duration: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(n < 1_000_000, "{line}");
    // clap refuses 0.
    let o = run(&["run", &fx("xdp_pass.o"), "--repeat", "0"]);
    assert!(!o.status.success());
}

#[test]
fn tc_program_verdicts_and_output_packet() {
    if !bpf_allowed("tc_program_verdicts_and_output_packet") {
        return;
    }
    let v = run_json(&[&fx("run_tc.o")]);
    assert_eq!(v["type"], "sched_cls");
    assert_eq!(v["retval"], 0);
    assert_eq!(v["action"], "TC_ACT_OK");
    // The program wrote 0x5a at offset 13.
    let mut want = "00".repeat(64);
    want.replace_range(26..28, "5a");
    assert_eq!(v["data_out"], want);

    let mut pkt = vec![0u8; 32];
    pkt[0] = 0xff;
    let p = TempFile::new("tc", &pkt);
    let text = ok(&["run", &fx("run_tc.o"), "--data", &p.arg()]);
    assert!(
        text.contains("program: tc_mark_and_filter (sched_cls)\n"),
        "{text}"
    );
    assert!(text.contains("retval: 2 (TC_ACT_SHOT)\n"), "{text}");
    assert!(text.contains("data_out: 32 bytes\n"), "{text}");
    assert!(text.contains("maps: none\n"), "{text}");
}

#[test]
fn socket_filter_runs() {
    if !bpf_allowed("socket_filter_runs") {
        return;
    }
    // fixtures/README.md: ld_abs_ind on bytes 1..=64 returns 320087623.
    let p = TempFile::new("socket", &(1..=64).collect::<Vec<u8>>());
    let v = run_json(&[
        &fx("insn_mem.o"),
        "--prog",
        "ld_abs_ind",
        "--data",
        &p.arg(),
    ]);
    assert_eq!(v["type"], "socket_filter");
    assert_eq!(v["retval"], 320087623u32);
    assert_eq!(v["action"], Value::Null);
}

#[test]
fn verifier_rejection_shows_instruction_reason_and_log_tail() {
    if !bpf_allowed("verifier_rejection_shows_instruction_reason_and_log_tail") {
        return;
    }
    let file = fx("run_reject.o");
    let o = run(&["run", &file]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!(
            "bpfld: error: {file}: program 'xdp_reject' rejected by the verifier (EACCES: Permission denied)\n"
        )),
        "{err}"
    );
    assert!(
        err.contains("\n  at instruction 0: (61) r0 = *(u32 *)(r1 +4096)\n"),
        "{err}"
    );
    assert!(
        err.contains("\n  reason: invalid bpf_context access off=4096 size=4\n"),
        "{err}"
    );
    // The tail of the raw log follows, indented, with its source line.
    let tail_at = err
        .find("\n  verifier log (last ")
        .expect("log tail header");
    let tail: Vec<&str> = err[tail_at..].lines().skip(2).collect();
    assert!(!tail.is_empty() && tail.len() <= 20, "{err}");
    assert!(tail.iter().all(|l| l.starts_with("    ")), "{err}");
    assert!(tail.iter().any(|l| l.contains("run_reject.c")), "{err}");
    assert!(
        tail.iter().any(|l| l.contains("processed 1 insns")),
        "{err}"
    );
}

#[test]
fn long_verifier_log_is_cut_to_its_tail() {
    if !bpf_allowed("long_verifier_log_is_cut_to_its_tail") {
        return;
    }
    let file = fx("run_reject_loop.o");
    let o = run(&["run", &file, "--json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty(), "no JSON on failure");
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!(
            "bpfld: error: {file}: program 'xdp_spin' rejected by the verifier (EINVAL: Invalid argument)\n\
             \x20 at instruction 18: (ae) if w2 < w1 goto pc-10\n\
             \x20 reason: infinite loop detected at insn 18\n\
             \x20 verifier log (last 20 lines):\n"
        )),
        "{err}"
    );
    let tail: Vec<&str> = err.lines().skip(4).collect();
    assert_eq!(tail.len(), 20, "{err}");
    assert!(
        tail.iter()
            .any(|l| l == &"    infinite loop detected at insn 18"),
        "{err}"
    );
    assert!(tail.last().unwrap().starts_with("    processed "), "{err}");
}

#[test]
fn program_selection_errors_list_the_programs() {
    if !bpf_allowed("program_selection_errors_list_the_programs") {
        return;
    }
    let file = fx("xdp_compute.o");
    let o = run(&["run", &file, "--prog", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "bpfld: error: {file}: no program named 'nope'; the object's programs are: \
             xdp_first_be, xdp_len, xdp_sum4\n"
        )
    );
    let o = run(&["run", &file]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "bpfld: error: {file}: the object has 3 programs; choose one with --prog: \
             xdp_first_be, xdp_len, xdp_sum4\n"
        )
    );
}

#[test]
fn types_without_test_run_are_named() {
    if !bpf_allowed("types_without_test_run_are_named") {
        return;
    }
    let file = fx("tracing.o");
    let o = run(&["run", &file, "--prog", "on_sys_enter_unlinkat"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!(
            "bpfld: error: {file}: program 'on_sys_enter_unlinkat' is of type tracepoint, \
             which bpfld cannot run with BPF_PROG_TEST_RUN"
        )),
        "{err}"
    );
}

#[test]
fn input_errors_name_the_file() {
    // No kernel needed: these fail before bpf().
    let file = fx("xdp_pass.o");
    let o = run(&["run", &file, "--data", "/nonexistent/packet"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with(&format!(
            "bpfld: error: {file}: cannot read packet file /nonexistent/packet: "
        )),
        "{}",
        stderr(&o)
    );
    let o = run(&["run", "/nonexistent/x.o"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("bpfld: error: /nonexistent/x.o: cannot read: "));
}

/// Serialises the tests that look at or create pins in /sys/fs/bpf.
static PINS: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn pinned_maps_are_private_to_the_run() {
    if !bpf_allowed("pinned_maps_are_private_to_the_run") {
        return;
    }
    if !ensure_bpffs() {
        eprintln!("SKIP pinned_maps_are_private_to_the_run: no bpffs on /sys/fs/bpf");
        return;
    }
    let _g = PINS.lock().unwrap_or_else(|e| e.into_inner());
    let pin = std::path::Path::new("/sys/fs/bpf/run_pinned_ctr");
    assert!(!pin.exists(), "a stale {} exists; remove it", pin.display());
    // Twice: a pin reused from the first run would make the second count 2.
    for _ in 0..2 {
        let v = run_json(&[&fx("run_pinned.o"), "--repeat", "3"]);
        assert_eq!(
            entries(&v, "run_pinned_ctr"),
            vec![(le_hex_u32(0), le_hex_u64(3))]
        );
        assert!(!pin.exists(), "bpfld run left {}", pin.display());
    }
}

/// Mounts bpffs on /sys/fs/bpf when nothing is mounted there.
fn ensure_bpffs() -> bool {
    let is_bpffs = || {
        std::fs::read_to_string("/proc/mounts")
            .map(|m| {
                m.lines().any(|l| {
                    l.split(' ').nth(1) == Some("/sys/fs/bpf") && l.split(' ').nth(2) == Some("bpf")
                })
            })
            .unwrap_or(false)
    };
    if is_bpffs() {
        return true;
    }
    let _ = tool_output("mount", &["-t", "bpf", "bpf", "/sys/fs/bpf"]);
    is_bpffs()
}

/// `bpftool prog loadall OBJ DIR`; the pins are removed before returning.
fn libbpf_loads(obj: &str) -> (bool, String) {
    let dir = format!(
        "/sys/fs/bpf/bpfld-run-test-{}-{}",
        std::process::id(),
        obj.trim_end_matches(".o")
    );
    let o = {
        let _g = PINS.lock().unwrap_or_else(|e| e.into_inner());
        let o = tool_output("bpftool", &["prog", "loadall", &fx(obj), &dir]);
        // libbpf pins maps marked LIBBPF_PIN_BY_NAME in /sys/fs/bpf itself.
        if obj == "run_pinned.o" {
            let _ = std::fs::remove_file("/sys/fs/bpf/run_pinned_ctr");
        }
        o
    };
    let _ = std::fs::remove_dir_all(&dir);
    (o.status.success(), stderr(&o))
}

#[test]
fn every_object_run_here_also_loads_with_libbpf() {
    if !bpf_allowed("every_object_run_here_also_loads_with_libbpf")
        || !have_tool("bpftool", "every_object_run_here_also_loads_with_libbpf")
    {
        return;
    }
    if !ensure_bpffs() {
        eprintln!("SKIP every_object_run_here_also_loads_with_libbpf: no bpffs on /sys/fs/bpf");
        return;
    }
    for obj in [
        "xdp_pass.o",
        "xdp_drop.o",
        "xdp_compute.o",
        "run_counter.o",
        "run_tc.o",
        "run_pinned.o",
        "insn_mem.o",
        "run_maps.o",
        "run_set.o",
        "run_seed.o",
    ] {
        let (ok, err) = libbpf_loads(obj);
        assert!(ok, "libbpf refuses {obj}: {err}");
    }
    // The rejected fixtures are rejected by libbpf too, for the same reasons.
    for (obj, why) in [
        ("run_reject.o", "invalid bpf_context access off=4096 size=4"),
        ("run_reject_loop.o", "infinite loop detected at insn 18"),
    ] {
        let (ok, err) = libbpf_loads(obj);
        assert!(!ok, "libbpf accepts {obj}");
        assert!(err.contains(why), "{obj}: {err}");
    }
}

#[test]
fn unprivileged_run_says_what_is_missing() {
    // Drop to nobody with no capabilities: needs root to do so.
    let uid = tool_output("id", &["-u"]);
    if stdout(&uid).trim() != "0" || !have_tool("setpriv", "unprivileged_run_says_what_is_missing")
    {
        eprintln!("SKIP unprivileged_run_says_what_is_missing: needs root and setpriv");
        return;
    }
    let file = fx("xdp_pass.o");
    let o = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            env!("CARGO_BIN_EXE_bpfld"),
            "run",
            &file,
        ])
        .output()
        .expect("setpriv runs");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        format!(
            "bpfld: error: {file}: the bpf() syscall was refused: run as root, or with CAP_BPF \
             and CAP_NET_ADMIN (or CAP_SYS_ADMIN); check also kernel.unprivileged_bpf_disabled\n"
        )
    );
}

#[test]
fn too_short_packet_is_explained() {
    if !bpf_allowed("too_short_packet_is_explained") {
        return;
    }
    let file = fx("xdp_pass.o");
    let p = TempFile::new("short13", &[0u8; 13]);
    let o = run(&["run", &file, "--data", &p.arg()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "bpfld: error: {file}: program 'xdp_pass': BPF_PROG_TEST_RUN failed (EINVAL: \
             Invalid argument): the kernel refused the 13-byte packet; a packet must hold at \
             least an Ethernet header (14 bytes)\n"
        )
    );
}

#[test]
fn libbpf_section_names_aya_does_not_know_run() {
    if !bpf_allowed("libbpf_section_names_aya_does_not_know_run") {
        return;
    }
    let file = fx("run_tc_kinds.o");
    // SEC("tc"): the verdict depends on the packet's first byte.
    let v = run_json(&[&file, "--prog", "tc_filter"]);
    assert_eq!(v["type"], "sched_cls");
    assert_eq!(v["action"], "TC_ACT_OK");
    let mut pkt = vec![0u8; 40];
    pkt[0] = 0xff;
    let p = TempFile::new("tc-kinds", &pkt);
    let v = run_json(&[&file, "--prog", "tc_filter", "--data", &p.arg()]);
    assert_eq!(v["retval"], 2);
    assert_eq!(v["action"], "TC_ACT_SHOT");
    // SEC("tcx/ingress"): returns skb->len.
    let v = run_json(&[&file, "--prog", "tcx_len", "--data", &p.arg()]);
    assert_eq!(v["type"], "sched_cls");
    assert_eq!(v["retval"], 40);
    // SEC("?raw_tp/sys_enter"): runs once, counting in .bss.
    let v = run_json(&[&file, "--prog", "raw_tp_seven"]);
    assert_eq!(v["type"], "raw_tracepoint");
    assert_eq!(v["retval"], 7);
    assert_eq!(
        entries(&v, ".bss"),
        [("00000000".into(), "0100000000000000".into())]
    );
    // The kernel reports no duration for it and runs it once.
    assert_eq!(v["duration_ns"], Value::Null);
    let text = ok(&["run", &file, "--prog", "raw_tp_seven"]);
    assert!(
        text.contains("\nduration: not reported for raw_tracepoint programs (run once)\n"),
        "{text}"
    );
    let o = run(&["run", &file, "--prog", "raw_tp_seven", "--repeat", "2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("raw_tracepoint program, which the kernel runs once"),
        "{}",
        stderr(&o)
    );
    // SEC("syscall"): aya cannot load it; bpfld loads it itself.
    let v = run_json(&[&file, "--prog", "syscall_prog"]);
    assert_eq!(v["type"], "syscall");
    assert_eq!(v["retval"], 0);
}

#[test]
fn maps_are_typed_by_btf_and_zero_entries_hidden() {
    if !bpf_allowed("maps_are_typed_by_btf_and_zero_entries_hidden") {
        return;
    }
    let file = fx("run_maps.o");
    let v = run_json(&[&file, "--repeat", "3"]);
    // One entry of 1024 is not zero; it is shown by field name, the way
    // bpftool's "formatted" shows it.
    let flows = v["maps"]["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 1, "{flows:?}");
    assert_eq!(flows[0]["key"], "07000000");
    assert_eq!(
        flows[0]["formatted"],
        serde_json::json!({
            "key": 7,
            "value": {
                "packets": 3, "last_len": 64, "tag": "web",
                "pair": {"lo": 1, "hi": 2}, "proto": "PROTO_UDP",
                "flags": "0x0", "bits": "0x5"
            }
        })
    );
    assert_eq!(v["map_info"]["flows"]["zero_entries_not_shown"], 1023);
    // Per-CPU: one value per CPU, summing to the runs.
    let hits = v["maps"]["cpu_hits"].as_array().unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    let per_cpu = hits[0]["formatted"]["values"].as_array().unwrap();
    let sum: u64 = per_cpu.iter().map(|c| c["value"].as_u64().unwrap()).sum();
    assert_eq!(sum, 3);
    assert_eq!(per_cpu[0]["cpu"], 0);
    // Global data: the DATASEC by variable name, no typed key.
    assert_eq!(
        v["maps"][".data"][0]["formatted"],
        serde_json::json!({"value": {".data": [{"seen": 103}]}})
    );

    // --all shows every entry; --map only the named maps.
    let v = run_json(&[&file, "--all", "--map", "flows"]);
    let names: Vec<&String> = v["maps"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["flows"]);
    assert_eq!(v["maps"]["flows"].as_array().unwrap().len(), 1024);
    assert_eq!(v["map_info"]["flows"]["zero_entries_not_shown"], 0);

    let text = ok(&["run", &file, "--map", "flows"]);
    assert!(
        text.contains(
            "  flows (array, key 4 B, value 32 B, max_entries 1024): 1 entries \
             (1023 all-zero entries not shown; --all shows them)\n    7: {"
        ),
        "{text}"
    );
    assert!(text.contains("\"tag\":\"web\""), "{text}");
    assert!(!text.contains("cpu_hits"), "{text}");

    let o = run(&["run", &file, "--map", "flows", "--map", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    assert_eq!(
        stderr(&o),
        format!(
            "bpfld: error: {file}: --map nope: no such map; the object's maps are: .data, cpu_hits, flows\n"
        )
    );
}

#[test]
fn set_changes_globals_before_load() {
    if !bpf_allowed("set_changes_globals_before_load") {
        return;
    }
    let file = fx("run_set.o");
    // The const volatile flag is a constant to the verifier: flipped, the
    // program takes the other branch and the verifier walks more code.
    let off = run_json(&[&file]);
    let on = run_json(&[&file, "--set", "heavy=1"]);
    assert_eq!(off["action"], "XDP_PASS");
    assert_eq!(on["action"], "XDP_DROP");
    let (n_off, n_on) = (
        off["verified_insns"].as_u64().unwrap(),
        on["verified_insns"].as_u64().unwrap(),
    );
    assert!(n_on > n_off + 32, "{n_off} -> {n_on}");
    // A u16 in .rodata, in hex; the packet's first byte is 0.
    let v = run_json(&[&file, "--set", "port=0x0"]);
    assert_eq!(v["action"], "XDP_TX");
    // .data (integer and char array) and .bss, shown after the run.
    let v = run_json(&[
        &file,
        "--set",
        "counter=0x10",
        "--set",
        "label=web",
        "--set",
        "sum=3",
    ]);
    assert_eq!(
        v["maps"][".data"][0]["formatted"]["value"],
        serde_json::json!({".data": [{"counter": 17}, {"label": "web"}]})
    );
    assert_eq!(
        v["maps"][".bss"][0]["formatted"]["value"],
        serde_json::json!({".bss": [{"sum": 3}]})
    );
    // Clear errors, nothing on stdout.
    for (set, msg) in [
        (
            "nope=1",
            "--set nope=1: no global variable named 'nope'; the object's globals are: counter, heavy, label, port, sum",
        ),
        ("port=0x10000", "--set port=0x10000: 65536 does not fit u16 (0..=65535)"),
        ("port=-1", "--set port=-1: -1 does not fit u16 (0..=65535)"),
        (
            "label=toolongxx",
            "--set label=toolongxx: the string is 9 bytes; char[8] holds at most 7 and the NUL",
        ),
        ("heavy=yes", "--set heavy=yes: 'yes' is not a number (decimal or 0x-hex)"),
        ("heavy", "--set heavy: expected VAR=VALUE"),
    ] {
        let o = run(&["run", &file, "--set", set]);
        assert_eq!(o.status.code(), Some(1), "{set}");
        assert!(o.stdout.is_empty(), "{set}");
        assert_eq!(stderr(&o), format!("bpfld: error: {file}: {msg}\n"));
    }
}

#[test]
fn pcap_runs_every_packet() {
    if !bpf_allowed("pcap_runs_every_packet") {
        return;
    }
    // fixtures/pcap/three.*: three 64-byte frames, first bytes ff, 00, ff;
    // run_tc.o shoots 0xff-first packets and writes 0x5a at offset 13.
    let file = fx("run_tc.o");
    for capture in ["three.pcap", "three.pcapng"] {
        let cap = fixture("pcap").join(capture).display().to_string();
        let v = run_json(&[&file, "--pcap", &cap]);
        let runs = v["runs"].as_array().unwrap();
        let verdicts: Vec<(u64, u64, &str)> = runs
            .iter()
            .map(|r| {
                (
                    r["index"].as_u64().unwrap(),
                    r["retval"].as_u64().unwrap(),
                    r["action"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            verdicts,
            [
                (0, 2, "TC_ACT_SHOT"),
                (1, 0, "TC_ACT_OK"),
                (2, 2, "TC_ACT_SHOT")
            ],
            "{capture}"
        );
        assert!(runs
            .iter()
            .all(|r| r["data_in_len"] == 64 && r["duration_ns"].is_u64()));
        assert!(v.get("retval").is_none());
    }

    // Text: a table, one line per packet.
    let cap = fixture("pcap").join("three.pcap").display().to_string();
    let dir = tmpdir("run-pcap");
    let out = dir.join("out.pcap");
    let text = ok(&[
        "run",
        &file,
        "--pcap",
        &cap,
        "--data-out",
        out.to_str().unwrap(),
    ]);
    assert!(text.contains("runs: 3 packets\n"), "{text}");
    let rows: Vec<&str> = text.lines().filter(|l| l.contains("TC_ACT_")).collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(
        rows[1].trim_start().starts_with("1           0  TC_ACT_OK"),
        "{text}"
    );
    // --data-out with --pcap: a pcap of the packets as the program left them.
    let written = bpfld::pcap::parse(&std::fs::read(&out).unwrap()).unwrap();
    let input = bpfld::pcap::parse(&std::fs::read(&cap).unwrap()).unwrap();
    assert_eq!(written.linktype, 1);
    assert_eq!(written.packets.len(), 3);
    for (w, i) in written.packets.iter().zip(&input.packets) {
        let mut want = i.data.clone();
        want[13] = 0x5a;
        assert_eq!(w.data, want);
        assert_eq!(w.time_ns, i.time_ns);
    }
    // Without --pcap, --data-out is the raw packet.
    let raw = dir.join("out.bin");
    ok(&["run", &file, "--data-out", raw.to_str().unwrap()]);
    let mut want = vec![0u8; 64];
    want[13] = 0x5a;
    assert_eq!(std::fs::read(&raw).unwrap(), want);

    // A damaged capture: the file and the record, nothing on stdout.
    let bad = root()
        .join("fuzz/regressions/pcap/record_longer_than_file.pcap")
        .display()
        .to_string();
    let o = run(&["run", &file, "--pcap", &bad]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    assert_eq!(
        stderr(&o),
        format!("bpfld: error: {bad}: pcap record 0 at offset 24: the record says 1000 bytes, the file has 10 left\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn map_update_seeds_maps_before_the_run() {
    if !bpf_allowed("map_update_seeds_maps_before_the_run") {
        return;
    }
    let file = fx("run_seed.o");
    // Unseeded: no verdict for byte 0, cfg.magic is 0.
    assert_eq!(run_json(&[&file])["action"], "XDP_DROP");
    // An integer-typed key and value (u8 -> u32).
    let v = run_json(&[&file, "--map-update", "verdicts", "0=2"]);
    assert_eq!(v["action"], "XDP_PASS");
    assert_eq!(
        v["maps"]["verdicts"][0]["formatted"],
        serde_json::json!({"key": 0, "value": 2})
    );
    // A struct value as hex bytes: magic (offset 4) = 7.
    let v = run_json(&[&file, "--map-update", "cfg", "0=0x0000000007000000"]);
    assert_eq!(v["action"], "XDP_TX");
    // Repeatable, in order; hex key 0x00 as an integer.
    let v = run_json(&[
        &file,
        "--map-update",
        "cfg",
        "0=0000000007000000",
        "--map-update",
        "verdicts",
        "0x0=1",
    ]);
    assert_eq!(v["action"], "XDP_DROP");
    // Per-CPU maps get the value on every CPU.
    let v = run_json(&[&fx("run_maps.o"), "--map-update", "cpu_hits", "3=5"]);
    let e = v["maps"]["cpu_hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "03000000")
        .expect("seeded entry");
    assert!(e["formatted"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["value"] == 5));

    for (name, kv, msg) in [
        (
            "nope",
            "0=1",
            "--map-update nope 0=1: no map named 'nope'; the object's maps are: cfg, verdicts",
        ),
        (
            "verdicts",
            "256=1",
            "--map-update verdicts 256=1: the key: 256 does not fit u8 (0..=255)",
        ),
        (
            "cfg",
            "0=00000000070000",
            "--map-update cfg 0=00000000070000: the value is 7 bytes; map 'cfg' has 8-byte values",
        ),
        (
            "cfg",
            "0=zz",
            "--map-update cfg 0=zz: the value: 'zz' is not hex bytes (an even number of hex digits, in memory order)",
        ),
        ("verdicts", "0", "--map-update verdicts 0: expected KEY=VALUE"),
    ] {
        let o = run(&["run", &file, "--map-update", name, kv]);
        assert_eq!(o.status.code(), Some(1), "{kv}");
        assert!(o.stdout.is_empty(), "{kv}");
        assert_eq!(stderr(&o), format!("bpfld: error: {file}: {msg}\n"));
    }
}

#[test]
fn map_types_are_named_as_bpftool_names_them() {
    if !bpf_allowed("map_types_are_named_as_bpftool_names_them") {
        return;
    }
    // An XSKMAP (which aya has no short name for) and a PERCPU_ARRAY:
    // bpftool's names, never a Rust spelling such as `Some(XskMap)`.
    let v = run_json(&[&fx("run_xsk.o")]);
    assert_eq!(v["map_info"]["xsks"]["type"], "xskmap", "{v}");
    assert_eq!(v["retval"], 2);
    let text = ok(&["run", &fx("run_xsk.o")]);
    assert!(text.contains("xsks (xskmap, key 4 B"), "{text}");
    assert!(!text.contains("Some("), "{text}");
    let v = run_json(&[&fx("run_maps.o")]);
    assert_eq!(v["map_info"]["cpu_hits"]["type"], "percpu_array", "{v}");
}
