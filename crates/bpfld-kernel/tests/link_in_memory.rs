//! The in-memory link API feeds aya directly: link bytes, load them with
//! `aya::Ebpf::load`, run the dispatcher, read the components' maps. This
//! is what examples/link_and_load.rs shows.

use aya::maps::Array;
use aya::programs::{TestRun, TestRunOptions, Xdp};
use aya::Ebpf;
use bpfld::link::{link_bytes, LinkOptions, Resolve};

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

#[test]
fn linked_bytes_load_in_aya_and_run() {
    if let Err(e) = bpfld_kernel::probe_bpf() {
        if matches!(e.kind(), bpfld_kernel::ErrorKind::PermissionDenied) {
            eprintln!("SKIP linked_bytes_load_in_aya_and_run: {e}");
            return;
        }
    }
    let (d, c, m) = (
        fixture("res_dispatcher.o"),
        fixture("comp_count.o"),
        fixture("comp_mark.o"),
    );
    let slot = |ext: &str, component: usize, function: &str| Resolve {
        extern_name: ext.into(),
        component,
        function: function.into(),
    };
    let opts = LinkOptions {
        resolves: vec![
            slot("slot0", 0, "xdp_count"),
            slot("slot1", 1, "xdp_mark"),
            slot("slot2", 1, "mark_verdict"),
        ],
        ..LinkOptions::default()
    };
    let bytes = link_bytes(
        &[("res_dispatcher.o", &d)],
        &[("comp_count.o", &c), ("comp_mark.o", &m)],
        &opts,
    )
    .expect("links");
    let mut ebpf = Ebpf::load(&bytes).expect("aya loads bpfld's output");
    let prog: &mut Xdp = ebpf
        .program_mut("res_dispatch")
        .unwrap()
        .try_into()
        .unwrap();
    prog.load().expect("the verifier accepts the dispatcher");
    let packet = [0u8; 64];
    let res = prog
        .test_run(TestRunOptions {
            data_in: Some(&packet),
            repeat: 3,
            ..TestRunOptions::new()
        })
        .expect("test run");
    assert_eq!(res.return_value, 231);
    let counter: Array<_, u64> = Array::try_from(ebpf.map("counter__slot1").unwrap()).unwrap();
    assert_eq!(
        counter.get(&0, 0).unwrap(),
        330,
        "10 + 100 per run, three runs"
    );
    let own: Array<_, u64> = Array::try_from(ebpf.map("counter").unwrap()).unwrap();
    assert_eq!(own.get(&0, 0).unwrap(), 3);
}

#[test]
fn link_bytes_names_the_bad_input() {
    let err = link_bytes(
        &[("broken.o", b"not an object")],
        &[],
        &LinkOptions::default(),
    )
    .expect_err("garbage does not link");
    assert!(
        err.to_string().starts_with("broken.o: not an ELF file"),
        "{err}"
    );
}
