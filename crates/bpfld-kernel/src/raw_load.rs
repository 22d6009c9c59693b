//! Loading a program aya 0.14 has no loader for (syscall, lwt_*) by
//! bpfld's own `BPF_PROG_LOAD`, and running it with its own
//! `BPF_PROG_TEST_RUN`.
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

/// The kernel's program type number, load flags and bpfld's kind for a
/// libbpf type name bpfld loads itself; `None` for the others.
pub(crate) fn raw_type(libbpf_type: &str) -> Option<(u32, u32, ProgKind)> {
    let kind = [
        ProgKind::LwtIn,
        ProgKind::LwtOut,
        ProgKind::LwtXmit,
        ProgKind::LwtSeg6local,
        ProgKind::Syscall,
    ]
    .into_iter()
    .find(|k| k.name() == libbpf_type)?;
    // Each of these names is also a section name libbpf loads as that
    // type: the flags are the section's (syscall programs are sleepable).
    let spec = prog_spec(libbpf_type, None, None).ok()?;
    Some((spec.prog_type, spec.flags, kind))
}

fn obj_error(program: &str, what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Object,
        format!("program '{program}': {what}: {e}"),
    )
}

/// Loads program `name` of `bytes` (the copy aya loaded into `ebpf`) as
/// kernel program type `prog_type`.
pub(crate) fn load(
    bytes: &[u8],
    ebpf: &Ebpf,
    name: &str,
    prog_type: u32,
    flags: u32,
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
        prog_type,
        expected_attach_type: 0,
        flags,
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
/// context back).
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
    if kind == ProgKind::Syscall {
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
    if kind != ProgKind::Syscall {
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
    fn raw_types_are_the_sections_types() {
        assert_eq!(raw_type("lwt_in"), Some((10, 0, ProgKind::LwtIn)));
        assert_eq!(
            raw_type("lwt_seg6local"),
            Some((19, 0, ProgKind::LwtSeg6local))
        );
        assert_eq!(raw_type("syscall"), Some((31, 1 << 4, ProgKind::Syscall)));
        assert_eq!(raw_type("xdp"), None);
        assert_eq!(raw_type("struct_ops"), None);
    }
}
