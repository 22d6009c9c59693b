//! Compose three XDP programs in memory with bpfld, load the composition
//! with aya and test-run it in the kernel (needs root).
//!
//!     cargo run -p bpfld-kernel --example compose_and_run
//!
//! comp_count.o's `xdp_count` runs first (priority 10) and passes; then
//! comp_mark.o's `xdp_mark` (priority 20), which returns XDP_TX: its
//! chain-call set is widened to `pass,tx` so the composition goes on to
//! xdp_pass.o, whose XDP_PASS is the final verdict. Each component keeps
//! its own maps (`counter__comp0`, `counter__comp1`).
//!
//! tests/examples.rs runs [`run`] and checks what it returns.

use aya::maps::Array;
use aya::programs::{TestRun, TestRunOptions, Xdp};
use aya::Ebpf;
use bpfld::compose::{compose, ComponentSpec, ComposeOptions, DISPATCHER};

/// What one run of the composition gave.
#[derive(Debug)]
pub struct Outcome {
    /// The components in run order, as `bpfld xdp status` prints them.
    pub order: Vec<String>,
    /// The composition's verdict.
    pub verdict: u32,
    /// `counter[0]` of xdp_count's and of xdp_mark's instance.
    pub counters: (u64, u64),
}

/// Composes the three programs, loads the composition with aya and
/// test-runs it once on a 64-byte packet.
pub fn run() -> Result<Outcome, Box<dyn std::error::Error>> {
    let specs = [
        ComponentSpec::from_bytes("xdp_pass.o", include_bytes!("../../../fixtures/xdp_pass.o"))?,
        ComponentSpec::from_bytes(
            "comp_mark.o",
            include_bytes!("../../../fixtures/comp_mark.o"),
        )?
        .with_priority(20)
        .with_chain("pass,tx".parse()?),
        ComponentSpec::from_bytes(
            "comp_count.o",
            include_bytes!("../../../fixtures/comp_count.o"),
        )?
        .with_program("xdp_count")
        .with_priority(10),
    ];
    let composed = compose(&specs, &ComposeOptions::default())?;
    let bytes = composed.object.to_bytes()?;

    let mut ebpf = Ebpf::load(&bytes)?;
    let prog: &mut Xdp = ebpf
        .program_mut(DISPATCHER)
        .ok_or("no dispatcher program")?
        .try_into()?;
    prog.load()?;
    let packet = [0u8; 64];
    let result = prog.test_run(TestRunOptions {
        data_in: Some(&packet),
        ..TestRunOptions::new()
    })?;
    let counter = |name: &str| -> Result<u64, Box<dyn std::error::Error>> {
        let map: Array<_, u64> = Array::try_from(ebpf.map(name).ok_or("no such map")?)?;
        Ok(map.get(&0, 0)?)
    };
    Ok(Outcome {
        order: composed.order.iter().map(|p| p.to_string()).collect(),
        verdict: result.return_value,
        counters: (counter("counter__comp0")?, counter("counter__comp1")?),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = run()?;
    for line in &out.order {
        println!("{line}");
    }
    println!("{DISPATCHER} returned {}", out.verdict);
    println!(
        "counter__comp0[0] = {}, counter__comp1[0] = {}",
        out.counters.0, out.counters.1
    );
    Ok(())
}
