//! `bpfld link --resolve EXTERN=FILE:FUNCTION`: a dispatcher's extern slots
//! filled by functions of component objects, whatever they are called,
//! including entry programs libbpf refuses to call. Each link is loaded by
//! libbpf and by aya and run in the kernel; verdicts and maps are asserted.

mod common;
use common::*;

use std::path::{Path, PathBuf};

fn link_resolved(tag: &str, resolves: &[&str], extra: &[&str]) -> (PathBuf, String) {
    let dir = tmpdir(tag);
    let out = dir.join("out.o");
    let mut args: Vec<String> = vec!["link".into(), "-o".into(), out.to_str().unwrap().into()];
    args.push(fixture("res_dispatcher.o").to_str().unwrap().into());
    for r in resolves {
        let (ext, rest) = r.split_once('=').unwrap();
        args.push("--resolve".into());
        args.push(format!("{ext}={}", fixture(rest).to_str().unwrap()));
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&args);
    assert!(o.status.success(), "bpfld {args:?}: {}", stderr(&o));
    (out, stdout(&o))
}

fn map_value(maps: &serde_json::Value, name: &str) -> u64 {
    let hex = maps[name][0]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("map {name} missing or empty in {maps}"));
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let mut le = [0u8; 8];
    le[..bytes.len().min(8)].copy_from_slice(&bytes[..bytes.len().min(8)]);
    u64::from_le_bytes(le)
}

/// Runs the dispatcher with aya and with libbpf; both must agree.
fn verdict(obj: &Path) -> (i64, serde_json::Value) {
    let (ret, maps) = run_prog(obj, "res_dispatch");
    if kernel_available() {
        assert_eq!(
            run_libbpf(obj, "res_dispatch"),
            ret,
            "libbpf and aya disagree"
        );
    }
    (ret, maps)
}

#[test]
fn slots_filled_by_entry_programs_and_text_functions() {
    // slot0 = comp_count's XDP program, slot1 = comp_mark's XDP program,
    // slot2 = comp_mark's .text function: one comp_mark instance for both.
    let (out, _) = link_resolved(
        "three",
        &[
            "slot0=comp_count.o:xdp_count",
            "slot1=comp_mark.o:xdp_mark",
            "slot2=comp_mark.o:mark_verdict",
        ],
        &[],
    );
    let (ret, maps) = verdict(&out);
    assert_eq!(ret, 2 * 100 + 3 * 10 + 1, "XDP_PASS, XDP_TX, XDP_DROP");
    // Same-named maps stay apart: the dispatcher's, comp_count's, and the
    // one comp_mark instance's (bumped by 10 and by 100).
    assert_eq!(map_value(&maps, "counter"), 1);
    assert_eq!(map_value(&maps, "counter__slot0"), 1);
    assert_eq!(map_value(&maps, "counter__slot1"), 110);
    // comp_count's global `seen` (.bss) and `const volatile step`
    // (.rodata) came along; nothing else is in the object.
    assert_eq!(map_value(&maps, ".bss"), 1, "seen__slot0");
    assert_eq!(map_value(&maps, ".rodata"), 1, "step__slot0");
    let mut names: Vec<&String> = maps.as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(
        names,
        [
            ".bss",
            ".rodata",
            "counter",
            "counter__slot0",
            "counter__slot1"
        ]
    );
}

