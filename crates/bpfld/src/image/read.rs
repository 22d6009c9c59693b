//! Reading a bytecode image from an OCI archive (a tar, held in memory)
//! or an OCI layout directory, checking every digest and size and bounding
//! every allocation. Nothing read is written anywhere.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::archive::{gunzip, read_tar};
use super::labels::Labels;
use super::*;
use crate::error::{Error, Result};
use crate::model::Endian;

/// Size bounds, checked before the bytes are read or allocated.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// A whole archive, or a layer blob.
    pub archive: u64,
    /// A JSON document (index, manifest, config).
    pub json: u64,
    /// A layer's contents once decompressed.
    pub object: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            archive: 256 << 20,
            json: 4 << 20,
            object: 64 << 20,
        }
    }
}

/// An image as read: the descriptor `index.json` pointed to and every
/// manifest under it.
#[derive(Clone, Debug, Serialize)]
pub struct Image {
    /// The reference name (tag) of the chosen image, when it has one.
    pub tag: Option<String>,
    /// The media type of the descriptor.
    pub media_type: String,
    /// The descriptor's digest.
    pub digest: String,
    /// Every image manifest under it.
    pub manifests: Vec<Manifest>,
}

/// One platform's image: its labels and its object.
#[derive(Clone, Debug, Serialize)]
pub struct Manifest {
    /// The manifest's digest.
    pub digest: String,
    /// The platform's OS, when given.
    pub os: Option<String>,
    /// The platform's architecture, when given.
    pub architecture: Option<String>,
    /// Digest of its config.
    pub config_digest: String,
    /// Digest of its layer.
    pub layer_digest: String,
    /// Media type of its layer.
    pub layer_media_type: String,
    /// The bpfman labels of its config.
    pub labels: Labels,
    /// The object's name in the layer.
    pub file_name: String,
    /// Byte order of the object.
    pub endian: Endian,
    /// The object's bytes.
    #[serde(skip)]
    pub object: Vec<u8>,
}

impl Image {
    /// The manifest for the host: its architecture, else the first one of
    /// the host's byte order, else the first.
    pub fn for_host(&self) -> &Manifest {
        let host_endian = if cfg!(target_endian = "big") {
            Endian::Big
        } else {
            Endian::Little
        };
        let arch = host_arch();
        self.manifests
            .iter()
            .find(|m| arch.is_some() && m.architecture.as_deref() == arch)
            .or_else(|| self.manifests.iter().find(|m| m.endian == host_endian))
            .unwrap_or(&self.manifests[0])
    }
}

/// Where blobs come from.
trait Store {
    /// The file at `path` in the layout, at most `limit` bytes.
    fn file(&self, path: &str, limit: u64) -> Result<Vec<u8>>;
}

struct InMemory(BTreeMap<String, Vec<u8>>);

impl Store for InMemory {
    fn file(&self, path: &str, limit: u64) -> Result<Vec<u8>> {
        let b = self
            .0
            .get(path)
            .ok_or_else(|| Error::new(format!("the archive has no '{path}'")))?;
        if b.len() as u64 > limit {
            return Err(Error::new(format!(
                "'{path}' is larger than the {limit}-byte limit"
            )));
        }
        Ok(b.clone())
    }
}

struct Dir<'a>(&'a Path);

impl Store for Dir<'_> {
    fn file(&self, path: &str, limit: u64) -> Result<Vec<u8>> {
        let full = self.0.join(path);
        let len = std::fs::symlink_metadata(&full)
            .map_err(|e| Error::new(format!("cannot read '{path}': {e}")))?;
        if !len.is_file() {
            return Err(Error::new(format!("'{path}' is not a regular file")));
        }
        if len.len() > limit {
            return Err(Error::new(format!(
                "'{path}' is larger than the {limit}-byte limit"
            )));
        }
        std::fs::read(&full).map_err(|e| Error::new(format!("cannot read '{path}': {e}")))
    }
}

/// Reads an image from the bytes of an OCI archive. `reference` picks an
/// image by its tag when `index.json` lists several.
pub fn read_archive(data: &[u8], reference: Option<&str>, limits: &Limits) -> Result<Image> {
    if data.len() as u64 > limits.archive {
        return Err(Error::new(format!(
            "archive is larger than the {}-byte limit",
            limits.archive
        )));
    }
    let mut files = BTreeMap::new();
    let entries = read_tar(data, limits.archive)
        .map_err(|e| e.context("not an OCI archive (a tar of an OCI image layout)"))?;
    for f in entries {
        files.insert(f.path, f.contents);
    }
    read_layout(&InMemory(files), reference, limits)
}

