//! What the differential tests share: fixtures, generated packets, and
//! running two builds of one program on the same packets with everything
//! observable compared.

#![allow(dead_code)] // each test crate uses its own part

use bpfld::compose::ComponentSpec;
use bpfld::model::object::Object;

pub fn fixture(name: &str) -> Object {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    bpfld::Object::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub fn kernel() -> bool {
    match bpfld_kernel::probe_bpf() {
        Err(e) if matches!(e.kind(), bpfld_kernel::ErrorKind::PermissionDenied) => {
            eprintln!("SKIP (bpf() refused): {e}");
            false
        }
        _ => true,
    }
}

/// A xorshift generator: deterministic "random" numbers.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Deterministic packets: lengths 14..=300 (XDP test runs need an Ethernet
/// header's worth), bytes from a xorshift generator.
pub fn packets(n: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut r = Rng::new(seed);
    (0..n)
        .map(|_| {
            let len = 14 + r.below(287);
            r.bytes(len)
        })
        .collect()
}

/// Ethertypes a program may branch on: IPv4, ARP, VLAN, QinQ, IPv6, and
/// one nobody knows.
const ETHERTYPES: [u16; 6] = [0x0800, 0x0806, 0x8100, 0x88a8, 0x86dd, 0x1234];
/// IP protocols: ICMP, TCP, UDP, GRE, ICMPv6, SCTP, and an unassigned one.
const PROTOCOLS: [u8; 7] = [1, 6, 17, 47, 58, 132, 253];

/// One well-formed frame: Ethernet (maybe with VLAN tags), IPv4 or IPv6
/// with a transport header, or another ethertype's payload; random
/// addresses, ports and payload.
fn frame(r: &mut Rng) -> Vec<u8> {
    let mut f = r.bytes(12);
    f[0] &= 0xfe; // unicast destination, most of the time
    if r.below(8) == 0 {
        f[0] = 0xff;
    }
    let mut ethertype = ETHERTYPES[r.below(ETHERTYPES.len())];
    while matches!(ethertype, 0x8100 | 0x88a8) {
        f.extend(ethertype.to_be_bytes());
        f.extend(r.bytes(2)); // tag control
        ethertype = ETHERTYPES[r.below(ETHERTYPES.len())];
        if f.len() > 22 {
            ethertype = 0x0800;
        }
    }
    f.extend(ethertype.to_be_bytes());
    let proto = PROTOCOLS[r.below(PROTOCOLS.len())];
    let payload = r.below(120);
    let l4 = match proto {
        6 => 20,
        17 => 8,
        1 | 58 => 8,
        _ => 4,
    };
    match ethertype {
        0x0800 => {
            let total = (20 + l4 + payload) as u16;
            let mut ip = vec![0x45, 0];
            ip.extend(total.to_be_bytes());
            ip.extend(r.bytes(4)); // id, fragment
            ip.push(1 + r.below(64) as u8); // ttl
            ip.push(proto);
            ip.extend([0, 0]);
            ip.extend(r.bytes(8)); // addresses
            f.extend(ip);
        }
        0x86dd => {
            f.extend([0x60, 0, 0, 0]);
            f.extend(((l4 + payload) as u16).to_be_bytes());
            f.push(proto);
            f.push(64);
            f.extend(r.bytes(32));
        }
        _ => {}
    }
    f.extend(r.bytes(l4 + payload));
    f
}

/// `n` packets for differential runs: a quarter random bytes, the rest
/// well-formed frames of every ethertype and protocol above, a third of
/// those cut short (at a header boundary, one byte either side of it, or
/// anywhere), never below the 14 bytes XDP test runs need.
pub fn frames(n: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut r = Rng::new(seed);
    let mut out = packets(n / 4, seed ^ 0x5eed);
    while out.len() < n {
        let mut f = frame(&mut r);
        if r.below(3) == 0 {
            let cuts = [14usize, 18, 22, 34, 38, 42, 54, 62, 74];
            let at = match r.below(3) {
                0 => cuts[r.below(cuts.len())],
                1 => cuts[r.below(cuts.len())] + r.below(3) - 1,
                _ => 14 + r.below(f.len().saturating_sub(13).max(1)),
            };
            f.truncate(at.max(14));
        }
        while f.len() < 14 {
            f.push(0);
        }
        out.push(f);
    }
    out
}

pub fn spec(file: &str, program: Option<&str>, chain: Option<u32>) -> ComponentSpec {
    ComponentSpec {
        file: file.into(),
        object: fixture(file),
        program: program.map(str::to_string),
        priority: None,
        chain: chain.map(bpfld::compose::ChainActions::from_bits),
        running: None,
    }
}

pub fn bytes(obj: &Object) -> Vec<u8> {
    obj.to_bytes().expect("write")
}

/// Maps with their entries in key order (hash maps iterate in an order of
/// their own).
pub fn sorted(maps: &[bpfld_kernel::MapDump]) -> Vec<bpfld_kernel::MapDump> {
    let mut m = maps.to_vec();
    for d in &mut m {
        d.entries.sort();
    }
    m
}

/// Runs builds `a` and `b` of program `prog` on the same packets and
/// compares the verdict, the packet out and every map after each packet;
/// returns the verifier's processed-instruction counts (a, b) when the
/// kernel reports them.
pub fn same_runs(
    what: &str,
    a: &Object,
    b: &Object,
    prog: &str,
    pk: &[Vec<u8>],
) -> Option<(u32, u32)> {
    let refs: Vec<&[u8]> = pk.iter().map(Vec::as_slice).collect();
    let ra = bpfld_kernel::run_packets(&bytes(a), Some(prog), &refs, 1)
        .unwrap_or_else(|e| panic!("{what}, first build: {}", e.message()));
    let rb = bpfld_kernel::run_packets(&bytes(b), Some(prog), &refs, 1)
        .unwrap_or_else(|e| panic!("{what}, second build: {}", e.message()));
    assert_eq!(ra.len(), rb.len(), "{what}: runs");
    let mut verdicts = std::collections::BTreeSet::new();
    for (n, (x, y)) in ra.iter().zip(&rb).enumerate() {
        assert_eq!(x.retval, y.retval, "{what}: packet {n} verdict");
        assert_eq!(x.data_out, y.data_out, "{what}: packet {n} data out");
        assert_eq!(sorted(&x.maps), sorted(&y.maps), "{what}: packet {n} maps");
        verdicts.insert(x.retval);
    }
    if verdicts.len() <= 8 {
        eprintln!("{what}: {} packets, verdicts {verdicts:?}", ra.len());
    } else {
        eprintln!("{what}: {} packets, {} verdicts", ra.len(), verdicts.len());
    }
    match (ra[0].verified_insns, rb[0].verified_insns) {
        (Some(x), Some(y)) => Some((x, y)),
        _ => None,
    }
}

/// The `--resolve` setups both differential tests link: the main input
/// (`res_dispatcher.o`, program `res_dispatch`, externs slot0..slot2),
/// and per case its name, the component objects and the resolves.
#[allow(dead_code)] // each test binary uses its own part of this module
pub fn resolve_cases() -> Vec<(
    &'static str,
    Vec<bpfld::link::Input>,
    Vec<bpfld::link::Resolve>,
)> {
    let cases: [(&str, [(&str, &str); 3]); 2] = [
        (
            "count/mark/verdict",
            [
                ("comp_count.o", "xdp_count"),
                ("comp_mark.o", "xdp_mark"),
                ("comp_mark.o", "mark_verdict"),
            ],
        ),
        (
            "parse/sum4/len",
            [
                ("comp_parse.o", "xdp_parse"),
                ("xdp_compute.o", "xdp_sum4"),
                ("xdp_compute.o", "xdp_len"),
            ],
        ),
    ];
    cases
        .into_iter()
        .map(|(what, slots)| {
            let mut files: Vec<&str> = slots.iter().map(|s| s.0).collect();
            files.dedup();
            let components = files
                .iter()
                .map(|f| bpfld::link::Input {
                    name: f.to_string(),
                    object: fixture(f),
                })
                .collect();
            let resolves = slots
                .iter()
                .enumerate()
                .map(|(n, (f, func))| bpfld::link::Resolve {
                    extern_name: format!("slot{n}"),
                    component: files.iter().position(|x| x == f).unwrap(),
                    function: func.to_string(),
                })
                .collect();
            (what, components, resolves)
        })
        .collect()
}

/// The main input of [`resolve_cases`].
#[allow(dead_code)]
pub fn resolve_main() -> [bpfld::link::Input; 1] {
    [bpfld::link::Input {
        name: "res_dispatcher.o".into(),
        object: fixture("res_dispatcher.o"),
    }]
}
