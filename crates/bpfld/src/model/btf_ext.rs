//! BTF.ext: func_info, line_info and CO-RE relocation records.
//!
//! Records name the instruction they describe by slot index; the file
//! format's byte offsets are converted when reading and writing.

use super::insn::InsnIndex;
use super::Endian;

/// `struct bpf_func_info`: the BTF FUNC describing the subprogram that
/// starts at `insn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FuncInfo {
    pub insn: InsnIndex,
    pub type_id: u32,
}

/// `struct bpf_line_info`: source position of the code starting at `insn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LineInfo {
    pub insn: InsnIndex,
    /// Offsets into the BTF string section.
    pub file_name_off: u32,
    pub line_off: u32,
    /// `line << 10 | column`, as stored.
    pub line_col: u32,
}

impl LineInfo {
    pub fn line(&self) -> u32 {
        self.line_col >> 10
    }
    pub fn col(&self) -> u32 {
        self.line_col & 0x3ff
    }
}

/// `struct bpf_core_relo`: a CO-RE relocation on the instruction `insn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CoreRelo {
    pub insn: InsnIndex,
    pub type_id: u32,
    /// Offset of the access string ("0:1:2") in the BTF string section.
    pub access_str_off: u32,
    /// `enum bpf_core_relo_kind`.
    pub kind: u32,
}

/// The records for one section, named by a BTF string offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtSection<T> {
    pub sec_name_off: u32,
    /// Resolved section name.
    pub sec_name: String,
    pub records: Vec<T>,
}

/// A whole `.BTF.ext` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BtfExt {
    pub endian: Endian,
    pub version: u8,
    pub flags: u8,
    /// Header length as found (32 with CO-RE, 24 without).
    pub hdr_len: u32,
    /// Record sizes as found; larger records than this model knows keep
    /// only the known prefix.
    pub func_info_rec_size: u32,
    pub line_info_rec_size: u32,
    pub core_relo_rec_size: u32,
    pub func_info: Vec<ExtSection<FuncInfo>>,
    pub line_info: Vec<ExtSection<LineInfo>>,
    pub core_relos: Vec<ExtSection<CoreRelo>>,
    /// The original placement, kept when the input used a layout the
    /// standard encoding would not reproduce (other offsets, gaps, a longer
    /// header, longer records). The writer re-encodes the records into it
    /// while the sub-section sizes are unchanged.
    pub raw_layout: Option<ExtLayout>,
}

/// Header and data area of a `.BTF.ext` as found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtLayout {
    /// The whole header as found.
    pub hdr: Vec<u8>,
    /// Everything after the header as found.
    pub data: Vec<u8>,
    /// `(offset, length)` of func_info, line_info and CO-RE relocations.
    pub func_info: (u32, u32),
    pub line_info: (u32, u32),
    pub core_relos: (u32, u32),
}
