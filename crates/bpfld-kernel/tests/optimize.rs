//! The optimisation pass keeps meaning: every composition and `--resolve`
//! link is built optimised (the default) and with `--no-optimize`, and
//! both run in the kernel on the same 2,000 generated packets (well-formed
//! frames of every ethertype and protocol the fixtures could branch on,
//! truncated ones, random bytes). Each packet must give the same verdict,
//! the same packet out and the same contents of every map; the verifier
//! must accept both, the optimised one for no more processed
//! instructions, and the optimised code must not be longer.

use bpfld::compose::{compose, ComponentSpec, ComposeOptions, Composed};
use bpfld::link::{link_with, LinkOptions};
use bpfld::model::object::Object;

mod common;

use common::{frames, kernel, resolve_cases, resolve_main, same_runs, spec};

const PACKETS: usize = 2000;

fn code_len(obj: &Object) -> usize {
    obj.sections
        .iter()
        .filter(|s| s.is_program())
        .map(|s| s.insns.len())
        .sum()
}

/// Runs both builds and checks what the pass promises.
fn same_meaning(what: &str, opt: &Object, plain: &Object, prog: &str) {
    let pk = frames(PACKETS, what.len() as u64 * 104_729);
    let counts = same_runs(what, opt, plain, prog, &pk);
    assert!(
        code_len(opt) <= code_len(plain),
        "{what}: optimised code is longer ({} > {})",
        code_len(opt),
        code_len(plain)
    );
    if let Some((vo, vp)) = counts {
        assert!(
            vo <= vp,
            "{what}: the verifier processed {vo} instructions optimised, {vp} not"
        );
        eprintln!(
            "{what}: {} instructions optimised, {} not; verifier {vo}, {vp}",
            code_len(opt),
            code_len(plain)
        );
    }
}

fn compose_both(what: &str, specs: &[ComponentSpec]) -> (Composed, Composed) {
    let opt = compose(specs, &ComposeOptions::default()).unwrap_or_else(|e| panic!("{what}: {e}"));
    let plain = compose(specs, &ComposeOptions::default().optimize(false))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        plain.report.optimized.is_none(),
        "{what}: --no-optimize ran the pass"
    );
    let o = opt.report.optimized.expect("the pass ran");
    assert_eq!(
        o.before as usize,
        code_len(&plain.object),
        "{what}: count before"
    );
    assert_eq!(
        o.after as usize,
        code_len(&opt.object),
        "{what}: count after"
    );
    same_meaning(what, &opt.object, &plain.object, "bpfld_xdp");
    (opt, plain)
}

fn disasm(obj: &Object) -> Vec<String> {
    let sec = obj.section_by_name("xdp").expect("section xdp");
    let mut out = Vec::new();
    let mut k = 0;
    while k < sec.insns.len() {
        out.push(bpfld::show::disasm::insn_text(&sec.insns[k], sec.insns.get(k + 1)).unwrap());
        k += if sec.insns[k].is_ld_imm64() { 2 } else { 1 };
    }
    out
}

