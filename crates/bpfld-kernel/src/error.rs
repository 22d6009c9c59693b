//! Errors: what went wrong ([`ErrorKind`]) with a message meant for people,
//! and the conversions from aya's and the kernel's failures (errno names,
//! permission hints, verifier rejections).

use std::fmt;
use std::io;

use aya::programs::ProgramError;
use aya::EbpfError;

use crate::sys;
use crate::verifier_log::{digest_verifier_log, VerifierReport};

/// What went wrong, for callers that react differently (tests skip on
/// [`ErrorKind::PermissionDenied`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `bpf()` refused (EPERM) or absent (ENOSYS).
    PermissionDenied,
    /// The verifier rejected the program.
    Verifier,
    /// `--prog` names no program, or the choice is ambiguous, or there is none.
    NoSuchProgram,
    /// The program's type cannot be run with `BPF_PROG_TEST_RUN`.
    NotRunnable,
    /// The object could not be parsed or its maps created.
    Object,
    /// Any other failure of a kernel call.
    Kernel,
    /// What bpfld read changed before it could act on it (another tool
    /// attached or replaced an interface's XDP program meanwhile).
    Changed,
}

/// A failure with a message meant for people (may span several lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    verifier: Option<VerifierReport>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            verifier: None,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Present for [`ErrorKind::Verifier`].
    pub fn verifier(&self) -> Option<&VerifierReport> {
        self.verifier.as_ref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) const PERMISSION_HINT: &str =
    "the bpf() syscall was refused: run as root, or with CAP_BPF and \
     CAP_NET_ADMIN (or CAP_SYS_ADMIN); check also kernel.unprivileged_bpf_disabled";
pub(crate) const NOSYS_HINT: &str =
    "the bpf() syscall is not available (ENOSYS): the kernel lacks \
     CONFIG_BPF_SYSCALL or a seccomp filter blocks it";

/// The io::Error at the bottom of an error chain, if any.
pub(crate) fn root_io_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a io::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut found = None;
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            found = Some(io);
        }
        cur = err.source();
    }
    found
}

/// EPERM / ENOSYS anywhere in the chain become the permission error.
pub(crate) fn permission_error(e: &(dyn std::error::Error + 'static)) -> Option<Error> {
    match root_io_error(e)?.raw_os_error()? {
        libc::EPERM => Some(Error::new(ErrorKind::PermissionDenied, PERMISSION_HINT)),
        libc::ENOSYS => Some(Error::new(ErrorKind::PermissionDenied, NOSYS_HINT)),
        _ => None,
    }
}

/// The whole error chain on one line: aya's top-level messages alone
/// ("failed to create map `x`") drop the errno.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(err) = cur {
        let m = err.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = err.source();
    }
    without_debug_text(&s)
}

