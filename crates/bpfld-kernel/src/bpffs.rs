//! Private places in bpffs for pins, removed with their pins on drop: a
//! directory under /sys/fs/bpf for the maps a run pins by name, and a
//! private bpffs mount through which attach hands existing maps to aya.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::error::{kernel_err, Error, ErrorKind};
use crate::sys;

/// A private directory in bpffs for maps the object pins by name
/// (`LIBBPF_PIN_BY_NAME`), so that a run neither reuses a map pinned in
/// /sys/fs/bpf by someone else nor leaves a pin behind. Removed, with its
/// pins, on drop.
pub(crate) struct PinDir(std::path::PathBuf);

impl PinDir {
    /// `None` when /sys/fs/bpf is not writable (no bpffs mounted): aya then
    /// reports the failure if, and only if, the object pins a map.
    pub(crate) fn create() -> Option<PinDir> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        // bpffs refuses names with a dot.
        let dir =
            std::path::PathBuf::from(format!("/sys/fs/bpf/bpfld-run-{}-{n}", std::process::id()));
        std::fs::create_dir(&dir).ok().map(|()| PinDir(dir))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        // Best effort: the pins are the only entries; unlinking a pin drops
        // its reference to the map.
        if let Ok(rd) = std::fs::read_dir(&self.0) {
            for e in rd.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// The filesystem magic of bpffs (`statfs.f_type`).
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Whether `dir` is the root of (or inside) a bpffs.
pub(crate) fn is_bpffs(dir: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statfs is plain data; zeroed is valid, and c is a valid path.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is NUL-terminated; st is valid for writing.
    let r = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    r == 0 && st.f_type as i64 == BPF_FS_MAGIC
}

/// Makes sure `dir` is a bpffs, mounting one there when it is not (as
/// bpftool does: inside `ip netns exec`, a fresh /sys has none). Returns
/// whether it mounted one; fails saying what to do when it cannot.
pub(crate) fn ensure_bpffs(dir: &Path) -> Result<bool, Error> {
    // (A directory made inside a bpffs is in it: no mount on top.)
    let _ = std::fs::create_dir_all(dir);
    if is_bpffs(dir) {
        return Ok(false);
    }
    let fail = |what: String| {
        Error::new(
            ErrorKind::Kernel,
            format!(
                "{} is not a bpffs, which pinning maps needs, and {what}; mount one first: mount -t bpf bpf {}",
                dir.display(),
                dir.display()
            ),
        )
    };
    std::fs::create_dir_all(dir).map_err(|e| {
        fail(format!(
            "creating it failed ({})",
            crate::error::errno_text(&e)
        ))
    })?;
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| fail("its path has a NUL".into()))?;
    // SAFETY: all pointers are valid NUL-terminated strings; no data.
    let r = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            c.as_ptr(),
            c"bpf".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if r != 0 {
        let e = io::Error::last_os_error();
        return Err(fail(format!(
            "mounting one there failed ({})",
            crate::error::errno_text(&e)
        )));
    }
    Ok(true)
}

/// A private bpffs mount, so aya can be handed existing maps by pin path;
/// unmounted (and every pin with it) on drop.
pub(crate) struct PrivateBpffs {
    dir: PathBuf,
}

impl PrivateBpffs {
    pub(crate) fn mount() -> Result<PrivateBpffs, Error> {
        let dir = std::env::temp_dir().join(format!("bpfld-reuse-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| kernel_err(format!("creating {}", dir.display()), &e))?;
        let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::new(ErrorKind::Kernel, "temp dir path has a NUL"))?;
        // SAFETY: all pointers are valid NUL-terminated strings; no data.
        let r = unsafe {
            libc::mount(
                c"bpf".as_ptr(),
                c.as_ptr(),
                c"bpf".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            let _ = std::fs::remove_dir(&dir);
            return Err(kernel_err("mounting a private bpffs to hand maps over", &e));
        }
        Ok(PrivateBpffs { dir })
    }

    pub(crate) fn pin(&self, fd: &OwnedFd, name: &str) -> Result<PathBuf, Error> {
        let path = self.dir.join(name);
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::new(ErrorKind::Kernel, "pin path has a NUL"))?;
        sys::obj_pin(fd, &c).map_err(|e| kernel_err("pinning a map", &e))?;
        Ok(path)
    }
}

impl Drop for PrivateBpffs {
    fn drop(&mut self) {
        if let Ok(c) = std::ffi::CString::new(self.dir.as_os_str().as_encoded_bytes()) {
            // SAFETY: valid NUL-terminated path.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}
