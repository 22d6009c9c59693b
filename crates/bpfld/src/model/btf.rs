//! BTF: the type graph of an object or of a raw BTF file.

/// Placeholder until the BTF model lands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Btf {
    pub raw: Vec<u8>,
}
