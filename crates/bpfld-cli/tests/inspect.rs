//! `bpfld inspect`: what each fixture holds and needs, as the fixture
//! sources declare it.

mod common;
use common::*;

use serde_json::Value;

fn inspect(name: &str) -> Value {
    let text = ok(&["inspect", "--json", fixture(name).to_str().unwrap()]);
    serde_json::from_str(&text).expect("inspect --json prints JSON")
}

fn find<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("{name} not listed in {list}"))
}

#[test]
fn functions_with_linkage_visibility_and_role() {
    let v = inspect("link_a.o");
    let f = &v["functions"];
    assert_eq!(find(f, "weak_policy")["linkage"], "weak");
    assert_eq!(find(f, "hidden_helper")["hidden"], true);
    assert_eq!(find(f, "hidden_helper")["linkage"], "global");
    let main = find(f, "link_main");
    assert_eq!(main["entry"], true);
    assert_eq!(main["section"], "xdp");
    let v = inspect("calls.o");
    let square = find(&v["functions"], "square");
    assert_eq!(square["linkage"], "static");
    assert_eq!(square["entry"], false);
    assert_eq!(find(&v["functions"], "add3")["linkage"], "global");
}

#[test]
fn externs_by_kind_with_their_users() {
    let v = inspect("link_a.o");
    let x = &v["externs"];
    assert_eq!(find(x, "link_shared_add")["kind"], "function");
    assert_eq!(find(x, "link_b_counter")["kind"], "variable");
    assert_eq!(find(x, "LINUX_KERNEL_VERSION")["kind"], "kconfig");
    assert_eq!(find(x, "CONFIG_HZ")["weak"], true);
    assert_eq!(find(x, "link_shared_add")["used_by"][0], "link_main");

    let v = inspect("kfunc_ksym.o");
    let x = &v["externs"];
    assert_eq!(find(x, "bpf_rcu_read_lock")["kind"], "kfunc");
    assert_eq!(find(x, "bpf_prog_active")["kind"], "ksym");
    assert_eq!(find(x, "bpf_kfunc_that_does_not_exist")["weak"], true);

    let v = inspect("lnk_maps_use.o");
    assert_eq!(find(&v["externs"], "hits")["kind"], "map");
}

#[test]
fn programs_by_section_with_types_and_sizes() {
    let v = inspect("net_progs.o");
    let p = &v["programs"];
    assert_eq!(find(p, "net_xdp")["prog_type"], "xdp");
    assert_eq!(find(p, "net_tc")["prog_type"], "sched_cls");
    assert_eq!(find(p, "net_socket")["prog_type"], "socket_filter");
    assert_eq!(find(p, "net_cgroup_in")["section"], "cgroup_skb/ingress");
    assert_eq!(find(p, "net_cgroup_in")["prog_type"], "cgroup_skb");
    // Instruction counts agree with llvm-objdump's listing of the section.
    let listing = ok(&["disasm", fixture("net_progs.o").to_str().unwrap()]);
    for prog in p.as_array().unwrap() {
        let label = format!("<{}>:", prog["name"].as_str().unwrap());
        let body = listing.split(&label).nth(1).expect("program listed");
        let body = body.split("\n\n").next().unwrap();
        let last = body
            .lines()
            .filter_map(|l| l.trim().split(':').next()?.parse::<u64>().ok())
            .next_back()
            .unwrap();
        let insns = prog["insns"].as_u64().unwrap();
        assert!(
            last < insns && last + 2 >= insns,
            "{label}: {insns} insns, last slot {last}"
        );
    }
    let v = inspect("tracing.o");
    let kinds: Vec<&str> = v["programs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["prog_type"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"kprobe") && kinds.contains(&"tracepoint"),
        "{kinds:?}"
    );
}

#[test]
fn map_definitions_from_btf_and_legacy_sections() {
    let v = inspect("maps.o");
    let m = &v["maps"];
    let hash = find(m, "plain_hash");
    assert_eq!(hash["type_name"], "hash");
    assert_eq!(hash["key_size"], 8);
    assert_eq!(hash["value_size"], 4);
    assert_eq!(hash["max_entries"], 64);
    assert_eq!(hash["map_flags"], 1);
    assert_eq!(find(m, "pinned_counter")["pinning"], 1);
    assert_eq!(find(m, "plain_array")["value_type"], "struct value_pair");
    let outer = find(m, "outer_array");
    assert_eq!(outer["type_name"], "array_of_maps");
    assert_eq!(outer["inner"]["type_name"], "array");
    assert_eq!(find(m, "events")["type_name"], "ringbuf");

    let v = inspect("legacy_maps.o");
    let m = v["maps"].as_array().unwrap();
    assert!(!m.is_empty());
    assert!(m
        .iter()
        .all(|d| d["section"] == "maps" && d["key_size"].is_u64()));
}

