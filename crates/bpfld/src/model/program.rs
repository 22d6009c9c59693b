//! Program types: what kind of BPF program a section name announces.

/// The program type libbpf gives a section name (its `section_defs`),
/// by prefix; `None` for names libbpf would not recognise.
pub fn program_type(section: &str) -> Option<&'static str> {
    const TABLE: &[(&str, &str)] = &[
        ("xdp", "xdp"),
        ("tc", "sched_cls"),
        ("tcx", "sched_cls"),
        ("netkit", "sched_cls"),
        ("classifier", "sched_cls"),
        ("action", "sched_act"),
        ("socket", "socket_filter"),
        ("sk_reuseport", "sk_reuseport"),
        ("kprobe", "kprobe"),
        ("kretprobe", "kprobe"),
        ("uprobe", "kprobe"),
        ("uretprobe", "kprobe"),
        ("ksyscall", "kprobe"),
        ("kretsyscall", "kprobe"),
        ("usdt", "kprobe"),
        ("kprobe.multi", "kprobe"),
        ("kretprobe.multi", "kprobe"),
        ("uprobe.multi", "kprobe"),
        ("tracepoint", "tracepoint"),
        ("tp", "tracepoint"),
        ("raw_tracepoint", "raw_tracepoint"),
        ("raw_tp", "raw_tracepoint"),
        ("raw_tracepoint.w", "raw_tracepoint_writable"),
        ("raw_tp.w", "raw_tracepoint_writable"),
        ("tp_btf", "tracing"),
        ("fentry", "tracing"),
        ("fmod_ret", "tracing"),
        ("fexit", "tracing"),
        ("fentry.s", "tracing"),
        ("fmod_ret.s", "tracing"),
        ("fexit.s", "tracing"),
        ("freplace", "ext"),
        ("lsm", "lsm"),
        ("lsm.s", "lsm"),
        ("lsm_cgroup", "lsm"),
        ("iter", "tracing"),
        ("iter.s", "tracing"),
        ("syscall", "syscall"),
        ("perf_event", "perf_event"),
        ("lwt_in", "lwt_in"),
        ("lwt_out", "lwt_out"),
        ("lwt_xmit", "lwt_xmit"),
        ("lwt_seg6local", "lwt_seg6local"),
        ("sockops", "sock_ops"),
        ("sk_skb", "sk_skb"),
        ("sk_msg", "sk_msg"),
        ("lirc_mode2", "lirc_mode2"),
        ("flow_dissector", "flow_dissector"),
        ("cgroup_skb", "cgroup_skb"),
        ("cgroup", "cgroup"),
        ("sk_lookup", "sk_lookup"),
        ("struct_ops", "struct_ops"),
        ("struct_ops.s", "struct_ops"),
    ];
    // The longest matching prefix wins, and a prefix matches the whole name
    // or a name continuing with '/' or '.'.
    TABLE
        .iter()
        .filter(|(p, _)| {
            section == *p
                || section
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('.'))
        })
        .max_by_key(|(p, _)| p.len())
        .map(|(_, t)| {
            if *t == "cgroup" {
                cgroup_type(section)
            } else {
                *t
            }
        })
}

fn cgroup_type(section: &str) -> &'static str {
    match section.strip_prefix("cgroup/").unwrap_or("") {
        "skb" => "cgroup_skb",
        "sock" | "sock_create" | "sock_release" | "post_bind4" | "post_bind6" => "cgroup_sock",
        "dev" => "cgroup_device",
        "sysctl" => "cgroup_sysctl",
        "getsockopt" | "setsockopt" => "cgroup_sockopt",
        _ => "cgroup_sock_addr",
    }
}
