//! The in-memory model of a BPF object: what the readers produce, what the
//! linker transforms and what the writers and listings consume.

pub mod btf;
pub mod btf_ext;
pub mod insn;
pub mod map_def;
pub mod object;
pub mod program;

pub use btf::Btf;
pub use object::Object;

/// Byte order of an object (`-target bpfel` or `bpfeb`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Endian {
    /// Little-endian (`bpfel`, what x86 and arm64 hosts load).
    Little,
    /// Big-endian (`bpfeb`, s390x).
    Big,
}

impl Endian {
    /// A `u16` from bytes in this order.
    pub fn read_u16(self, b: [u8; 2]) -> u16 {
        match self {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        }
    }
    /// A `u32` from bytes in this order.
    pub fn read_u32(self, b: [u8; 4]) -> u32 {
        match self {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        }
    }
    /// A `u64` from bytes in this order.
    pub fn read_u64(self, b: [u8; 8]) -> u64 {
        match self {
            Endian::Little => u64::from_le_bytes(b),
            Endian::Big => u64::from_be_bytes(b),
        }
    }
    /// A `u16` as bytes in this order.
    pub fn u16_bytes(self, v: u16) -> [u8; 2] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }
    /// A `u32` as bytes in this order.
    pub fn u32_bytes(self, v: u32) -> [u8; 4] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }
    /// A `u64` as bytes in this order.
    pub fn u64_bytes(self, v: u64) -> [u8; 8] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }
}
