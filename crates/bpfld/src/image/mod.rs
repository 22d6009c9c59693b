//! bpfman bytecode images: an object packaged as an OCI image (one gzip
//! tar layer holding the object at its root, labels naming its programs
//! and maps), written as an OCI image layout in a tar (`oci-archive:`),
//! and read back from such an archive or an `oci:` directory.
//!
//! Everything is built and read in memory: nothing from an image is ever
//! written to disk by the reader.

pub(crate) mod archive;
pub mod bpfman_yaml;
pub(crate) mod endian;
pub(crate) mod labels;
pub(crate) mod layout;
pub(crate) mod read;

pub use endian::swapped;
pub use labels::Labels;
pub use layout::{build, BuildInput, Built};
pub use read::{read_archive, read_dir, Image, Limits, Manifest};
// The layer and config readers alone, for the image fuzz target (see the
// `internals` feature in lib.rs).
#[cfg(feature = "internals")]
pub use read::{read_config_labels, read_layer};
#[cfg(all(test, not(feature = "internals")))]
pub(crate) use read::{read_config_labels, read_layer};

/// Label naming the programs of the object: name → bpfman program type.
pub const PROGRAMS_LABEL: &str = "io.ebpf.programs";
/// Label naming the maps of the object: name → bpfman map type.
pub const MAPS_LABEL: &str = "io.ebpf.maps";

/// OCI layer, gzip-compressed tar.
pub(crate) const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Docker's name for the same layer form; bpfman accepts both.
pub(crate) const MEDIA_DOCKER_LAYER_GZIP: &str =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// OCI image config.
pub(crate) const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI image manifest.
pub(crate) const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker image manifest (schema 2).
pub(crate) const MEDIA_DOCKER_MANIFEST: &str =
    "application/vnd.docker.distribution.manifest.v2+json";
/// OCI image index.
pub(crate) const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker manifest list.
pub(crate) const MEDIA_DOCKER_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
/// The annotation an OCI layout uses to name an image (its tag).
pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Go architecture names (what OCI platforms use) by byte order, as
/// bpfman's multi-architecture bytecode build lists them.
pub(crate) const LITTLE_ENDIAN_ARCHES: &[&str] = &[
    "386", "amd64", "arm", "arm64", "loong64", "mips64le", "mipsle", "ppc64le", "riscv64",
];
/// Architectures whose images carry big-endian objects.
pub(crate) const BIG_ENDIAN_ARCHES: &[&str] = &["mips", "mips64", "ppc64", "s390x"];

/// `sha256:<hex>` of some bytes.
pub(crate) fn digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    let sum = sha2::Sha256::digest(bytes);
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in sum.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The Go name of the architecture this program runs on, when known.
pub(crate) fn host_arch() -> Option<&'static str> {
    Some(match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "loongarch64" => "loong64",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "mips" if cfg!(target_endian = "little") => "mipsle",
        "mips" => "mips",
        "mips64" if cfg!(target_endian = "little") => "mips64le",
        "mips64" => "mips64",
        _ => return None,
    })
}

/// "little" or "big", as messages and listings spell a byte order.
pub fn order(e: crate::model::Endian) -> &'static str {
    match e {
        crate::model::Endian::Little => "little",
        crate::model::Endian::Big => "big",
    }
}
