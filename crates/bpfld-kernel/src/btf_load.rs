//! `BPF_BTF_LOAD`: hand raw BTF to the kernel's BTF verifier.

use crate::error::{Error, ErrorKind, Result, NOSYS_HINT, PERMISSION_HINT};
use crate::sys::btf_load;

/// Room for the BTF verifier's log on a rejection.
const LOG_SIZE: usize = 1 << 20;

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
