//! `BPF_BTF_LOAD`: hand raw BTF to the kernel's BTF verifier.

use std::os::fd::{FromRawFd, OwnedFd};

use crate::error::{Error, ErrorKind, Result, NOSYS_HINT, PERMISSION_HINT};

const BPF_BTF_LOAD: libc::c_long = 18;
/// Room for the BTF verifier's log on a rejection.
const LOG_SIZE: usize = 1 << 20;

/// The `union bpf_attr` prefix BPF_BTF_LOAD reads.
#[repr(C)]
#[derive(Default)]
struct BtfLoadAttr {
    btf: u64,
    btf_log_buf: u64,
    btf_size: u32,
    btf_log_size: u32,
    btf_log_level: u32,
}

fn btf_load(bytes: &[u8], log: Option<&mut [u8]>) -> std::io::Result<OwnedFd> {
    let mut attr = BtfLoadAttr {
        btf: bytes.as_ptr() as u64,
        btf_size: u32::try_from(bytes.len())
            .map_err(|_| std::io::Error::from_raw_os_error(libc::E2BIG))?,
        ..Default::default()
    };
    if let Some(log) = log {
        attr.btf_log_buf = log.as_mut_ptr() as u64;
        attr.btf_log_size = log.len() as u32;
        attr.btf_log_level = 1;
    }
    // SAFETY: `attr` is the BPF_BTF_LOAD prefix of `bpf_attr`; the BTF
    // pointer covers `btf_size` readable bytes and the log pointer
    // `btf_log_size` writable bytes, both alive for the call.
    let ret = unsafe { crate::sys::bpf(BPF_BTF_LOAD, &mut attr) }?;
    // SAFETY: on success BPF_BTF_LOAD returns a new file descriptor that
    // nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as libc::c_int) })
}

/// Loads raw BTF (header, types, strings) into the kernel and releases it
/// again. Ok means the kernel's BTF verifier accepted it; a rejection
/// carries the verifier's log ([`ErrorKind::Verifier`]).
pub fn load_btf(bytes: &[u8]) -> Result<()> {
    match btf_load(bytes, None) {
        Ok(_fd) => Ok(()),
        Err(e) => match e.raw_os_error() {
            Some(libc::EPERM) => Err(Error::new(ErrorKind::PermissionDenied, PERMISSION_HINT)),
            Some(libc::ENOSYS) => Err(Error::new(ErrorKind::PermissionDenied, NOSYS_HINT)),
            _ => {
                // Again with a log, to say why.
                let mut log = vec![0u8; LOG_SIZE];
                let again = btf_load(bytes, Some(&mut log));
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                let text = String::from_utf8_lossy(&log[..end]);
                let tail: Vec<&str> = text.lines().rev().take(8).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                match again {
                    Ok(_fd) => Ok(()),
                    Err(_) => Err(Error::new(
                        ErrorKind::Verifier,
                        format!("the kernel rejected the BTF ({e}):\n{}", tail.join("\n")),
                    )),
                }
            }
        },
    }
}
