//! Program types: the kernel's numbers and libbpf's names for them, how
//! libbpf loads the program of a section (type, expected attach type,
//! flags, BTF target), and the types bpfld can run with
//! `BPF_PROG_TEST_RUN` with the names of their return values.

use std::fmt;

use aya::programs::Program;
use aya_obj::btf::{Btf as AyaBtf, BtfKind};
use aya_obj::generated::bpf_prog_type;

/// The program types bpfld can run with `BPF_PROG_TEST_RUN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgKind {
    Xdp,
    SchedCls,
    SocketFilter,
    CgroupSkb,
    FlowDissector,
    RawTracepoint,
    /// `SEC("syscall")`: its context is the input bytes; run once.
    Syscall,
    LwtIn,
    LwtOut,
    LwtXmit,
    LwtSeg6local,
}

impl ProgKind {
    /// Every kind, in declaration order.
    pub(crate) const ALL: [ProgKind; 11] = [
        ProgKind::Xdp,
        ProgKind::SchedCls,
        ProgKind::SocketFilter,
        ProgKind::CgroupSkb,
        ProgKind::FlowDissector,
        ProgKind::RawTracepoint,
        ProgKind::Syscall,
        ProgKind::LwtIn,
        ProgKind::LwtOut,
        ProgKind::LwtXmit,
        ProgKind::LwtSeg6local,
    ];

    /// libbpf's name of the type (as in `bpftool prog show`).
    pub fn name(self) -> &'static str {
        prog_type_name(self.prog_type())
    }

    /// The kernel's number of the type (`enum bpf_prog_type`).
    pub(crate) fn prog_type(self) -> u32 {
        match self {
            ProgKind::Xdp => XDP,
            ProgKind::SchedCls => SCHED_CLS,
            ProgKind::SocketFilter => SOCKET_FILTER,
            ProgKind::CgroupSkb => CGROUP_SKB,
            ProgKind::FlowDissector => FLOW_DISSECTOR,
            ProgKind::RawTracepoint => RAW_TRACEPOINT,
            ProgKind::Syscall => SYSCALL,
            ProgKind::LwtIn => LWT_IN,
            ProgKind::LwtOut => LWT_OUT,
            ProgKind::LwtXmit => LWT_XMIT,
            ProgKind::LwtSeg6local => LWT_SEG6LOCAL,
        }
    }

    /// The kind of kernel program type `t`, when bpfld runs that type.
    pub(crate) fn from_prog_type(t: u32) -> Option<ProgKind> {
        Self::ALL.into_iter().find(|k| k.prog_type() == t)
    }

    /// The symbolic name of a return value, for the types whose return
    /// values are actions (XDP and TC); `None` otherwise or when unknown.
    pub fn action_name(self, retval: u32) -> Option<&'static str> {
        match self {
            ProgKind::Xdp => [
                "XDP_ABORTED",
                "XDP_DROP",
                "XDP_PASS",
                "XDP_TX",
                "XDP_REDIRECT",
            ]
            .get(retval as usize)
            .copied(),
            ProgKind::SchedCls => {
                if retval == u32::MAX {
                    return Some("TC_ACT_UNSPEC");
                }
                [
                    "TC_ACT_OK",
                    "TC_ACT_RECLASSIFY",
                    "TC_ACT_SHOT",
                    "TC_ACT_PIPE",
                    "TC_ACT_STOLEN",
                    "TC_ACT_QUEUED",
                    "TC_ACT_REPEAT",
                    "TC_ACT_REDIRECT",
                    "TC_ACT_TRAP",
                ]
                .get(retval as usize)
                .copied()
            }
            ProgKind::CgroupSkb => match retval {
                0 => Some("drop"),
                1 => Some("allow"),
                _ => None,
            },
            // enum bpf_ret_code.
            ProgKind::LwtIn
            | ProgKind::LwtOut
            | ProgKind::LwtXmit
            | ProgKind::LwtSeg6local
            | ProgKind::FlowDissector => match retval {
                0 => Some("BPF_OK"),
                2 => Some("BPF_DROP"),
                7 => Some("BPF_REDIRECT"),
                128 => Some("BPF_LWT_REROUTE"),
                _ => None,
            },
            ProgKind::SocketFilter | ProgKind::RawTracepoint | ProgKind::Syscall => None,
        }
    }
}