#[test]
fn components_keep_only_what_the_function_needs() {
    let (out, _) = link_resolved(
        "pull",
        &[
            "slot0=comp_count.o:xdp_count",
            "slot1=comp_mark.o:xdp_mark",
            "slot2=comp_mark.o:xdp_mark",
        ],
        // Calls, so the pulled-in functions stay visible as functions.
        &["--no-inline"],
    );
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", "--json", out.to_str().unwrap()])).unwrap();
    let progs: Vec<&str> = v["programs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        progs,
        ["res_dispatch"],
        "components' entry programs must not appear"
    );
    let funcs: Vec<(&str, &str)> = v["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["section"].as_str().unwrap()))
        .collect();
    assert!(
        funcs.contains(&("slot0", ".text")) && funcs.contains(&("slot1", ".text")),
        "{funcs:?}"
    );
    let names: Vec<&str> = funcs.iter().map(|f| f.0).collect();
    for absent in [
        "xdp_count_other",
        "xdp_count_other__slot0",
        "mark_verdict",
        "mark_verdict__slot1",
        "slot2",
    ] {
        assert!(!names.contains(&absent), "{absent} pulled in: {names:?}");
    }
    // comp_mark's unused .text function and its callee bump stay out:
    // bump is still needed by xdp_mark, mark_verdict is not.
    assert!(names.contains(&"bump"), "{names:?}");
    let (ret, maps) = verdict(&out);
    assert_eq!(ret, 233);
    assert_eq!(
        map_value(&maps, "counter__slot1"),
        20,
        "slot1 and slot2 share one instance"
    );
}

#[test]
fn separate_instances_of_one_file_have_their_own_maps() {
    let (out, _) = link_resolved(
        "inst",
        &[
            "slot0=comp_count.o:xdp_count",
            "slot1=comp_mark.o:xdp_mark",
            "slot2=comp_mark.o#second:mark_verdict",
        ],
        &[],
    );
    let (ret, maps) = verdict(&out);
    assert_eq!(ret, 231);
    assert_eq!(map_value(&maps, "counter__slot1"), 10);
    assert_eq!(map_value(&maps, "counter__slot2"), 100);
}

#[test]
fn maps_pinned_by_name_and_shared_maps_stay_one() {
    let (out, _) = link_resolved(
        "pinned",
        &[
            "slot0=comp_pinned.o:xdp_pinned",
            "slot1=comp_pinned.o#b:xdp_pinned",
            "slot2=comp_count.o:xdp_count",
        ],
        &[],
    );
    let (ret, maps) = verdict(&out);
    assert_eq!(ret, 222);
    assert_eq!(
        map_value(&maps, "pinned_hits"),
        2,
        "both instances use the one pinned map"
    );

    // --share counter: the dispatcher's and every component's `counter`
    // are one map: 1 (dispatcher) + 1 (comp_count) + 10 + 100 (comp_mark).
    let (out, _) = link_resolved(
        "share",
        &[
            "slot0=comp_count.o:xdp_count",
            "slot1=comp_mark.o:xdp_mark",
            "slot2=comp_mark.o:mark_verdict",
        ],
        &["--share", "counter"],
    );
    let (_, maps) = verdict(&out);
    assert_eq!(map_value(&maps, "counter"), 112, "{maps}");
    assert!(maps.get("counter__slot0").is_none(), "{maps}");
}

#[test]
fn link_report_names_everything_pulled_in() {
    let (out, printed) = link_resolved(
        "report",
        &[
            "slot0=comp_count.o:xdp_count",
            "slot1=comp_mark.o:xdp_mark",
            "slot2=comp_mark.o:mark_verdict",
        ],
        &["--print-map"],
    );
    for line in [
        "slot0 = ",
        "comp_count.o:xdp_count",
        "slot2 = ",
        "comp_mark.o:mark_verdict",
        "map counter -> counter__slot0",
        "global seen -> seen__slot0",
        "map counter -> counter__slot1",
        "instructions pulled in",
    ] {
        assert!(printed.contains(line), "{line:?} missing from:\n{printed}");
    }
    let text = ok(&["inspect", out.to_str().unwrap()]);
    assert!(
        text.contains("link map:") && text.contains("counter -> counter__slot0"),
        "{text}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", "--json", out.to_str().unwrap()])).unwrap();
    let comps = v["link_map"]["components"].as_array().unwrap();
    assert_eq!(comps.len(), 2);
    // The vocabulary of `link --json`.
    assert!(comps[0]["insns"].as_u64().unwrap() > 10);
    assert_eq!(comps[0]["instance"], "slot0");
    assert_eq!(comps[1]["resolves"][1]["function"], "mark_verdict");
}

#[test]
fn deterministic_and_a_fixed_point() {
    let r = [
        "slot0=comp_count.o:xdp_count",
        "slot1=comp_mark.o:xdp_mark",
        "slot2=comp_mark.o:mark_verdict",
    ];
    let (a, _) = link_resolved("det-a", &r, &[]);
    let (b, _) = link_resolved("det-b", &r, &[]);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let c = a.with_file_name("c.o");
    let d = a.with_file_name("d.o");
    assert!(
        run(&["link", "-o", c.to_str().unwrap(), a.to_str().unwrap()])
            .status
            .success()
    );
    assert!(
        run(&["link", "-o", d.to_str().unwrap(), c.to_str().unwrap()])
            .status
            .success()
    );
    assert_eq!(std::fs::read(&c).unwrap(), std::fs::read(&d).unwrap());
    // The relinked object still computes the same.
    assert_eq!(verdict(&c).0, 231);
}

fn resolve_err(resolves: &[&str]) -> String {
    let dir = tmpdir("rerr");
    let out = dir.join("out.o");
    let mut args: Vec<String> = vec!["link".into(), "-o".into(), out.to_str().unwrap().into()];
    args.push(fixture("res_dispatcher.o").to_str().unwrap().into());
    for r in resolves {
        args.push("--resolve".into());
        args.push(r.replace("FX/", &format!("{}/", fixtures_dir().to_str().unwrap())));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&args);
    assert_eq!(o.status.code(), Some(1), "{args:?} should fail");
    assert!(!out.exists(), "a failed link wrote {out:?}");
    stderr(&o)
}