#[test]
fn data_sections_license_and_version() {
    let v = inspect("globals.o");
    let d = &v["data"];
    let rodata = find(d, ".rodata");
    assert_eq!(rodata["kind"], "rodata");
    assert_eq!(find(&rodata["variables"], "config_multiplier")["size"], 4);
    assert_eq!(find(&rodata["variables"], "greeting")["linkage"], "static");
    assert_eq!(find(d, ".bss")["kind"], "bss");
    assert_eq!(
        find(&find(d, ".data.custom")["variables"], "custom_array")["offset"],
        4
    );
    assert_eq!(v["license"], "Dual MIT/GPL");
    assert_eq!(v["kernel_version"], 0x060c00);
}

#[test]
fn big_endian_objects_read_the_same() {
    let le = inspect("xdp_counter.o");
    let be = inspect("xdp_counter.bpfeb.o");
    assert_eq!(le["endian"], "little");
    assert_eq!(be["endian"], "big");
    for key in ["programs", "functions", "maps", "data", "license"] {
        assert_eq!(le[key], be[key], "{key} differs between byte orders");
    }
}

#[test]
fn text_form_names_every_part() {
    let text = ok(&["inspect", fixture("link_a.o").to_str().unwrap()]);
    for part in [
        "programs (1):",
        "functions (",
        "externs (6):",
        "maps (1):",
        "data sections (",
        "license: GPL",
    ] {
        assert!(text.contains(part), "missing {part:?} in:\n{text}");
    }
    assert!(
        text.contains("weak,subprog") && text.contains("global,hidden,subprog"),
        "{text}"
    );
}

#[test]
fn map_extra_from_ulong_enums() {
    // `__ulong(map_extra, N)` is a one-value ENUM (bloom: 5 hash
    // functions) or ENUM64 (heap: an arena address hint of 1 << 44).
    let v = inspect("map_extra.o");
    let bloom = find(&v["maps"], "bloom");
    assert_eq!(bloom["type_name"], "bloom_filter");
    assert_eq!(bloom["map_extra"], 5);
    assert_eq!(bloom["value_size"], 4);
    let heap = find(&v["maps"], "heap");
    assert_eq!(heap["type_name"], "arena");
    assert_eq!(heap["map_extra"], 1u64 << 44);
    assert_eq!(heap["max_entries"], 2);
    let text = ok(&["inspect", fixture("map_extra.o").to_str().unwrap()]);
    assert!(
        text.contains("bloom                bloom_filter     max_entries=64 value=__u32 (4 bytes) map_extra=0x5\n"),
        "{text}"
    );
    assert!(
        text.contains("heap                 arena            max_entries=2 flags=0x400 map_extra=0x100000000000\n"),
        "{text}"
    );
    // Maps without map_extra say nothing of it.
    assert!(inspect("maps.o")["maps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["map_extra"].is_null()));

    // Linked, the definitions (and the enums) are kept, and the kernel
    // accepts the output's BTF.
    let out = tmpdir("map-extra").join("linked.o");
    ok(&[
        "link",
        "-o",
        out.to_str().unwrap(),
        fixture("map_extra.o").to_str().unwrap(),
    ]);
    let text = ok(&["inspect", out.to_str().unwrap()]);
    assert!(text.contains("map_extra=0x5") && text.contains("map_extra=0x100000000000"));
    if bpf_allowed("map_extra_from_ulong_enums") {
        let obj = bpfld::Object::read_file(&out).unwrap();
        let bytes = obj.btf.as_ref().unwrap().to_bytes().unwrap();
        bpfld_kernel::btf_load::load_btf(&bytes).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn map_extra_lost_by_gcc_is_unknown_not_an_error() {
    // GCC 12 cannot write `__ulong(map_extra, 1 << 44)` (no ENUM64): it
    // leaves an enum with no values. The listing still shows the map,
    // with map_extra unknown; the value GCC could write is read.
    let v = inspect("gcc/map_extra.o");
    let heap = find(&v["maps"], "heap");
    assert_eq!(heap["type_name"], "arena");
    assert!(heap["map_extra"].is_null(), "{heap}");
    assert_eq!(find(&v["maps"], "bloom")["map_extra"], 5);
}
