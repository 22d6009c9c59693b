//! aya's loading steps, done again by bpfld on the bytes aya loaded, for
//! the programs bpfld loads itself (`bpfld verify`, and the types aya has
//! no loader for): the object's BTF fixed up and loaded, CO-RE against the
//! kernel's BTF, map relocations to the maps aya created for the object,
//! called functions linked in. The steps and their order are aya's own.

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use aya::Ebpf;
use aya_obj::btf::{Btf as AyaBtf, BtfError};

use crate::error::errno_text;
use crate::maps::map_data;

/// An object with its programs ready for `BPF_PROG_LOAD`.
pub(crate) struct Relocated {
    pub(crate) obj: aya_obj::Object,
    /// The object's BTF as fixed up for this kernel (`None` without BTF,
    /// or on a kernel without BTF support).
    pub(crate) btf_bytes: Option<Vec<u8>>,
    /// That BTF loaded in the kernel, for func_info and line_info.
    pub(crate) btf_fd: Option<OwnedFd>,
    /// Why the kernel refused that BTF: the programs are loaded without it
    /// then, as aya does.
    pub(crate) btf_refused: Option<String>,
    /// The kernel's BTF, read only for CO-RE (see `core_skipped`).
    pub(crate) kernel_btf: Option<AyaBtf>,
    /// The object has CO-RE relocations but the kernel's BTF could not be
    /// read: they are left as they are, as aya does.
    pub(crate) core_skipped: Option<BtfError>,
    /// Programs libbpf refuses for their exception callback tag, with why
    /// (see [`crate::exception_cb`]).
    pub(crate) exception_cb_errors: HashMap<String, String>,
}

/// The step that failed, for each caller's own message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Parse,
    Btf,
    CoRe,
    Maps,
    Calls,
}

pub(crate) struct RelocateError {
    pub(crate) step: Step,
    pub(crate) error: Box<dyn std::error::Error>,
}

fn failed<E: std::error::Error + 'static>(step: Step) -> impl FnOnce(E) -> RelocateError {
    move |e| RelocateError {
        step,
        error: Box::new(e),
    }
}

/// Relocates the programs of `bytes`, the copy of an object aya loaded
/// into `ebpf`, against the maps aya created.
pub(crate) fn relocate(bytes: &[u8], ebpf: &Ebpf) -> std::result::Result<Relocated, RelocateError> {
    let mut obj = aya_obj::Object::parse(bytes).map_err(failed(Step::Parse))?;
    let features = aya::features();
    let btf_bytes = match features.btf() {
        Some(f) => obj
            .fixup_and_sanitize_btf(f)
            .map_err(failed(Step::Btf))?
            .map(|b| b.to_bytes()),
        None => None,
    };
    let (btf_fd, btf_refused) = match btf_bytes.as_deref() {
        Some(b) => match crate::sys::btf_load(b, None) {
            Ok(fd) => (Some(fd), None),
            Err(e) => (None, Some(errno_text(&e))),
        },
        None => (None, None),
    };
    let (mut kernel_btf, mut core_skipped) = (None, None);
    if obj.has_btf_relocations() {
        match AyaBtf::from_sys_fs() {
            Ok(k) => {
                obj.relocate_btf(&k).map_err(failed(Step::CoRe))?;
                kernel_btf = Some(k);
            }
            Err(e) => core_skipped = Some(e),
        }
    }
    let mut maps: Vec<(String, RawFd, aya_obj::Map)> = Vec::new();
    for (name, m) in ebpf.maps() {
        if let Some(def) = obj.maps.get(name) {
            let fd = map_data(m).fd().as_fd().as_raw_fd();
            maps.push((name.to_string(), fd, def.clone()));
        }
    }
    let text_sections: HashSet<usize> = obj.functions.keys().map(|(s, _)| *s).collect();
    obj.relocate_maps(
        maps.iter().map(|(n, fd, m)| (n.as_str(), *fd, m)),
        &text_sections,
    )
    .map_err(failed(Step::Maps))?;
    // Exception callbacks are appended after the calls are linked, as
    // libbpf does, only where the kernel can read the decl tags naming them.
    let (mut callbacks, mut exception_cb_errors) = (HashMap::new(), HashMap::new());
    if features.btf().is_some_and(|f| f.btf_decl_tag()) {
        let model = bpfld::Object::parse(bytes).map_err(failed(Step::Parse))?;
        for name in obj.programs.keys() {
            match crate::exception_cb::callback_of(&model, name) {
                Ok(Some(cb)) => {
                    callbacks.insert(name.clone(), cb);
                }
                Ok(None) => {}
                Err(why) => {
                    exception_cb_errors.insert(name.clone(), why);
                }
            }
        }
    }
    let unlinked = (!callbacks.is_empty()).then(|| obj.clone());
    obj.relocate_calls(&text_sections)
        .map_err(failed(Step::Calls))?;
    if let Some(unlinked) = unlinked {
        crate::exception_cb::append(&mut obj, unlinked, &callbacks, &text_sections)
            .map_err(failed(Step::Calls))?;
    }
    obj.sanitize_functions(features);
    Ok(Relocated {
        obj,
        btf_bytes,
        btf_fd,
        btf_refused,
        kernel_btf,
        core_skipped,
        exception_cb_errors,
    })
}
