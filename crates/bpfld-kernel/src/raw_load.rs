//! Loading a program by bpfld's own `BPF_PROG_LOAD`, and running it with
//! its own `BPF_PROG_TEST_RUN`: the types aya 0.14 has no loader for
//! (syscall, lwt_*), programs aya's copy hides, and programs that must be
//! loaded with the BTF bpfld created the maps with (see btf_maps.rs).
//!
//! aya's object crate does the work that does not depend on the program
//! type, on the same bytes aya loaded (see relocate.rs). Only the final
//! load is bpfld's.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use aya::Ebpf;

use crate::error::{program_error, Error, ErrorKind, Result};
use crate::prog_kind::{prog_spec, ProgKind};
use crate::prog_load::{loaded_size, prog_load, ProgLoad, LOG_LEVEL_INSNS};
use crate::relocate::{relocate, Step};

const BPF_PROG_TEST_RUN: libc::c_long = 10;
/// Room for the verifier's log on a rejection.
const LOG_SIZE: usize = 4 << 20;

/// The `BPF_PROG_TEST_RUN` part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

/// How bpfld loads a program itself: libbpf's reading of its section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawProg {
    pub(crate) prog_type: u32,
    pub(crate) expected_attach_type: u32,
    pub(crate) flags: u32,
    pub(crate) kind: ProgKind,
}

/// How libbpf loads the program of `section` (as the object names it,
/// "?" and all), when it is of a type bpfld runs; `None` otherwise.
pub(crate) fn raw_spec(section: &str) -> Option<RawProg> {
    let spec = prog_spec(section, None, None).ok()?;
    Some(RawProg {
        prog_type: spec.prog_type,
        expected_attach_type: spec.attach,
        flags: spec.flags,
        kind: ProgKind::from_prog_type(spec.prog_type)?,
    })
}

fn obj_error(program: &str, what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Object,
        format!("program '{program}': {what}: {e}"),
    )
}

/// Loads program `name` of `bytes` (the copy aya loaded into `ebpf`) as
/// `how` says.
pub(crate) fn load(
    bytes: &[u8],
    ebpf: &Ebpf,
    name: &str,
    how: RawProg,
    map_btf: Option<std::os::fd::BorrowedFd<'_>>,
) -> Result<OwnedFd> {
    // Without the object's BTF (the kernel refused it) the program still
    // loads when it needs none (no global functions); the verifier says so
    // otherwise.
    let r = relocate(bytes, ebpf).map_err(|e| {
        let what = match e.step {
            Step::Parse => "parsing",
            Step::Btf => "preparing BTF",
            Step::CoRe => "CO-RE relocation",
            Step::Maps => "relocating maps",
            Step::Calls => "linking called functions",
        };
        obj_error(name, what, e.error)
    })?;
    if let Some(e) = &r.core_skipped {
        return Err(obj_error(name, "reading the kernel's BTF for CO-RE", e));
    }
    if let Some(why) = r.exception_cb_errors.get(name) {
        return Err(obj_error(name, "exception callback", why));
    }
    let prog = r
        .obj
        .programs
        .get(name)
        .ok_or_else(|| obj_error(name, "loading", "no such program in the object"))?;
    let func = r
        .obj
        .functions
        .get(&prog.function_key())
        .ok_or_else(|| obj_error(name, "loading", "the program's code is missing"))?;
    let load = ProgLoad {
        prog_type: how.prog_type,
        expected_attach_type: how.expected_attach_type,
        flags: how.flags,
        name,
        function: func,
        license: &prog.license,
        kern_version: 0,
        // The BTF the object's maps were created with, when bpfld created
        // them: the verifier matches list/rbtree nodes and local kptrs by
        // BTF object.
        btf_fd: map_btf.or_else(|| r.btf_fd.as_ref().map(AsFd::as_fd)),
        attach_btf_id: 0,
    };
    let first = match prog_load(&load, 0, 0) {
        (Ok(fd), _) => return Ok(fd),
        (Err(e), _) => e,
    };
    // Again with a log, to say why.
    match prog_load(&load, LOG_LEVEL_INSNS, LOG_SIZE) {
        (Ok(fd), _) => Ok(fd),
        (Err(e), text) => {
            let io_error = if e.raw_os_error() == Some(libc::ENOSPC) {
                first
            } else {
                e
            };
            Err(program_error(
                name,
                aya::programs::ProgramError::LoadError {
                    io_error,
                    verifier_log: aya_obj::VerifierLog::new(text),
                },
                "loading",
            ))
        }
    }
}

