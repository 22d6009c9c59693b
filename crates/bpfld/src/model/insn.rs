//! BPF instructions, one 8-byte slot each.
//!
//! `ld_imm64` (`BPF_LD | BPF_IMM | BPF_DW`) occupies two slots; the model
//! keeps both, so an [`InsnIndex`] is a slot number exactly as relocation
//! offsets (divided by 8), BTF.ext offsets and llvm-objdump count them.

/// Index of an instruction slot within its section.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct InsnIndex(pub u32);

/// One raw instruction slot, fields as in `struct bpf_insn`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

/// Size of one instruction slot in bytes.
pub const INSN_SIZE: usize = 8;
