//! `bpfld xdp attach | status | detach` on real interfaces: a veth pair
//! between two network namespaces each test creates and deletes. Raw
//! Ethernet frames (a local experimental ethertype, so nothing else in the
//! namespaces reacts) are sent with an AF_PACKET socket on one side and
//! counted with an AF_PACKET socket on the other (frames the XDP program
//! passes reach it; dropped ones do not), and by the components' own
//! counters read with bpftool.
//!
//! When bpf() or network namespaces are refused, each test prints `SKIP`
//! and passes; any other failure fails.

mod common;
use common::*;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const ETHERTYPE: u16 = 0x88b5;

/// Two namespaces joined by a veth pair (`va` in `a`, `vb` in `b`), with
/// IPv6 off so the only frames on the link are the test's; deleted on drop.
struct Pair {
    a: String,
    b: String,
    va: String,
    vb: String,
}

fn sh(args: &[&str]) -> Result<(), String> {
    let o = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

impl Pair {
    /// `None` (with a SKIP line) when namespaces or bpf() are refused.
    fn new(test: &str) -> Option<Pair> {
        static N: AtomicU32 = AtomicU32::new(0);
        if let Err(e) = bpfld_kernel::probe_bpf() {
            eprintln!("SKIP {test}: bpf() refused: {e}");
            return None;
        }
        let n = N.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}{n}", std::process::id() % 100_000);
        let p = Pair {
            a: format!("bpfld-at-{id}-a"),
            b: format!("bpfld-at-{id}-b"),
            va: format!("xa{id}"),
            vb: format!("xb{id}"),
        };
        if let Err(e) = sh(&["ip", "netns", "add", &p.a]) {
            eprintln!("SKIP {test}: cannot create a network namespace: {e}");
            return None;
        }
        let setup = || -> Result<(), String> {
            sh(&["ip", "netns", "add", &p.b])?;
            for ns in [&p.a, &p.b] {
                sh(&[
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    "sysctl",
                    "-qw",
                    "net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1",
                ])?;
            }
            sh(&[
                "ip", "link", "add", &p.va, "netns", &p.a, "type", "veth", "peer", "name", &p.vb,
                "netns", &p.b,
            ])?;
            sh(&["ip", "-n", &p.a, "link", "set", &p.va, "up"])?;
            sh(&["ip", "-n", &p.b, "link", "set", &p.vb, "up"])?;
            Ok(())
        };
        setup().expect("veth pair between two namespaces");
        Some(p)
    }

    /// bpfld run inside namespace `b` (where the programs go).
    fn bpfld_b(&self, args: &[&str]) -> std::process::Output {
        bpfld_in_netns(&self.b)
            .args(args)
            .output()
            .expect("ip netns exec bpfld")
    }

    /// bpfld run inside namespace `b`, in directory `dir` (for relative
    /// paths).
    fn ok_b_in(&self, dir: &std::path::Path, args: &[&str]) -> String {
        let o = bpfld_in_netns(&self.b)
            .args(args)
            .current_dir(dir)
            .output()
            .expect("ip netns exec bpfld");
        succeeded(&o, args)
    }

    fn ok_b(&self, args: &[&str]) -> String {
        succeeded(&self.bpfld_b(args), args)
    }

    /// `xdp attach --dev VB ARGS`.
    fn attach_args<'s>(&'s self, args: &[&'s str]) -> Vec<&'s str> {
        [&["xdp", "attach", "--dev", self.vb.as_str()][..], args].concat()
    }

    /// `bpfld xdp attach --dev VB ARGS` inside namespace `b`.
    fn attach_b(&self, args: &[&str]) -> std::process::Output {
        self.bpfld_b(&self.attach_args(args))
    }

    fn ok_attach_b(&self, args: &[&str]) -> String {
        self.ok_b(&self.attach_args(args))
    }

    /// `bpftool -j ARGS` inside namespace `b`.
    fn bpftool_b(&self, args: &[&str]) -> serde_json::Value {
        let o = Command::new("ip")
            .args(["netns", "exec", &self.b, "bpftool", "-j"])
            .args(args)
            .output()
            .expect("bpftool runs");
        assert!(o.status.success(), "bpftool {args:?}: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).expect("bpftool JSON")
    }

    /// `ip link show` of vb (in b).
    fn link_b(&self) -> String {
        let o = Command::new("ip")
            .args(["-n", &self.b, "-d", "link", "show", &self.vb])
            .output()
            .expect("ip link");
        stdout(&o)
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        // Deleting the namespaces deletes the veth pair and its programs.
        let _ = sh(&["ip", "netns", "del", &self.a]);
        let _ = sh(&["ip", "netns", "del", &self.b]);
    }
}

/// Runs `f` in a thread that has entered network namespace `ns`; sockets
/// made there stay in that namespace.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("netns file");
        // SAFETY: setns on a valid namespace fd affects only this thread.
        let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("netns thread")
}

/// An AF_PACKET socket bound to `ifname` in `ns`, receiving `proto`
/// frames (0: none, a send-only socket).
fn packet_socket(ns: &str, ifname: &str, proto: u16) -> OwnedFd {
    let ifname = ifname.to_string();
    in_netns(ns, move || {
        // SAFETY: plain socket(2).
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto.to_be())) };
        assert!(
            fd >= 0,
            "AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: a new descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let c = std::ffi::CString::new(ifname).unwrap();
        // SAFETY: valid C string.
        let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
        assert!(index > 0);
        // SAFETY: sockaddr_ll is plain data; zeroed is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto.to_be();
        sll.sll_ifindex = index as i32;
        // SAFETY: sll is a valid sockaddr_ll of the size passed.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
        let big: libc::c_int = 8 << 20;
        // SAFETY: option values are c_ints of the size passed.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                &big as *const libc::c_int as *const libc::c_void,
                4,
            );
            let tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 200_000,
            };
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const libc::timeval as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as u32,
            );
        }
        fd
    })
}

/// One broadcast frame with the test ethertype and a sequence number.
fn frame(seq: u32) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f.extend_from_slice(&ETHERTYPE.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.resize(60, 0);
    f
}

fn send_frames(sock: &OwnedFd, from: u32, count: u32, pace: Duration) {
    for i in from..from + count {
        let f = frame(i);
        // SAFETY: f is valid for f.len() bytes.
        let n = unsafe {
            libc::send(
                sock.as_raw_fd(),
                f.as_ptr() as *const libc::c_void,
                f.len(),
                0,
            )
        };
        assert_eq!(
            n as usize,
            f.len(),
            "send: {}",
            std::io::Error::last_os_error()
        );
        if !pace.is_zero() {
            std::thread::sleep(pace);
        }
    }
}

/// Receives test frames until `want` have come or nothing came for a
/// while; returns the distinct sequence numbers seen.
fn receive(sock: &OwnedFd, want: usize, quiet: Duration) -> std::collections::BTreeSet<u32> {
    let mut seen = std::collections::BTreeSet::new();
    let mut last = Instant::now();
    let mut buf = [0u8; 2048];
    while seen.len() < want && last.elapsed() < quiet {
        // SAFETY: buf is valid for its length.
        let n = unsafe {
            libc::recv(
                sock.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                0,
            )
        };
        if n >= 18 && buf[12..14] == ETHERTYPE.to_be_bytes() {
            seen.insert(u32::from_be_bytes(buf[14..18].try_into().unwrap()));
            last = Instant::now();
        }
    }
    seen
}

