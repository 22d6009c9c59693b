//! Inlining keeps meaning: every composition and `--resolve` link is built
//! twice, with components inlined (the default) and called (`no_inline`),
//! and both run in the kernel on the same generated packets (random
//! lengths and bytes). Each packet must give the same verdict, the same
//! packet out and the same contents of every map; the verifier must accept
//! both, and the inlined one must not cost it more instructions than the
//! inlining added.

use bpfld::compose::{compose, ChainActions, ComponentSpec, ComposeOptions};
use bpfld::link::{link_with, Input, LinkOptions, LinkReport, Resolve};
use bpfld::model::object::Object;

fn fixture(name: &str) -> Object {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    bpfld::Object::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn kernel() -> bool {
    match bpfld_kernel::probe_bpf() {
        Err(e) if matches!(e.kind(), bpfld_kernel::ErrorKind::PermissionDenied) => {
            eprintln!("SKIP (bpf() refused): {e}");
            false
        }
        _ => true,
    }
}

/// Deterministic packets: lengths 14..=300 (XDP test runs need an Ethernet
/// header's worth), bytes from a xorshift generator.
fn packets(n: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|_| {
            let len = 14 + (next() % 287) as usize;
            (0..len).map(|_| next() as u8).collect()
        })
        .collect()
}

fn spec(file: &str, program: Option<&str>, chain: Option<u32>) -> ComponentSpec {
    ComponentSpec {
        file: file.into(),
        object: fixture(file),
        program: program.map(str::to_string),
        priority: None,
        chain: chain.map(ChainActions::from_bits),
        running: None,
    }
}

fn bytes(obj: &Object) -> Vec<u8> {
    obj.to_bytes().expect("write")
}

/// Instructions of the functions that the inlined build inlined, as the
/// called build has them.
fn inlined_insns(report: &LinkReport, called: &Object) -> u32 {
    let names: Vec<&str> = report
        .components
        .iter()
        .flat_map(|c| &c.inlining)
        .filter(|i| !i.into.is_empty())
        .map(|i| i.function.as_str())
        .collect();
    function_insns(called, &names)
}

fn function_insns(obj: &Object, names: &[&str]) -> u32 {
    obj.symbols
        .iter()
        .filter(|s| names.contains(&s.name.as_str()))
        .map(|s| (s.size / 8) as u32)
        .sum()
}

/// Maps with their entries in key order (hash maps iterate in an order of
/// their own).
fn sorted(maps: &[bpfld_kernel::MapDump]) -> Vec<bpfld_kernel::MapDump> {
    let mut m = maps.to_vec();
    for d in &mut m {
        d.entries.sort();
    }
    m
}

/// Runs both builds on the same packets and compares everything.
fn same_meaning(what: &str, inlined: &Object, called: &Object, prog: &str, grown: u32) {
    let pk = packets(48, what.len() as u64 * 7919);
    let refs: Vec<&[u8]> = pk.iter().map(Vec::as_slice).collect();
    let a = bpfld_kernel::run_packets(&bytes(inlined), Some(prog), &refs, 1)
        .unwrap_or_else(|e| panic!("{what}, inlined: {}", e.message()));
    let b = bpfld_kernel::run_packets(&bytes(called), Some(prog), &refs, 1)
        .unwrap_or_else(|e| panic!("{what}, called: {}", e.message()));
    let mut verdicts = std::collections::BTreeSet::new();
    for (n, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x.retval, y.retval, "{what}: packet {n} verdict");
        assert_eq!(x.data_out, y.data_out, "{what}: packet {n} data out");
        assert_eq!(sorted(&x.maps), sorted(&y.maps), "{what}: packet {n} maps");
        verdicts.insert(x.retval);
    }
    eprintln!("{what}: {} packets, verdicts {verdicts:?}", a.len());
    let (vi, vc) = (a[0].verified_insns, b[0].verified_insns);
    if let (Some(vi), Some(vc)) = (vi, vc) {
        // Inlined code is verified in its caller's context (once per path
        // reaching it, where a global function is verified once), so the
        // count may grow, but by no more than the code inlined.
        assert!(
            vi <= vc + grown,
            "{what}: verifier processed {vi} instructions inlined, {vc} called \
             ({grown} instructions inlined)"
        );
        eprintln!("{what}: verifier {vi} inlined, {vc} called");
    }
}

