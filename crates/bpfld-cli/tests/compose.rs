//! `bpfld xdp compose`: XDP programs run in priority order with libxdp's
//! chain-call semantics, as one program (no freplace). Every composition is
//! loaded by libbpf and by aya and run; verdicts and maps are asserted.

mod common;
use common::*;

use std::path::PathBuf;

/// `bpfld xdp compose -o DIR/composed.o FIXTURES/COMPONENT...`.
fn compose_run(tag: &str, components: &[&str]) -> (PathBuf, std::process::Output) {
    let out = tmpdir(tag).join("composed.o");
    let mut args: Vec<String> = vec!["xdp".into(), "compose".into(), "-o".into()];
    args.push(out.to_str().unwrap().into());
    for c in components {
        if c.starts_with("--") {
            args.push(c.to_string());
        } else {
            args.push(format!("{}/{c}", fixtures_dir().to_str().unwrap()));
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    (out, run(&args))
}

fn compose(tag: &str, components: &[&str]) -> (PathBuf, String) {
    let (out, o) = compose_run(tag, components);
    assert!(
        o.status.success(),
        "bpfld xdp compose {components:?}: {}",
        stderr(&o)
    );
    (out, stdout(&o))
}

fn compose_err(components: &[&str]) -> String {
    let (out, o) = compose_run("cerr", components);
    assert_eq!(o.status.code(), Some(1), "{components:?} should fail");
    assert!(!out.exists());
    stderr(&o)
}

/// Runs the dispatcher with aya (bpfld run) and libbpf (bpftool prog run);
/// both must agree. Returns the verdict and the maps after one run.
fn dispatch(obj: &std::path::Path) -> (i64, serde_json::Value) {
    let (ret, maps) = run_prog(obj, "bpfld_xdp");
    if kernel_available() {
        assert_eq!(run_libbpf(obj, "bpfld_xdp"), ret, "libbpf and aya disagree");
    }
    (ret, maps)
}

/// The little-endian u64 of a global variable after a run, found through
/// BTF: the data section (map) holding it and its offset there. A
/// component's writable globals live in a map of its own, `.data.compN`.
fn global_u64(obj: &std::path::Path, maps: &serde_json::Value, var: &str) -> u64 {
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", "--json", obj.to_str().unwrap()])).unwrap();
    let (sec, off) = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|d| {
            let x = d["variables"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["name"] == var)?;
            Some((
                d["name"].as_str().unwrap().to_string(),
                x["offset"].as_u64().unwrap() as usize,
            ))
        })
        .unwrap_or_else(|| panic!("no {var} in {}", v["data"]));
    let slot = var.rsplit("__").next().unwrap();
    assert_eq!(
        sec,
        format!(".data.{slot}"),
        "{var}: its instance's own map"
    );
    let hex = maps[&sec][0]["value"].as_str().unwrap();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    u64::from_le_bytes(bytes[off..off + 8].try_into().unwrap())
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
fn priority_metadata_orders_and_chain_sets_stop() {
    // rc_first (priority 10, chains on PASS and DROP) passes, rc_second
    // (priority 20, chains on PASS only) drops: the chain stops there, so
    // rc_default and comp_count (priority 50) never run.
    let (out, printed) = compose(
        "prio",
        &[
            "xdp_run_config.o:rc_default",
            "comp_count.o:xdp_count",
            "xdp_run_config.o:rc_second",
            "xdp_run_config.o:rc_first",
        ],
    );
    let order: Vec<&str> = printed.lines().collect();
    assert!(
        order[0].contains("rc_first priority 10 chain XDP_DROP,XDP_PASS"),
        "{printed}"
    );
    assert!(
        order[1].contains("rc_second priority 20 chain XDP_PASS"),
        "{printed}"
    );
    assert!(
        order[2].contains("rc_default priority 50") && order[3].contains("xdp_count priority 50"),
        "{printed}"
    );
    let (ret, maps) = dispatch(&out);
    assert_eq!(ret, 1, "XDP_DROP from rc_second");
    assert_eq!(
        map_u64(&maps, "counter__comp3"),
        0,
        "comp_count must not have run"
    );
}

#[test]
fn command_line_overrides_priority_and_chain() {
    // rc_second now continues on XDP_DROP too, so the whole chain runs and
    // ends in XDP_PASS; comp_count, moved first, counts.
    let (out, printed) = compose(
        "override",
        &[
            "xdp_run_config.o:rc_first",
            "xdp_run_config.o:rc_second,chain=XDP_PASS+DROP",
            "comp_count.o:xdp_count,priority=1",
        ],
    );
    assert!(
        printed
            .lines()
            .next()
            .unwrap()
            .contains("xdp_count priority 1"),
        "{printed}"
    );
    let (ret, maps) = dispatch(&out);
    assert_eq!(ret, 2, "every component continued: XDP_PASS");
    assert_eq!(map_u64(&maps, "counter__comp0"), 1);
    assert_eq!(global_u64(&out, &maps, "seen__comp0"), 1);

    // chain=none: nothing after it runs (and it is reported).
    let (out, o) = compose_run(
        "none",
        &[
            "comp_mark.o:xdp_mark,chain=none,priority=40",
            "comp_count.o:xdp_count",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // A warning, so on standard error only.
    let warned = stderr(&o);
    assert!(
        warned.starts_with("bpfld: warning: left out: ")
            && warned.contains("comp_count.o:xdp_count"),
        "{warned}"
    );
    assert!(!stdout(&o).contains("left out"), "{}", stdout(&o));
    let (ret, _) = dispatch(&out);
    assert_eq!(ret, 3, "XDP_TX from comp_mark");
}

#[test]
fn the_same_file_twice_is_two_instances() {
    let (out, _) = compose("dup", &["comp_count.o:xdp_count", "comp_count.o:xdp_count"]);
    let (ret, maps) = dispatch(&out);
    assert_eq!(ret, 2);
    assert_eq!(map_u64(&maps, "counter__comp0"), 1);
    assert_eq!(map_u64(&maps, "counter__comp1"), 1);
    assert_eq!(global_u64(&out, &maps, "seen__comp0"), 1);
    assert_eq!(global_u64(&out, &maps, "seen__comp1"), 1);
}

#[test]
fn each_instance_has_its_own_data_map() {
    // comp_data counts in .data, .data.custom, .bss and a static .bss
    // variable: one map per instance holds them all, with their initial
    // values, and nothing else (comp_count's `seen` is in its own map).
    let (out, _) = compose(
        "owndata",
        &[
            "comp_data.o,priority=40",
            "comp_count.o:xdp_count,priority=45",
            "comp_data.o",
        ],
    );
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", "--json", out.to_str().unwrap()])).unwrap();
    let mut sections: Vec<String> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect();
    sections.sort();
    assert_eq!(
        sections,
        [".data.comp0", ".data.comp1", ".data.comp2", ".rodata"],
        "no shared .data or .bss"
    );
    let (ret, maps) = dispatch(&out);
    assert_eq!(ret, 2);
    for slot in ["comp0", "comp2"] {
        assert_eq!(global_u64(&out, &maps, &format!("hits__{slot}")), 1001);
        assert_eq!(global_u64(&out, &maps, &format!("custom_hits__{slot}")), 8);
        assert_eq!(global_u64(&out, &maps, &format!("zeroed__{slot}")), 1);
        // The static `runs` keeps its name; it is the last u64 of the map.
        let hex = maps[&format!(".data.{slot}")][0]["value"].as_str().unwrap();
        assert_eq!(hex.len(), 64, "four u64");
        assert_eq!(&hex[48..], "0100000000000000", "runs");
    }
    assert_eq!(global_u64(&out, &maps, "seen__comp1"), 1);
}

#[test]
fn sixty_four_components() {
    let parts = vec!["comp_tally.o"; 64];
    let (out, printed) = compose("64", &parts);
    assert_eq!(
        printed.lines().filter(|l| l.starts_with("comp")).count(),
        64
    );
    let (ret, maps) = dispatch(&out);
    assert_eq!(ret, 2);
    for n in 0..64 {
        assert_eq!(
            global_u64(&out, &maps, &format!("tally__comp{n}")),
            1,
            "component {n} ran once"
        );
    }
}

#[test]
fn frags_only_when_every_component_is_frags_capable() {
    let (out, printed) = compose(
        "frags",
        &["comp_frags.o:xdp_frags_pass", "comp_frags.o:xdp_frags_tx"],
    );
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", "--json", out.to_str().unwrap()])).unwrap();
    assert_eq!(v["programs"][0]["section"], "xdp.frags");
    assert!(
        printed.contains("xdp.frags: every component takes multi-buffer packets"),
        "{printed}"
    );
    assert_eq!(dispatch(&out).0, 3, "PASS then TX");
    let (out, printed) = compose("nofrags", &["comp_frags.o:xdp_frags_pass", "xdp_pass.o"]);
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", "--json", out.to_str().unwrap()])).unwrap();
    assert_eq!(v["programs"][0]["section"], "xdp");
    // Said, naming the component that keeps it from frags.
    let note = printed
        .lines()
        .find(|l| l.starts_with("not xdp.frags: "))
        .unwrap_or_else(|| panic!("{printed}"));
    assert!(
        note.ends_with("/xdp_pass.o:xdp_pass cannot take multi-buffer packets, so the composition cannot (it needs a device MTU that fits one page)")
            && !note.contains("comp_frags"),
        "{note}"
    );
    // Nothing frags-capable: nothing to say.
    let (_, printed) = compose("nofrags2", &["xdp_pass.o"]);
    assert!(!printed.contains("frags"), "{printed}");
}

#[test]
fn manifest_travels_in_btf() {
    let (out, _) = compose(
        "manifest",
        &[
            "xdp_run_config.o:rc_first",
            "comp_count.o:xdp_count,chain=PASS+TX",
        ],
    );
    let dump = ok(&["btf", "dump", out.to_str().unwrap()]);
    assert!(
        dump.contains("DATASEC '.bpfld.xdp.0 slot=comp0 prog=rc_first file=")
            && dump.contains("priority=10 chain=XDP_DROP,XDP_PASS'"),
        "{dump}"
    );
    assert!(
        dump.contains("prog=xdp_count") && dump.contains("chain=XDP_PASS,XDP_TX'"),
        "{dump}"
    );
    // It survives the kernel: the loaded program's BTF carries it.
    if kernel_available() {
        let pin = format!("/sys/fs/bpf/bpfld-manifest-{}", std::process::id());
        let _ = std::fs::remove_dir_all(&pin);
        let o = tool_output("bpftool", &["prog", "loadall", out.to_str().unwrap(), &pin]);
        assert!(o.status.success(), "{}", stderr(&o));
        let info = tool_output(
            "bpftool",
            &["-j", "prog", "show", "pinned", &format!("{pin}/bpfld_xdp")],
        );
        let _ = std::fs::remove_dir_all(&pin);
        let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        let btf_id = v["btf_id"]
            .as_u64()
            .expect("the program has BTF")
            .to_string();
        let kernel = tool_output("bpftool", &["btf", "dump", "id", &btf_id]);
        assert!(
            stdout(&kernel).contains(".bpfld.xdp.1 slot=comp1 prog=xdp_count"),
            "{}",
            stdout(&kernel)
        );
    }
}

#[test]
fn errors() {
    let e = compose_err(&["xdp_run_config.o"]);
    assert!(
        e.contains("several XDP programs") && e.contains("rc_first, rc_second, rc_default"),
        "{e}"
    );
    let e = compose_err(&["xdp_run_config.o:nope"]);
    assert!(e.contains("no XDP program 'nope'"), "{e}");
    let e = compose_err(&["comp_count.o:xdp_count,chain=XDP_MAYBE"]);
    let e2 = compose_err(&["comp_count.o"]);
    assert!(
        e2.contains("xdp_count, xdp_count_other") && e2.contains(":PROGRAM"),
        "{e2}"
    );
    assert!(e.contains("'XDP_MAYBE' is not an XDP action"), "{e}");
    let e = compose_err(&["comp_count.o:xdp_count,colour=red"]);
    assert!(e.contains("unknown option 'colour=red'"), "{e}");
    let e = compose_err(&["tracing.o"]);
    assert!(e.contains("has no XDP program"), "{e}");
}

#[test]
fn deterministic() {
    let parts = [
        "xdp_run_config.o:rc_first",
        "comp_count.o:xdp_count",
        "comp_mark.o:xdp_mark",
    ];
    let (a, _) = compose("det-a", &parts);
    let (b, _) = compose("det-b", &parts);
    assert_eq!(std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
}

/// The names of an object's functions, from `bpfld inspect --json`.
fn functions(obj: &std::path::Path) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", "--json", obj.to_str().unwrap()])).unwrap();
    v["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn components_are_inlined_unless_asked_not_to() {
    let parts = ["comp_count.o:xdp_count", "comp_mark.o", "xdp_pass.o"];
    let (inlined, _) = compose("inl", &parts);
    let mut args = vec!["--print-map", "--no-inline"];
    args.extend(parts);
    let (called, printed) = compose("noinl", &args);
    assert!(!printed.contains("inlined"), "{printed}");
    // Inlined: no component is a function any more (their own static
    // helpers, still called from the inlined bodies, are).
    let f = functions(&inlined);
    assert!(
        f.iter().all(|n| !n.starts_with("comp")) && f.contains(&"bump".to_string()),
        "{f:?}"
    );
    let f = functions(&called);
    for n in ["comp0", "comp1", "comp2"] {
        assert!(f.contains(&n.to_string()), "--no-inline lost {n}: {f:?}");
    }
    // Same meaning through libbpf and aya, either way.
    let (a, ma) = dispatch(&inlined);
    let (b, mb) = dispatch(&called);
    assert_eq!((a, &ma), (b, &mb));
    let (_, printed) = compose("inlmap", &["--print-map", parts[0], parts[1], parts[2]]);
    for n in ["comp0", "comp1", "comp2"] {
        assert!(
            printed.contains(&format!("inlined {n} into bpfld_xdp")),
            "{printed}"
        );
    }
}

#[test]
fn a_tail_calling_component_is_called_and_the_report_says_why() {
    let (out, printed) = compose(
        "tailc",
        &["--print-map", "comp_tail.o,priority=40", "xdp_pass.o"],
    );
    assert!(
        printed.contains("called comp0 (not inlined: it makes a tail call"),
        "{printed}"
    );
    assert!(
        printed.contains("inlined comp1 into bpfld_xdp"),
        "{printed}"
    );
    assert!(functions(&out).contains(&"comp0".to_string()));
    // The empty prog array makes the tail call fall through: XDP_PASS.
    assert_eq!(dispatch(&out).0, 2);
}

/// The kernel keeps the line info of inlined bodies: libbpf loads the
/// composition and `bpftool prog dump xlated linum` shows each component's
/// own source lines inside `bpfld_xdp`, and the dispatcher's line for
/// each component where its body starts.
#[test]
fn inlined_bodies_keep_their_source_lines_in_the_kernel() {
    if !kernel_available() || !bpf_allowed("inlined line info") {
        return;
    }
    // Unoptimised, every line survives; optimised, an instruction that
    // goes takes its line with it (the dispatcher's stay, see below).
    let (out, _) = compose(
        "linum",
        &["--no-optimize", "comp_parse.o", "comp_count.o:xdp_count"],
    );
    let text = xlated_linum(&out);
    for needle in [
        "call comp0: ",
        "comp_parse.c",
        "int xdp_parse(struct xdp_md *ctx)",
        "call comp1: ",
        "comp_count.c",
        "seen += 1;",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    let (out, _) = compose("linum-opt", &["comp_parse.o", "comp_count.o:xdp_count"]);
    let text = xlated_linum(&out);
    for needle in [
        "call comp0: ",
        "comp_parse.c",
        "call comp1: ",
        "comp_count.c",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
}

/// `bpftool prog dump xlated linum` of a composition's `bpfld_xdp`.
fn xlated_linum(out: &std::path::Path) -> String {
    let pin = format!("/sys/fs/bpf/bpfld-linum-{}", std::process::id());
    let _ = std::fs::remove_dir_all(&pin);
    let o = tool_output("bpftool", &["prog", "loadall", out.to_str().unwrap(), &pin]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dump = tool_output(
        "bpftool",
        &[
            "prog",
            "dump",
            "xlated",
            "pinned",
            &format!("{pin}/bpfld_xdp"),
            "linum",
        ],
    );
    let _ = std::fs::remove_dir_all(&pin);
    stdout(&dump)
}

/// The names of an object's FUNC and local NOTYPE (label) symbols.
fn funcs_and_labels(obj: &std::path::Path) -> (Vec<String>, Vec<String>) {
    use bpfld::model::object::{Binding, SymbolKind};
    let o = bpfld::Object::read_file(obj).unwrap();
    let pick = |k: SymbolKind| -> Vec<String> {
        o.symbols
            .iter()
            .filter(|s| s.id.0 != 0 && s.kind == k)
            .filter(|s| k == SymbolKind::Func || s.binding == Binding::Local)
            .map(|s| s.name.clone())
            .collect()
    };
    (pick(SymbolKind::Func), pick(SymbolKind::NoType))
}

/// A component whose code carries local labels (comp_labels' inline-asm
/// label): once inlined into the dispatcher, its own copy is dead and goes,
/// labels and all; the labels do not keep it alive.
#[test]
fn inlined_component_with_labels_leaves_no_copy() {
    let (out, _) = compose("labels", &["comp_labels.o"]);
    let (funcs, labels) = funcs_and_labels(&out);
    assert_eq!(funcs, [bpfld::compose::DISPATCHER], "dead copy kept");
    assert!(
        labels.is_empty(),
        "labels of the dead copy kept: {labels:?}"
    );
    let (ret, _) = dispatch(&out);
    assert_eq!(ret, 3, "XDP_TX from comp_labels");
}

/// The same with xdp-tools' own objects (clang wrote a label per basic
/// block), when installed: `xdpfilt_alw_all` inlined leaves only the
/// dispatcher, which libbpf and aya load and run alike.
#[test]
fn xdp_tools_component_inlined_leaves_no_copy() {
    let obj = std::path::Path::new("/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_alw_all.o");
    if !obj.exists() {
        eprintln!("SKIP xdp_tools_component_inlined_leaves_no_copy: {obj:?} missing (apt-get install xdp-tools)");
        return;
    }
    let out = tmpdir("xdptools").join("composed.o");
    let o = run(&[
        "xdp",
        "compose",
        "-o",
        out.to_str().unwrap(),
        obj.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (funcs, labels) = funcs_and_labels(&out);
    assert_eq!(funcs, [bpfld::compose::DISPATCHER], "dead copy kept");
    assert!(labels.is_empty(), "{} labels kept", labels.len());
    if kernel_available() && bpf_allowed("xdp-tools compose") {
        dispatch(&out);
    }
}

/// The link report travels in a string table, which libbpf skips without
/// a word (a PROGBITS section made it print "skipping unrecognized data
/// section" at its default level); `inspect` still shows it.
#[test]
fn libbpf_says_nothing_about_the_link_map() {
    let (out, _) = compose("linkmap", &["comp_mark.o", "comp_count.o:xdp_count"]);
    let obj = bpfld::Object::read_file(&out).unwrap();
    let s = obj
        .section_by_name(bpfld::link::LINKMAP_SECTION)
        .expect("link map section");
    assert_eq!(s.sh_type, 3, "SHT_STRTAB");
    let text = ok(&["inspect", out.to_str().unwrap()]);
    assert!(
        // Equal priorities run by program name (libxdp's order): xdp_count
        // is comp0, xdp_mark comp1.
        text.contains("comp0 = ") && text.contains("comp_mark.o#comp1:xdp_mark"),
        "{text}"
    );
    if !kernel_available() || !bpf_allowed("link map and libbpf") {
        return;
    }
    let pin = format!("/sys/fs/bpf/bpfld-linkmap-{}", std::process::id());
    let _ = std::fs::remove_dir_all(&pin);
    let o = tool_output(
        "bpftool",
        &["-d", "prog", "loadall", out.to_str().unwrap(), &pin],
    );
    let _ = std::fs::remove_dir_all(&pin);
    unpin_by_name(&out);
    assert!(o.status.success(), "{}", stderr(&o));
    let log = format!("{}{}", stdout(&o), stderr(&o));
    assert!(log.contains("libbpf: "), "no libbpf debug output: {log}");
    let about: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(bpfld::link::LINKMAP_SECTION))
        .collect();
    assert!(about.is_empty(), "libbpf mentions the link map: {about:?}");
}

#[test]
fn devmap_programs_compose_into_a_devmap_program() {
    // Programs for a devmap entry may read egress_ifindex; a dispatcher
    // in a plain `xdp` section could not, and the verifier refused it.
    let (out, _) = compose(
        "devmap",
        &["comp_devmap.o:dm_egress", "comp_devmap.o:dm_pass"],
    );
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", "--json", out.to_str().unwrap()])).unwrap();
    let progs = v["programs"].as_array().unwrap();
    assert_eq!(progs.len(), 1);
    assert_eq!(progs[0]["section"], "xdp/devmap", "{v}");
    if kernel_available() && bpf_allowed("devmap composition loads") {
        libbpf_loads(&out).unwrap_or_else(|e| panic!("{e}"));
        unpin_by_name(&out);
    }
    // With a program for an interface, it cannot be one program.
    let err = compose_err(&["comp_devmap.o:dm_pass", "xdp_pass.o"]);
    assert!(
        err.contains("section 'xdp/devmap'")
            && err.contains("section 'xdp'")
            && err.contains("cannot be one program"),
        "{err}"
    );
}

#[test]
fn compose_pin_path_checks_the_maps_pinned_there() {
    let test = "compose_pin_path_checks_the_maps_pinned_there";
    if !kernel_available() || !bpf_allowed(test) || !have_tool("bpftool", test) {
        return;
    }
    let dir = std::path::PathBuf::from(format!(
        "/sys/fs/bpf/bpfld-compose-pins-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().unwrap().to_string();
    let pin_arg = format!("--pin-path={d}");
    // Nothing pinned yet: the map will be pinned there; composing pins nothing.
    let (_, o) = compose_run("pins-none", &["comp_pinned.o", &pin_arg]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("pinned_hits will be pinned at {d}/pinned_hits")),
        "{}",
        stdout(&o)
    );
    assert!(!dir.join("pinned_hits").exists());
    std::fs::create_dir_all(&dir).unwrap();
    let pin = dir.join("pinned_hits");
    let create = |value: &str| {
        let o = tool_output(
            "bpftool",
            &[
                "map",
                "create",
                pin.to_str().unwrap(),
                "type",
                "array",
                "key",
                "4",
                "value",
                value,
                "entries",
                "1",
                "name",
                "pinned_hits",
            ],
        );
        assert!(o.status.success(), "bpftool map create: {}", stderr(&o));
    };
    // A compatible map pinned there will be used.
    create("8");
    let (_, o) = compose_run("pins-ok", &["comp_pinned.o", &pin_arg]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!(
            "pinned_hits will use the compatible map pinned at {d}/pinned_hits"
        )),
        "{}",
        stdout(&o)
    );
    // --json: the same, as `xdp attach --json` names a pinned map.
    let (_, o) = compose_run("pins-json", &["comp_pinned.o", &pin_arg, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["pinned"],
        serde_json::json!([{
            "name": "pinned_hits",
            "path": format!("{d}/pinned_hits"),
            "created": false
        }])
    );
    // An incompatible one (value 4 bytes, not 8) is an error naming both,
    // and no output is written.
    std::fs::remove_file(&pin).unwrap();
    create("4");
    let (out, o) = compose_run("pins-bad", &["comp_pinned.o", &pin_arg]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("pinned_hits")
            && err.contains("incompatible")
            && err.contains("value 4")
            && err.contains("value 8"),
        "{err}"
    );
    assert!(!out.exists());
}

/// The component lines compose and status print (`SLOT: FILE:PROGRAM
/// priority N chain A,B`) as component arguments:
/// `FILE:PROGRAM,priority=N,chain=A,B`.
fn as_args(printed: &str) -> Vec<String> {
    printed
        .lines()
        .filter(|l| l.starts_with("comp"))
        .map(|l| {
            let (_, rest) = l.split_once(": ").unwrap();
            let words: Vec<&str> = rest.split(' ').collect();
            assert_eq!((words[1], words[3]), ("priority", "chain"), "{l}");
            format!("{},priority={},chain={}", words[0], words[2], words[4])
        })
        .collect()
}

#[test]
fn printed_chain_and_priority_round_trip() {
    // xdp-loader's spellings and bpfld's own, any case, `,` or `+`.
    let dir = tmpdir("roundtrip");
    let fx = |f: &str| format!("{}/{f}", fixtures_dir().to_str().unwrap());
    let first: Vec<String> = vec![
        fx("xdp_run_config.o:rc_first"),
        fx("xdp_run_config.o:rc_second,chain=pass+xdp_drop,Tx"),
        fx("comp_count.o:xdp_count,priority=1,chain=XDP_PASS,redirect"),
        fx("comp_mark.o:xdp_mark,chain=none,priority=60"),
    ];
    let compose_args = |out: &std::path::Path, comps: &[String]| {
        let mut a = vec!["xdp".to_string(), "compose".into(), "-o".into()];
        a.push(out.to_str().unwrap().into());
        a.extend(comps.iter().cloned());
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        ok(&a)
    };
    let out1 = dir.join("one.o");
    let printed = compose_args(&out1, &first);
    let lines: Vec<&str> = printed.lines().filter(|l| l.starts_with("comp")).collect();
    assert_eq!(lines.len(), 4, "{printed}");
    assert!(
        lines[0].ends_with("comp_count.o:xdp_count priority 1 chain XDP_PASS,XDP_REDIRECT")
            && lines[2].ends_with("rc_second priority 20 chain XDP_DROP,XDP_PASS,XDP_TX")
            && lines[3].ends_with("comp_mark.o:xdp_mark priority 60 chain none"),
        "{printed}"
    );
    // Fed back, the printed spelling gives the same composition.
    let again = as_args(&printed);
    let out2 = dir.join("two.o");
    let reprinted = compose_args(&out2, &again);
    // Same order, priorities and chain-call sets (the manifest's command
    // -line index differs: the printed order is the run order).
    assert_eq!(reprinted, printed);
    // A word after chain= that is no action is an error naming it.
    let e = compose_err(&["comp_count.o:xdp_count,chain=pass,bogus"]);
    assert!(e.contains("'bogus' is not an XDP action"), "{e}");
    let e = compose_err(&["comp_count.o:xdp_count,chain=none,pass"]);
    assert!(e.contains("'none' cannot be combined with actions"), "{e}");
}

#[test]
fn compose_json_names_order_chains_renames_and_left_out_components() {
    let (out, o) = compose_run(
        "json",
        &[
            "--json",
            "comp_count.o:xdp_count,priority=20",
            "xdp_pass.o,priority=10,chain=XDP_PASS+XDP_TX",
            "comp_tail.o,priority=30,chain=none",
            "xdp_drop.o,priority=40",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(&o)));
    assert_eq!(v["output"], out.to_str().unwrap());
    assert_eq!(v["program"], "bpfld_xdp");
    assert_eq!(v["section"], "xdp");
    assert_eq!(v["frags"], false);
    let comps = v["components"].as_array().unwrap();
    // Run order by priority; the component after `chain=none` is left out.
    assert_eq!(comps.len(), 3, "{v}");
    let fx = |f: &str| format!("{}/{f}", fixtures_dir().to_str().unwrap());
    let first = &comps[0];
    assert_eq!(first["slot"], "comp0");
    assert_eq!(first["index"], 1);
    assert_eq!(first["file"], fx("xdp_pass.o"));
    assert_eq!(first["program"], "xdp_pass");
    assert_eq!(first["priority"], 10);
    // Chain actions by name, as `xdp status --json` shows them.
    assert_eq!(first["chain"], serde_json::json!(["XDP_PASS", "XDP_TX"]));
    let count = &comps[1];
    assert_eq!(count["slot"], "comp1");
    assert_eq!(count["program"], "xdp_count");
    assert_eq!(count["priority"], 20);
    assert_eq!(count["chain"], serde_json::json!(["XDP_PASS"]));
    assert!(count["insns"].as_u64().unwrap() > 0);
    let renames = count["renames"].as_array().unwrap();
    assert!(
        renames.contains(&serde_json::json!({
            "kind": "map", "from": "counter", "to": "counter__comp1"
        })),
        "{renames:?}"
    );
    assert_eq!(
        count["inlined"],
        serde_json::json!([{"function": "comp1", "into": ["bpfld_xdp"]}])
    );
    assert_eq!(comps[2]["chain"], serde_json::json!([]));
    // The tail-calling component stays called, and says why.
    let called = comps[2]["called"].as_array().unwrap();
    assert_eq!(called.len(), 1, "{called:?}");
    assert_eq!(called[0]["function"], "comp2");
    assert!(called[0]["because"].as_str().unwrap().contains("tail call"));
    assert_eq!(
        v["left_out"],
        serde_json::json!([{"file": fx("xdp_drop.o"), "program": "xdp_drop"}])
    );
    assert_eq!(v["without_frags"].as_array().unwrap().len(), 4);
    // The program with what it takes of the kernel's limits.
    let progs = v["programs"].as_array().unwrap();
    assert_eq!(progs.len(), 1, "{v}");
    assert_eq!(progs[0]["program"], "bpfld_xdp");
    assert_eq!(progs[0]["section"], "xdp");
    let maps = progs[0]["maps"].as_array().unwrap();
    assert!(
        maps.contains(&serde_json::json!("counter__comp1")),
        "{maps:?}"
    );
    let own: u64 = comps.iter().map(|c| c["insns"].as_u64().unwrap()).sum();
    assert!(progs[0]["insns"].as_u64().unwrap() > own, "{v}");
    assert!(progs[0]["stack"].as_u64().unwrap() <= 512, "{v}");
    // The left-out component is a warning: on stderr, and listed.
    let warning = format!(
        "left out: {}:xdp_drop (an earlier component never continues the chain, so it would never run)",
        fx("xdp_drop.o")
    );
    assert_eq!(v["warnings"], serde_json::json!([warning]));
    assert_eq!(stderr(&o), format!("bpfld: warning: {warning}\n"));
    // Nothing but the JSON on standard output.
    assert!(stdout(&o).trim_end().ends_with('}'));
}

#[test]
fn kernel_limits_name_the_components_that_exceed_them() {
    // Each instance of lim_maps33.o brings its own 33 maps: 66 in one
    // program, above the kernel's 64; both components are named.
    let e = compose_err(&["lim_maps33.o", "lim_maps33.o", "xdp_pass.o"]);
    let fx = |f: &str| format!("{}/{f}", fixtures_dir().to_str().unwrap());
    assert!(
        e.contains("program 'bpfld_xdp' uses 66 maps, more than the 64 one program may use (MAX_USED_MAPS)")
            && e.contains(&format!("33 from component {}#comp0 (m0__comp0, ", fx("lim_maps33.o")))
            && e.contains(&format!("33 from component {}#comp1 (m0__comp1, ", fx("lim_maps33.o"))),
        "{e}"
    );
    // The stack along dispatcher -> component -> its subprogram, inlined
    // or not: the component is named.
    for extra in [None, Some("--no-inline")] {
        let mut args = vec!["lim_stack.o", "xdp_pass.o"];
        args.extend(extra);
        let e = compose_err(&args);
        assert!(
            e.contains("program 'bpfld_xdp' needs ")
                && e.contains(&format!(
                    "comp0 (320 bytes, component {}#comp0) -> deep_helper (320 bytes), more than the kernel's 512",
                    fx("lim_stack.o")
                )),
            "{e}"
        );
    }
    // One instance is within the limits.
    let (out, _) = compose("limits-ok", &["lim_maps33.o", "xdp_pass.o"]);
    assert!(out.exists());
}

/// The optimisation pass says what it did (in all and per component), and
/// `--no-optimize` turns it off.
#[test]
fn the_optimisation_pass_reports_and_can_be_turned_off() {
    let (_, printed) = compose("optim", &["bench_step.o", "bench_step.o"]);
    let line = printed
        .lines()
        .find(|l| l.starts_with("optimised: "))
        .unwrap_or_else(|| panic!("no optimisation line in:\n{printed}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let (after, before): (u64, u64) = (words[1].parse().unwrap(), words[3].parse().unwrap());
    assert!(after < before, "{line}");
    assert!(line.contains("comp0 ") && line.contains("comp1 "), "{line}");
    let (_, plain) = compose("noopt", &["--no-optimize", "bench_step.o", "bench_step.o"]);
    assert!(!plain.contains("optimised"), "{plain}");
    // The same counts in --json: in all and per component, null without
    // the pass.
    let (_, json) = compose("optim-json", &["--json", "bench_step.o", "bench_step.o"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["optimized"]["before"].as_u64(), Some(before), "{json}");
    assert_eq!(v["optimized"]["after"].as_u64(), Some(after), "{json}");
    let per: Vec<(u64, u64)> = v["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let o = &c["optimized"];
            (o["before"].as_u64().unwrap(), o["after"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(per.len(), 2, "{json}");
    assert!(per.iter().all(|(b, a)| a <= b), "{json}");
    let (_, json) = compose(
        "noopt-json",
        &["--json", "--no-optimize", "bench_step.o", "bench_step.o"],
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["optimized"].is_null(), "{json}");
    assert!(v["components"][0]["optimized"].is_null(), "{json}");
}