impl fmt::Display for ProgKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

pub(crate) fn kind_of(p: &Program) -> Option<ProgKind> {
    Some(match p {
        Program::Xdp(_) => ProgKind::Xdp,
        Program::SchedClassifier(_) => ProgKind::SchedCls,
        Program::SocketFilter(_) | Program::ReusePortSocketFilter(_) => ProgKind::SocketFilter,
        Program::CgroupSkb(_) => ProgKind::CgroupSkb,
        Program::FlowDissector(_) => ProgKind::FlowDissector,
        Program::RawTracePoint(_) => ProgKind::RawTracepoint,
        _ => return None,
    })
}

/// libbpf's name of any program type (as `bpftool prog show` prints it),
/// for messages.
pub(crate) fn type_name(p: &Program) -> &'static str {
    prog_type_name(bpf_prog_type::from(p.prog_type()) as u32)
}

const BPF_F_SLEEPABLE: u32 = 1 << 4;
const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;

/// How to load a program of a section: its type, expected attach type,
/// flags and BTF target, as libbpf derives them from the section name.
#[derive(Debug)]
pub(crate) struct Spec {
    pub(crate) prog_type: u32,
    pub(crate) type_name: &'static str,
    pub(crate) attach: u32,
    pub(crate) attach_name: Option<&'static str>,
    pub(crate) flags: u32,
    pub(crate) attach_btf_id: u32,
}

// enum bpf_prog_type
const SOCKET_FILTER: u32 = 1;
const KPROBE: u32 = 2;
const SCHED_CLS: u32 = 3;
const SCHED_ACT: u32 = 4;
const TRACEPOINT: u32 = 5;
const XDP: u32 = 6;
const PERF_EVENT: u32 = 7;
const CGROUP_SKB: u32 = 8;
const CGROUP_SOCK: u32 = 9;
const LWT_IN: u32 = 10;
const LWT_OUT: u32 = 11;
const LWT_XMIT: u32 = 12;
const SOCK_OPS: u32 = 13;
const SK_SKB: u32 = 14;
const CGROUP_DEVICE: u32 = 15;
const SK_MSG: u32 = 16;
const RAW_TRACEPOINT: u32 = 17;
const CGROUP_SOCK_ADDR: u32 = 18;
const LWT_SEG6LOCAL: u32 = 19;
const LIRC_MODE2: u32 = 20;
const SK_REUSEPORT: u32 = 21;
const FLOW_DISSECTOR: u32 = 22;
const CGROUP_SYSCTL: u32 = 23;
const RAW_TRACEPOINT_WRITABLE: u32 = 24;
const CGROUP_SOCKOPT: u32 = 25;
const TRACING: u32 = 26;
const STRUCT_OPS: u32 = 27;
const EXT: u32 = 28;
const LSM: u32 = 29;
const SK_LOOKUP: u32 = 30;
const SYSCALL: u32 = 31;
const NETFILTER: u32 = 32;