fn inlined_all(report: &LinkReport) {
    for c in &report.components {
        for i in &c.inlining {
            assert!(
                !i.into.is_empty() && i.called_because.is_none(),
                "{} not inlined: {:?}",
                i.function,
                i.called_because
            );
        }
    }
}

fn compose_both(what: &str, specs: &[ComponentSpec]) -> LinkReport {
    let inl = compose(specs, &ComposeOptions::default()).unwrap_or_else(|e| panic!("{what}: {e}"));
    let call = compose(specs, &ComposeOptions::default().inline(false))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        call.report.components.iter().all(|c| c.inlining.is_empty()),
        "no_inline must not inline"
    );
    let grown = inlined_insns(&inl.report, &call.object);
    same_meaning(what, &inl.object, &call.object, "bpfld_xdp", grown);
    inl.report
}

#[test]
fn compositions_mean_the_same_inlined_and_called() {
    if !kernel() {
        return;
    }
    let pass_tx = 1 << 2 | 1 << 3;
    let r = compose_both(
        "count+mark+pass",
        &[
            spec("comp_count.o", Some("xdp_count"), None),
            spec("comp_mark.o", None, None),
            spec("xdp_pass.o", None, None),
        ],
    );
    inlined_all(&r);
    let r = compose_both(
        "parse+parse+count+tally",
        &[
            spec("comp_parse.o", None, Some(pass_tx)),
            spec("comp_parse.o", None, Some(pass_tx)),
            spec("comp_count.o", Some("xdp_count"), Some(pass_tx)),
            spec("comp_tally.o", None, None),
        ],
    );
    inlined_all(&r);
    // The rest of the compose fixtures: run metadata, a pinned map, own
    // data maps with atomics, a frags program, a final drop.
    let r = compose_both(
        "config+pinned+data+frags+drop",
        &[
            spec("xdp_run_config.o", Some("rc_first"), None),
            spec(
                "xdp_run_config.o",
                Some("rc_second"),
                Some(pass_tx | 1 << 1),
            ),
            spec("comp_pinned.o", None, None),
            spec("comp_data.o", None, None),
            spec("comp_frags.o", Some("xdp_frags_pass"), None),
            spec("comp_parse.o", None, Some(pass_tx | 1 << 1)),
            spec("xdp_drop.o", None, None),
        ],
    );
    inlined_all(&r);
    // A component writing r6-r9: the context waits on the stack instead
    // of in a register.
    let specs = [
        spec("comp_count.o", Some("xdp_count"), None),
        spec("comp_regs.o", None, None),
        spec("comp_parse.o", None, None),
    ];
    inlined_all(&compose_both("count+regs+parse", &specs));
    let first = |specs: &[ComponentSpec]| {
        let c = compose(specs, &ComposeOptions::default()).unwrap();
        let sec = c.object.section_by_name("xdp").unwrap();
        bpfld::show::disasm::insn_text(&sec.insns[0], sec.insns.get(1)).unwrap()
    };
    assert_eq!(first(&specs), "*(u64 *)(r10 - 0x8) = r1");
    assert_eq!(first(&specs[..1]), "r9 = r1");
    let steps: Vec<ComponentSpec> = (0..10).map(|_| spec("bench_step.o", None, None)).collect();
    inlined_all(&compose_both("ten steps", &steps));
}

#[test]
fn a_component_with_a_tail_call_is_called() {
    if !kernel() {
        return;
    }
    let r = compose_both(
        "tail+parse",
        &[
            ComponentSpec {
                priority: Some(40),
                ..spec("comp_tail.o", None, None)
            },
            spec("comp_parse.o", None, None),
        ],
    );
    let tail = &r.components[0].inlining[0];
    assert!(tail.into.is_empty(), "{tail:?}");
    assert!(
        tail.called_because
            .as_deref()
            .is_some_and(|w| w.contains("tail call")),
        "{tail:?}"
    );
    let parse = &r.components[1].inlining[0];
    assert_eq!(parse.into, ["bpfld_xdp"], "{parse:?}");
}

