//! Loading a program aya 0.14 has no loader for (syscall, lwt_*) by
//! bpfld's own `BPF_PROG_LOAD`, and running it with its own
//! `BPF_PROG_TEST_RUN`.
//!
//! aya's object crate does the work that does not depend on the program
//! type, on the same bytes aya loaded: BTF fix-ups, CO-RE against the
//! kernel's BTF, map relocations (to the maps aya created for the object)
//! and linking of called functions. Only the final load is bpfld's.

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use aya::Ebpf;
use aya_obj::generated::bpf_insn;

use crate::error::{program_error, Error, ErrorKind, Result};
use crate::maps::map_data;
use crate::prog_kind::ProgKind;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_F_SLEEPABLE: u32 = 1 << 4;
/// Room for the verifier's log on a rejection.
const LOG_SIZE: usize = 4 << 20;

/// The `BPF_PROG_LOAD` prefix of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    prog_btf_fd: u32,
    func_info_rec_size: u32,
    func_info: u64,
    func_info_cnt: u32,
    line_info_rec_size: u32,
    line_info: u64,
    line_info_cnt: u32,
    attach_btf_id: u32,
    attach_prog_fd: u32,
    core_relo_cnt: u32,
    fd_array: u64,
}

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
    Some(match libbpf_type {
        "lwt_in" => (10, 0, ProgKind::LwtIn),
        "lwt_out" => (11, 0, ProgKind::LwtOut),
        "lwt_xmit" => (12, 0, ProgKind::LwtXmit),
        "lwt_seg6local" => (19, 0, ProgKind::LwtSeg6local),
        // libbpf loads SEC("syscall") sleepable: it may call sleepable
        // helpers and kfuncs.
        "syscall" => (31, BPF_F_SLEEPABLE, ProgKind::Syscall),
        _ => return None,
    })
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
    let mut obj = aya_obj::Object::parse(bytes).map_err(|e| obj_error(name, "parsing", e))?;
    let features = aya::features();
    // The BTF the object's maps were created with, when bpfld created them.
    let mut btf_fd: Option<OwnedFd> = map_btf.and_then(|f| f.try_clone_to_owned().ok());
    if let (None, Some(bf)) = (&btf_fd, features.btf()) {
        if let Some(btf) = obj
            .fixup_and_sanitize_btf(bf)
            .map_err(|e| obj_error(name, "preparing BTF", e))?
        {
            // Without the BTF the program still loads when it needs none
            // (no global functions); the verifier says so otherwise.
            btf_fd = crate::sys::btf_load(&btf.to_bytes(), None).ok();
        }
    }
    if obj.has_btf_relocations() {
        let kernel = aya_obj::btf::Btf::from_sys_fs()
            .map_err(|e| obj_error(name, "reading the kernel's BTF for CO-RE", e))?;
        obj.relocate_btf(&kernel)
            .map_err(|e| obj_error(name, "CO-RE relocation", e))?;
    }
    let mut maps: Vec<(String, RawFd, aya_obj::Map)> = Vec::new();
    for (map_name, m) in ebpf.maps() {
        if let Some(def) = obj.maps.get(map_name) {
            let fd = map_data(m).fd().as_fd().as_raw_fd();
            maps.push((map_name.to_string(), fd, def.clone()));
        }
    }
    let text_sections: HashSet<usize> = obj.functions.keys().map(|(s, _)| *s).collect();
    obj.relocate_maps(
        maps.iter().map(|(n, fd, m)| (n.as_str(), *fd, m)),
        &text_sections,
    )
    .map_err(|e| obj_error(name, "relocating maps", e))?;
    obj.relocate_calls(&text_sections)
        .map_err(|e| obj_error(name, "linking called functions", e))?;
    obj.sanitize_functions(features);
    let prog = obj
        .programs
        .get(name)
        .ok_or_else(|| obj_error(name, "loading", "no such program in the object"))?;
    let license = prog.license.clone();
    let func = obj
        .functions
        .get(&(prog.section_index, prog.address))
        .ok_or_else(|| obj_error(name, "loading", "the program's code is missing"))?;
    let insns: &[bpf_insn] = &func.instructions;
    let func_info = func.func_info.func_info_bytes();
    let line_info = func.line_info.line_info_bytes();

    let mut attr = ProgLoadAttr {
        prog_type,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_flags: flags,
        ..Default::default()
    };
    // The kernel's program name: at most 15 bytes of [A-Za-z0-9_.].
    for (d, s) in attr.prog_name.iter_mut().zip(
        name.bytes()
            .filter(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
            .take(15),
    ) {
        *d = s;
    }
    if let Some(fd) = &btf_fd {
        attr.prog_btf_fd = fd.as_raw_fd() as u32;
        // The records' own count: aya leaves `num_info` at the section's
        // count when a section holds several programs.
        let (nf, nl) = (
            func.func_info.func_info.len(),
            func.line_info.line_info.len(),
        );
        if nf > 0 {
            attr.func_info_rec_size = func.func_info_rec_size as u32;
            attr.func_info = func_info.as_ptr() as u64;
            attr.func_info_cnt = nf as u32;
        }
        if nl > 0 {
            attr.line_info_rec_size = func.line_info_rec_size as u32;
            attr.line_info = line_info.as_ptr() as u64;
            attr.line_info_cnt = nl as u32;
        }
    }
    match prog_load(&mut attr) {
        Ok(fd) => Ok(fd),
        Err(first) => {
            // Again with a log, to say why.
            let mut log = vec![0u8; LOG_SIZE];
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            match prog_load(&mut attr) {
                Ok(fd) => Ok(fd),
                Err(e) => {
                    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                    let text = String::from_utf8_lossy(&log[..end]).into_owned();
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
    }
}

fn prog_load(attr: &mut ProgLoadAttr) -> io::Result<OwnedFd> {
    // SAFETY: `attr` is the BPF_PROG_LOAD prefix of `bpf_attr`; its
    // pointers (instructions, license, BTF.ext records, log) point to
    // buffers of the sizes given that outlive the call.
    let ret = unsafe { crate::sys::bpf(BPF_PROG_LOAD, attr) }?;
    // SAFETY: on success BPF_PROG_LOAD returns a new file descriptor that
    // nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as libc::c_int) })
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
    // Up to and including verified_insns (offset 216 in bpf_prog_info).
    let mut info = [0u8; 220];
    crate::sys::obj_get_info(fd.as_fd(), &mut info).ok()?;
    let n = u32::from_ne_bytes(info[216..220].try_into().ok()?);
    (n > 0).then_some(n)
}