/// `enum bpf_attach_type` values and libbpf's names for them.
const ATTACH: &[(&str, u32)] = &[
    ("cgroup_inet_ingress", 0),
    ("cgroup_inet_egress", 1),
    ("cgroup_inet_sock_create", 2),
    ("cgroup_sock_ops", 3),
    ("sk_skb_stream_parser", 4),
    ("sk_skb_stream_verdict", 5),
    ("cgroup_device", 6),
    ("sk_msg_verdict", 7),
    ("cgroup_inet4_bind", 8),
    ("cgroup_inet6_bind", 9),
    ("cgroup_inet4_connect", 10),
    ("cgroup_inet6_connect", 11),
    ("cgroup_inet4_post_bind", 12),
    ("cgroup_inet6_post_bind", 13),
    ("cgroup_udp4_sendmsg", 14),
    ("cgroup_udp6_sendmsg", 15),
    ("lirc_mode2", 16),
    ("flow_dissector", 17),
    ("cgroup_sysctl", 18),
    ("cgroup_udp4_recvmsg", 19),
    ("cgroup_udp6_recvmsg", 20),
    ("cgroup_getsockopt", 21),
    ("cgroup_setsockopt", 22),
    ("trace_raw_tp", 23),
    ("trace_fentry", 24),
    ("trace_fexit", 25),
    ("modify_return", 26),
    ("lsm_mac", 27),
    ("trace_iter", 28),
    ("cgroup_inet4_getpeername", 29),
    ("cgroup_inet6_getpeername", 30),
    ("cgroup_inet4_getsockname", 31),
    ("cgroup_inet6_getsockname", 32),
    ("xdp_devmap", 33),
    ("cgroup_inet_sock_release", 34),
    ("xdp_cpumap", 35),
    ("sk_lookup", 36),
    ("xdp", 37),
    ("sk_skb_verdict", 38),
    ("sk_reuseport_select", 39),
    ("sk_reuseport_select_or_migrate", 40),
    ("trace_kprobe_multi", 42),
    ("lsm_cgroup", 43),
    ("netfilter", 45),
    ("tcx_ingress", 46),
    ("tcx_egress", 47),
    ("trace_uprobe_multi", 48),
    ("cgroup_unix_connect", 49),
    ("cgroup_unix_sendmsg", 50),
    ("cgroup_unix_recvmsg", 51),
    ("cgroup_unix_getpeername", 52),
    ("cgroup_unix_getsockname", 53),
    ("netkit_primary", 54),
    ("netkit_peer", 55),
    ("trace_kprobe_session", 56),
];

fn attach(name: &'static str) -> (u32, Option<&'static str>) {
    let v = ATTACH
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(0, |(_, v)| *v);
    (v, Some(name))
}

/// The cgroup/... attach points: (section tail, program type, attach type).
const CGROUP: &[(&str, u32, &str)] = &[
    ("skb", CGROUP_SKB, ""),
    ("sock", CGROUP_SOCK, "cgroup_inet_sock_create"),
    ("sock_create", CGROUP_SOCK, "cgroup_inet_sock_create"),
    ("sock_release", CGROUP_SOCK, "cgroup_inet_sock_release"),
    ("post_bind4", CGROUP_SOCK, "cgroup_inet4_post_bind"),
    ("post_bind6", CGROUP_SOCK, "cgroup_inet6_post_bind"),
    ("bind4", CGROUP_SOCK_ADDR, "cgroup_inet4_bind"),
    ("bind6", CGROUP_SOCK_ADDR, "cgroup_inet6_bind"),
    ("connect4", CGROUP_SOCK_ADDR, "cgroup_inet4_connect"),
    ("connect6", CGROUP_SOCK_ADDR, "cgroup_inet6_connect"),
    ("connect_unix", CGROUP_SOCK_ADDR, "cgroup_unix_connect"),
    ("sendmsg4", CGROUP_SOCK_ADDR, "cgroup_udp4_sendmsg"),
    ("sendmsg6", CGROUP_SOCK_ADDR, "cgroup_udp6_sendmsg"),
    ("sendmsg_unix", CGROUP_SOCK_ADDR, "cgroup_unix_sendmsg"),
    ("recvmsg4", CGROUP_SOCK_ADDR, "cgroup_udp4_recvmsg"),
    ("recvmsg6", CGROUP_SOCK_ADDR, "cgroup_udp6_recvmsg"),
    ("recvmsg_unix", CGROUP_SOCK_ADDR, "cgroup_unix_recvmsg"),
    ("getpeername4", CGROUP_SOCK_ADDR, "cgroup_inet4_getpeername"),
    ("getpeername6", CGROUP_SOCK_ADDR, "cgroup_inet6_getpeername"),
    (
        "getpeername_unix",
        CGROUP_SOCK_ADDR,
        "cgroup_unix_getpeername",
    ),
    ("getsockname4", CGROUP_SOCK_ADDR, "cgroup_inet4_getsockname"),
    ("getsockname6", CGROUP_SOCK_ADDR, "cgroup_inet6_getsockname"),
    (
        "getsockname_unix",
        CGROUP_SOCK_ADDR,
        "cgroup_unix_getsockname",
    ),
    ("sysctl", CGROUP_SYSCTL, "cgroup_sysctl"),
    ("getsockopt", CGROUP_SOCKOPT, "cgroup_getsockopt"),
    ("setsockopt", CGROUP_SOCKOPT, "cgroup_setsockopt"),
    ("dev", CGROUP_DEVICE, "cgroup_device"),
];

