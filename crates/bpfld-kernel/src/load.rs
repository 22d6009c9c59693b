//! Loading an object into the kernel with aya (maps and global data
//! created, maps pinned by name kept in a private directory) and choosing
//! the program to use by name.

use std::collections::HashMap;

use aya::{Ebpf, EbpfLoader};

use crate::bpffs::PinDir;
use crate::error::{object_error, Error, ErrorKind, Result};
use crate::globals::GlobalValue;

/// An object whose maps exist in the kernel; its programs are not loaded yet.
pub(crate) struct LoadedObject {
    pub(crate) ebpf: Ebpf,
    /// Programs aya cannot load as their own type: name to libbpf's type.
    pub(crate) unloadable: HashMap<String, &'static str>,
    /// Programs that cannot be loaded: name to the reason (see
    /// [`crate::aya_compat::AyaCopy::refused`]).
    pub(crate) refused: HashMap<String, String>,
    /// The bytes aya loaded (bpfld loads the types aya cannot from them).
    pub(crate) bytes: Vec<u8>,
    /// Program name to its section as the object (not aya's copy) names
    /// it: how libbpf, and bpfld when it loads a program itself, read its
    /// type.
    pub(crate) sections: HashMap<String, String>,
    /// The object's BTF as loaded for its maps: programs bpfld loads itself
    /// must be loaded with this one (see [`crate::btf_maps`]).
    pub(crate) btf_fd: Option<std::os::fd::OwnedFd>,
    /// The prog arrays' filled slots (or the error reading them).
    pub(crate) prog_slots: Result<Vec<crate::init_slots::Slot>>,
    // Declared after `ebpf`, so dropped after it: the pins go last.
    _pins: Option<PinDir>,
}

/// Loads `object` (an ELF eBPF object): creates its maps and global data.
pub(crate) fn load_object(object: &[u8], globals: &[GlobalValue]) -> Result<LoadedObject> {
    let pins = PinDir::create();
    let mut loader = EbpfLoader::new();
    // Map types aya has no wrapper for (task storage, ...) are still
    // created, as libbpf does; bpfld reads them by their fd.
    loader.allow_unsupported_maps();
    for g in globals {
        // Before the maps are created: .rodata is frozen with the value.
        loader.override_global(g.name.as_str(), g.bytes.as_slice(), true);
    }
    if let Some(p) = &pins {
        loader.default_map_pin_directory(p.path());
    }
    let mut copy = crate::aya_compat::prepare(object)?;
    let original =
        bpfld::Object::parse(object).map_err(|e| Error::new(ErrorKind::Object, e.to_string()))?;
    let sections = program_sections(&original);
    // aya links no exception callback in (see exception_cb.rs): bpfld
    // loads the programs that have one itself, when it can.
    for (name, section) in &sections {
        if matches!(crate::exception_cb::callback_of(&original, name), Ok(None))
            || crate::raw_load::raw_spec(section).is_none()
        {
            continue;
        }
        let bare = section.strip_prefix('?').unwrap_or(section);
        let t = bpfld::model::program::program_type(bare).unwrap_or("unknown");
        copy.unloadable.entry(name.clone()).or_insert(t);
    }
    let created = match &pins {
        Some(p) => crate::btf_maps::create(&copy.bytes, p.path())?,
        None => crate::btf_maps::BtfMaps {
            btf_fd: None,
            pins: Vec::new(),
        },
    };
    for (name, path) in &created.pins {
        loader.map_pin_path(name.as_str(), path.as_path());
    }
    let ebpf = loader.load(&copy.bytes).map_err(object_error)?;
    crate::map_in_map::fill(&copy.slots.maps?, &ebpf)?;
    Ok(LoadedObject {
        ebpf,
        unloadable: copy.unloadable,
        refused: copy.refused,
        bytes: copy.bytes,
        sections,
        btf_fd: created.btf_fd,
        prog_slots: copy.slots.programs,
        _pins: pins,
    })
}

/// Program (function) name to the name of its section in `obj`.
pub(crate) fn program_sections(obj: &bpfld::model::object::Object) -> HashMap<String, String> {
    use bpfld::model::object::{Binding, SymbolKind, SymbolPlace};
    let mut out = HashMap::new();
    for s in &obj.symbols {
        let SymbolPlace::Section(id) = s.place else {
            continue;
        };
        if s.kind != SymbolKind::Func || s.binding == Binding::Local {
            continue;
        }
        if let Some(sec) = obj
            .section(id)
            .filter(|x| x.is_program() && x.name != ".text")
        {
            out.insert(s.name.clone(), sec.name.clone());
        }
    }
    out
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