#[test]
fn errors_name_what_is_wrong() {
    let e = resolve_err(&["slot0=FX/comp_badproto.o:wrong_shape"]);
    assert!(
        e.contains("slot0")
            && e.contains("int slot0(struct xdp_md *)")
            && e.contains("int wrong_shape(struct xdp_md *ctx, __u64 extra)"),
        "{e}"
    );
    let e = resolve_err(&["slot0=FX/comp_count.o:nope"]);
    assert!(
        e.contains("no function 'nope'") && e.contains("xdp_count, xdp_count_other"),
        "{e}"
    );
    let e = resolve_err(&["slotX=FX/comp_count.o:xdp_count"]);
    assert!(
        e.contains("'slotX'") && e.contains("slot0, slot1, slot2"),
        "{e}"
    );
    let e = resolve_err(&["slot0=FX/comp_count.o:xdp_count"]);
    assert!(
        e.contains("unresolved") && e.contains("'slot1'") && e.contains("'slot2'"),
        "{e}"
    );
    let e = resolve_err(&["slot0=FX/damaged/not_bpf_x86_64.o:main"]);
    assert!(e.contains("not a BPF object"), "{e}");
    let e = resolve_err(&["slot0"]);
    assert!(e.contains("EXTERN=FILE:FUNCTION"), "{e}");
}