pub(crate) fn prog_type_name(t: u32) -> &'static str {
    match t {
        SOCKET_FILTER => "socket_filter",
        KPROBE => "kprobe",
        SCHED_CLS => "sched_cls",
        SCHED_ACT => "sched_act",
        TRACEPOINT => "tracepoint",
        XDP => "xdp",
        PERF_EVENT => "perf_event",
        CGROUP_SKB => "cgroup_skb",
        CGROUP_SOCK => "cgroup_sock",
        LWT_IN => "lwt_in",
        LWT_OUT => "lwt_out",
        LWT_XMIT => "lwt_xmit",
        SOCK_OPS => "sock_ops",
        SK_SKB => "sk_skb",
        CGROUP_DEVICE => "cgroup_device",
        SK_MSG => "sk_msg",
        RAW_TRACEPOINT => "raw_tracepoint",
        CGROUP_SOCK_ADDR => "cgroup_sock_addr",
        LWT_SEG6LOCAL => "lwt_seg6local",
        LIRC_MODE2 => "lirc_mode2",
        SK_REUSEPORT => "sk_reuseport",
        FLOW_DISSECTOR => "flow_dissector",
        CGROUP_SYSCTL => "cgroup_sysctl",
        RAW_TRACEPOINT_WRITABLE => "raw_tracepoint_writable",
        CGROUP_SOCKOPT => "cgroup_sockopt",
        TRACING => "tracing",
        STRUCT_OPS => "struct_ops",
        EXT => "ext",
        LSM => "lsm",
        SK_LOOKUP => "sk_lookup",
        SYSCALL => "syscall",
        NETFILTER => "netfilter",
        _ => "unknown",
    }
}

