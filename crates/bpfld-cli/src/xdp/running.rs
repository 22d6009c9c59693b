//! The XDP program running on an interface, read back from the kernel:
//! its descriptor, mode, BTF, and the manifest of the composition bpfld
//! recorded in that BTF.

use bpfld::compose::{read_manifest, Placed};
use bpfld::model::btf::Btf;
use bpfld::{Error, Result};
use bpfld_kernel::xdp::{self as kx, Mode};

use super::kerr;

/// The running program of an interface: its fd, mode, BTF and manifest
/// (empty when bpfld did not attach it).
pub(super) struct Running {
    pub(super) prog_id: u32,
    pub(super) mode: Mode,
    pub(super) fd: std::os::fd::OwnedFd,
    pub(super) info: kx::ProgInfo,
    pub(super) btf: Option<Btf>,
    pub(super) manifest: Vec<Placed>,
}

pub(super) fn running(ifindex: u32, dev: &str) -> Result<Option<Running>> {
    let links = kx::links().map_err(kerr)?;
    let Some(link) = links.iter().find(|l| l.ifindex == ifindex) else {
        return Err(Error::new(format!("no such interface '{dev}'")));
    };
    if link.prog_id == 0 {
        return Ok(None);
    }
    let mode = Mode::from_attached(link.attached).ok_or_else(|| {
        Error::new(format!(
            "{dev}: XDP program {} is attached in a mode bpfld does not handle (hw or several at once)",
            link.prog_id
        ))
    })?;
    let (fd, info) = kx::prog_by_id(link.prog_id)
        .map_err(|e| Error::new(format!("{dev}: reading its XDP program: {e}")))?;
    let btf = if info.btf_id != 0 {
        let raw = kx::btf_by_id(info.btf_id).map_err(kerr)?;
        bpfld::Btf::parse(&raw).ok()
    } else {
        None
    };
    let manifest = btf.as_ref().map(read_manifest).unwrap_or_default();
    Ok(Some(Running {
        prog_id: link.prog_id,
        mode,
        fd,
        info,
        btf,
        manifest,
    }))
}