/// aya prints some names with Rust's debug formatting (``map
/// `Some("x")` ``, `None`); people are shown the names alone.
pub(crate) fn without_debug_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("Some(\"") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 6..];
        match after.find("\")") {
            Some(j) => {
                out.push_str(&after[..j]);
                rest = &after[j + 2..];
            }
            None => {
                out.push_str(&rest[i..i + 6]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.replace("`None`", "(unnamed)")
}

/// `EACCES: Permission denied`, or io::Error's text for unlisted errnos.
pub(crate) fn errno_text(e: &io::Error) -> String {
    let name = match e.raw_os_error() {
        Some(libc::EPERM) => "EPERM",
        Some(libc::EACCES) => "EACCES",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::E2BIG) => "E2BIG",
        Some(libc::ENOSPC) => "ENOSPC",
        Some(libc::ENOMEM) => "ENOMEM",
        Some(libc::EFAULT) => "EFAULT",
        Some(libc::ENOENT) => "ENOENT",
        Some(libc::EOPNOTSUPP) => "EOPNOTSUPP",
        Some(524) => "ENOTSUPP",
        _ => return e.to_string(),
    };
    let text = e.to_string();
    // io::Error prints "Permission denied (os error 13)"; keep the words.
    let words = text.split(" (os error").next().unwrap_or(&text);
    format!("{name}: {words}")
}

pub(crate) fn object_error(e: EbpfError) -> Error {
    if let EbpfError::ProgramError(pe) = e {
        return program_error("", pe, "loading the object");
    }
    if let Some(p) = permission_error(&e) {
        return p;
    }
    let text = chain(&e);
    Error::new(ErrorKind::Object, format!("cannot load the object: {text}"))
}

pub(crate) fn program_error(program: &str, e: ProgramError, doing: &str) -> Error {
    if let ProgramError::LoadError {
        io_error,
        verifier_log,
    } = &e
    {
        let log = verifier_log.to_string();
        let errno = io_error.raw_os_error();
        if log.trim().is_empty() && matches!(errno, Some(libc::EPERM) | Some(libc::ENOSYS)) {
            if let Some(p) = permission_error(&e) {
                return p;
            }
        }
        return verifier_error(program, io_error, &log);
    }
    permission_error(&e).unwrap_or_else(|| {
        Error::new(
            ErrorKind::Kernel,
            format!("program '{program}': {doing}: {}", chain(&e)),
        )
    })
}

fn verifier_error(program: &str, io_error: &io::Error, log: &str) -> Error {
    let report = digest_verifier_log(log);
    let mut m = format!(
        "program '{program}' rejected by the verifier ({})",
        errno_text(io_error)
    );
    if let Some(i) = &report.instruction {
        m.push_str(&format!("\n  at instruction {i}"));
    }
    if let Some(r) = &report.reason {
        m.push_str(&format!("\n  reason: {r}"));
    }
    if report.tail.is_empty() {
        m.push_str("\n  (the verifier left no log)");
    } else {
        m.push_str(&format!(
            "\n  verifier log (last {} lines):",
            report.tail.len()
        ));
        for l in &report.tail {
            m.push_str("\n    ");
            m.push_str(l);
        }
    }
    Error {
        kind: ErrorKind::Verifier,
        message: m,
        verifier: Some(report),
    }
}

/// Whether this process may use `bpf()`: creates and drops a one-entry
/// array map. `Err` carries the permission error; tests use it to skip.
pub fn probe_bpf() -> Result<()> {
    sys::probe_array_map().map_err(|e| match e.raw_os_error() {
        Some(libc::EPERM) => Error::new(ErrorKind::PermissionDenied, PERMISSION_HINT),
        Some(libc::ENOSYS) => Error::new(ErrorKind::PermissionDenied, NOSYS_HINT),
        _ => Error::new(ErrorKind::Kernel, format!("bpf() probe failed: {e}")),
    })
}

/// A failed `bpf()` call of bpfld's own (`what` names the object), with
/// the capabilities it needs on EPERM / EACCES.
pub(crate) fn kernel_err(what: impl std::fmt::Display, e: &io::Error) -> Error {
    if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) {
        return Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "{what}: permission denied (needs root, or CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN)"
            ),
        );
    }
    Error::new(ErrorKind::Kernel, format!("{what}: {}", errno_text(e)))
}

#[cfg(test)]
mod debug_text_tests {
    use super::without_debug_text;

    #[test]
    fn aya_debug_names_are_shown_plain() {
        assert_eq!(
            without_debug_text(
                "map `Some(\"cx_verdict\")` requested pinning. pinning failed: `BPF_OBJ_PIN` failed"
            ),
            "map `cx_verdict` requested pinning. pinning failed: `BPF_OBJ_PIN` failed"
        );
        assert_eq!(
            without_debug_text("map `None` failed"),
            "map (unnamed) failed"
        );
        assert_eq!(without_debug_text("Some(\"a\") Some(\"b"), "a Some(\"b");
    }
}
