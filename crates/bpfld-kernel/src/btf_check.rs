//! Does the kernel accept an object's BTF? The check every output bpfld
//! writes must pass: the object's `.BTF`, with only the rewrites libbpf
//! makes at load time ([`bpfld::Object::kernel_btf`]), handed to
//! `BPF_BTF_LOAD`.

use crate::{Error, ErrorKind, Result};

/// Ok when the kernel's BTF verifier accepts the `.BTF` of the ELF object
/// `object_bytes` as libbpf would load it. An object libbpf would refuse
/// (or without BTF) is an [`ErrorKind::Object`] error; a rejection is an
/// [`ErrorKind::Verifier`] error carrying the tail of the kernel's log.
pub fn check_object_btf(object_bytes: &[u8]) -> Result<()> {
    let btf = bpfld::Object::parse(object_bytes)
        .and_then(|obj| obj.kernel_btf())
        .map_err(|e| Error::new(ErrorKind::Object, e.to_string()))?;
    crate::btf_load::load_btf(&btf.bytes)
}