/// How libbpf would load a program of `section` (see [`Spec`]); an error
/// names what bpfld cannot load.
pub(crate) fn prog_spec(
    section: &str,
    kernel_btf: Option<&AyaBtf>,
    struct_ops: Option<std::result::Result<(u32, u32), String>>,
) -> std::result::Result<Spec, String> {
    let bare = section.strip_prefix('?').unwrap_or(section);
    let (head, tail) = match bare.split_once('/') {
        Some((h, t)) => (h, Some(t)),
        None => (bare, None),
    };
    let sleepable = head.ends_with(".s");
    let base = head.strip_suffix(".s").unwrap_or(head);
    let mut flags = if sleepable { BPF_F_SLEEPABLE } else { 0 };
    let none = (0, None);
    let mut btf_target: Option<(String, BtfKind)> = None;
    let (prog_type, (at, at_name)) = match base {
        "xdp" | "xdp.frags" => {
            if base == "xdp.frags" {
                flags |= BPF_F_XDP_HAS_FRAGS;
            }
            let a = match tail {
                Some("devmap") => attach("xdp_devmap"),
                Some("cpumap") => attach("xdp_cpumap"),
                _ => attach("xdp"),
            };
            (XDP, a)
        }
        "tc" | "tcx" => (
            SCHED_CLS,
            match tail {
                Some("ingress") => attach("tcx_ingress"),
                Some("egress") => attach("tcx_egress"),
                _ => none,
            },
        ),
        "netkit" => (
            SCHED_CLS,
            match tail {
                Some("primary") => attach("netkit_primary"),
                Some("peer") => attach("netkit_peer"),
                _ => none,
            },
        ),
        "classifier" => (SCHED_CLS, none),
        "action" => (SCHED_ACT, none),
        "socket" => (SOCKET_FILTER, none),
        "sk_reuseport" => (
            SK_REUSEPORT,
            if tail == Some("migrate") {
                attach("sk_reuseport_select_or_migrate")
            } else {
                attach("sk_reuseport_select")
            },
        ),
        "kprobe" | "kretprobe" | "uprobe" | "uretprobe" | "ksyscall" | "kretsyscall" | "usdt" => {
            (KPROBE, none)
        }
        "kprobe.multi" | "kretprobe.multi" => (KPROBE, attach("trace_kprobe_multi")),
        "kprobe.session" => (KPROBE, attach("trace_kprobe_session")),
        "uprobe.multi" | "uretprobe.multi" => (KPROBE, attach("trace_uprobe_multi")),
        "tracepoint" | "tp" => (TRACEPOINT, none),
        "raw_tracepoint" | "raw_tp" => (RAW_TRACEPOINT, none),
        "raw_tracepoint.w" | "raw_tp.w" => (RAW_TRACEPOINT_WRITABLE, none),
        "tp_btf" | "fentry" | "fexit" | "fmod_ret" | "iter" | "lsm" | "lsm_cgroup" => {
            let target = tail.ok_or_else(|| {
                format!("section '{section}' names no attach target (expected {head}/NAME)")
            })?;
            if target.contains(':') {
                return Err(format!(
                    "section '{section}': attaching to a kernel module's function is not \
                     supported by bpfld verify"
                ));
            }
            let (ty, a, name, kind) = match base {
                "tp_btf" => (
                    TRACING,
                    "trace_raw_tp",
                    format!("btf_trace_{target}"),
                    BtfKind::Typedef,
                ),
                "fentry" => (TRACING, "trace_fentry", target.to_string(), BtfKind::Func),
                "fexit" => (TRACING, "trace_fexit", target.to_string(), BtfKind::Func),
                "fmod_ret" => (TRACING, "modify_return", target.to_string(), BtfKind::Func),
                "iter" => (
                    TRACING,
                    "trace_iter",
                    format!("bpf_iter_{target}"),
                    BtfKind::Func,
                ),
                "lsm" => (LSM, "lsm_mac", format!("bpf_lsm_{target}"), BtfKind::Func),
                _ => (
                    LSM,
                    "lsm_cgroup",
                    format!("bpf_lsm_{target}"),
                    BtfKind::Func,
                ),
            };
            btf_target = Some((name, kind));
            (ty, attach(a))
        }
        "syscall" => {
            // libbpf loads every syscall program sleepable.
            flags |= BPF_F_SLEEPABLE;
            (SYSCALL, none)
        }
        "perf_event" => (PERF_EVENT, none),
        "lwt_in" => (LWT_IN, none),
        "lwt_out" => (LWT_OUT, none),
        "lwt_xmit" => (LWT_XMIT, none),
        "lwt_seg6local" => (LWT_SEG6LOCAL, none),
        "sockops" => (SOCK_OPS, attach("cgroup_sock_ops")),
        "sk_skb" => (
            SK_SKB,
            match tail {
                Some("stream_parser") => attach("sk_skb_stream_parser"),
                Some("stream_verdict") => attach("sk_skb_stream_verdict"),
                Some("verdict") => attach("sk_skb_verdict"),
                _ => none,
            },
        ),
        "sk_msg" => (SK_MSG, attach("sk_msg_verdict")),
        "lirc_mode2" => (LIRC_MODE2, attach("lirc_mode2")),
        "flow_dissector" => (FLOW_DISSECTOR, attach("flow_dissector")),
        "cgroup_skb" => (
            CGROUP_SKB,
            match tail {
                Some("ingress") => attach("cgroup_inet_ingress"),
                Some("egress") => attach("cgroup_inet_egress"),
                _ => none,
            },
        ),
        "cgroup" => {
            let t = tail.unwrap_or("");
            let Some((_, ty, a)) = CGROUP.iter().find(|(n, _, _)| *n == t) else {
                return Err(format!("section '{section}': unknown cgroup attach point"));
            };
            (*ty, if a.is_empty() { none } else { attach(a) })
        }
        "sk_lookup" => (SK_LOOKUP, attach("sk_lookup")),
        "netfilter" => (NETFILTER, attach("netfilter")),
        "freplace" => {
            return Err(format!(
                "section '{section}': an extension (freplace) program needs the program it \
                 replaces, which bpfld verify does not load"
            ))
        }
        "struct_ops" => {
            // Verified as the member of the kernel's struct that the
            // object's struct_ops map points at it from.
            let (type_id, member) = struct_ops.unwrap_or_else(|| {
                Err(format!(
                    "section '{section}': no struct_ops map of the object points at this program"
                ))
            })?;
            return Ok(Spec {
                prog_type: STRUCT_OPS,
                type_name: "struct_ops",
                attach: member,
                attach_name: None,
                flags,
                attach_btf_id: type_id,
            });
        }
        _ => return Err(format!("section '{section}': unknown program type")),
    };
    let mut attach_btf_id = 0;
    if let Some((name, kind)) = btf_target {
        let k = kernel_btf.ok_or_else(|| {
            format!("section '{section}': the kernel's BTF (/sys/kernel/btf/vmlinux) is needed to find {name}")
        })?;
        attach_btf_id = k
            .id_by_type_name_kind(&name, kind)
            .map_err(|_| format!("section '{section}': {name} is not in the kernel's BTF"))?;
    }
    Ok(Spec {
        prog_type,
        type_name: prog_type_name(prog_type),
        attach: at,
        attach_name: at_name,
        flags,
        attach_btf_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_named_by_their_kernel_type() {
        let names: Vec<&str> = ProgKind::ALL.into_iter().map(ProgKind::name).collect();
        assert_eq!(
            names,
            [
                "xdp",
                "sched_cls",
                "socket_filter",
                "cgroup_skb",
                "flow_dissector",
                "raw_tracepoint",
                "syscall",
                "lwt_in",
                "lwt_out",
                "lwt_xmit",
                "lwt_seg6local"
            ]
        );
    }

    #[test]
    fn action_names() {
        assert_eq!(ProgKind::Xdp.action_name(2), Some("XDP_PASS"));
        assert_eq!(ProgKind::Xdp.action_name(5), None);
        assert_eq!(ProgKind::SchedCls.action_name(2), Some("TC_ACT_SHOT"));
        assert_eq!(
            ProgKind::SchedCls.action_name(u32::MAX),
            Some("TC_ACT_UNSPEC")
        );
        assert_eq!(ProgKind::SocketFilter.action_name(0), None);
        assert_eq!(ProgKind::LwtIn.action_name(2), Some("BPF_DROP"));
        assert_eq!(ProgKind::FlowDissector.action_name(0), Some("BPF_OK"));
        assert_eq!(ProgKind::Syscall.action_name(0), None);
    }

    #[test]
    fn section_names_give_libbpf_types() {
        let s = prog_spec("xdp", None, None).unwrap();
        assert_eq!((s.prog_type, s.attach, s.flags), (XDP, 37, 0));
        let s = prog_spec("xdp.frags/devmap", None, None).unwrap();
        assert_eq!((s.attach, s.flags), (33, BPF_F_XDP_HAS_FRAGS));
        let s = prog_spec("cgroup/connect4", None, None).unwrap();
        assert_eq!(
            (s.type_name, s.attach_name),
            ("cgroup_sock_addr", Some("cgroup_inet4_connect"))
        );
        let s = prog_spec("?syscall", None, None).unwrap();
        assert_eq!((s.type_name, s.flags), ("syscall", BPF_F_SLEEPABLE));
        assert!(prog_spec("fentry/foo", None, None)
            .unwrap_err()
            .contains("kernel's BTF"));
        assert!(prog_spec("struct_ops/x", None, None).is_err());
    }
}
