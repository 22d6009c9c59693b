//! Inlining keeps meaning: every composition and `--resolve` link is built
//! twice, with components inlined (the default) and called (`no_inline`),
//! and both run in the kernel on the same generated packets (random
//! lengths and bytes). Each packet must give the same verdict, the same
//! packet out and the same contents of every map; the verifier must accept
//! both, and the inlined one must not cost it more instructions than the
//! inlining added.

use bpfld::compose::{compose, ComponentSpec, ComposeOptions};
use bpfld::link::{link_with, Input, LinkOptions, LinkReport};
use bpfld::model::object::Object;

mod common;

use common::{bytes, fixture, kernel, packets, resolve_cases, resolve_main, same_runs, spec};

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

/// Runs both builds on the same packets and compares everything.
fn same_meaning(what: &str, inlined: &Object, called: &Object, prog: &str, grown: u32) {
    let pk = packets(48, what.len() as u64 * 7919);
    let counts = same_runs(what, inlined, called, prog, &pk);
    if let Some((vi, vc)) = counts {
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
    // Where the dispatcher keeps the context (before the optimisation
    // pass, which may drop the copy).
    let first = |specs: &[ComponentSpec]| {
        let c = compose(specs, &ComposeOptions::default().optimize(false)).unwrap();
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
    let main = resolve_main();
    for (what, components, resolves) in resolve_cases() {
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

/// A resolved function whose body calls another resolved function:
/// res_nest_outer fills slot0 and calls its extern slot2, which
/// res_nest_inner fills (so the dispatcher calls nest_inner itself too).
/// nest_outer keeps a buffer on its stack across the call, so the inner
/// body, inlined into the outer one's copy, must go below both frames
/// instead of reusing the space of the outer one, whichever resolve comes
/// first and with or without the optimisation pass. Every packet gives
/// 732 (+1000 past 100 bytes): slot0 7 (its buffer intact, 5, plus
/// nest_inner's 2), slot1 3, slot2 2.
#[test]
fn a_resolved_function_inlined_inside_another_keeps_its_stack() {
    if !kernel() {
        return;
    }
    let main = resolve_main();
    let components = ["res_nest_outer.o", "res_nest_inner.o", "comp_mark.o"].map(|f| Input {
        name: f.into(),
        object: fixture(f),
    });
    let slot = |n: u32, component: usize, function: &str| bpfld::link::Resolve {
        extern_name: format!("slot{n}"),
        component,
        function: function.into(),
    };
    let outer = slot(0, 0, "nest_outer");
    let inner = slot(2, 1, "nest_inner");
    let mark = slot(1, 2, "xdp_mark");
    let pk = packets(48, 4242);
    let refs: Vec<&[u8]> = pk.iter().map(Vec::as_slice).collect();
    for (order, resolves) in [
        (
            "outer first",
            vec![outer.clone(), inner.clone(), mark.clone()],
        ),
        ("inner first", vec![inner, outer, mark]),
    ] {
        for optimize in [true, false] {
            let what = format!("{order}, optimize {optimize}");
            let opts = |no_inline| LinkOptions {
                resolves: resolves.clone(),
                no_inline,
                no_optimize: !optimize,
                ..LinkOptions::default()
            };
            let inl = link_with(&main, &components, &opts(false)).unwrap();
            let call = link_with(&main, &components, &opts(true)).unwrap();
            inlined_all(&inl.report);
            let runs =
                bpfld_kernel::run_packets(&bytes(&inl.object), Some("res_dispatch"), &refs, 1)
                    .unwrap_or_else(|e| panic!("{what}: {}", e.message()));
            for (n, r) in runs.iter().enumerate() {
                assert_eq!(
                    r.retval % 1000,
                    732,
                    "{what}: packet {n} verdict {}",
                    r.retval
                );
            }
            let grown = inlined_insns(&inl.report, &call.object);
            same_meaning(&what, &inl.object, &call.object, "res_dispatch", grown);
        }
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
