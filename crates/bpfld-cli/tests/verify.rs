//! `bpfld verify` against the real kernel: the verifier's statistics per
//! program (compared with what libbpf's load reports), `--set` pruning a
//! branch, a rejection with its log and source line, veristat's CSV
//! columns, the JSON fields, and a composed dispatcher's components.
//!
//! These tests need the bpf() syscall. When it is refused (EPERM, not root)
//! each test prints `SKIP ...` and passes; any other failure fails.

mod common;
use common::*;

use serde_json::Value;

fn fx(name: &str) -> String {
    fixture(name).display().to_string()
}

/// `bpfld verify ARGS --json`, parsed; asserts the exit status.
fn verify_json(args: &[&str], success: bool) -> Value {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    all.push("--json");
    let o = run(&all);
    assert_eq!(
        o.status.success(),
        success,
        "bpfld {all:?}: {}{}",
        stdout(&o),
        stderr(&o)
    );
    let out = stdout(&o);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}"))
}

fn by_name<'a>(v: &'a Value, name: &str) -> &'a Value {
    v.as_array()
        .unwrap()
        .iter()
        .find(|p| p["prog_name"] == name)
        .unwrap_or_else(|| panic!("no program {name} in {v}"))
}

/// `verified_insns` of every program of `obj` as libbpf loads it, each
/// alone (tools/corpus-run --each-prog, built here with libbpf; this
/// bpftool's `prog show` does not print the count). `None` for programs
/// libbpf cannot load.
fn libbpf_verified(runner: &std::path::Path, obj: &str) -> Vec<(String, Option<u64>)> {
    let o = std::process::Command::new(runner)
        .args([obj, "--each-prog"])
        .output()
        .unwrap();
    assert!(o.status.success(), "corpus_run {obj}: {}", stderr(&o));
    let mut out: Vec<(String, Option<u64>)> = stdout(&o)
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.as_slice() {
                [name, n] => Some((name.to_string(), n.parse().ok())),
                [name, "failed", _] => Some((name.to_string(), None)),
                _ => None,
            }
        })
        .collect();
    out.sort();
    out
}

#[test]
fn verified_counts_equal_libbpfs() {
    if !bpf_allowed("verified_counts_equal_libbpfs") {
        return;
    }
    let Some(runner) = corpus_runner("verified_counts_equal_libbpfs", None) else {
        return;
    };
    for (obj, success) in [
        ("net_progs.o", true),
        ("run_set.o", true),
        ("tracing.o", true),
        ("xdp_counter.o", true),
        ("verify_reject.o", false),
        // A spin lock and a list head in .data.A: its map needs the
        // section's BTF, and the programs the same BTF object.
        ("run_locked.o", true),
        // Each verified as the kernel struct's member its map names.
        ("verify_st_ops.o", true),
        // The same with libbpf's "?" before `struct_ops/`.
        ("verify_st_ops_opt.o", true),
        // Ring buffers sized as libbpf rounds them: the maps are created.
        ("run_ringbuf.o", true),
        // `?socket` and `socket`, `?xdp` and `xdp`: each section's own
        // func_info and line_info.
        ("run_dup_sections.o", true),
        // An XDP program with a local kptr in a map value.
        ("run_xdp_kptr.o", true),
        // The same leaking its object: refused at the exit, as libbpf's.
        ("run_xdp_kptr_leak.o", false),
        // A CO-RE relocation in a "?" program.
        ("core_optional.o", true),
        // A hidden global subprogram, verified in its caller as libbpf
        // makes it static.
        ("verify_hidden.o", true),
    ] {
        let v = verify_json(&[&fx(obj)], success);
        let reference = libbpf_verified(&runner, &fx(obj));
        assert!(!reference.is_empty(), "{obj}");
        for (name, n) in &reference {
            let p = by_name(&v, name);
            match n {
                Some(n) => {
                    assert_eq!(p["verdict"], "success", "{obj}: {p}");
                    assert_eq!(
                        p["verified_insns"].as_u64(),
                        Some(*n),
                        "{obj}: {name}: libbpf's verified_insns is {n}"
                    );
                }
                None => assert_eq!(p["verdict"], "failure", "{obj}: {p}"),
            }
        }
        assert_eq!(v.as_array().unwrap().len(), reference.len(), "{obj}: {v}");
    }
}

