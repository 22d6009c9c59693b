//! The examples run as part of the test suite: each example file is
//! compiled in here as a module and its `run` is called, so what the
//! example shows is checked against the kernel (skipped, loudly, only
//! where `bpf()` is refused).

#[allow(dead_code)]
#[path = "../examples/link_and_load.rs"]
mod link_and_load;

#[allow(dead_code)]
#[path = "../examples/compose_and_run.rs"]
mod compose_and_run;

/// Whether `bpf()` is refused here (then the test says so and skips).
fn bpf_refused(test: &str) -> bool {
    match bpfld_kernel::probe_bpf() {
        Err(e) if matches!(e.kind(), bpfld_kernel::ErrorKind::PermissionDenied) => {
            eprintln!("SKIP {test}: {e}");
            true
        }
        _ => false,
    }
}

#[test]
fn example_link_and_load_runs() {
    if bpf_refused("example_link_and_load_runs") {
        return;
    }
    let out = link_and_load::run().unwrap_or_else(|e| panic!("link_and_load: {e}"));
    // slot0 * 100 + slot1 * 10 + slot2, as res_dispatcher.c combines
    // them: xdp_count's XDP_PASS (2), xdp_mark's XDP_TX (3), mark_verdict's
    // XDP_DROP (1).
    assert_eq!(out.verdict, 231);
    assert_eq!(out.mark_counter, 110, "xdp_mark adds 10, mark_verdict 100");
    for map in ["counter__slot0", "counter__slot1", "counter"] {
        assert!(out.maps.iter().any(|m| m == map), "{map} in {:?}", out.maps);
    }
}

#[test]
fn example_compose_and_run_runs() {
    if bpf_refused("example_compose_and_run_runs") {
        return;
    }
    let out = compose_and_run::run().unwrap_or_else(|e| panic!("compose_and_run: {e}"));
    assert_eq!(
        out.order,
        [
            "comp0: comp_count.o:xdp_count priority 10 chain XDP_PASS",
            "comp1: comp_mark.o:xdp_mark priority 20 chain XDP_PASS,XDP_TX",
            "comp2: xdp_pass.o:xdp_pass priority 50 chain XDP_PASS",
        ]
    );
    // xdp_mark's XDP_TX went on to xdp_pass, whose XDP_PASS is the verdict.
    assert_eq!(out.verdict, 2);
    assert_eq!(out.counters, (1, 10), "each component ran once");
}
