//! Loading an object into the kernel with aya (maps and global data
//! created, maps pinned by name kept in a private directory) and choosing
//! the program to use by name.

use aya::{Ebpf, EbpfLoader};

use crate::error::{object_error, Error, ErrorKind, Result};

/// An object whose maps exist in the kernel; its programs are not loaded yet.
pub(crate) struct LoadedObject {
    pub(crate) ebpf: Ebpf,
    // Declared after `ebpf`, so dropped after it: the pins go last.
    _pins: Option<PinDir>,
}

/// Loads `object` (an ELF eBPF object): creates its maps and global data.
pub(crate) fn load_object(object: &[u8]) -> Result<LoadedObject> {
    let pins = PinDir::create();
    let mut loader = EbpfLoader::new();
    if let Some(p) = &pins {
        loader.default_map_pin_directory(&p.0);
    }
    let ebpf = loader.load(object).map_err(object_error)?;
    Ok(LoadedObject { ebpf, _pins: pins })
}

/// Names of the object's programs, sorted.
fn program_names(ebpf: &Ebpf) -> Vec<String> {
    let mut v: Vec<String> = ebpf.programs().map(|(n, _)| n.to_string()).collect();
    v.sort();
    v
}

pub(crate) fn choose_program(ebpf: &Ebpf, wanted: Option<&str>) -> Result<String> {
    let names = program_names(ebpf);
    match wanted {
        Some(w) if names.iter().any(|n| n == w) => Ok(w.to_string()),
        Some(w) => Err(Error::new(
            ErrorKind::NoSuchProgram,
            if names.is_empty() {
                format!("no program named '{w}': the object has no programs")
            } else {
                format!(
                    "no program named '{w}'; the object's programs are: {}",
                    names.join(", ")
                )
            },
        )),
        None => match names.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(Error::new(
                ErrorKind::NoSuchProgram,
                "the object has no programs",
            )),
            _ => Err(Error::new(
                ErrorKind::NoSuchProgram,
                format!(
                    "the object has {} programs; choose one with --prog: {}",
                    names.len(),
                    names.join(", ")
                ),
            )),
        },
    }
}

/// A private directory in bpffs for maps the object pins by name
/// (`LIBBPF_PIN_BY_NAME`), so that a run neither reuses a map pinned in
/// /sys/fs/bpf by someone else nor leaves a pin behind. Removed, with its
/// pins, on drop.
struct PinDir(std::path::PathBuf);

impl PinDir {
    /// `None` when /sys/fs/bpf is not writable (no bpffs mounted): aya then
    /// reports the failure if, and only if, the object pins a map.
    fn create() -> Option<PinDir> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        // bpffs refuses names with a dot.
        let dir =
            std::path::PathBuf::from(format!("/sys/fs/bpf/bpfld-run-{}-{n}", std::process::id()));
        std::fs::create_dir(&dir).ok().map(|()| PinDir(dir))
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
