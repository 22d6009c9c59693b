//! Map-in-map slots an object initialises itself
//! (`__array(values, struct inner)`, `.values = { [0] = &inner_map }`):
//! the inner maps' fds go in once every map exists (init_slots.rs reads
//! the slots).

use crate::error::{Error, ErrorKind, Result};
use crate::init_slots::Slot;

/// Puts each slot's inner map into its outer map, in `ebpf`'s maps.
pub(crate) fn fill(slots: &[Slot], ebpf: &aya::Ebpf) -> Result<()> {
    use std::os::fd::AsFd;
    for s in slots {
        let fd_of = |name: &str| {
            ebpf.map(name)
                .map(|m| crate::maps::map_data(m).fd().as_fd())
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::Object,
                        format!(
                            "map '{}' slot {}: no map named '{name}' was created",
                            s.map, s.index
                        ),
                    )
                })
        };
        let (outer, inner) = (fd_of(&s.map)?, fd_of(&s.target)?);
        let value = (std::os::fd::AsRawFd::as_raw_fd(&inner) as u32).to_le_bytes();
        crate::sys::map_update(outer, &s.index.to_le_bytes(), &value).map_err(|e| {
            Error::new(
                ErrorKind::Kernel,
                format!(
                    "map '{}': cannot put map '{}' in slot {}: {e}",
                    s.map, s.target, s.index
                ),
            )
        })?;
    }
    Ok(())
}