#[test]
fn struct_ops_programs_are_verified_as_their_members() {
    if !bpf_allowed("struct_ops_programs_are_verified_as_their_members")
        || !have_vmlinux("struct_ops_programs_are_verified_as_their_members")
    {
        return;
    }
    let v = verify_json(&[&fx("verify_st_ops.o")], true);
    assert_eq!(v.as_array().unwrap().len(), 3, "{v}");
    for name in ["st_ssthresh", "st_cong_avoid", "st_undo_cwnd"] {
        let p = by_name(&v, name);
        assert_eq!(p["prog_type"], "struct_ops", "{p}");
        assert_eq!(p["verdict"], "success", "{p}");
    }
}

#[test]
fn struct_ops_programs_with_autoload_off_are_verified() {
    if !bpf_allowed("struct_ops_programs_with_autoload_off_are_verified")
        || !have_vmlinux("struct_ops_programs_with_autoload_off_are_verified")
    {
        return;
    }
    // `?struct_ops/ssthresh`: the map's pointer still says which member.
    let v = verify_json(&[&fx("verify_st_ops_opt.o")], true);
    let p = by_name(&v, "opt_ssthresh");
    assert_eq!(p["section"], "?struct_ops/ssthresh", "{p}");
    assert_eq!(p["prog_type"], "struct_ops", "{p}");
    assert_eq!(p["verdict"], "success", "{p}");
}

#[test]
fn sections_named_apart_only_by_autoload_are_verified_each() {
    if !bpf_allowed("sections_named_apart_only_by_autoload_are_verified_each") {
        return;
    }
    let v = verify_json(&[&fx("run_dup_sections.o")], true);
    for (name, section, insns) in [
        ("sock_opt", "?socket", 2),
        ("sock_first", "socket", 5),
        ("sock_second", "socket", 5),
        ("xdp_opt", "?xdp", 2),
        ("xdp_first", "xdp", 7),
        ("xdp_second", "xdp", 8),
    ] {
        let p = by_name(&v, name);
        assert_eq!(p["section"], section, "{p}");
        assert_eq!(p["verdict"], "success", "{p}");
        assert_eq!(p["insns"], insns, "{p}");
    }
}

#[test]
fn hidden_global_subprograms_are_verified_in_their_caller() {
    if !bpf_allowed("hidden_global_subprograms_are_verified_in_their_caller") {
        return;
    }
    // hidden_store stores through its pointer unchecked: alone (as a
    // global function) the verifier refuses it, from xdp_hidden (as libbpf
    // loads it, static) the pointer is xdp_hidden's stack.
    let v = verify_json(&[&fx("verify_hidden.o")], true);
    for name in ["xdp_hidden", "hidden_entry"] {
        assert_eq!(by_name(&v, name)["verdict"], "success", "{v}");
    }
    // And `run` loads the same BTF.
    let r = run_json(&[&fx("verify_hidden.o"), "--prog", "xdp_hidden"]);
    assert_eq!(r["action"], "XDP_TX", "{r}");
}

#[test]
fn types_aya_cannot_load_are_verified() {
    if !bpf_allowed("types_aya_cannot_load_are_verified") {
        return;
    }
    // `bpfld run` cannot load syscall programs (aya 0.14 has no loader
    // for them); verify loads by section name, as libbpf does.
    let v = verify_json(&[&fx("run_tc_kinds.o")], true);
    let p = by_name(&v, "syscall_prog");
    assert_eq!(p["prog_type"], "syscall", "{p}");
    assert_eq!(p["section"], "syscall", "{p}");
    assert_eq!(p["verdict"], "success", "{p}");
    assert_eq!(by_name(&v, "tcx_len")["attach_type"], "tcx_ingress");
}

