//! Writing a bytecode image: the OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/...`) in a tar, as `skopeo copy
//! oci-archive:...` pushes it. The same inputs always give the same bytes.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::archive::{gzip, write_tar, Entry};
use super::labels::Labels;
use super::*;
use crate::error::{Error, Result};
use crate::model::Endian;

/// One object to package: its file name in the layer and its bytes.
pub struct BuildInput<'a> {
    /// The object's file name in the image layer.
    pub file_name: &'a str,
    /// The object's bytes.
    pub bytes: &'a [u8],
}

/// What [`build`] made: the archive and what it holds.
pub struct Built {
    /// The OCI archive (`oci-archive:` tar).
    pub archive: Vec<u8>,
    /// Digest of the descriptor `index.json` names: the manifest for one
    /// object, the image index for two.
    pub digest: String,
    /// The bpfman labels written into the image config.
    pub labels: Labels,
    /// (architecture, manifest digest) per platform.
    pub platforms: Vec<(String, String)>,
}

/// Blobs by digest, sorted, each stored once.
#[derive(Default)]
struct Blobs(BTreeMap<String, Vec<u8>>);

impl Blobs {
    /// Stores a blob and returns its descriptor.
    fn add(&mut self, media_type: &str, bytes: Vec<u8>) -> Value {
        let d = digest(&bytes);
        let desc = json!({"mediaType": media_type, "digest": d, "size": bytes.len()});
        self.0.insert(d, bytes);
        desc
    }
}

fn encode(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("JSON values always encode")
}

/// Packages one object (one manifest, for the architectures of its byte
/// order: amd64 for little-endian, s390x for big-endian) or two objects,
/// one of each byte order (an image index with a manifest for each
/// architecture bpfman builds bytecode for). The labels come from the
/// first object; a second one must declare the same programs and maps.
pub fn build(inputs: &[BuildInput<'_>], tag: Option<&str>) -> Result<Built> {
    if inputs.is_empty() || inputs.len() > 2 {
        return Err(Error::new(
            "an image holds one object, or two of opposite byte order",
        ));
    }
    let mut parsed = Vec::new();
    for input in inputs {
        check_file_name(input.file_name)?;
        let obj = crate::read::elf::parse(input.bytes).map_err(|e| e.in_file(input.file_name))?;
        let labels = Labels::of(&obj).map_err(|e| e.in_file(input.file_name))?;
        parsed.push((input, obj.endian, labels));
    }
    if let [(a, ea, la), (b, eb, lb)] = parsed.as_slice() {
        if ea == eb {
            return Err(Error::new(format!(
                "'{}' and '{}' are both {}-endian: give one object of each byte order",
                a.file_name,
                b.file_name,
                order(*ea)
            )));
        }
        if la != lb {
            return Err(Error::new(format!(
                "'{}' and '{}' declare different programs or maps; an image's labels describe both",
                a.file_name, b.file_name
            )));
        }
    }
    let labels = parsed[0].2.clone();
    let (programs, maps) = labels.values();

    let mut blobs = Blobs::default();
    let mut manifests = Vec::new();
    let mut platforms = Vec::new();
    for (input, endian, _) in &parsed {
        let layer_tar = write_tar(&[Entry {
            path: input.file_name,
            contents: Some(input.bytes),
        }])?;
        let diff_id = digest(&layer_tar);
        let layer = blobs.add(MEDIA_LAYER_GZIP, gzip(&layer_tar)?);
        let arches: &[&str] = match (endian, parsed.len()) {
            (Endian::Little, 1) => &["amd64"],
            (Endian::Big, 1) => &["s390x"],
            (Endian::Little, _) => LITTLE_ENDIAN_ARCHES,
            (Endian::Big, _) => BIG_ENDIAN_ARCHES,
        };
        for arch in arches {
            let config = json!({
                "architecture": arch,
                "os": "linux",
                "created": "1970-01-01T00:00:00Z",
                "config": {"Labels": {PROGRAMS_LABEL: programs, MAPS_LABEL: maps}},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            });
            let config = blobs.add(MEDIA_CONFIG, encode(&config));
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": MEDIA_MANIFEST,
                "config": config,
                "layers": [layer],
            });
            let mut desc = blobs.add(MEDIA_MANIFEST, encode(&manifest));
            platforms.push((
                arch.to_string(),
                desc["digest"].as_str().unwrap_or("").to_string(),
            ));
            desc["platform"] = json!({"architecture": arch, "os": "linux"});
            manifests.push(desc);
        }
    }
    let mut top = if manifests.len() == 1 {
        manifests.pop().expect("one manifest")
    } else {
        let index = json!({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": manifests});
        blobs.add(MEDIA_INDEX, encode(&index))
    };
    if let Some(tag) = tag {
        top["annotations"] = json!({ REF_NAME: tag });
    }
    let digest = top["digest"].as_str().unwrap_or("").to_string();
    let index = json!({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [top]});
    let layout = encode(&json!({"imageLayoutVersion": "1.0.0"}));
    let index = encode(&index);
    let paths: Vec<(String, &[u8])> = blobs
        .0
        .iter()
        .map(|(d, b)| {
            (
                format!("blobs/sha256/{}", &d["sha256:".len()..]),
                b.as_slice(),
            )
        })
        .collect();
    let mut entries = vec![
        Entry {
            path: "oci-layout",
            contents: Some(&layout),
        },
        Entry {
            path: "index.json",
            contents: Some(&index),
        },
        Entry {
            path: "blobs",
            contents: None,
        },
        Entry {
            path: "blobs/sha256",
            contents: None,
        },
    ];
    entries.extend(paths.iter().map(|(p, b)| Entry {
        path: p,
        contents: Some(b),
    }));
    Ok(Built {
        archive: write_tar(&entries)?,
        digest,
        labels,
        platforms,
    })
}

/// The object's name at the layer's root: a plain file name.
fn check_file_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." || name.len() > 100 {
        return Err(Error::new(format!(
            "'{name}' cannot name the object in the image: a plain file name of at most 100 bytes is needed"
        )));
    }
    Ok(())
}
