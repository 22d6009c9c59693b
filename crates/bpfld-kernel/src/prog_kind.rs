//! The program types bpfld can run with `BPF_PROG_TEST_RUN`, their names
//! and the names of their return values.

use std::fmt;

use aya::programs::Program;

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
    /// libbpf's name of the type (as in `bpftool prog show`).
    pub fn name(self) -> &'static str {
        match self {
            ProgKind::Xdp => "xdp",
            ProgKind::SchedCls => "sched_cls",
            ProgKind::SocketFilter => "socket_filter",
            ProgKind::CgroupSkb => "cgroup_skb",
            ProgKind::FlowDissector => "flow_dissector",
            ProgKind::RawTracepoint => "raw_tracepoint",
            ProgKind::Syscall => "syscall",
            ProgKind::LwtIn => "lwt_in",
            ProgKind::LwtOut => "lwt_out",
            ProgKind::LwtXmit => "lwt_xmit",
            ProgKind::LwtSeg6local => "lwt_seg6local",
        }
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
    if let Some(k) = kind_of(p) {
        return k.name();
    }
    match p {
        Program::KProbe(_) | Program::UProbe(_) => "kprobe",
        Program::TracePoint(_) => "tracepoint",
        Program::BtfTracePoint(_) | Program::FEntry(_) | Program::FExit(_) | Program::Iter(_) => {
            "tracing"
        }
        Program::Lsm(_) | Program::LsmCgroup(_) => "lsm",
        Program::PerfEvent(_) => "perf_event",
        Program::SkMsg(_) => "sk_msg",
        Program::SkSkb(_) => "sk_skb",
        Program::SockOps(_) => "sock_ops",
        Program::CgroupSock(_) => "cgroup_sock",
        Program::CgroupSockAddr(_) => "cgroup_sock_addr",
        Program::CgroupSockopt(_) => "cgroup_sockopt",
        Program::CgroupSysctl(_) => "cgroup_sysctl",
        Program::CgroupDevice(_) => "cgroup_device",
        Program::LircMode2(_) => "lirc_mode2",
        Program::SkLookup(_) => "sk_lookup",
        Program::SkReuseport(_) => "sk_reuseport",
        Program::Extension(_) => "ext",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