/// Reads an image from an OCI layout directory.
pub fn read_dir(dir: &Path, reference: Option<&str>, limits: &Limits) -> Result<Image> {
    read_layout(&Dir(dir), reference, limits)
}

fn read_layout(store: &dyn Store, reference: Option<&str>, limits: &Limits) -> Result<Image> {
    let layout = json_doc(&store.file("oci-layout", limits.json)?, "oci-layout")?;
    if layout
        .get("imageLayoutVersion")
        .and_then(Value::as_str)
        .is_none()
    {
        return Err(Error::new("oci-layout has no imageLayoutVersion"));
    }
    let index = json_doc(&store.file("index.json", limits.json)?, "index.json")?;
    let descs = descriptors(&index, "index.json")?;
    let name = |d: &Value| {
        d.get("annotations")
            .and_then(|a| a.get(REF_NAME))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let top = match reference {
        Some(r) => descs
            .iter()
            .find(|d| name(d).as_deref() == Some(r))
            .ok_or_else(|| Error::new(format!("index.json names no image '{r}'")))?,
        None if descs.len() == 1 => &descs[0],
        None => {
            let names: Vec<String> = descs.iter().filter_map(name).collect();
            return Err(Error::new(format!(
                "index.json lists {} images; choose one with :NAME (names: {})",
                descs.len(),
                names.join(", ")
            )));
        }
    };
    let mut reader = Reader {
        store,
        limits,
        layers: HashMap::new(),
    };
    let (media_type, digest, _) = descriptor(top)?;
    let mut manifests = Vec::new();
    if is_index(&media_type) {
        let doc = json_doc(&reader.blob(top, limits.json)?, &digest)?;
        for d in descriptors(&doc, &digest)? {
            let (mt, dg, _) = descriptor(d)?;
            if !is_manifest(&mt) {
                return Err(Error::new(format!(
                    "image index {digest}: entry {dg} has media type '{mt}', not an image manifest"
                )));
            }
            manifests.push(reader.manifest(d)?);
        }
        if manifests.is_empty() {
            return Err(Error::new(format!(
                "image index {digest} lists no manifests"
            )));
        }
    } else if is_manifest(&media_type) {
        manifests.push(reader.manifest(top)?);
    } else {
        return Err(Error::new(format!(
            "index.json: {digest} has media type '{media_type}', not an image manifest or index"
        )));
    }
    Ok(Image {
        tag: name(top),
        media_type,
        digest,
        manifests,
    })
}

struct Reader<'a> {
    store: &'a dyn Store,
    limits: &'a Limits,
    /// Objects already read, by layer digest (an index's platforms of one
    /// byte order share a layer).
    layers: HashMap<String, (String, Vec<u8>, Endian)>,
}

