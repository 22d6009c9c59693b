//! Readers: bytes in, model out. Every reader checks counts, sizes and
//! offsets against the input before using them and never panics.

mod api;
pub mod btf;
pub mod btf_ext;
pub mod btf_view;
pub mod elf;
pub mod elf_view;
pub mod insn;
pub mod workarounds;

/// Opens `path` for the listings' range reads: a regular file as it is,
/// anything else (a pipe, `/dev/stdin`) read whole, since it cannot seek.
pub(crate) fn open_seekable(
    path: &std::path::Path,
) -> crate::Result<std::result::Result<std::fs::File, Vec<u8>>> {
    use std::io::Read;
    let cannot = |e: std::io::Error| crate::Error::new(format!("cannot read: {e}"));
    let mut file = std::fs::File::open(path).map_err(cannot)?;
    if file.metadata().map_err(cannot)?.is_file() {
        return Ok(Ok(file));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(cannot)?;
    Ok(Err(bytes))
}
