//! `BPF_PROG_LOAD` issued by bpfld itself, with a verifier log buffer:
//! aya hands the kernel a log buffer only after a failure, but the
//! verifier's statistics (processed instructions, states, time, stack
//! depth) are printed into that log, on success as well.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use aya_obj::generated::bpf_attr;

use crate::sys::{bpf, obj_get_info};

const BPF_PROG_LOAD: libc::c_long = 5;

/// `log_level` bits: instruction-level log (of the path that failed), the
/// same for every path with the register states, and the statistics
/// footer.
pub(crate) const LOG_LEVEL_INSNS: u32 = 1;
pub(crate) const LOG_LEVEL_ALL_PATHS: u32 = 2;
pub(crate) const LOG_LEVEL_STATS: u32 = 4;

/// Everything one `BPF_PROG_LOAD` needs.
pub(crate) struct ProgLoad<'a> {
    pub(crate) prog_type: u32,
    pub(crate) expected_attach_type: u32,
    pub(crate) flags: u32,
    pub(crate) name: &'a str,
    /// The program's code, relocated, with its func_info and line_info.
    pub(crate) function: &'a aya_obj::Function,
    pub(crate) license: &'a CStr,
    pub(crate) kern_version: u32,
    pub(crate) btf_fd: Option<BorrowedFd<'a>>,
    pub(crate) attach_btf_id: u32,
}

/// The kernel's program name: at most 15 bytes of `[A-Za-z0-9_.]`.
fn kernel_name(name: &str) -> [libc::c_char; 16] {
    let mut out = [0 as libc::c_char; 16];
    for (o, b) in out
        .iter_mut()
        .zip(
            name.bytes()
                .filter(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.'),
        )
        .take(15)
    {
        *o = b as libc::c_char;
    }
    out
}

/// Loads the program with `log_level` and a log buffer of `log_size`
/// bytes; returns the program's fd (or the error) and the log. Level 0
/// loads without a log (the kernel refuses a buffer with it).
pub(crate) fn prog_load(
    p: &ProgLoad<'_>,
    log_level: u32,
    log_size: usize,
) -> (io::Result<OwnedFd>, String) {
    let mut log = vec![0u8; if log_level == 0 { 0 } else { log_size.max(1) }];
    let f = p.function;
    let func_info = f.func_info.func_info_bytes();
    let line_info = f.line_info.line_info_bytes();
    // SAFETY: bpf_attr is a plain C union of integers; all zero is valid.
    let mut attr: bpf_attr = unsafe { std::mem::zeroed() };
    // SAFETY: writing the fields of the BPF_PROG_LOAD member of the union,
    // which is the one the kernel reads for this command.
    let u = unsafe { &mut attr.__bindgen_anon_3 };
    u.prog_type = p.prog_type;
    u.expected_attach_type = p.expected_attach_type;
    u.prog_flags = p.flags;
    u.prog_name = kernel_name(p.name);
    u.insns = f.instructions.as_ptr() as u64;
    u.insn_cnt = f.instructions.len() as u32;
    u.license = p.license.as_ptr() as u64;
    u.kern_version = p.kern_version;
    if !log.is_empty() {
        u.log_level = log_level;
        u.log_buf = log.as_mut_ptr() as u64;
        u.log_size = log.len() as u32;
    }
    u.attach_btf_id = p.attach_btf_id;
    if let Some(fd) = p.btf_fd {
        u.prog_btf_fd = fd.as_raw_fd() as u32;
        // The records' own count: aya leaves `num_info` at the section's
        // count when a section holds several programs.
        if f.func_info_rec_size > 0 && !func_info.is_empty() {
            u.func_info = func_info.as_ptr() as u64;
            u.func_info_rec_size = f.func_info_rec_size as u32;
            u.func_info_cnt = (func_info.len() / f.func_info_rec_size) as u32;
        }
        if f.line_info_rec_size > 0 && !line_info.is_empty() {
            u.line_info = line_info.as_ptr() as u64;
            u.line_info_rec_size = f.line_info_rec_size as u32;
            u.line_info_cnt = (line_info.len() / f.line_info_rec_size) as u32;
        }
    }
    // SAFETY: `attr` is a full bpf_attr for BPF_PROG_LOAD; the instruction,
    // license, name, func/line info and log pointers all point into buffers
    // that outlive the call, with the counts and sizes given.
    let ret = unsafe { bpf(BPF_PROG_LOAD, &mut attr) };
    let fd = ret.map(|fd| {
        // SAFETY: on success BPF_PROG_LOAD returns a new file descriptor
        // that nothing else owns.
        unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) }
    });
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    (fd, String::from_utf8_lossy(&log[..end]).into_owned())
}

/// What `bpf_prog_info` says about a loaded program's size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LoadedSize {
    /// Instructions after the verifier's rewrites (`xlated_prog_len / 8`).
    pub(crate) xlated_insns: u32,
    /// Bytes of JIT-compiled code (0 without the JIT).
    pub(crate) jited_bytes: u32,
    /// `verified_insns` (5.16+; 0 before).
    pub(crate) verified_insns: u32,
}

pub(crate) fn loaded_size(fd: &OwnedFd) -> io::Result<LoadedSize> {
    let mut buf = vec![0u8; 256];
    obj_get_info(fd, &mut buf)?;
    let at = |off: usize| {
        buf.get(off..off + 4)
            .and_then(|s| s.try_into().ok())
            .map_or(0, u32::from_ne_bytes)
    };
    // struct bpf_prog_info: jited_prog_len 16, xlated_prog_len 20,
    // verified_insns 216.
    Ok(LoadedSize {
        jited_bytes: at(16),
        xlated_insns: at(20) / 8,
        verified_insns: at(216),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cut_to_what_the_kernel_takes() {
        let n = kernel_name("a-very_long.program:name");
        let s: String = n
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8 as char)
            .collect();
        assert_eq!(s, "avery_long.prog");
    }
}