#[test]
fn compositions_mean_the_same_optimised_and_not() {
    if !kernel() {
        return;
    }
    let pass_tx = 1 << 2 | 1 << 3;
    compose_both(
        "count+mark+pass",
        &[
            spec("comp_count.o", Some("xdp_count"), None),
            spec("comp_mark.o", None, None),
            spec("xdp_pass.o", None, None),
        ],
    );
    compose_both(
        "parse+parse+count+tally",
        &[
            spec("comp_parse.o", None, Some(pass_tx)),
            spec("comp_parse.o", None, Some(pass_tx)),
            spec("comp_count.o", Some("xdp_count"), Some(pass_tx)),
            spec("comp_tally.o", None, None),
        ],
    );
    compose_both(
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
    // The context on the stack (comp_regs writes r6-r9). Its writes are
    // dead, and once they are gone r8 is free while the context waits:
    // the dispatcher's slot and its fills go.
    let (opt, plain) = compose_both(
        "count+regs+parse",
        &[
            spec("comp_count.o", Some("xdp_count"), None),
            spec("comp_regs.o", None, None),
            spec("comp_parse.o", None, None),
        ],
    );
    let slot = |o: &Object| {
        let text = disasm(o);
        text.iter().filter(|l| l.contains("(r10 - 0x8)")).count()
    };
    assert_eq!(slot(&plain.object), 4, "{:#?}", disasm(&plain.object));
    assert_eq!(slot(&opt.object), 0, "{:#?}", disasm(&opt.object));
    compose_both(
        "labels+longname+counter+tail",
        &[
            spec("comp_labels.o", None, None),
            spec("comp_longname.o", None, None),
            spec("xdp_counter.o", None, None),
            ComponentSpec {
                priority: Some(90),
                ..spec("comp_tail.o", None, None)
            },
        ],
    );
}

/// A component that moves the packet (bpf_xdp_adjust_head) between
/// components that check the same bounds: its check after the helper
/// stays although the first step proved the same bound before it.
#[test]
fn a_helper_that_moves_the_packet_keeps_later_checks() {
    if !kernel() {
        return;
    }
    let at = |file: &str, priority| ComponentSpec {
        priority: Some(priority),
        ..spec(file, None, None)
    };
    let (opt, plain) = compose_both(
        "step+step+adjust+step+parse",
        &[
            at("bench_step.o", 10),
            at("bench_step.o", 20),
            at("comp_adjust.o", 30),
            at("bench_step.o", 40),
            at("comp_parse.o", 50),
        ],
    );
    let is_check = |l: &String| l.starts_with("if r") && l.contains(" > r");
    // Three steps and comp_adjust's two check `data + 14 > data_end`.
    assert_eq!(
        disasm(&plain.object).iter().filter(|l| is_check(l)).count(),
        5
    );
    // The second step's and comp_adjust's first are proven by the first
    // step's (comp_adjust reads through the first step's pointer, kept in
    // a callee-saved register with its range), the last step's by
    // comp_adjust's second; that one follows the helper and stays.
    let text = disasm(&opt.object);
    assert_eq!(text.iter().filter(|l| is_check(l)).count(), 2, "{text:#?}");
    let helper = text
        .iter()
        .position(|l| l == "call 0x2c")
        .expect("the helper");
    let next_lookup = helper + text[helper..].iter().position(|l| l == "call 0x1").unwrap();
    assert!(text[helper..next_lookup].iter().any(is_check), "{text:#?}");
}

/// Components that read the packet in their own bodies, a map lookup
/// and update between them: the first one's `data` pointer is kept in a
/// callee-saved register for the others, whose checks go although they
/// read the packet (the verifier must agree: the copy carries the range).
#[test]
fn a_kept_packet_pointer_serves_later_components() {
    if !kernel() {
        return;
    }
    let peek: Vec<ComponentSpec> = (0..3).map(|_| spec("comp_peek.o", None, None)).collect();
    let (opt, plain) = compose_both("peek x3", &peek);
    let is_check = |l: &String| l.starts_with("if r") && l.contains(" > r");
    assert_eq!(
        disasm(&plain.object).iter().filter(|l| is_check(l)).count(),
        3
    );
    let text = disasm(&opt.object);
    assert_eq!(text.iter().filter(|l| is_check(l)).count(), 1, "{text:#?}");
    assert!(text.iter().any(|l| l.contains("(r6 + 0xc)")), "{text:#?}");
    // And after a step, with a component that moves the packet between.
    let at = |file: &str, priority| ComponentSpec {
        priority: Some(priority),
        ..spec(file, None, None)
    };
    compose_both(
        "step+peek+adjust+peek+parse",
        &[
            at("bench_step.o", 10),
            at("comp_peek.o", 20),
            at("comp_adjust.o", 30),
            at("comp_peek.o", 40),
            at("comp_parse.o", 50),
        ],
    );
}

/// Ten bench steps: every chain-call check, every bounds check but the
/// first and every reload of the packet pointers goes.
#[test]
fn ten_steps_check_bounds_once() {
    if !kernel() {
        return;
    }
    let steps: Vec<ComponentSpec> = (0..10).map(|_| spec("bench_step.o", None, None)).collect();
    let (opt, plain) = compose_both("ten steps", &steps);
    let text = disasm(&opt.object);
    let count = |obj: &[String], pat: &str| obj.iter().filter(|l| l.contains(pat)).count();
    assert_eq!(count(&disasm(&plain.object), "if r0 == 0x2"), 10);
    assert_eq!(count(&text, "if r0 == 0x2"), 0, "{text:#?}");
    assert_eq!(
        count(&text, "(r1 + 0x4)") + count(&text, "(r9 + 0x4)"),
        1,
        "{text:#?}"
    );
    assert_eq!(count(&text, "call 0x1"), 10);
    for c in &opt.report.components {
        let o = c.optimized.expect("per-component counts");
        assert!(o.after < o.before, "{}: {o:?}", c.label);
    }
}

/// Two echo responders: the first one's five early XDP_PASS ways meet
/// at the dispatcher's chain-call check, where the verifier compares
/// their states once. Threading them past it to the second copy's first
/// instruction (no prune point) made the verifier walk each into the
/// second copy (196 instructions verified instead of 183); the pass must
/// still shorten the code without that.
#[test]
fn threading_keeps_the_verifiers_prune_points() {
    if !kernel() {
        return;
    }
    let two: Vec<ComponentSpec> = (0..2).map(|_| spec("comp_echo.o", None, None)).collect();
    let (opt, plain) = compose_both("echo x2", &two);
    assert!(
        code_len(&opt.object) < code_len(&plain.object),
        "the pass did nothing: {:#?}",
        disasm(&opt.object)
    );
}

/// Two counting echo responders (comp_stats.c: an array lookup with the
/// constant key 0 after the packet checks). The running kernel (6.14 on)
/// walks no NULL way after such a lookup and the pass's model of its
/// walk knows that (and still keeps only what is no dearer without it):
/// the optimised composition verifies in fewer instructions.
#[test]
fn proven_array_lookups_let_the_pass_pay() {
    if !kernel() {
        return;
    }
    let two: Vec<ComponentSpec> = (0..2).map(|_| spec("comp_stats.o", None, None)).collect();
    let (opt, plain) = compose_both("stats x2", &two);
    assert!(code_len(&opt.object) < code_len(&plain.object));
    let pk = frames(16, 7);
    let (vo, vp) = same_runs("stats x2", &opt.object, &plain.object, "bpfld_xdp", &pk)
        .expect("verified instruction counts");
    assert!(vo < vp, "verified {vo} optimised, {vp} not");
}

#[test]
fn resolved_slots_mean_the_same_optimised_and_not() {
    if !kernel() {
        return;
    }
    let main = resolve_main();
    for (what, components, resolves) in resolve_cases() {
        let opts = |no_optimize| LinkOptions {
            resolves: resolves.clone(),
            no_optimize,
            ..LinkOptions::default()
        };
        let opt = link_with(&main, &components, &opts(false)).unwrap();
        let plain = link_with(&main, &components, &opts(true)).unwrap();
        assert!(opt.report.optimized.is_some() && plain.report.optimized.is_none());
        same_meaning(what, &opt.object, &plain.object, "res_dispatch");
        if what == "parse/sum4/len" {
            // comp_parse writes r6, where res_dispatch keeps its context:
            // the inliner saves it around the body at r10 - 16, and a
            // register free there holds it instead.
            let saves = |o: &Object| {
                let text = disasm(o);
                text.iter().filter(|l| l.contains("(r10 - 0x10)")).count()
            };
            assert_eq!(saves(&plain.object), 2, "{:#?}", disasm(&plain.object));
            assert_eq!(saves(&opt.object), 0, "{:#?}", disasm(&opt.object));
        }
    }
}
