//! Where an object argument's bytes come from: a file, or the object a
//! bpfman bytecode image holds (`oci-archive:IMAGE.tar[:NAME]`,
//! `oci:DIR[:NAME]`), read in memory and never unpacked to disk.

use std::path::Path;

use bpfld::image::{self, Image, Limits};
use bpfld::{Error, Result};

/// The name to show for an object argument and its bytes. For an image,
/// the object of the host's platform.
pub(crate) fn read_object_arg(arg: &str) -> Result<(String, Vec<u8>)> {
    match read_image_arg(arg)? {
        Some(img) => {
            let m = img.for_host();
            Ok((format!("{arg}:{}", m.file_name), m.object.clone()))
        }
        None => {
            let bytes = std::fs::read(arg)
                .map_err(|e| Error::new(format!("cannot read: {e}")).in_file(arg))?;
            Ok((arg.to_string(), bytes))
        }
    }
}

/// The image an `oci-archive:` or `oci:` argument names, `None` for a
/// plain path.
pub(crate) fn read_image_arg(arg: &str) -> Result<Option<Image>> {
    let limits = Limits::default();
    if let Some(rest) = arg.strip_prefix("oci-archive:") {
        let (path, reference) = split_reference(rest);
        return read_archive_file(Path::new(path), reference, &limits)
            .map(Some)
            .map_err(|e| e.in_file(arg));
    }
    if let Some(rest) = arg.strip_prefix("oci:") {
        let (path, reference) = split_reference(rest);
        return image::read_dir(Path::new(path), reference, &limits)
            .map(Some)
            .map_err(|e| e.in_file(arg));
    }
    Ok(None)
}

/// An image argument without a transport: an archive path.
pub(crate) fn read_image_path(arg: &str) -> Result<Image> {
    match read_image_arg(arg)? {
        Some(img) => Ok(img),
        None => {
            read_archive_file(Path::new(arg), None, &Limits::default()).map_err(|e| e.in_file(arg))
        }
    }
}

/// `PATH[:NAME]`: the whole string when it names an existing path,
/// otherwise split at the last ':' (skopeo's syntax).
fn split_reference(s: &str) -> (&str, Option<&str>) {
    if Path::new(s).exists() {
        return (s, None);
    }
    match s.rsplit_once(':') {
        Some((p, r)) if Path::new(p).exists() => {
            // NAME:TAG references: try the split that leaves an existing path.
            (p, Some(r))
        }
        _ => match s.split_once(':') {
            Some((p, r)) => (p, Some(r)),
            None => (s, None),
        },
    }
}

/// Reads an archive after checking its size, so a huge file is refused
/// before it is read into memory.
fn read_archive_file(path: &Path, reference: Option<&str>, limits: &Limits) -> Result<Image> {
    let meta = std::fs::metadata(path).map_err(|e| Error::new(format!("cannot read: {e}")))?;
    if meta.len() > limits.archive {
        return Err(Error::new(format!(
            "the archive is {} bytes, more than the {}-byte limit",
            meta.len(),
            limits.archive
        )));
    }
    let data = std::fs::read(path).map_err(|e| Error::new(format!("cannot read: {e}")))?;
    image::read_archive(&data, reference, limits)
}

/// Whether an argument names an image rather than a file.
pub(crate) fn is_image_arg(arg: &str) -> bool {
    arg.starts_with("oci-archive:") || arg.starts_with("oci:")
}

/// The object an argument names: a file (read as `bpfld` reads every
/// object) or an image's object for the host.
pub(crate) fn read_object(arg: &str) -> Result<bpfld::model::object::Object> {
    if !is_image_arg(arg) {
        return bpfld::Object::read_file(Path::new(arg));
    }
    let (name, data) = read_object_arg(arg)?;
    bpfld::Object::parse_named(&name, &data)
}
