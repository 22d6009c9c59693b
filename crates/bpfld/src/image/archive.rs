//! Tar and gzip, in memory: deterministic writing (fixed times, owners
//! and modes, entries in the order given) and bounded, path-checked
//! reading (no entry leaves the archive's root; sizes are checked against
//! a budget before anything is read).

use std::io::{Read, Write};

use crate::error::{Error, Result};

/// A tar file entry to write: its path inside the archive and contents;
/// `None` contents make a directory.
pub struct Entry<'a> {
    /// Path in the archive.
    pub path: &'a str,
    /// A regular file's contents; `None` for a directory.
    pub contents: Option<&'a [u8]>,
}

/// A tar archive of the entries, in the order given, every time and
/// owner zero, files 0644, directories 0755.
pub fn write_tar(entries: &[Entry<'_>]) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        let data: &[u8] = match e.contents {
            Some(bytes) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                bytes
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                &[]
            }
        };
        h.set_size(data.len() as u64);
        h.set_path(e.path)
            .map_err(|err| Error::new(format!("tar entry '{}': {err}", e.path)))?;
        h.set_cksum();
        b.append(&h, data)
            .map_err(|err| Error::new(format!("tar entry '{}': {err}", e.path)))?;
    }
    b.into_inner()
        .map_err(|e| Error::new(format!("cannot finish tar: {e}")))
}

/// Gzip with a fixed header (no name, time 0) and level, so the same
/// bytes always give the same output.
pub fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), flate2::Compression::new(9));
    enc.write_all(data)
        .and_then(|()| enc.finish())
        .map_err(|e| Error::new(format!("cannot gzip: {e}")))
}

/// Decompresses gzip data, refusing to produce more than `limit` bytes.
pub fn gunzip(data: &[u8], limit: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| Error::new(format!("layer is not valid gzip: {e}")))?;
    if out.len() as u64 > limit {
        return Err(Error::new(format!(
            "layer decompresses to more than {limit} bytes (refused as a likely gzip bomb)"
        )));
    }
    Ok(out)
}

/// A regular file read from a tar archive.
#[derive(Debug)]
pub struct File {
    /// The path with any leading `./` removed.
    pub path: String,
    /// Its bytes.
    pub contents: Vec<u8>,
}

/// The regular files of a tar archive, in archive order, up to `limit`
/// bytes of contents in all. An entry whose path is absolute or climbs
/// out with `..` is an error; directories and links are skipped (never
/// followed).
pub fn read_tar(data: &[u8], limit: u64) -> Result<Vec<File>> {
    let mut archive = tar::Archive::new(data);
    let entries = archive
        .entries()
        .map_err(|e| Error::new(format!("not a tar archive: {e}")))?;
    let mut files = Vec::new();
    let mut total: u64 = 0;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::new(format!("bad tar entry: {e}")))?;
        let raw = entry
            .path()
            .map_err(|e| Error::new(format!("bad tar entry path: {e}")))?
            .to_string_lossy()
            .into_owned();
        let path = check_path(&raw)?;
        if !matches!(
            entry.header().entry_type(),
            tar::EntryType::Regular | tar::EntryType::Continuous
        ) {
            continue;
        }
        let size = entry.size();
        total = total.saturating_add(size);
        if total > limit {
            return Err(Error::new(format!(
                "tar entry '{path}': contents exceed the {limit}-byte limit"
            )));
        }
        // The size is within the budget, so reserving it is bounded.
        let mut contents = Vec::with_capacity(size as usize);
        (&mut entry)
            .take(size)
            .read_to_end(&mut contents)
            .map_err(|e| Error::new(format!("tar entry '{path}': {e}")))?;
        if contents.len() as u64 != size {
            return Err(Error::new(format!("tar entry '{path}': truncated")));
        }
        files.push(File { path, contents });
    }
    Ok(files)
}

/// The entry path without `./` prefixes; absolute and `..` paths are
/// refused.
fn check_path(raw: &str) -> Result<String> {
    if raw.starts_with('/') {
        return Err(Error::new(format!(
            "tar entry '{raw}' has an absolute path (refused)"
        )));
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(Error::new(format!(
                    "tar entry '{raw}' climbs out of the archive with '..' (refused)"
                )))
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar whose only entry has the given raw name, bypassing the
    /// builder's own path checks.
    fn tar_with_name(name: &[u8]) -> Vec<u8> {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        let mut out = h.as_bytes().to_vec();
        out.push(b'x');
        out.resize(512 * 2, 0);
        out.resize(512 * 4, 0);
        out
    }

    #[test]
    fn written_tar_reads_back() {
        let tar = write_tar(&[
            Entry {
                path: "d",
                contents: None,
            },
            Entry {
                path: "d/a.o",
                contents: Some(b"abc"),
            },
        ])
        .unwrap();
        let files = read_tar(&tar, 100).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, "d/a.o");
        assert_eq!(files[0].contents, b"abc");
        assert!(read_tar(&tar, 2).unwrap_err().to_string().contains("limit"));
    }

    #[test]
    fn escaping_paths_are_refused() {
        let e = read_tar(&tar_with_name(b"/etc/passwd"), 100).unwrap_err();
        assert!(e.to_string().contains("absolute path"), "{e}");
        let e = read_tar(&tar_with_name(b"a/../../x.o"), 100).unwrap_err();
        assert!(e.to_string().contains("'..'"), "{e}");
        let ok = read_tar(&tar_with_name(b"./x.o"), 100).unwrap();
        assert_eq!(ok[0].path, "x.o");
    }

    #[test]
    fn gzip_is_deterministic_and_bounded() {
        let data = vec![0u8; 1 << 20];
        let z = gzip(&data).unwrap();
        assert_eq!(z, gzip(&data).unwrap());
        assert_eq!(&z[..2], &[0x1f, 0x8b]);
        assert_eq!(&z[4..8], &[0, 0, 0, 0], "mtime 0");
        assert_eq!(gunzip(&z, 1 << 20).unwrap(), data);
        let e = gunzip(&z, 1000).unwrap_err();
        assert!(e.to_string().contains("gzip bomb"), "{e}");
        assert!(gunzip(b"not gzip", 10).is_err());
    }
}
