//! The library's result and error values on the committed fixtures (the
//! CLI tests check the rendering). Skips loudly when bpf() is refused.

use bpfld_kernel::{run, ErrorKind, ProgKind, RunOptions};

fn fixture(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn allowed(test: &str) -> bool {
    match bpfld_kernel::probe_bpf() {
        Ok(()) => true,
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            eprintln!("SKIP {test}: {e}");
            false
        }
        Err(e) => panic!("bpf() probe: {e}"),
    }
}

#[test]
fn result_carries_verdict_output_and_maps() {
    if !allowed("result_carries_verdict_output_and_maps") {
        return;
    }
    let obj = fixture("run_counter.o");
    let r = run(
        &obj,
        &RunOptions {
            repeat: 4,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.program, "xdp_run_counter");
    assert_eq!(r.kind, ProgKind::Xdp);
    assert_eq!(r.retval, 3);
    assert_eq!(r.kind.action_name(r.retval), Some("XDP_TX"));
    assert_eq!(r.repeat, 4);
    assert_eq!(r.data_out, vec![0u8; 64]);
    let names: Vec<&str> = r.maps.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, [".bss", "by_first", "per_cpu_runs", "runs"]);
    let pc = &r.maps[2];
    let cpus = pc.per_cpu.expect("per-CPU map");
    // One unpadded 8-byte value per possible CPU.
    assert_eq!(pc.entries.len(), 1);
    assert_eq!(pc.entries[0].1.len(), 8 * cpus);
    let sum: u64 = pc.entries[0]
        .1
        .chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .sum();
    assert_eq!(sum, 4);
    assert_eq!(
        r.maps[3].entries,
        vec![(vec![0; 4], 4u64.to_le_bytes().to_vec())]
    );
}

#[test]
fn errors_have_kinds() {
    if !allowed("errors_have_kinds") {
        return;
    }
    let e = run(&fixture("run_reject.o"), &RunOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Verifier);
    let v = e.verifier().unwrap();
    assert_eq!(
        v.instruction.as_deref(),
        Some("0: (61) r0 = *(u32 *)(r1 +4096)")
    );
    assert_eq!(
        v.reason.as_deref(),
        Some("invalid bpf_context access off=4096 size=4")
    );

    let opts = RunOptions {
        prog: Some("nope"),
        ..Default::default()
    };
    let e = run(&fixture("xdp_pass.o"), &opts).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSuchProgram);

    let opts = RunOptions {
        prog: Some("on_unlink_entry"),
        ..Default::default()
    };
    let e = run(&fixture("tracing.o"), &opts).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotRunnable);
    assert!(e.message().contains("is of type kprobe"), "{e}");

    let e = run(b"not an ELF file", &RunOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Object);
}