#[test]
fn set_flag_changes_the_verified_count() {
    if !bpf_allowed("set_flag_changes_the_verified_count") {
        return;
    }
    let light = verify_json(&[&fx("run_set.o")], true);
    let heavy = verify_json(&[&fx("run_set.o"), "--set", "heavy=1"], true);
    let n = |v: &Value| by_name(v, "xdp_set")["verified_insns"].as_u64().unwrap();
    // heavy = 0 is a constant to the verifier: the summing loop is dead.
    assert!(n(&heavy) > n(&light) + 32, "{} vs {}", n(&heavy), n(&light));
    // The code handed to the kernel is the same.
    assert_eq!(
        by_name(&light, "xdp_set")["insns"],
        by_name(&heavy, "xdp_set")["insns"]
    );
    let o = run(&["verify", &fx("run_set.o"), "--set", "nosuch=1"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no global variable named 'nosuch'"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty());
}

#[test]
fn rejection_shows_log_tail_and_source_line() {
    if !bpf_allowed("rejection_shows_log_tail_and_source_line") {
        return;
    }
    let o = run(&["verify", &fx("verify_reject.o")]);
    assert_eq!(o.status.code(), Some(1));
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(
        err.contains("1 of 2 programs failed verification: xdp_unchecked"),
        "{err}"
    );
    let row = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row {name}: {out}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(row("xdp_checked ")[2], "success", "{out}");
    assert_eq!(row("xdp_unchecked ")[2], "failure", "{out}");
    assert!(
        out.contains("xdp_unchecked: rejected (EACCES: Permission denied)"),
        "{out}"
    );
    assert!(
        out.contains(
            "  source: ./src/verify_reject.c:28: __u8 tenth = *(volatile __u8 *)(data + 9);"
        ),
        "{out}"
    );
    assert!(
        out.contains("  reason: invalid access to packet, off=9 size=1"),
        "{out}"
    );
    assert!(out.contains("  at: 6: (71) r1 = *(u8 *)(r1 +9)"), "{out}");
    // The log's end, with the statistics footer.
    assert!(out.contains("verifier log (last"), "{out}");
    assert!(out.contains("    processed 7 insns"), "{out}");

    let v = verify_json(&[&fx("verify_reject.o")], false);
    let bad = by_name(&v, "xdp_unchecked");
    assert_eq!(bad["verdict"], "failure");
    assert_eq!(bad["rejection"]["insn"], 6);
    assert_eq!(bad["rejection"]["source"]["line"], 28);
    assert_eq!(bad["rejection"]["source"]["file"], "./src/verify_reject.c");
    assert_eq!(bad["verified_insns"], 7);
    assert!(bad["rejection"]["log_tail"].as_array().unwrap().len() > 5);
    assert_eq!(by_name(&v, "xdp_checked")["rejection"], Value::Null);

    // Only the accepted one: success.
    let v = verify_json(&[&fx("verify_reject.o"), "--prog", "xdp_checked"], true);
    assert_eq!(v.as_array().unwrap().len(), 1);
    let o = run(&["verify", &fx("verify_reject.o"), "--prog", "nosuch"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(
            "no program named 'nosuch'; the object's programs are: xdp_checked, xdp_unchecked"
        ),
        "{}",
        stderr(&o)
    );
}

#[test]
fn csv_has_veristats_columns() {
    if !bpf_allowed("csv_has_veristats_columns") {
        return;
    }
    let out = ok(&["verify", &fx("net_progs.o"), "--csv"]);
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap(),
        "file_name,prog_name,verdict,duration,total_insns,total_states,peak_states,\
         max_states_per_insn,max_mark_read_len,prog_size,prog_size_jited,prog_type,\
         attach_type,stack_depth"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 6, "{out}");
    let json = verify_json(&[&fx("net_progs.o")], true);
    for r in &rows {
        assert_eq!(r.len(), 14, "{r:?}");
        assert_eq!(r[0], "net_progs.o");
        assert_eq!(r[2], "success");
        let j = by_name(&json, r[1]);
        assert_eq!(r[4], j["verified_insns"].to_string(), "{r:?}");
        assert_eq!(r[9], j["insns"].to_string(), "{r:?}");
        assert_eq!(r[10], j["jited_bytes"].to_string(), "{r:?}");
        assert_eq!(r[11], j["prog_type"].as_str().unwrap());
        assert!(r[3].parse::<u64>().is_ok(), "duration {r:?}");
    }
    let xdp = rows.iter().find(|r| r[1] == "net_xdp").unwrap();
    assert_eq!((xdp[11], xdp[12]), ("xdp", "xdp"));
    let egress = rows.iter().find(|r| r[1] == "net_cgroup_out").unwrap();
    assert_eq!(
        (egress[11], egress[12]),
        ("cgroup_skb", "cgroup_inet_egress")
    );
    // No expected attach type: veristat names the value 0.
    let tc = rows.iter().find(|r| r[1] == "net_tc").unwrap();
    assert_eq!((tc[11], tc[12]), ("sched_cls", "cgroup_inet_ingress"));
}

#[test]
fn json_fields() {
    if !bpf_allowed("json_fields") {
        return;
    }
    let v = verify_json(&[&fx("run_set.o")], true);
    assert_eq!(v.as_array().unwrap().len(), 1);
    let p = &v[0];
    assert_eq!(p["file_name"], fx("run_set.o"));
    assert_eq!(p["prog_name"], "xdp_set");
    assert_eq!(p["section"], "xdp");
    assert_eq!(p["prog_type"], "xdp");
    assert_eq!(p["attach_type"], "xdp");
    assert_eq!(p["verdict"], "success");
    // The program's own instructions (no subprograms): inspect's count.
    let inspect: Value =
        serde_json::from_str(&ok(&["inspect", "--json", &fx("run_set.o")])).unwrap();
    assert_eq!(p["insns"], inspect["programs"][0]["insns"]);
    let verified = p["verified_insns"].as_u64().unwrap();
    assert!(verified > 0 && verified < 121, "{p}");
    assert!(p["total_states"].as_u64().is_some());
    assert!(p["peak_states"].as_u64().unwrap() <= p["total_states"].as_u64().unwrap());
    assert!(p["max_states_per_insn"].as_u64().is_some());
    assert!(p["duration_us"].as_u64().is_some());
    assert_eq!(p["stack_depth"], serde_json::json!([0]));
    assert!(p["xlated_insns"].as_u64().unwrap() > 0);
    assert!(p["jited_bytes"].as_u64().is_some());
    assert_eq!(p["rejection"], Value::Null);
    assert!(p.get("components").is_none());
    // A stack of 8 bytes in each of tracing.o's programs.
    let v = verify_json(&[&fx("tracing.o")], true);
    for p in v.as_array().unwrap() {
        assert_eq!(p["stack_depth"], serde_json::json!([8]), "{p}");
    }
}

/// `bpfld xdp compose` of comp_count.o:xdp_count and comp_mark.o into DIR.
fn composed(tag: &str, extra: &[&str]) -> (std::path::PathBuf, String) {
    let out = tmpdir(tag).join("composed.o");
    let (a, b) = (fx("comp_count.o") + ":xdp_count", fx("comp_mark.o"));
    let mut args = vec![
        "xdp",
        "compose",
        "-o",
        out.to_str().unwrap(),
        &a,
        &b,
        "--print-map",
    ];
    args.extend_from_slice(extra);
    let map = ok(&args);
    (out, map)
}

#[test]
fn composed_object_reports_component_shares() {
    if !bpf_allowed("composed_object_reports_component_shares") {
        return;
    }
    // Called components: their code is exactly what the link pulled in.
    let (obj, map) = composed("verify-called", &["--no-inline"]);
    let v = verify_json(&[obj.to_str().unwrap()], true);
    let p = by_name(&v, "bpfld_xdp");
    let comps = p["components"].as_array().unwrap();
    assert_eq!(comps.len(), 2, "{p}");
    assert_eq!(comps[0]["slot"], "comp0");
    assert_eq!(comps[0]["program"], "xdp_count");
    assert_eq!(comps[1]["slot"], "comp1");
    assert_eq!(comps[1]["program"], "xdp_mark");
    for c in comps {
        let pulled = format!(
            "instance '{}': {} instructions pulled in",
            c["slot"].as_str().unwrap(),
            c["static_insns"]
        );
        assert!(map.contains(&pulled), "{pulled} not in\n{map}");
    }
    let verified: u64 = comps
        .iter()
        .map(|c| c["verified_insns"].as_u64().unwrap())
        .sum();
    assert!(
        verified > 0 && verified < p["verified_insns"].as_u64().unwrap(),
        "{p}"
    );

    // Inlined components: attributed by their source lines.
    let (obj, _) = composed("verify-inlined", &[]);
    let v = verify_json(&[obj.to_str().unwrap()], true);
    let p = by_name(&v, "bpfld_xdp");
    let comps = p["components"].as_array().unwrap();
    let total = p["insns"].as_u64().unwrap();
    let sum: u64 = comps
        .iter()
        .map(|c| c["static_insns"].as_u64().unwrap())
        .sum();
    assert!(
        comps
            .iter()
            .all(|c| c["static_insns"].as_u64().unwrap() > 10),
        "{p}"
    );
    assert!(sum < total, "the dispatcher's own code is nobody's: {p}");
    assert!(p["components_note"].as_str().unwrap().contains("static"));
    // The optimisation pass's counts, per component, from the link report
    // the composition carries (none for called components above).
    for c in comps {
        let o = &c["optimized"];
        let (before, after) = (o["before"].as_u64().unwrap(), o["after"].as_u64().unwrap());
        assert!(after <= before && after > 0, "{c}");
    }
    let (plain, _) = composed("verify-plain", &["--no-optimize"]);
    let v = verify_json(&[plain.to_str().unwrap()], true);
    let plain_comps = by_name(&v, "bpfld_xdp")["components"]
        .as_array()
        .unwrap()
        .clone();
    assert!(plain_comps.iter().all(|c| c["optimized"].is_null()), "{v}");
    let text = ok(&["verify", obj.to_str().unwrap()]);
    assert!(text.contains("optimised"), "{text}");
    assert!(
        text.contains("bpfld_xdp: instructions per component"),
        "{text}"
    );
    assert!(text.contains("(rest)"), "{text}");
    // An inlined component whose object is gone cannot be told apart.
    let d = tmpdir("verify-gone");
    let mark = d.join("comp_mark.o");
    std::fs::copy(fixture("comp_mark.o"), &mark).unwrap();
    let out = d.join("composed.o");
    let count = fx("comp_count.o") + ":xdp_count";
    ok(&[
        "xdp",
        "compose",
        "-o",
        out.to_str().unwrap(),
        &count,
        mark.to_str().unwrap(),
    ]);
    std::fs::remove_file(&mark).unwrap();
    let v = verify_json(&[out.to_str().unwrap()], true);
    let comps = by_name(&v, "bpfld_xdp")["components"]
        .as_array()
        .unwrap()
        .clone();
    assert!(comps[0]["static_insns"].as_u64().unwrap() > 10, "{v}");
    assert_eq!(comps[1]["static_insns"], Value::Null, "{v}");
    assert_eq!(comps[1]["verified_insns"], Value::Null, "{v}");
    // A plain object has no components.
    let v = verify_json(&[&fx("comp_count.o")], true);
    assert!(v[0].get("components").is_none());
}

/// tools/corpus-run linked with a libbpf that appends exception callbacks
/// (1.3 and later; Debian 12's is 1.1): `$BPFLD_LIBBPF_DIR`, or the one
/// scripts/corpus.sh builds from the kernel's tree (`include/`,
/// `lib/libbpf.a`), or `None` (said loudly).
fn corpus_runner_libbpf_1_3(test: &str) -> Option<std::path::PathBuf> {
    if !have_tool("gcc", test) {
        return None;
    }
    let dir = std::env::var_os("BPFLD_LIBBPF_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let mut found: Vec<_> = std::fs::read_dir("/var/cache/bpfld-corpus")
                .ok()?
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("libbpf-"))
                        && p.join(".complete").exists()
                })
                .collect();
            found.sort();
            found.pop()
        });
    let Some(dir) = dir else {
        eprintln!(
            "SKIP {test}: no libbpf 1.3 or later (set BPFLD_LIBBPF_DIR, or run scripts/corpus.sh once)"
        );
        return None;
    };
    corpus_runner(test, Some(&dir))
}

#[test]
fn exception_callbacks_are_appended_as_libbpf_appends_them() {
    let test = "exception_callbacks_are_appended_as_libbpf_appends_them";
    if !bpf_allowed(test) {
        return;
    }
    // Nothing calls the callback: without it in the program's code and
    // func_info the kernel refuses the program.
    let v = verify_json(&[&fx("run_exception.o")], true);
    let p = by_name(&v, "exc_throw_on_ee");
    assert_eq!(p["verdict"], "success", "{p}");
    // Each function once: the program (9 instructions), first_byte (10),
    // exc_base (5), exc_callback (2); exc_base, which the program calls
    // too, is not copied again for the callback, as libbpf links it.
    assert_eq!(p["insns"], 9 + 10 + 5 + 2, "{p}");
    let Some(runner) = corpus_runner_libbpf_1_3(test) else {
        return;
    };
    let reference = libbpf_verified(&runner, &fx("run_exception.o"));
    assert_eq!(reference.len(), 1, "{reference:?}");
    let (name, n) = &reference[0];
    assert_eq!(name, "exc_throw_on_ee");
    assert_eq!(p["verified_insns"].as_u64(), *n, "libbpf's: {n:?}");
}