impl Reader<'_> {
    /// The blob a descriptor names, checked against its size and digest.
    fn blob(&self, desc: &Value, limit: u64) -> Result<Vec<u8>> {
        let (_, digest, size) = descriptor(desc)?;
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')))
            .ok_or_else(|| {
                Error::new(format!("unsupported digest '{digest}' (sha256 expected)"))
            })?;
        if size > limit {
            return Err(Error::new(format!(
                "blob {digest} declares {size} bytes, more than the {limit}-byte limit"
            )));
        }
        let bytes = self.store.file(&format!("blobs/sha256/{hex}"), limit)?;
        if bytes.len() as u64 != size {
            return Err(Error::new(format!(
                "blob {digest} has {} bytes, its descriptor says {size}",
                bytes.len()
            )));
        }
        let actual = super::digest(&bytes);
        if actual != digest {
            return Err(Error::new(format!(
                "digest mismatch: blob {digest} hashes to {actual}"
            )));
        }
        Ok(bytes)
    }

    fn manifest(&mut self, desc: &Value) -> Result<Manifest> {
        let (_, digest, _) = descriptor(desc)?;
        let platform = desc.get("platform");
        let field = |k: &str| {
            platform
                .and_then(|p| p.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let (os, architecture) = (field("os"), field("architecture"));
        let doc = json_doc(&self.blob(desc, self.limits.json)?, &digest)?;
        let ctx = |e: Error| e.context(format!("manifest {digest}"));
        let config_desc = doc
            .get("config")
            .ok_or_else(|| ctx(Error::new("no config descriptor")))?;
        let (_, config_digest, _) = descriptor(config_desc).map_err(ctx)?;
        let config = json_doc(
            &self.blob(config_desc, self.limits.json).map_err(ctx)?,
            &config_digest,
        )?;
        let labels =
            config_labels(&config).map_err(|e| e.context(format!("config {config_digest}")))?;
        let layers = doc
            .get("layers")
            .and_then(Value::as_array)
            .ok_or_else(|| ctx(Error::new("no layers")))?;
        let [layer] = layers.as_slice() else {
            return Err(ctx(Error::new(format!(
                "{} layers; a bytecode image has exactly one",
                layers.len()
            ))));
        };
        let (layer_media_type, layer_digest, _) = descriptor(layer).map_err(ctx)?;
        if layer_media_type != MEDIA_LAYER_GZIP && layer_media_type != MEDIA_DOCKER_LAYER_GZIP {
            return Err(ctx(Error::new(format!(
                "layer media type '{layer_media_type}' is not a gzip tar layer"
            ))));
        }
        if !self.layers.contains_key(&layer_digest) {
            let read = self
                .layer(layer)
                .map_err(|e| e.context(format!("layer {layer_digest}")))?;
            self.layers.insert(layer_digest.clone(), read);
        }
        let (file_name, object, endian) = self.layers[&layer_digest].clone();
        if let Some(arch) = &architecture {
            let expected = if BIG_ENDIAN_ARCHES.contains(&arch.as_str()) {
                Some(Endian::Big)
            } else if LITTLE_ENDIAN_ARCHES.contains(&arch.as_str()) {
                Some(Endian::Little)
            } else {
                None
            };
            if let Some(expected) = expected.filter(|&x| x != endian) {
                return Err(ctx(Error::new(format!(
                    "the {arch} image holds a {}-endian object; {arch} needs {}-endian",
                    order(endian),
                    order(expected)
                ))));
            }
        }
        Ok(Manifest {
            digest,
            os,
            architecture,
            config_digest,
            layer_digest,
            layer_media_type,
            labels,
            file_name,
            endian,
            object,
        })
    }

    fn layer(&self, desc: &Value) -> Result<(String, Vec<u8>, Endian)> {
        read_layer(&self.blob(desc, self.limits.archive)?, self.limits)
    }
}

/// The object a gzip tar layer holds: its first file, which must be a BPF
/// object (bpfman loads the first entry); its name, bytes and byte order.
pub fn read_layer(gz: &[u8], limits: &Limits) -> Result<(String, Vec<u8>, Endian)> {
    // Tar headers and padding come on top of the object itself.
    let tar = gunzip(gz, limits.object.saturating_add(1 << 20))?;
    let mut files = read_tar(&tar, limits.object)?;
    if files.is_empty() {
        return Err(Error::new("the layer holds no file"));
    }
    let first = files.swap_remove(0);
    let obj = crate::read::elf::parse(&first.contents).map_err(|e| {
        Error::new(format!(
            "'{}' in the layer is not a BPF object: {e}",
            first.path
        ))
    })?;
    Ok((first.path, first.contents, obj.endian))
}

/// The bpfman labels of an image config (JSON bytes).
#[cfg(any(test, feature = "internals"))] // the image fuzz target
pub fn read_config_labels(config: &[u8]) -> Result<Labels> {
    config_labels(&json_doc(config, "the image config")?)
}

fn json_doc(bytes: &[u8], what: &str) -> Result<Value> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::new(format!("{what} is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(Error::new(format!("{what} is not a JSON object")));
    }
    Ok(v)
}

fn descriptors<'v>(doc: &'v Value, what: &str) -> Result<&'v Vec<Value>> {
    doc.get("manifests")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::new(format!("{what} has no manifests list")))
}

/// (media type, digest, size) of a descriptor.
fn descriptor(d: &Value) -> Result<(String, String, u64)> {
    let s = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_string);
    match (
        s("mediaType"),
        s("digest"),
        d.get("size").and_then(Value::as_u64),
    ) {
        (Some(m), Some(dg), Some(sz)) => Ok((m, dg, sz)),
        _ => Err(Error::new(
            "a descriptor lacks its mediaType, digest or size",
        )),
    }
}

fn is_index(media_type: &str) -> bool {
    media_type == MEDIA_INDEX || media_type == MEDIA_DOCKER_LIST
}