/// The program id attached to vb, from `bpfld xdp status --json`.
fn status_json(p: &Pair) -> serde_json::Value {
    let text = p.ok_b(&["xdp", "status", "--dev", &p.vb, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&text).expect("status JSON");
    v[0].clone()
}

/// The id of the attached program's map that the composition names
/// `name` (`NAME__compN`, `.data.compN`: by its slot now), from `bpfld
/// xdp status --json`, checked against what the kernel says the program
/// uses.
fn map_id(p: &Pair, name: &str) -> String {
    let st = status_json(p);
    let id = st["prog_id"].as_u64().expect("a program");
    let prog = p.bpftool_b(&["prog", "show", "id", &id.to_string()]);
    let m = st["maps"]
        .as_array()
        .expect("maps")
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no map '{name}' in program {id}: {}", st["maps"]));
    let mid = m["id"].as_u64().unwrap();
    assert!(
        prog["map_ids"].as_array().unwrap().contains(&mid.into()),
        "{prog}"
    );
    mid.to_string()
}

/// The kernel's name of the attached program's map `name` (composition
/// name).
fn kernel_name(p: &Pair, name: &str) -> String {
    let info = p.bpftool_b(&["map", "show", "id", &map_id(p, name)]);
    info["name"].as_str().unwrap().to_string()
}

/// The value of key 0 of the attached program's map named `name`, as
/// little-endian u64s.
fn map_u64s(p: &Pair, name: &str) -> Vec<u64> {
    let m = map_id(p, name);
    let v = p.bpftool_b(&["map", "lookup", "id", &m, "key", "0", "0", "0", "0"]);
    let bytes: Vec<u8> = v["value"]
        .as_array()
        .expect("value bytes")
        .iter()
        .map(|b| u8::from_str_radix(b.as_str().unwrap().trim_start_matches("0x"), 16).unwrap())
        .collect();
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// The little-endian u64 at `offset` of key 0 of the attached program's
/// map named `name`.
fn map_u64(p: &Pair, name: &str, offset: usize) -> u64 {
    map_u64s(p, name)[offset / 8]
}

fn drop_and_pass(mode: &str) {
    let test = format!("drop_and_pass_{mode}");
    let Some(p) = Pair::new(&test) else { return };
    let rx = packet_socket(&p.b, &p.vb, ETHERTYPE);
    let tx = packet_socket(&p.a, &p.va, 0);

    // Counting first, then dropping: every frame is counted, none arrives.
    let count = format!("{}:xdp_count", fx("comp_count.o"));
    let drop = format!("{},priority=60", fx("xdp_drop.o"));
    p.ok_attach_b(&["--mode", mode, &count, &drop]);
    let expect_flag = if mode == "skb" { "xdpgeneric" } else { "xdp " };
    assert!(p.link_b().contains(expect_flag), "{}", p.link_b());
    send_frames(&tx, 0, 50, Duration::ZERO);
    let got = receive(&rx, 1, Duration::from_millis(500));
    assert!(got.is_empty(), "dropped frames arrived: {got:?}");
    assert_eq!(map_u64(&p, "counter__comp0", 0), 50);

    // Replaced by a passing composition: all arrive.
    p.ok_attach_b(&[&fx("xdp_pass.o"), &fx("comp_tally.o")]);
    send_frames(&tx, 100, 50, Duration::ZERO);
    let got = receive(&rx, 50, Duration::from_secs(2));
    assert_eq!(got, (100..150).collect(), "passed frames");
}

#[test]
fn drop_component_drops_pass_composition_passes_skb() {
    drop_and_pass("skb");
}

#[test]
fn drop_component_drops_pass_composition_passes_native() {
    drop_and_pass("native");
}

fn replace_under_traffic(mode: &str) {
    let test = format!("replace_under_traffic_{mode}");
    let Some(p) = Pair::new(&test) else { return };
    let rx = packet_socket(&p.b, &p.vb, ETHERTYPE);
    let tx = packet_socket(&p.a, &p.va, 0);
    let tally = fx("comp_tally.o");
    let pass = fx("xdp_pass.o");
    let data = fx("comp_data.o");
    let count = format!("{}:xdp_count", fx("comp_count.o"));
    p.ok_attach_b(&["--mode", mode, &count, &tally, &data]);
    // At the start and at the end, comp_count (its counter and its globals,
    // `seen`) is in slot comp0, comp_data (four counters) in comp1,
    // comp_tally (`tally`) in comp2 (equal priorities run in the order of
    // their programs' names, as in libxdp).
    let names = [
        "counter__comp0",
        ".data.comp0",
        ".data.comp1",
        ".data.comp2",
    ];
    let ids: Vec<String> = names.iter().map(|n| map_id(&p, n)).collect();

    // 3000 frames over about 1.5 s while the composition changes 20 times;
    // the three counting components stay in every one, in varying slots.
    let sender = std::thread::spawn(move || {
        send_frames(&tx, 0, 3000, Duration::from_micros(500));
        tx
    });
    let receiver = std::thread::spawn(move || receive(&rx, 3000, Duration::from_secs(3)));
    // The same files spelled other ways (relative to the fixtures
    // directory, through `..`) and with other priorities now and then.
    let fixtures = fixtures_dir();
    let count_rel = "./comp_count.o:xdp_count";
    let data_up = format!("{}/../fixtures/comp_data.o", fixtures.display());
    let tally_first = format!("{tally},priority=5");
    let count_last = "comp_count.o:xdp_count,priority=90";
    let mut progs = std::collections::BTreeSet::new();
    for i in 0..20 {
        let comps: Vec<&str> = match i % 3 {
            0 => vec![&pass, count_rel, &tally, &data_up],
            1 => vec![&count, &data, &tally],
            _ if i % 2 == 0 => vec![&data_up, &tally_first, &pass, count_last],
            _ => vec![&data, &tally, &pass, &count],
        };
        let mut args = vec!["xdp", "attach", "--dev", &p.vb];
        args.extend(comps);
        p.ok_b_in(&fixtures, &args);
        progs.insert(status_json(&p)["prog_id"].as_u64().unwrap());
    }
    let _tx = sender.join().unwrap();
    let got = receiver.join().unwrap();
    assert_eq!(progs.len(), 20, "20 different programs were attached");
    let missing: Vec<u32> = (0..3000).filter(|s| !got.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "{} frames lost: {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    // Every map went from program to program, the instances' global
    // variables too: they counted every frame, whichever program was
    // attached, and no update was lost at a swap.
    for (n, id) in names.iter().zip(&ids) {
        assert_eq!(&map_id(&p, n), id, "{n} handed over");
    }
    assert_eq!(map_u64(&p, "counter__comp0", 0), 3000);
    assert_eq!(map_u64s(&p, ".data.comp0"), [3000], "seen");
    assert_eq!(map_u64s(&p, ".data.comp2"), [3000], "tally");
    // hits (from 1000), custom_hits (from 7), zeroed, static runs.
    assert_eq!(map_u64s(&p, ".data.comp1"), [4000, 3007, 3000, 3000]);
}

#[test]
fn replace_twenty_times_under_traffic_loses_nothing_skb() {
    replace_under_traffic("skb");
}

#[test]
fn replace_twenty_times_under_traffic_loses_nothing_native() {
    replace_under_traffic("native");
}

#[test]
fn kept_component_keeps_counting_and_status_detach() {
    let Some(p) = Pair::new("kept_component_keeps_counting") else {
        return;
    };
    let tx = packet_socket(&p.a, &p.va, 0);
    let count = format!("{}:xdp_count", fx("comp_count.o"));
    let tally = fx("comp_tally.o");
    p.ok_attach_b(&["--mode", "skb", &count, &tally]);
    send_frames(&tx, 0, 10, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(map_u64(&p, "counter__comp0", 0), 10);
    let counter_id = map_id(&p, "counter__comp0");
    let counter_name = kernel_name(&p, "counter__comp0");

    // A new first component moves comp_count to slot comp1 and the tally
    // to comp2: the counter map goes with it, and so do the maps of their
    // global variables.
    let first = format!("{},priority=10", fx("xdp_pass.o"));
    let out = p.ok_attach_b(&[&first, &count, &tally]);
    assert!(
        out.contains("kept: counter__comp1 .data.comp1 .data.comp2\n"),
        "{out}"
    );
    send_frames(&tx, 10, 5, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(200));
    // The same map, under the same kernel name.
    assert_eq!(map_id(&p, "counter__comp1"), counter_id);
    assert_eq!(kernel_name(&p, "counter__comp1"), counter_name);
    assert_eq!(map_u64(&p, "counter__comp1", 0), 15);

    // Replaced again (comp_count back to comp0): still the same map.
    p.ok_attach_b(&[&count, &tally]);
    send_frames(&tx, 15, 1, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(map_id(&p, "counter__comp0"), counter_id);
    assert_eq!(map_u64(&p, "counter__comp0", 0), 16);
    p.ok_attach_b(&[&first, &count, &tally]);
    // `seen` (comp1's) and `tally` (comp2's) saw all 16 frames.
    let st = status_json(&p);
    assert_eq!(st["mode"], "skb");
    let comps = st["components"].as_array().unwrap();
    let names: Vec<(String, u64)> = comps
        .iter()
        .map(|c| {
            (
                format!(
                    "{}:{}",
                    c["slot"].as_str().unwrap(),
                    c["program"].as_str().unwrap()
                ),
                c["priority"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("comp0:xdp_pass".to_string(), 10),
            ("comp1:xdp_count".to_string(), 50),
            ("comp2:xdp_tally".to_string(), 50)
        ]
    );
    assert!(
        comps
            .iter()
            .all(|c| c["chain"] == serde_json::json!(["XDP_PASS"])),
        "chain XDP_PASS"
    );
    assert_eq!(map_u64s(&p, ".data.comp1"), [16], "seen");
    assert_eq!(map_u64s(&p, ".data.comp2"), [16], "tally");

    // Text status names the components in order.
    let text = p.ok_b(&["xdp", "status"]);
    assert!(
        text.contains(&format!("{}: skb mode, program", p.vb)),
        "{text}"
    );
    let i0 = text.find("comp0: ").unwrap();
    let i1 = text.find("comp1: ").unwrap();
    let i2 = text.find("comp2: ").unwrap();
    assert!(
        i0 < i1 && i1 < i2 && text.contains("xdp_count priority 50 chain XDP_PASS"),
        "{text}"
    );

    // --fresh: everything starts again from zero.
    p.ok_attach_b(&["--fresh", &first, &count, &tally]);
    send_frames(&tx, 20, 3, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(map_u64(&p, "counter__comp1", 0), 3);
    assert_ne!(map_id(&p, "counter__comp1"), counter_id, "a new map");
    assert_eq!(kernel_name(&p, "counter__comp1"), counter_name, "same name");
    assert_eq!(map_u64s(&p, ".data.comp1"), [3], "seen, new");
    assert_eq!(map_u64s(&p, ".data.comp2"), [3], "tally, new");

    // The attachment outlived every bpfld process; detach leaves the
    // interface without XDP.
    p.ok_b(&["xdp", "detach", "--dev", &p.vb]);
    let link = p.link_b();
    assert!(
        !link.contains("prog/xdp") && !link.contains("xdpgeneric"),
        "{link}"
    );
    assert_eq!(status_json(&p)["prog_id"], 0);
    let o = p.bpfld_b(&["xdp", "detach", "--dev", &p.vb]);
    assert!(!o.status.success() && stderr(&o).contains("has no XDP program"));
}

/// The kernel names of the attached program's maps, sorted.
fn map_names(p: &Pair) -> Vec<String> {
    let id = status_json(p)["prog_id"].as_u64().expect("a program");
    let prog = p.bpftool_b(&["prog", "show", "id", &id.to_string()]);
    let mut names: Vec<String> = prog["map_ids"]
        .as_array()
        .expect("map ids")
        .iter()
        .map(|m| {
            let info = p.bpftool_b(&["map", "show", "id", &m.as_u64().unwrap().to_string()]);
            info["name"].as_str().unwrap().to_string()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn kernel_map_names_follow_the_component_not_its_slot() {
    let Some(p) = Pair::new("kernel_map_names") else {
        return;
    };
    let tx = packet_socket(&p.a, &p.va, 0);
    let count = format!("{}:xdp_count", fx("comp_count.o"));
    let long = fx("comp_longname.o");
    let data = format!("{},priority=10", fx("comp_data.o"));
    p.ok_attach_b(&["--mode", "skb", &count, &long]);
    send_frames(&tx, 0, 4, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(200));
    // comp0 xdp_count, comp1 xdp_longname. Each component's maps end with
    // its tag; two names alike in their first bytes stay apart.
    let before: Vec<(String, String, String)> = [
        "counter__comp0",
        ".data.comp0",
        "packets_by_length_seen__comp1",
        "packets_by_length_sum__comp1",
    ]
    .iter()
    .map(|n| (n.to_string(), map_id(&p, n), kernel_name(&p, n)))
    .collect();
    let tag = |k: &str| k.rsplit(['_', '.']).next().unwrap().to_string();
    let (count_tag, long_tag) = (tag(&before[0].2), tag(&before[2].2));
    assert_eq!(count_tag.len(), 4, "{before:?}");
    assert_ne!(count_tag, long_tag);
    assert_eq!(before[0].2, format!("counter_{count_tag}"));
    assert_eq!(before[1].2, format!(".data.{count_tag}"));
    assert_eq!(before[2].2, format!("packets_by_{long_tag}"));
    assert_eq!(before[3].2, format!("packets_b1_{long_tag}"));
    assert_eq!(map_u64(&p, "packets_by_length_seen__comp1", 0), 4);
    // status tells which component each belongs to.
    let st = status_json(&p);
    let comp_of = |k: &str| {
        st["maps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["kernel_name"] == k)
            .map(|m| m["component"].as_str().unwrap().to_string())
    };
    assert_eq!(comp_of(&before[0].2).as_deref(), Some("comp0"));
    assert_eq!(comp_of(&before[3].2).as_deref(), Some("comp1"));

    // A new first component moves both: every map is kept, contents and
    // kernel names alike, the long-named ones too.
    let out = p.ok_attach_b(&[&data, &count, &long]);
    assert!(
        out.contains(
            "kept: counter__comp1 .data.comp1 packets_by_length_seen__comp2 packets_by_length_sum__comp2\n"
        ),
        "{out}"
    );
    send_frames(&tx, 4, 5, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(200));
    let moved = [
        "counter__comp1",
        ".data.comp1",
        "packets_by_length_seen__comp2",
        "packets_by_length_sum__comp2",
    ];
    for ((old, id, kname), new) in before.iter().zip(moved) {
        assert_eq!(&map_id(&p, new), id, "{old} is {new}");
        assert_eq!(&kernel_name(&p, new), kname, "{old} is {new}");
    }
    assert_eq!(map_u64(&p, "counter__comp1", 0), 9);
    assert_eq!(map_u64(&p, "packets_by_length_seen__comp2", 0), 9);
    assert_eq!(map_u64s(&p, ".data.comp0"), [1005, 12, 5, 5], "comp_data's");
    let names = map_names(&p);
    let mut unique = names.clone();
    unique.dedup();
    assert_eq!(names, unique, "no two maps of one name");

    // --fresh with yet another order: new maps, the same names.
    p.ok_attach_b(&["--fresh", &long, &count]);
    assert_eq!(kernel_name(&p, "counter__comp0"), before[0].2);
    assert_eq!(kernel_name(&p, "packets_by_length_sum__comp1"), before[3].2);
    assert_ne!(map_id(&p, "counter__comp0"), before[0].1);
    send_frames(&tx, 9, 1, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(map_u64(&p, "counter__comp0", 0), 1);
}

#[test]
fn foreign_program_needs_force_and_errors_are_clear() {
    let Some(p) = Pair::new("foreign_program_needs_force") else {
        return;
    };
    // A program attached by someone else (ip) is not clobbered.
    sh(&[
        "ip",
        "-n",
        &p.b,
        "link",
        "set",
        &p.vb,
        "xdpgeneric",
        "obj",
        &fx("xdp_pass.o"),
        "sec",
        "xdp",
    ])
    .expect("ip attaches");
    let o = p.attach_b(&[&fx("comp_tally.o")]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("bpfld did not attach; --force replaces it"),
        "{}",
        stderr(&o)
    );
    let st = status_json(&p);
    assert_eq!(st["bpfld"], false);
    assert_eq!(st["prog_name"], "xdp_pass");
    p.ok_attach_b(&["--force", &fx("comp_tally.o")]);
    assert_eq!(status_json(&p)["bpfld"], true);

    // A different mode than the running one.
    let o = p.attach_b(&["--mode", "native", &fx("comp_tally.o")]);
    assert!(
        stderr(&o).contains("runs in skb mode; detach it"),
        "{}",
        stderr(&o)
    );

    // Unknown interface.
    let o = p.bpfld_b(&["xdp", "attach", "--dev", "nosuchdev0", &fx("comp_tally.o")]);
    assert!(
        stderr(&o).contains("no such interface 'nosuchdev0'"),
        "{}",
        stderr(&o)
    );
    let o = p.bpfld_b(&["xdp", "status", "--dev", "nosuchdev0"]);
    assert!(stderr(&o).contains("no such interface"), "{}", stderr(&o));

    // Native mode on a device without driver XDP (loopback).
    let o = p.bpfld_b(&[
        "xdp",
        "attach",
        "--dev",
        "lo",
        "--mode",
        "native",
        &fx("comp_tally.o"),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("does not support"), "{}", stderr(&o));

    // Missing privileges: bpfld without capabilities (setpriv drops them).
    if have_tool("setpriv", "attach without privileges") {
        let o = bpfld_b_unprivileged(&p, &["xdp", "attach", "--dev", &p.vb, &fx("comp_tally.o")]);
        assert!(!o.status.success());
        assert!(stderr(&o).contains("permission denied"), "{}", stderr(&o));
    }
}

#[test]
fn one_file_however_spelled_is_one_component() {
    let Some(p) = Pair::new("one_file_however_spelled") else {
        return;
    };
    let tx = packet_socket(&p.a, &p.va, 0);
    let dir = tmpdir("attach-spelling");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let obj = dir.join("count.o");
    std::fs::copy(fixture("comp_count.o"), &obj).unwrap();
    let abs = format!("{}:xdp_count", obj.display());
    let tally = format!("{},priority=10", fx("comp_tally.o"));

    p.ok_b_in(
        &dir,
        &[
            "xdp",
            "attach",
            "--dev",
            &p.vb,
            "--mode",
            "skb",
            "./count.o:xdp_count",
        ],
    );
    send_frames(&tx, 0, 5, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(200));
    let counter = map_id(&p, "counter__comp0");
    assert_eq!(map_u64(&p, "counter__comp0", 0), 5);
    // Its canonical path is recorded, and shown.
    assert_eq!(
        status_json(&p)["components"][0]["path"],
        obj.canonicalize().unwrap().to_str().unwrap()
    );

    // The absolute path, with a new first component: the same component,
    // now in slot comp1, keeps its counter and its globals.
    let out = p.ok_attach_b(&[&tally, &abs]);
    assert!(out.contains("comp0: "), "{out}");
    assert!(
        out.contains(":xdp_tally priority 10 chain XDP_PASS (new)\n"),
        "{out}"
    );
    assert!(
        out.contains(":xdp_count priority 50 chain XDP_PASS (running as comp0: kept)\n"),
        "{out}"
    );
    assert!(
        out.contains("  kept: counter__comp1 .data.comp1\n"),
        "{out}"
    );
    assert!(out.contains("  fresh: .data.comp0\n"), "{out}");
    send_frames(&tx, 5, 2, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(map_id(&p, "counter__comp1"), counter);
    assert_eq!(map_u64(&p, "counter__comp1", 0), 7);

    // `sub/../count.o`, relative again.
    let out = p.ok_b_in(
        &dir,
        &[
            "xdp",
            "attach",
            "--dev",
            &p.vb,
            &tally,
            "sub/../count.o:xdp_count",
        ],
    );
    assert!(out.contains("(running: kept)"), "{out}");
    assert!(!out.contains("fresh"), "{out}");
    send_frames(&tx, 7, 1, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(map_id(&p, "counter__comp1"), counter);
    assert_eq!(map_u64(&p, "counter__comp1", 0), 8);

    // Rebuilt in place (a new file at the same path): still the same.
    std::fs::remove_file(&obj).unwrap();
    std::fs::copy(fixture("comp_count.o"), &obj).unwrap();
    let out = p.ok_b_in(
        &dir,
        &[
            "xdp",
            "attach",
            "--dev",
            &p.vb,
            &tally,
            "./count.o:xdp_count",
        ],
    );
    assert!(
        out.contains("kept: counter__comp1 .data.comp1 .data.comp0\n")
            || out.contains("kept: .data.comp0 counter__comp1 .data.comp1\n"),
        "{out}"
    );
    send_frames(&tx, 8, 1, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(map_id(&p, "counter__comp1"), counter);
    assert_eq!(map_u64(&p, "counter__comp1", 0), 9);
    assert_eq!(map_u64s(&p, ".data.comp1"), [9], "seen");

    // The same, as JSON.
    let out = p.ok_attach_b(&["--json", &tally, &abs]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("attach JSON");
    assert_eq!(v["components"][1]["program"], "xdp_count");
    assert_eq!(v["components"][1]["kept_from"], "comp1");
    assert_eq!(
        v["components"][1]["path"],
        obj.canonicalize().unwrap().to_str().unwrap()
    );
    assert_eq!(v["components"][0]["chain"], serde_json::json!(["XDP_PASS"]));
    let mut kept: Vec<&str> = v["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    kept.sort();
    assert_eq!(kept, [".data.comp0", ".data.comp1", "counter__comp1"]);
    assert_eq!(v["fresh"], serde_json::json!([]));
    assert!(v["replaced"].as_u64().is_some());
    assert_eq!(v["prog_id"], status_json(&p)["prog_id"]);

    // Another file spelled the same way (`./count.o` in another
    // directory) is another component: its maps start fresh.
    let other = tmpdir("attach-spelling-other");
    std::fs::copy(fixture("comp_count.o"), other.join("count.o")).unwrap();
    let out = p.ok_b_in(
        &other,
        &[
            "xdp",
            "attach",
            "--dev",
            &p.vb,
            &tally,
            "./count.o:xdp_count",
        ],
    );
    assert!(
        out.contains(":xdp_count priority 50 chain XDP_PASS (new)\n"),
        "{out}"
    );
    assert!(out.contains("fresh: .data.comp1 counter__comp1\n"), "{out}");
    send_frames(&tx, 9, 1, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(map_u64(&p, "counter__comp1", 0), 1);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&other);
}

/// bpfld without privileges (setpriv as nobody, no capabilities) in
/// namespace b.
fn bpfld_b_unprivileged(p: &Pair, args: &[&str]) -> std::process::Output {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            &p.b,
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_bpfld"))
        .args(args)
        .output()
        .expect("setpriv runs")
}

#[test]
fn status_shows_run_order_and_action_names() {
    let Some(p) = Pair::new("status_run_order") else {
        return;
    };
    // Nothing attached: said, and not an error.
    assert_eq!(
        p.ok_b(&["xdp", "status"]),
        "no interface has an XDP program\n"
    );
    assert_eq!(
        p.ok_b(&["xdp", "status", "--dev", &p.vb]),
        format!("{}: no XDP program\n", p.vb)
    );
    assert_eq!(p.ok_b(&["xdp", "status", "--json"]).trim(), "[]");

    // Command-line order count, tally, pass; run order pass (10), count,
    // tally (50 each, then as libxdp breaks ties).
    let count = format!("{}:xdp_count,chain=PASS+TX", fx("comp_count.o"));
    let tally = fx("comp_tally.o");
    let pass = format!("{},priority=10", fx("xdp_pass.o"));
    // After tally, which continues, nothing: a component after one that
    // never continues is left out, with a warning on stderr.
    let tally_last = format!("{tally},chain=none");
    let late = format!("{},priority=99", fx("xdp_drop.o"));
    let o = p.attach_b(&["--mode", "skb", "--json", &count, &tally_last, &pass, &late]);
    assert!(o.status.success(), "{}", stderr(&o));
    let warning = format!(
        "left out: {}:xdp_drop (an earlier component never continues the chain, so it would never run)",
        fx("xdp_drop.o")
    );
    assert_eq!(stderr(&o), format!("bpfld: warning: {warning}\n"));
    let attached: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(attached["warnings"], serde_json::json!([warning]));
    assert_eq!(
        attached["left_out"],
        serde_json::json!([{"file": fx("xdp_drop.o"), "program": "xdp_drop"}])
    );
    let st = status_json(&p);
    // attach and status name a component with the same fields.
    assert_eq!(attached["prog_id"], st["prog_id"]);
    let shown = attached["components"].as_array().unwrap();
    assert_eq!(shown.len(), 3, "{attached}");
    for (a, s) in shown.iter().zip(st["components"].as_array().unwrap()) {
        for field in [
            "index", "file", "program", "priority", "chain", "slot", "path",
        ] {
            assert_eq!(a[field], s[field], "{field}: {a} against {s}");
        }
    }
    let comps: Vec<(String, String, u64, serde_json::Value)> = st["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["slot"].as_str().unwrap().to_string(),
                c["program"].as_str().unwrap().to_string(),
                c["priority"].as_u64().unwrap(),
                c["chain"].clone(),
            )
        })
        .collect();
    let pass_chain = serde_json::json!(["XDP_PASS"]);
    assert_eq!(
        comps,
        [
            ("comp0".into(), "xdp_pass".into(), 10, pass_chain),
            (
                "comp1".into(),
                "xdp_count".into(),
                50,
                serde_json::json!(["XDP_PASS", "XDP_TX"])
            ),
            (
                "comp2".into(),
                "xdp_tally".into(),
                50,
                serde_json::json!([])
            ),
        ]
    );
    let text = p.ok_b(&["xdp", "status", "--dev", &p.vb]);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("  comp")).collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].ends_with(":xdp_pass priority 10 chain XDP_PASS")
            && lines[1].ends_with(":xdp_count priority 50 chain XDP_PASS,XDP_TX")
            && lines[2].ends_with(":xdp_tally priority 50 chain none"),
        "{text}"
    );

    // Without privileges: a clear error, no partial output.
    if have_tool("setpriv", "status without privileges") {
        let o = bpfld_b_unprivileged(&p, &["xdp", "status", "--dev", &p.vb]);
        assert!(!o.status.success());
        assert!(stdout(&o).is_empty(), "{}", stdout(&o));
        let e = stderr(&o);
        assert!(
            e.contains(&format!("{}: reading its XDP program", p.vb))
                && e.contains("permission denied (needs root"),
            "{e}"
        );
        assert!(!e.contains("Some(") && !e.contains("Os {"), "{e}");
    }
}

/// `xdp-loader ARGS` inside namespace b, with bpffs mounted there first
/// (libxdp needs it to read or make its dispatcher).
fn xdp_loader_b(p: &Pair, args: &str) -> std::process::Output {
    Command::new("ip")
        .args(["netns", "exec", &p.b, "sh", "-c"])
        .arg(format!(
            "mount -t bpf bpf /sys/fs/bpf && exec xdp-loader {args}"
        ))
        .output()
        .expect("xdp-loader runs")
}

#[test]
fn libxdp_sees_no_dispatcher_of_its_own_and_its_programs_are_kept() {
    let Some(p) = Pair::new("libxdp_coexistence") else {
        return;
    };
    if !have_tool("xdp-loader", "libxdp coexistence") {
        return;
    }
    // bpfld's composition is not taken for libxdp's dispatcher.
    p.ok_attach_b(&["--mode", "skb", &fx("xdp_pass.o"), &fx("comp_tally.o")]);
    assert_eq!(status_json(&p)["prog_name"], "bpfld_xdp");
    let o = xdp_loader_b(&p, &format!("status {}", p.vb));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(o.status.success(), "{all}");
    assert!(
        all.contains("bpfld_xdp") && !all.contains("libxdp:"),
        "{all}"
    );
    p.ok_b(&["xdp", "detach", "--dev", &p.vb]);

    // A program xdp-loader attached (alone: this kernel's freplace may
    // keep libxdp from building its dispatcher) is left alone.
    let o = xdp_loader_b(&p, &format!("load -m skb {} {}", p.vb, fx("xdp_pass.o")));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = p.attach_b(&[&fx("comp_tally.o")]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("that bpfld did not attach; --force replaces it"),
        "{}",
        stderr(&o)
    );
    let o = p.bpfld_b(&["xdp", "detach", "--dev", &p.vb]);
    assert!(
        stderr(&o).contains("that bpfld did not attach; --force detaches it"),
        "{}",
        stderr(&o)
    );
    assert_eq!(status_json(&p)["prog_name"], "xdp_pass");
    let o = xdp_loader_b(&p, &format!("unload --all {}", p.vb));
    assert!(o.status.success(), "{}", stderr(&o));

    // libxdp's dispatcher is named as such and kept unless --force.
    let dispatcher = "/usr/lib/x86_64-linux-gnu/bpf/xdp-dispatcher.o";
    if std::path::Path::new(dispatcher).exists() {
        sh(&[
            "ip",
            "-n",
            &p.b,
            "link",
            "set",
            &p.vb,
            "xdpgeneric",
            "obj",
            dispatcher,
            "sec",
            "xdp",
        ])
        .expect("ip attaches libxdp's dispatcher object");
        let o = p.attach_b(&[&fx("comp_tally.o")]);
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains("has libxdp's dispatcher (program id ")
                && stderr(&o).contains("its programs would stop running; --force replaces it"),
            "{}",
            stderr(&o)
        );
        assert_eq!(status_json(&p)["prog_name"], "xdp_dispatcher");
        p.ok_attach_b(&["--force", &fx("comp_tally.o")]);
        assert_eq!(status_json(&p)["prog_name"], "bpfld_xdp");
    }
}

#[test]
fn inside_ip_netns_exec_bpffs_is_mounted_and_errors_are_plain() {
    let Some(p) = Pair::new("netns_bpffs") else {
        return;
    };
    // `ip netns exec` gives bpfld a fresh /sys without bpffs: a map pinned
    // by name needs one, so bpfld mounts it, and says so.
    let out = p.ok_attach_b(&["--mode", "skb", &fx("comp_pinned.o")]);
    assert!(
        out.contains("mounted a bpffs at /sys/fs/bpf for the maps pinned by name"),
        "{out}"
    );
    assert_eq!(status_json(&p)["bpfld"], true);
    p.ok_b(&["xdp", "detach", "--dev", &p.vb]);

    // Where the pin cannot be made (a directory of that name), the error
    // says so plainly (no Rust debug text such as aya's `Some("...")`).
    let o = Command::new("ip")
        .args(["netns", "exec", &p.b, "sh", "-c"])
        .arg(format!(
            "mount -t bpf bpf /sys/fs/bpf && mkdir /sys/fs/bpf/pinned_hits && exec {} xdp attach --dev {} --mode skb {}",
            env!("CARGO_BIN_EXE_bpfld"),
            p.vb,
            fx("comp_pinned.o")
        ))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("/sys/fs/bpf/pinned_hits is a directory, not a pinned map"),
        "{e}"
    );
    assert!(!e.contains("Some(") && !e.contains("None"), "{e}");
    assert_eq!(status_json(&p)["prog_id"], 0, "nothing attached");
}

#[test]
fn six_concurrent_attaches_apply_in_turn() {
    let Some(p) = Pair::new("concurrent_attaches") else {
        return;
    };
    let tx = packet_socket(&p.a, &p.va, 0);
    let count = format!("{}:xdp_count", fx("comp_count.o"));
    p.ok_attach_b(&["--mode", "skb", &count]);
    send_frames(&tx, 0, 5, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(200));
    let first = status_json(&p)["prog_id"].as_u64().unwrap();

    // Six at once, each a different composition keeping comp_count.
    let extra = [
        "xdp_pass.o",
        "comp_tally.o",
        "comp_data.o",
        "comp_longname.o",
        "xdp_pass.o,priority=10",
        "comp_tally.o,priority=90",
    ];
    let children: Vec<std::process::Child> = extra
        .iter()
        .map(|e| {
            let e = fx(e);
            bpfld_in_netns(&p.b)
                .args(p.attach_args(&[&count, &e]))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("bpfld starts")
        })
        .collect();
    let outs: Vec<std::process::Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    // Every one succeeded, replacing the program the previous one left:
    // the "was" ids chain from the first program to the last.
    let mut was_to_new = std::collections::BTreeMap::new();
    for o in &outs {
        assert!(o.status.success(), "{}", stderr(o));
        let text = stdout(o);
        assert!(text.contains("kept: counter__comp"), "{text}");
        let head = text.lines().next().unwrap();
        let nums: Vec<u64> = head
            .split(|c: char| !c.is_ascii_digit())
            .filter(|w| !w.is_empty())
            .map(|w| w.parse().unwrap())
            .collect();
        let (new, was) = (nums[nums.len() - 2], nums[nums.len() - 1]);
        assert!(head.contains("replaced by program"), "{head}");
        assert!(was_to_new.insert(was, new).is_none(), "two replaced {was}");
    }
    let mut at = first;
    for _ in 0..6 {
        at = *was_to_new
            .get(&at)
            .unwrap_or_else(|| panic!("nobody replaced {at}: {was_to_new:?}"));
    }
    assert_eq!(status_json(&p)["prog_id"].as_u64().unwrap(), at);
    // comp_count's counter went through all six.
    send_frames(&tx, 5, 1, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(200));
    let st = status_json(&p);
    let slot = st["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["program"] == "xdp_count")
        .map(|c| c["slot"].as_str().unwrap().to_string())
        .unwrap();
    assert_eq!(map_u64(&p, &format!("counter__{slot}"), 0), 6);
}

/// bpfld in network namespace b but the host's mounts (nsenter changes
/// only the network namespace), so pins in /sys/fs/bpf outlive the command.
fn bpfld_b_host_mounts(p: &Pair, args: &[&str]) -> std::process::Output {
    Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", p.b))
        .arg(env!("CARGO_BIN_EXE_bpfld"))
        .args(args)
        .output()
        .expect("nsenter runs")
}

fn pinned_u64(path: &str) -> u64 {
    let o = Command::new("bpftool")
        .args([
            "-j", "map", "lookup", "pinned", path, "key", "0", "0", "0", "0",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let bytes: Vec<u8> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| u8::from_str_radix(b.as_str().unwrap().trim_start_matches("0x"), 16).unwrap())
        .collect();
    u64::from_le_bytes(bytes[..8].try_into().unwrap())
}

#[test]
fn maps_pinned_by_name_go_under_pin_path_and_detach_removes_its_own() {
    let Some(p) = Pair::new("pin_path") else {
        return;
    };
    if !have_tool("nsenter", "pin path") {
        return;
    }
    let _ = std::fs::create_dir_all("/sys/fs/bpf");
    let dir = format!("/sys/fs/bpf/bpfld-pins-{}", p.b);
    let _ = std::fs::remove_dir_all(&dir);
    let _cleanup = RemoveDir(dir.clone());
    let pin = format!("{dir}/pinned_hits");
    let ok = |args: &[&str]| {
        let o = bpfld_b_host_mounts(&p, args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    let tx = packet_socket(&p.a, &p.va, 0);
    let pinned = fx("comp_pinned.o");
    let count = format!("{}:xdp_count", fx("comp_count.o"));
    let tally = fx("comp_tally.o");

    // Pinned now, under --pin-path.
    let out = ok(&[
        "xdp",
        "attach",
        "--dev",
        &p.vb,
        "--mode",
        "skb",
        "--pin-path",
        &dir,
        &pinned,
        &count,
    ]);
    assert!(
        out.contains(&format!("  pinned map pinned_hits: {pin} (pinned now)\n")),
        "{out}"
    );
    send_frames(&tx, 0, 3, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(pinned_u64(&pin), 3);
    // (Seen with the host's mounts; `ip netns exec` has no pins.)
    let st: serde_json::Value =
        serde_json::from_str(&ok(&["xdp", "status", "--dev", &p.vb, "--json"])).unwrap();
    let st = &st[0];
    assert_eq!(st["pins"][0]["path"], pin.as_str());
    assert_eq!(st["pins"][0]["name"], "pinned_hits");
    assert_eq!(st["pins"][0]["own"], true);
    assert!(st["pins"][0]["id"].is_u64(), "{st}");
    let text = ok(&["xdp", "status", "--dev", &p.vb]);
    assert!(
        text.contains(&format!("  pinned map (all components): {pin} (id ")),
        "{text}"
    );

    // A replacement uses it, and owns it still.
    let out = ok(&[
        "xdp",
        "attach",
        "--dev",
        &p.vb,
        "--pin-path",
        &dir,
        &pinned,
        &tally,
    ]);
    assert!(out.contains("(pinned already, used)"), "{out}");
    send_frames(&tx, 3, 2, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(pinned_u64(&pin), 5);

    // --fresh starts it fresh too (a new map, pinned anew).
    let out = ok(&[
        "xdp",
        "attach",
        "--dev",
        &p.vb,
        "--fresh",
        "--pin-path",
        &dir,
        &pinned,
        &tally,
    ]);
    assert!(out.contains("(pinned now)"), "{out}");
    send_frames(&tx, 5, 2, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(pinned_u64(&pin), 2);

    // Detach removes the pin its attachment made (--json: what it did).
    let prog_id = status_json(&p)["prog_id"].clone();
    let out = ok(&["xdp", "detach", "--dev", &p.vb, "--json"]);
    let d: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(d["interface"], p.vb.as_str());
    assert_eq!(d["prog_id"], prog_id);
    assert!(d["link"].is_null(), "{d}");
    assert_eq!(d["unpinned"], serde_json::json!([pin]));
    assert!(!std::path::Path::new(&pin).exists());

    // A compatible map pinned by someone else is used, and left there.
    let create = |kind: &str| {
        let o = Command::new("bpftool")
            .args([
                "map",
                "create",
                &pin,
                "type",
                kind,
                "key",
                "4",
                "value",
                "8",
                "entries",
                "1",
                "name",
                "pinned_hits",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    };
    create("array");
    let out = ok(&["xdp", "attach", "--dev", &p.vb, "--pin-path", &dir, &pinned]);
    assert!(out.contains("(pinned already, used)"), "{out}");
    send_frames(&tx, 5, 1, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(pinned_u64(&pin), 1);
    let out = ok(&["xdp", "detach", "--dev", &p.vb]);
    assert!(!out.contains("unpinned"), "{out}");
    assert!(std::path::Path::new(&pin).exists(), "not ours to remove");

    // An incompatible one: an error naming both definitions.
    std::fs::remove_file(&pin).unwrap();
    create("hash");
    let o = bpfld_b_host_mounts(
        &p,
        &["xdp", "attach", "--dev", &p.vb, "--pin-path", &dir, &pinned],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "map 'pinned_hits' is pinned by name, and {pin} holds an incompatible map: pinned (hash, key 4 bytes, value 8 bytes, 1 entries, flags 0x0), the object's (array, key 4 bytes, value 8 bytes, 1 entries, flags 0x0)"
        )),
        "{e}"
    );
    assert_eq!(status_json(&p)["prog_id"], 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// An IPv4/UDP frame to port `port` (checksums left 0: XDP sees it first).
fn udp_frame(port: u16) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
    f.extend_from_slice(&[0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    f.extend_from_slice(&1234u16.to_be_bytes());
    f.extend_from_slice(&port.to_be_bytes());
    f.extend_from_slice(&[0, 8, 0, 0]);
    f.resize(60, 0);
    f
}

#[test]
fn xdp_filter_changes_the_verdict_of_a_composition_through_its_pins() {
    let Some(p) = Pair::new("xdp_filter_pins") else {
        return;
    };
    // Policy allow: what a rule names is dropped.
    let filter = "/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_alw_all.o";
    if !have_tool("nsenter", "xdp-filter")
        || !have_tool("xdp-filter", "xdp-filter")
        || !std::path::Path::new(filter).exists()
    {
        return;
    }
    // xdp-filter's CLI finds its maps under BPFFS/xdp-filter only: this
    // test uses that directory, and skips when someone else does.
    let dir = "/sys/fs/bpf/xdp-filter";
    if std::path::Path::new(dir).exists() {
        eprintln!("SKIP xdp-filter: {dir} is in use");
        return;
    }
    let _cleanup = RemoveDir(dir.into());
    let count = format!("{}:xdp_count", fx("comp_count.o"));
    let o = bpfld_b_host_mounts(
        &p,
        &[
            "xdp",
            "attach",
            "--dev",
            &p.vb,
            "--mode",
            "skb",
            "--pin-path",
            dir,
            filter,
            &count,
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    // xdp-filter's own priority (10) puts it first; its maps are pinned.
    assert!(
        out.contains(":xdpfilt_alw_all priority 10 chain XDP_PASS"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "pinned map filter_ports: {dir}/filter_ports (pinned now)"
        )),
        "{out}"
    );
    let tx = packet_socket(&p.a, &p.va, 0);
    let send = |n: usize| {
        let f = udp_frame(80);
        for _ in 0..n {
            // SAFETY: f is valid for f.len() bytes.
            let r = unsafe { libc::send(tx.as_raw_fd(), f.as_ptr().cast(), f.len(), 0) };
            assert_eq!(r as usize, f.len());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // The counter after the filter sees what the filter passes.
    send(3);
    assert_eq!(map_u64(&p, "counter__comp1", 0), 3);
    // xdp-filter's own CLI denies port 80, through the pinned map.
    let o = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", p.b))
        .args(["xdp-filter", "port", "80"])
        .output()
        .unwrap();
    assert!(o.status.success(), "xdp-filter: {}", stderr(&o));
    send(4);
    assert_eq!(map_u64(&p, "counter__comp1", 0), 3, "dropped by the filter");
    // Detach removes the pins bpfld made (xdp-filter's directory stays).
    let o = bpfld_b_host_mounts(&p, &["xdp", "detach", "--dev", &p.vb]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("  unpinned {dir}/filter_ports\n")),
        "{}",
        stdout(&o)
    );
    assert!(!std::path::Path::new(&format!("{dir}/filter_ports")).exists());
}

/// Removes a directory (of pins) on drop, whether the test passed or not.
struct RemoveDir(String);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn link_attachment_is_updated_in_place_and_detached() {
    let Some(p) = Pair::new("bpf_link") else {
        return;
    };
    if !have_tool("nsenter", "bpf_link") {
        return;
    }
    let _ = std::fs::create_dir_all("/sys/fs/bpf");
    let dir = format!("/sys/fs/bpf/bpfld-link-{}", p.b);
    let _cleanup = RemoveDir(dir.clone());
    let ok = |args: &[&str]| {
        let o = bpfld_b_host_mounts(&p, args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    let link_ids = || -> Vec<u64> {
        let o = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", p.b))
            .args(["bpftool", "-j", "link", "show"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .filter(|l| l["type"] == "xdp" && l["prog_id"] == status_json(&p)["prog_id"])
            .map(|l| l["id"].as_u64().unwrap())
            .collect()
    };
    let rx = packet_socket(&p.b, &p.vb, ETHERTYPE);
    let tx = packet_socket(&p.a, &p.va, 0);
    let count = format!("{}:xdp_count", fx("comp_count.o"));
    let tally = fx("comp_tally.o");
    let pass = fx("xdp_pass.o");
    let out = ok(&[
        "xdp",
        "attach",
        "--dev",
        &p.vb,
        "--mode",
        "skb",
        "--link",
        "--pin-path",
        &dir,
        &count,
    ]);
    assert!(out.contains("through the bpf_link pinned at "), "{out}");
    let ids = link_ids();
    assert_eq!(ids.len(), 1, "one link: {ids:?}");
    let st: serde_json::Value =
        serde_json::from_str(&ok(&["xdp", "status", "--dev", &p.vb, "--json"])).unwrap();
    let link = st[0]["link"].as_str().expect("status shows the link");
    assert!(
        link.starts_with(&format!("{dir}/bpfld-xdp-link-")),
        "{link}"
    );
    assert!(std::path::Path::new(link).exists());
    let text = ok(&["xdp", "status", "--dev", &p.vb]);
    assert!(
        text.contains(&format!("through the bpf_link pinned at {link}\n")),
        "{text}"
    );

    // Replaced five times under traffic: the same link, nothing lost.
    let sender = std::thread::spawn(move || {
        send_frames(&tx, 0, 500, Duration::from_micros(500));
        tx
    });
    let receiver = std::thread::spawn(move || receive(&rx, 500, Duration::from_secs(3)));
    for i in 0..5 {
        let comps: Vec<&str> = if i % 2 == 0 {
            vec![&count, &tally]
        } else {
            vec![&pass, &count]
        };
        let mut args = vec![
            "xdp",
            "attach",
            "--dev",
            &p.vb,
            "--link",
            "--pin-path",
            &dir,
        ];
        args.extend(comps);
        let out = ok(&args);
        assert!(out.contains("replaced by program"), "{out}");
    }
    let tx = sender.join().unwrap();
    let got = receiver.join().unwrap();
    assert_eq!(got.len(), 500, "frames lost across link updates");
    assert_eq!(link_ids(), ids, "the same link");
    assert_eq!(map_u64(&p, "counter__comp0", 0), 500);

    // A netlink attach cannot replace it by accident.
    let o = bpfld_b_host_mounts(&p, &["xdp", "attach", "--dev", &p.vb, &tally]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("is attached through a bpf_link (pinned at ")
            && stderr(&o).contains("replace it with --link, or detach it first"),
        "{}",
        stderr(&o)
    );

    // Detach removes the link and its pin.
    let out = ok(&["xdp", "detach", "--dev", &p.vb]);
    assert!(out.contains("removed the bpf_link pinned at "), "{out}");
    assert!(!std::path::Path::new(link).exists(), "link pin removed");
    let gone = Command::new("bpftool")
        .args(["link", "show", "id", &ids[0].to_string()])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "link {} still there", ids[0]);
    assert_eq!(status_json(&p)["prog_id"], 0);
    send_frames(&tx, 1000, 1, Duration::ZERO);

    // Inside `ip netns exec` (no bpffs that outlives the command) a link
    // is refused rather than lost when the command ends.
    let o = p.attach_b(&["--link", &tally]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("would vanish with this command"),
        "{}",
        stderr(&o)
    );
    assert_eq!(status_json(&p)["prog_id"], 0);
}

#[test]
fn another_tool_changing_the_program_meanwhile_is_read_again() {
    let Some(p) = Pair::new("changed_underneath") else {
        return;
    };
    // Another tool (ip) keeps attaching and removing its own program
    // while bpfld attaches: each bpfld attach either succeeds or refuses
    // the foreign program it found, never fails with the kernel's
    // "busy"/"exists" of a swap that raced.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (ns, dev, obj) = (p.b.clone(), p.vb.clone(), fx("xdp_pass.o"));
    let flag = stop.clone();
    let other = std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            let _ = sh(&[
                "ip",
                "-force",
                "-n",
                &ns,
                "link",
                "set",
                &dev,
                "xdpgeneric",
                "obj",
                &obj,
                "sec",
                "xdp",
            ]);
            let _ = sh(&["ip", "-n", &ns, "link", "set", &dev, "xdpgeneric", "off"]);
        }
    });
    let count = format!("{}:xdp_count", fx("comp_count.o"));
    let mut outcomes = std::collections::BTreeMap::new();
    for _ in 0..15 {
        let o = p.attach_b(&["--mode", "skb", &count]);
        let e = stderr(&o);
        let kind = if o.status.success() {
            "attached"
        } else if e.contains("that bpfld did not attach; --force replaces it") {
            "refused a foreign program"
        } else {
            panic!("unexpected failure: {e}");
        };
        *outcomes.entry(kind).or_insert(0) += 1;
    }
    stop.store(true, Ordering::Relaxed);
    other.join().unwrap();
    eprintln!("outcomes: {outcomes:?}");
}

#[test]
fn status_lines_fed_back_to_attach_give_the_same_composition() {
    let Some(p) = Pair::new("status_round_trip") else {
        return;
    };
    // Actions in xdp-loader's and bpfld's spellings, `,` and `+`.
    let count = format!("{}:xdp_count,chain=pass,xdp_tx", fx("comp_count.o"));
    let mark = format!("{},priority=20,chain=Drop+PASS", fx("comp_mark.o"));
    let pass = format!("{},priority=60,chain=none", fx("xdp_pass.o"));
    p.ok_attach_b(&["--mode", "skb", &count, &mark, &pass]);
    let components = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("  comp"))
            .map(|l| l.trim().to_string())
            .collect()
    };
    let before = components(&p.ok_b(&["xdp", "status", "--dev", &p.vb]));
    assert_eq!(before.len(), 3, "{before:?}");
    assert!(
        before[0].ends_with(":xdp_mark priority 20 chain XDP_DROP,XDP_PASS")
            && before[1].ends_with(":xdp_count priority 50 chain XDP_PASS,XDP_TX")
            && before[2].ends_with(":xdp_pass priority 60 chain none"),
        "{before:?}"
    );
    // `compN: FILE:PROGRAM priority N chain A,B` as an attach argument.
    let args: Vec<String> = before
        .iter()
        .map(|l| {
            let (_, rest) = l.split_once(": ").unwrap();
            let w: Vec<&str> = rest.split(' ').collect();
            format!("{},priority={},chain={}", w[0], w[2], w[4])
        })
        .collect();
    p.ok_b(&["xdp", "detach", "--dev", &p.vb]);
    let mut again = vec!["xdp", "attach", "--dev", &p.vb, "--mode", "skb"];
    again.extend(args.iter().map(String::as_str));
    p.ok_b(&again);
    let after = components(&p.ok_b(&["xdp", "status", "--dev", &p.vb]));
    assert_eq!(after, before);
    p.ok_b(&["xdp", "detach", "--dev", &p.vb]);
}
