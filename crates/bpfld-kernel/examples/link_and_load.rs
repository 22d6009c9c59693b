//! Link a dispatcher and two components in memory with bpfld, hand the
//! bytes to aya, and run the result once in the kernel (needs root).
//!
//!     cargo run -p bpfld-kernel --example link_and_load
//!
//! The dispatcher (fixtures/res_dispatcher.o) declares `extern int
//! slot0(struct xdp_md *)` and two more; comp_count.o and comp_mark.o fill
//! them with their XDP programs and a .text function, whatever those are
//! called, which libbpf's linker cannot do.
//!
//! tests/examples.rs runs [`run`] and checks what it returns.

use aya::maps::Array;
use aya::programs::{TestRun, TestRunOptions, Xdp};
use aya::Ebpf;
use bpfld::link::{link_bytes, LinkOptions};

/// What one run of the linked dispatcher gave.
#[derive(Debug)]
pub struct Outcome {
    /// The dispatcher's verdict.
    pub verdict: u32,
    /// `counter[0]` of comp_mark's instance (`counter__slot1`).
    pub mark_counter: u64,
    /// Every map of the linked object, by name.
    pub maps: Vec<String>,
}

/// Links the three objects in memory, loads the result with aya and
/// test-runs `res_dispatch` once on a 64-byte packet.
pub fn run() -> Result<Outcome, Box<dyn std::error::Error>> {
    let dispatcher = include_bytes!("../../../fixtures/res_dispatcher.o");
    let count = include_bytes!("../../../fixtures/comp_count.o");
    let mark = include_bytes!("../../../fixtures/comp_mark.o");

    let opts = LinkOptions::default()
        .resolve("slot0", 0, "xdp_count")
        .resolve("slot1", 1, "xdp_mark")
        .resolve("slot2", 1, "mark_verdict");
    let bytes = link_bytes(
        &[("res_dispatcher.o", dispatcher)],
        &[("comp_count.o", count), ("comp_mark.o", mark)],
        &opts,
    )?;

    let mut ebpf = Ebpf::load(&bytes)?;
    let prog: &mut Xdp = ebpf
        .program_mut("res_dispatch")
        .ok_or("no program res_dispatch")?
        .try_into()?;
    prog.load()?;
    let packet = [0u8; 64];
    let result = prog.test_run(TestRunOptions {
        data_in: Some(&packet),
        ..TestRunOptions::new()
    })?;
    let counter: Array<_, u64> =
        Array::try_from(ebpf.map("counter__slot1").ok_or("no map counter__slot1")?)?;
    Ok(Outcome {
        verdict: result.return_value,
        mark_counter: counter.get(&0, 0)?,
        maps: ebpf.maps().map(|(name, _)| name.to_string()).collect(),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = run()?;
    println!("res_dispatch returned {}", out.verdict);
    println!("counter__slot1[0] = {}", out.mark_counter);
    for name in &out.maps {
        println!("map {name}");
    }
    Ok(())
}