fn is_manifest(media_type: &str) -> bool {
    media_type == MEDIA_MANIFEST || media_type == MEDIA_DOCKER_MANIFEST
}

/// The two bpfman labels of an image config.
fn config_labels(config: &Value) -> Result<Labels> {
    let labels = config.get("config").and_then(|c| c.get("Labels"));
    let label = |name: &str| {
        labels
            .and_then(|l| l.get(name))
            .ok_or_else(|| {
                Error::new(format!(
                    "the image has no {name} label (not a bpfman bytecode image)"
                ))
            })?
            .as_str()
            .ok_or_else(|| Error::new(format!("label {name} is not a string")))
    };
    Labels::parse(label(PROGRAMS_LABEL)?, label(MAPS_LABEL)?)
}

#[cfg(test)]
mod tests {
    use super::super::archive::{gzip, write_tar, Entry};
    use super::*;
    use serde_json::json;

    fn fixture(name: &str) -> Vec<u8> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
        std::fs::read(root.join(name)).unwrap()
    }

    /// An archive with one manifest whose layer is `layer_tar` (gzipped)
    /// and whose config is `config`, every digest right.
    fn craft(layer_tar: &[u8], config: Value) -> Vec<u8> {
        let layer = gzip(layer_tar).unwrap();
        let config = serde_json::to_vec(&config).unwrap();
        let desc =
            |mt: &str, b: &[u8]| json!({"mediaType": mt, "digest": digest(b), "size": b.len()});
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "config": desc(MEDIA_CONFIG, &config),
            "layers": [desc(MEDIA_LAYER_GZIP, &layer)],
        }))
        .unwrap();
        let index = serde_json::to_vec(
            &json!({"schemaVersion": 2, "manifests": [desc(MEDIA_MANIFEST, &manifest)]}),
        )
        .unwrap();
        let path = |b: &[u8]| format!("blobs/sha256/{}", &digest(b)[7..]);
        let (pl, pc, pm) = (path(&layer), path(&config), path(&manifest));
        write_tar(&[
            Entry {
                path: "oci-layout",
                contents: Some(br#"{"imageLayoutVersion":"1.0.0"}"#),
            },
            Entry {
                path: "index.json",
                contents: Some(&index),
            },
            Entry {
                path: &pl,
                contents: Some(&layer),
            },
            Entry {
                path: &pc,
                contents: Some(&config),
            },
            Entry {
                path: &pm,
                contents: Some(&manifest),
            },
        ])
        .unwrap()
    }

    fn labelled(programs: &str, maps: &str) -> Value {
        json!({"architecture": "amd64", "os": "linux",
               "config": {"Labels": {PROGRAMS_LABEL: programs, MAPS_LABEL: maps}}})
    }

    fn object_layer() -> Vec<u8> {
        write_tar(&[Entry {
            path: "x.o",
            contents: Some(&fixture("xdp_pass.o")),
        }])
        .unwrap()
    }

    fn err(archive: &[u8], limits: &Limits) -> String {
        read_archive(archive, None, limits).unwrap_err().to_string()
    }

    #[test]
    fn a_crafted_image_reads() {
        let img = read_archive(
            &craft(&object_layer(), labelled("{}", "{}")),
            None,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(img.manifests[0].object, fixture("xdp_pass.o"));
        assert_eq!(img.manifests[0].file_name, "x.o");
    }

    #[test]
    fn built_images_read_back_with_their_platforms() {
        let (le, be) = (fixture("xdp_counter.o"), fixture("xdp_counter.bpfeb.o"));
        let built = build(
            &[
                BuildInput {
                    file_name: "c.o",
                    bytes: &le,
                },
                BuildInput {
                    file_name: "c.bpfeb.o",
                    bytes: &be,
                },
            ],
            Some("demo:1"),
        )
        .unwrap();
        let img = read_archive(&built.archive, Some("demo:1"), &Limits::default()).unwrap();
        assert_eq!(img.media_type, MEDIA_INDEX);
        assert_eq!(img.digest, built.digest);
        let arches: Vec<&str> = img
            .manifests
            .iter()
            .map(|m| m.architecture.as_deref().unwrap())
            .collect();
        let mut want: Vec<&str> = LITTLE_ENDIAN_ARCHES.to_vec();
        want.extend(BIG_ENDIAN_ARCHES);
        assert_eq!(arches, want);
        for m in &img.manifests {
            let be_arch = BIG_ENDIAN_ARCHES.contains(&m.architecture.as_deref().unwrap());
            assert_eq!(&m.object, if be_arch { &be } else { &le });
            assert_eq!(m.labels.programs["xdp_count"], "xdp");
            assert_eq!(m.labels.maps["packets"], "array");
        }
        // Deterministic: the same inputs, the same bytes.
        let again = build(
            &[
                BuildInput {
                    file_name: "c.o",
                    bytes: &le,
                },
                BuildInput {
                    file_name: "c.bpfeb.o",
                    bytes: &be,
                },
            ],
            Some("demo:1"),
        )
        .unwrap();
        assert_eq!(again.archive, built.archive);
        let e = read_archive(&built.archive, Some("other"), &Limits::default()).unwrap_err();
        assert!(e.to_string().contains("no image 'other'"), "{e}");
    }

    #[test]
    fn missing_or_malformed_labels_are_refused() {
        let layer = object_layer();
        let no_labels = json!({"architecture": "amd64", "os": "linux", "config": {}});
        let e = err(&craft(&layer, no_labels), &Limits::default());
        assert!(e.contains("no io.ebpf.programs label"), "{e}");
        let e = err(
            &craft(&layer, labelled("{\"a\":", "{}")),
            &Limits::default(),
        );
        assert!(
            e.contains("label io.ebpf.programs is not a JSON object"),
            "{e}"
        );
    }

    #[test]
    fn a_layer_that_is_not_a_bpf_object_is_refused() {
        let layer = write_tar(&[Entry {
            path: "readme",
            contents: Some(b"hello"),
        }])
        .unwrap();
        let e = err(&craft(&layer, labelled("{}", "{}")), &Limits::default());
        assert!(
            e.contains("'readme' in the layer is not a BPF object"),
            "{e}"
        );
    }

    #[test]
    fn a_changed_blob_is_a_digest_mismatch() {
        let mut archive = craft(&object_layer(), labelled("{}", "{}"));
        // The config blob is JSON; change one of its letters.
        let at = archive
            .windows(12)
            .position(|w| w == b"\"os\":\"linux\"")
            .unwrap();
        archive[at + 7] = b'L';
        let e = err(&archive, &Limits::default());
        assert!(e.contains("digest mismatch"), "{e}");
    }

    #[test]
    fn escaping_layer_paths_are_refused() {
        let mut h = tar::Header::new_old();
        let name = b"../../etc/x.o";
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        let obj = fixture("xdp_pass.o");
        h.set_size(obj.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        let mut layer = h.as_bytes().to_vec();
        layer.extend_from_slice(&obj);
        layer.resize(layer.len().div_ceil(512) * 512 + 1024, 0);
        let e = err(&craft(&layer, labelled("{}", "{}")), &Limits::default());
        assert!(e.contains("climbs out of the archive"), "{e}");
    }

    #[test]
    fn gzip_bombs_and_huge_archives_are_bounded() {
        let big = vec![0u8; 32 << 20];
        let layer = write_tar(&[Entry {
            path: "x.o",
            contents: Some(&big),
        }])
        .unwrap();
        let archive = craft(&layer, labelled("{}", "{}"));
        assert!(archive.len() < 1 << 20, "compresses well");
        let limits = Limits {
            object: 1 << 20,
            ..Limits::default()
        };
        let e = err(&archive, &limits);
        assert!(e.contains("gzip bomb"), "{e}");
        let limits = Limits {
            archive: 1000,
            ..Limits::default()
        };
        let e = err(&archive, &limits);
        assert!(e.contains("larger than the 1000-byte limit"), "{e}");
    }

    #[test]
    fn a_platform_of_the_wrong_byte_order_is_refused() {
        let mut config = labelled("{}", "{}");
        config["architecture"] = json!("s390x");
        // The platform is on the descriptor; craft one index entry with it.
        let archive = craft(&object_layer(), config);
        let mut files: BTreeMap<String, Vec<u8>> =
            super::super::archive::read_tar(&archive, 1 << 30)
                .unwrap()
                .into_iter()
                .map(|f| (f.path, f.contents))
                .collect();
        let mut index: Value = serde_json::from_slice(&files["index.json"]).unwrap();
        index["manifests"][0]["platform"] = json!({"architecture": "s390x", "os": "linux"});
        files.insert("index.json".into(), serde_json::to_vec(&index).unwrap());
        let e = read_layout(&InMemory(files), None, &Limits::default()).unwrap_err();
        assert!(e.to_string().contains("s390x needs big-endian"), "{e}");
    }
}