#[test]
fn verifier_processed_instructions_are_reported() {
    let (out, _) = link_resolved(
        "verifier",
        &[
            "slot0=comp_count.o:xdp_count",
            "slot1=comp_mark.o:xdp_mark",
            "slot2=comp_mark.o:mark_verdict",
        ],
        &[],
    );
    let o = run(&["run", out.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let processed = v["verified_insns"]
        .as_u64()
        .expect("the kernel reports verified_insns");
    // Every instruction of the dispatcher and of the three slots is on
    // some path: the count covers at least the code pulled in.
    let insp: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", "--json", out.to_str().unwrap()])).unwrap();
    let total: u64 = insp["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["insns"].as_u64().unwrap())
        .sum();
    eprintln!("composed dispatcher: {total} instructions, verifier processed {processed}");
    assert!(
        processed >= total / 2,
        "{processed} processed for {total} instructions"
    );
    let text = ok(&["run", out.to_str().unwrap()]);
    assert!(
        text.contains(&format!("verifier: {processed} instructions processed")),
        "{text}"
    );
}

/// A slot filled by a function whose code carries local labels: inlined at
/// every call, its copy goes (the labels do not keep it alive).
#[test]
fn inlined_slot_with_labels_leaves_no_copy() {
    let (out, _) = link_resolved(
        "labels",
        &[
            "slot0=comp_labels.o:xdp_labels",
            "slot1=comp_labels.o:xdp_labels",
            "slot2=comp_labels.o:xdp_labels",
        ],
        &[],
    );
    let o = bpfld::Object::read_file(&out).unwrap();
    let funcs: Vec<&str> = o
        .symbols
        .iter()
        .filter(|s| s.kind == bpfld::model::object::SymbolKind::Func)
        .map(|s| s.name.as_str())
        .collect();
    assert!(!funcs.contains(&"slot0"), "dead copy kept: {funcs:?}");
    assert!(
        !o.symbols.iter().any(|s| s.name == "comp_labels_short"),
        "label of the dead copy kept"
    );
    // Each slot returns XDP_TX: 3 * 100 + 3 * 10 + 3.
    let (ret, _) = verdict(&out);
    assert_eq!(ret, 333);
}

/// slot0's function calls its extern slot2, which another component
/// fills: both are inlined, the inner one inside the outer one's copy,
/// and the outer one's stack buffer must survive the inner one (7 from
/// slot0 when it does, 3 from xdp_mark, 2 from nest_inner), whichever
/// resolve comes first, and as called.
#[test]
fn a_resolved_function_calling_another_keeps_its_stack_inlined() {
    let outer = "slot0=res_nest_outer.o:nest_outer";
    let inner = "slot2=res_nest_inner.o:nest_inner";
    let mark = "slot1=comp_mark.o:xdp_mark";
    for (tag, resolves, extra) in [
        ("nest-outer-first", [outer, inner, mark], &[][..]),
        ("nest-inner-first", [inner, outer, mark], &[][..]),
        ("nest-plain", [outer, inner, mark], &["--no-optimize"][..]),
        ("nest-called", [outer, inner, mark], &["--no-inline"][..]),
    ] {
        let (out, report) = link_resolved(tag, &resolves, &[&["--print-map"], extra].concat());
        if !extra.contains(&"--no-inline") {
            assert!(
                report.contains("inlined slot0 into res_dispatch"),
                "{tag}: {report}"
            );
        }
        let (ret, _) = verdict(&out);
        assert_eq!(ret, 732, "{tag}");
    }
}

#[test]
fn link_json_reports_inputs_resolves_renames_and_inlining() {
    let (out, printed) = link_resolved(
        "json",
        &[
            "slot0=comp_count.o:xdp_count",
            "slot1=comp_tail.o:xdp_tail",
            "slot2=comp_count.o#b:xdp_count",
        ],
        &["--json"],
    );
    let v: serde_json::Value =
        serde_json::from_str(&printed).unwrap_or_else(|e| panic!("not JSON ({e}): {printed}"));
    assert_eq!(v["output"], out.to_str().unwrap());
    assert_eq!(v["relocatable"], false);
    assert_eq!(
        v["inputs"],
        serde_json::json!([{"index": 0, "file": fixture("res_dispatcher.o").to_str().unwrap()}])
    );
    let comps = v["components"].as_array().unwrap();
    assert_eq!(comps.len(), 3, "{v}");
    let count = fixture("comp_count.o").to_str().unwrap().to_string();
    assert_eq!(comps[0]["file"], count.as_str());
    assert_eq!(comps[0]["instance"], "slot0");
    assert_eq!(
        comps[0]["resolves"],
        serde_json::json!([{"extern": "slot0", "function": "xdp_count"}])
    );
    assert!(comps[0]["insns"].as_u64().unwrap() > 10);
    let renames = comps[0]["renames"].as_array().unwrap();
    for (kind, from, to) in [
        ("map", "counter", "counter__slot0"),
        ("global", "seen", "seen__slot0"),
    ] {
        assert!(
            renames.contains(&serde_json::json!({"kind": kind, "from": from, "to": to})),
            "{kind} {from} -> {to} missing from {renames:?}"
        );
    }
    assert_eq!(
        comps[0]["inlined"],
        serde_json::json!([{"function": "slot0", "into": ["res_dispatch"]}])
    );
    assert_eq!(comps[0]["called"], serde_json::json!([]));
    // A tail-calling function stays a call, and the report says why.
    assert_eq!(comps[1]["inlined"], serde_json::json!([]));
    assert_eq!(comps[1]["called"][0]["function"], "slot1");
    assert!(comps[1]["called"][0]["because"]
        .as_str()
        .unwrap()
        .contains("tail call"));
    // FILE#TAG: its own instance, its own maps.
    assert_eq!(comps[2]["file"], format!("{count}#b"));
    assert_eq!(comps[2]["instance"], "slot2");
    assert!(comps[2]["renames"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!({"kind": "map", "from": "counter", "to": "counter__slot2"})));
    // The output's program: its maps are the dispatcher's and each
    // instance's own, each counted once.
    let progs = v["programs"].as_array().unwrap();
    assert_eq!(progs.len(), 1, "{v}");
    assert_eq!(progs[0]["program"], "res_dispatch");
    let maps: Vec<&str> = progs[0]["maps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    for m in ["counter", "counter__slot0", "counter__slot2"] {
        assert_eq!(maps.iter().filter(|x| **x == m).count(), 1, "{m}: {maps:?}");
    }
    assert_eq!(v["warnings"], serde_json::json!([]));
}

#[test]
fn warnings_go_to_stderr_and_json_stdout_stays_json() {
    // GCC's BTF gives a warning when read; stdout is still one JSON
    // object, which lists the warning too.
    let out = tmpdir("json-warn").join("out.o");
    let input = fixture("gcc/tracing.o");
    let o = run(&[
        "link",
        "-o",
        out.to_str().unwrap(),
        input.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with("bpfld: warning: ") && err.contains("FWD 'pt_regs'"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(&o)));
    let warnings = v["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{v}");
    let w = warnings[0].as_str().unwrap();
    assert!(
        w.starts_with(&format!("{}: ", input.display())) && w.contains("FWD 'pt_regs'"),
        "{w}"
    );
    assert!(!stdout(&o).contains("bpfld: warning"));
    // The same warning on the text path: stderr only.
    let o = run(&[
        "link",
        "-o",
        out.to_str().unwrap(),
        input.to_str().unwrap(),
        "--print-map",
    ]);
    assert!(o.status.success());
    assert!(stderr(&o).contains("bpfld: warning: "));
    assert!(!stdout(&o).contains("warning"), "{}", stdout(&o));
}