/// What one `BPF_PROG_TEST_RUN` returned.
pub(crate) struct RawRun {
    pub(crate) retval: u32,
    pub(crate) duration_ns: u64,
    /// The packet (or, for syscall programs, the context) after the run.
    pub(crate) data_out: Vec<u8>,
}

/// Runs `fd` once per `repeat` on `data`. Syscall programs take `data` as
/// their context instead (the kernel runs them once, and writes the
/// context back); raw tracepoints take nothing and run once.
pub(crate) fn test_run(
    fd: &OwnedFd,
    kind: ProgKind,
    data: &[u8],
    repeat: u32,
    slack: usize,
) -> io::Result<RawRun> {
    let mut attr = TestRunAttr {
        prog_fd: fd.as_raw_fd() as u32,
        ..Default::default()
    };
    let mut out;
    if kind == ProgKind::RawTracepoint {
        // No packet, no repeat: its context is the tracepoint's arguments,
        // none given (the kernel refuses anything else).
        out = Vec::new();
    } else if kind == ProgKind::Syscall {
        out = data.to_vec();
        attr.ctx_in = out.as_mut_ptr() as u64;
        attr.ctx_size_in = out.len() as u32;
    } else {
        out = vec![0u8; data.len() + slack];
        attr.data_in = data.as_ptr() as u64;
        attr.data_size_in = data.len() as u32;
        attr.data_out = out.as_mut_ptr() as u64;
        attr.data_size_out = out.len() as u32;
        attr.repeat = repeat;
    }
    // SAFETY: `attr` is the BPF_PROG_TEST_RUN part of `bpf_attr`; data_in
    // (and for syscall programs ctx_in, which the kernel writes back)
    // point to buffers of the sizes given, alive for the call.
    unsafe { crate::sys::bpf(BPF_PROG_TEST_RUN, &mut attr) }?;
    if !matches!(kind, ProgKind::Syscall | ProgKind::RawTracepoint) {
        out.truncate((attr.data_size_out as usize).min(out.len()));
    }
    Ok(RawRun {
        retval: attr.retval,
        duration_ns: u64::from(attr.duration),
        data_out: out,
    })
}

/// `bpf_prog_info.verified_insns` of a loaded program.
pub(crate) fn verified_insns(fd: &OwnedFd) -> Option<u32> {
    let n = loaded_size(fd).ok()?.verified_insns;
    (n > 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_specs_are_the_sections_types() {
        let spec = |s: &str| raw_spec(s).map(|r| (r.prog_type, r.flags, r.kind));
        assert_eq!(spec("lwt_in"), Some((10, 0, ProgKind::LwtIn)));
        assert_eq!(spec("lwt_seg6local"), Some((19, 0, ProgKind::LwtSeg6local)));
        assert_eq!(spec("?syscall"), Some((31, 1 << 4, ProgKind::Syscall)));
        // XDP with its expected attach type (BPF_XDP, 37), as libbpf loads it.
        let xdp = raw_spec("?xdp").unwrap();
        assert_eq!((xdp.prog_type, xdp.expected_attach_type), (6, 37));
        assert_eq!(spec("tcx/ingress").map(|s| s.2), Some(ProgKind::SchedCls));
        assert_eq!(spec("kprobe/x"), None);
        assert_eq!(spec("struct_ops/x"), None);
        assert_eq!(spec("nonsense"), None);
    }
}
