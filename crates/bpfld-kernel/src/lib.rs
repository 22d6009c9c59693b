//! The kernel side of bpfld: load an eBPF object with aya (maps and global
//! data created), load one of its programs, run it with `BPF_PROG_TEST_RUN`
//! on packet bytes, and read back every map; or load every program of an
//! object by bpfld's own `BPF_PROG_LOAD` and report the verifier's verdict
//! and statistics for each ([`verify`]).
//!
//! What aya 0.14 leaves undone is done here: `.kconfig` and `.ksyms`
//! externs are resolved from the running kernel (externs.rs), CO-RE
//! relocations applied against its BTF with libbpf's rules (core_reloc/),
//! program
//! types aya has no loader for (syscall, lwt_*) are loaded by bpfld's own
//! `BPF_PROG_LOAD` (raw_load.rs), prog arrays and map-in-maps initialised
//! in the object get their slots filled (init_slots.rs, map_in_map.rs), and
//! global data maps get their section's BTF, created by bpfld with the one
//! BTF its programs are loaded with (btf_maps.rs), and ring buffers get the
//! page-rounded size libbpf gives them (ringbuf_size.rs).
//!
//! Everything here needs the `bpf()` syscall (root, or CAP_BPF plus
//! CAP_NET_ADMIN / CAP_PERFMON, or CAP_SYS_ADMIN); without it the error says
//! so ([`ErrorKind::PermissionDenied`]).
//!
//! Maps the object pins by name (`LIBBPF_PIN_BY_NAME`) are pinned in a
//! private directory under /sys/fs/bpf for the duration of the run and
//! unpinned afterwards: each run starts from the object's own initial state.
//!
//! Map values of per-CPU maps are returned as one byte string per key: the
//! values of every *possible* CPU, in CPU order, each exactly `value_size`
//! bytes long (the kernel's 8-byte padding between them is removed), so
//! `value.len() == value_size * cpus` (see [`MapDump::per_cpu`]).

#![deny(clippy::undocumented_unsafe_blocks)]

mod attach;
mod aya_compat;
mod bpffs;
pub mod btf_check;
pub mod btf_load;
mod btf_maps;
mod core_reloc;
mod error;
mod exception_cb;
mod externs;
mod globals;
mod hidden_subprogs;
pub mod info;
mod init_slots;
mod load;
mod map_in_map;
mod maps;
pub mod netlink;
mod prog_kind;
mod prog_load;
mod raw_load;
mod relocate;
mod ringbuf_size;
mod sys;
mod test_run;
mod verifier_log;
mod verify;

pub use attach::xdp;
pub use error::{probe_bpf, Error, ErrorKind, Result};
pub use globals::{encode_globals, encode_map_updates, GlobalValue, MapUpdate};
pub use maps::MapDump;
pub use prog_kind::ProgKind;
pub use test_run::{run, run_all, run_packets, RunOptions, RunResult, DEFAULT_PACKET};
pub use verifier_log::{digest_verifier_log, VerifierReport, VERIFIER_TAIL_LINES};
pub use verify::{
    parse_stats, verify, ComponentShare, ProgramVerdict, Rejection, SourceLine, VerifierStats,
    VerifyOptions,
};
