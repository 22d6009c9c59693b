//! What a composed XDP pipeline costs per packet, against the same ten
//! steps (bounds check, array-map lookup, increment, pass; see
//! fixtures/src/bench_step.h) written by hand as one program (each step
//! with its own check, bench_hand.c, and as a person writes it, the
//! bounds checked once, bench_hand_once.c), chained by tail calls, and
//! composed by bpfld with calls (`--no-inline`), inlined without the
//! optimisation pass (`--no-optimize`) and inlined and optimised (the
//! default). One run measures all six on the same kernel with
//! `BPF_PROG_TEST_RUN` (64-byte frame, 2,000,000 repeats per round, rounds
//! interleaved), and prints the kernel's ns per packet (median and
//! fastest round), against the bounds-once program, and the verifier's
//! processed-instruction count.
//!
//!     cargo bench -p bpfld-kernel --bench compose [-- ROUNDS]
//!
//! Results are recorded in BENCHMARKS.md.

use aya::maps::ProgramArray;
use aya::programs::{TestRun, TestRunOptions, Xdp};
use aya::{Ebpf, EbpfLoader};
use bpfld::compose::{compose, ComponentSpec, ComposeOptions};

const REPEAT: u32 = 2_000_000;
const STEPS: usize = 10;

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn frame() -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f
}

/// A loaded variant: its entry program and the verifier's count.
struct Variant {
    name: &'static str,
    ebpf: Ebpf,
    entry: String,
    verified: u32,
    ns: Vec<f64>,
    /// Wall time of the whole test run over REPEAT, in ns per packet: a
    /// finer figure than the kernel's whole ns, which also counts any
    /// time the run was rescheduled (the fastest round is the one to read).
    wall: Vec<f64>,
}

fn load_single(name: &'static str, bytes: &[u8], prog: &str) -> Variant {
    let mut ebpf = EbpfLoader::new().load(bytes).expect("load object");
    let p: &mut Xdp = ebpf.program_mut(prog).unwrap().try_into().unwrap();
    p.load().unwrap_or_else(|e| panic!("{name}: {e}"));
    let verified = p
        .info()
        .ok()
        .and_then(|i| i.verified_instruction_count())
        .unwrap_or(0);
    Variant {
        name,
        ebpf,
        entry: prog.into(),
        verified,
        ns: Vec::new(),
        wall: Vec::new(),
    }
}

fn load_tail_chain() -> Variant {
    let mut ebpf = EbpfLoader::new()
        .load(&fixture("bench_tail.o"))
        .expect("load bench_tail.o");
    let mut verified = 0;
    let mut fds = Vec::new();
    for n in 0..STEPS {
        let name = format!("tail_step{n}");
        let p: &mut Xdp = ebpf.program_mut(&name).unwrap().try_into().unwrap();
        p.load().unwrap_or_else(|e| panic!("{name}: {e}"));
        verified += p
            .info()
            .ok()
            .and_then(|i| i.verified_instruction_count())
            .unwrap_or(0);
        fds.push(p.fd().unwrap().try_clone().unwrap());
    }
    let mut jmp = ProgramArray::try_from(ebpf.map_mut("jmp").unwrap()).unwrap();
    for (n, fd) in fds.iter().enumerate() {
        jmp.set(n as u32, fd, 0).unwrap();
    }
    Variant {
        name: "tail-call chain",
        ebpf,
        entry: "tail_step0".into(),
        verified,
        ns: Vec::new(),
        wall: Vec::new(),
    }
}

fn composed(no_inline: bool, optimize: bool) -> Vec<u8> {
    let step = bpfld::Object::parse(&fixture("bench_step.o")).unwrap();
    let specs: Vec<ComponentSpec> = (0..STEPS)
        .map(|_| ComponentSpec {
            file: "bench_step.o".into(),
            object: step.clone(),
            program: None,
            priority: None,
            chain: None,
            running: None,
        })
        .collect();
    let c = compose(
        &specs,
        &ComposeOptions::default()
            .inline(!no_inline)
            .optimize(optimize),
    )
    .expect("compose");
    c.object.to_bytes().unwrap()
}

/// Runs the entry program REPEAT times; the kernel's mean ns per run.
fn round(v: &mut Variant, frame: &[u8]) {
    let mut out = vec![0u8; frame.len() + 256];
    let p: &mut Xdp = v.ebpf.program_mut(&v.entry).unwrap().try_into().unwrap();
    let start = std::time::Instant::now();
    let r = p
        .test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            repeat: REPEAT,
            ..TestRunOptions::new()
        })
        .unwrap_or_else(|e| panic!("{}: {e}", v.name));
    let wall = start.elapsed().as_nanos() as f64 / f64::from(REPEAT);
    assert_eq!(r.return_value, 2, "{}: every step passes", v.name);
    v.ns.push(r.duration.as_nanos() as f64);
    v.wall.push(wall);
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(7);
    if let Err(e) = bpfld_kernel::probe_bpf() {
        eprintln!("SKIP: bpf() is not available: {}", e.message());
        return;
    }
    let frame = frame();
    let mut variants = vec![
        load_single(
            "hand-written, bounds once",
            &fixture("bench_hand_once.o"),
            "bench_hand_once",
        ),
        load_single("hand-written", &fixture("bench_hand.o"), "bench_hand"),
        load_tail_chain(),
        load_single("bpfld, calls", &composed(true, false), "bpfld_xdp"),
        load_single(
            "bpfld, inlined, --no-optimize",
            &composed(false, false),
            "bpfld_xdp",
        ),
        load_single(
            "bpfld, inlined, optimised",
            &composed(false, true),
            "bpfld_xdp",
        ),
    ];
    for v in &mut variants {
        round(v, &frame); // warm-up, not recorded
        v.ns.clear();
        v.wall.clear();
    }
    for _ in 0..rounds {
        for v in &mut variants {
            round(v, &frame);
        }
    }
    let stat = |ns: &[f64]| {
        let mut s = ns.to_vec();
        s.sort_by(f64::total_cmp);
        (s[s.len() / 2], s[0], s[s.len() - 1])
    };
    let (hand, hand_min, _) = stat(&variants[0].ns);
    let (_, hand_wall, _) = stat(&variants[0].wall);
    println!(
        "{STEPS} steps, 64-byte frame, {REPEAT} repeats x {rounds} rounds (kernel ns per packet)\n"
    );
    // The kernel reports whole ns (its total over the repeats divided by
    // the repeat count), and leaves out time the test run spent
    // rescheduled, so other load on the machine does not count.
    println!(
        "| variant | ns per packet (median) | min-max | vs bounds once (median) | vs bounds once (fastest) | wall ns (fastest) | vs bounds once (wall, fastest) | verifier insns |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for v in &variants {
        let (med, min, max) = stat(&v.ns);
        let (_, wall, _) = stat(&v.wall);
        println!(
            "| {} | {med:.0} | {min:.0}-{max:.0} | {:.2}x | {:.2}x | {wall:.2} | {:.3}x | {} |",
            v.name,
            med / hand,
            min / hand_min,
            wall / hand_wall,
            v.verified
        );
    }
}