#[test]
fn resolved_slots_mean_the_same_inlined_and_called() {
    if !kernel() {
        return;
    }
    let slot = |ext: &str, component: usize, function: &str| Resolve {
        extern_name: ext.into(),
        component,
        function: function.into(),
    };
    let main = [Input {
        name: "res_dispatcher.o".into(),
        object: fixture("res_dispatcher.o"),
    }];
    let cases: [(&str, Vec<(&str, &str)>); 2] = [
        (
            "count/mark/verdict",
            vec![
                ("comp_count.o", "xdp_count"),
                ("comp_mark.o", "xdp_mark"),
                ("comp_mark.o", "mark_verdict"),
            ],
        ),
        (
            "parse/sum4/len",
            vec![
                ("comp_parse.o", "xdp_parse"),
                ("xdp_compute.o", "xdp_sum4"),
                ("xdp_compute.o", "xdp_len"),
            ],
        ),
    ];
    for (what, slots) in cases {
        let mut files: Vec<&str> = slots.iter().map(|s| s.0).collect();
        files.dedup();
        let components: Vec<Input> = files
            .iter()
            .map(|f| Input {
                name: f.to_string(),
                object: fixture(f),
            })
            .collect();
        let resolves: Vec<Resolve> = slots
            .iter()
            .enumerate()
            .map(|(n, (f, func))| {
                slot(
                    &format!("slot{n}"),
                    files.iter().position(|x| x == f).unwrap(),
                    func,
                )
            })
            .collect();
        let opts = |no_inline| LinkOptions {
            resolves: resolves.clone(),
            no_inline,
            ..LinkOptions::default()
        };
        let inl = link_with(&main, &components, &opts(false)).unwrap();
        let call = link_with(&main, &components, &opts(true)).unwrap();
        inlined_all(&inl.report);
        // Nothing of the resolved functions is left as a function.
        for n in 0..3 {
            let name = format!("slot{n}");
            assert!(
                !inl.object.symbols.iter().any(|s| s.name == name),
                "{what}: {name} still a symbol"
            );
        }
        let grown = inlined_insns(&inl.report, &call.object);
        same_meaning(what, &inl.object, &call.object, "res_dispatch", grown);
    }
}

/// Beyond slots: every static .text function of some runnable fixtures is
/// inlined into its callers (in an entry program, or in another .text
/// function: the same-section case); the result must run like the
/// original, bpf_loop callbacks and map relocations included.
#[test]
fn inlining_ordinary_subprograms_keeps_meaning() {
    if !kernel() {
        return;
    }
    for (file, prog) in [
        ("calls.o", "calls_main"),
        ("comp_mark.o", "xdp_mark"),
        ("comp_parse.o", "xdp_parse"),
        ("comp_count.o", "xdp_count"),
    ] {
        let input = Input {
            name: file.into(),
            object: fixture(file),
        };
        let linked = bpfld::link::link(&[input], &LinkOptions::default()).unwrap();
        let statics: Vec<String> = linked
            .symbols
            .iter()
            .filter(|s| {
                s.kind == bpfld::model::object::SymbolKind::Func
                    && s.binding == bpfld::model::object::Binding::Local
            })
            .map(|s| s.name.clone())
            .collect();
        assert!(!statics.is_empty(), "{file}: no static function");
        let mut inl = linked.clone();
        let out = bpfld::link::inline::inline_functions(&mut inl, &statics);
        let mut done = Vec::new();
        for o in &out {
            if o.called_because.as_deref() == Some("nothing calls it") {
                continue; // a callback, whose address is taken
            }
            assert!(
                o.called_because.is_none() && !o.inlined_into.is_empty(),
                "{file}: {o:?}"
            );
            done.push(o.function.as_str());
        }
        let grown = function_insns(&linked, &done);
        same_meaning(&format!("{file}:{prog}"), &inl, &linked, prog, grown);
    }
}
