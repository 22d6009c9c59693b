//! BTF.ext: func_info, line_info and CO-RE relocation records.
//!
//! Records name the instruction they describe by slot index; the file
//! format's byte offsets are converted when reading and writing.

use super::btf::BTF_MAGIC;
use super::insn::InsnIndex;
use super::Endian;

/// `struct bpf_func_info`: the BTF FUNC describing the subprogram that
/// starts at `insn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FuncInfo {
    /// The subprogram's first slot.
    pub insn: InsnIndex,
    /// Its BTF FUNC.
    pub type_id: u32,
}

/// `struct bpf_line_info`: source position of the code starting at `insn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LineInfo {
    /// The first slot it describes.
    pub insn: InsnIndex,
    /// Offsets into the BTF string section.
    pub file_name_off: u32,
    /// The source line's text.
    pub line_off: u32,
    /// `line << 10 | column`, as stored.
    pub line_col: u32,
}

impl LineInfo {
    /// The line number.
    pub fn line(&self) -> u32 {
        self.line_col >> 10
    }
    /// The column.
    pub fn col(&self) -> u32 {
        self.line_col & 0x3ff
    }
}

/// `struct bpf_core_relo`: a CO-RE relocation on the instruction `insn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CoreRelo {
    /// The slot it applies to.
    pub insn: InsnIndex,
    /// The root type of the access.
    pub type_id: u32,
    /// Offset of the access string ("0:1:2") in the BTF string section.
    pub access_str_off: u32,
    /// `enum bpf_core_relo_kind`.
    pub kind: u32,
}

/// The records for one section, named by a BTF string offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtSection<T> {
    /// Offset of the section name in the BTF string section.
    pub sec_name_off: u32,
    /// Resolved section name.
    pub sec_name: String,
    /// Its records, by slot.
    pub records: Vec<T>,
}

/// A whole `.BTF.ext` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BtfExt {
    /// Byte order.
    pub endian: Endian,
    /// Format version (1).
    pub version: u8,
    /// Header flags (0).
    pub flags: u8,
    /// Header length as found (32 with CO-RE, 24 without).
    pub hdr_len: u32,
    /// Record sizes as found; larger records than this model knows keep
    /// only the known prefix.
    pub func_info_rec_size: u32,
    /// line_info record size as found.
    pub line_info_rec_size: u32,
    /// CO-RE relocation record size as found.
    pub core_relo_rec_size: u32,
    /// func_info records, per section.
    pub func_info: Vec<ExtSection<FuncInfo>>,
    /// line_info records, per section.
    pub line_info: Vec<ExtSection<LineInfo>>,
    /// CO-RE relocation records, per section.
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
    /// `(offset, length)` of line_info.
    pub line_info: (u32, u32),
    /// `(offset, length)` of the CO-RE relocations.
    pub core_relos: (u32, u32),
}

impl BtfExt {
    /// The standard encoding, sub-sections func_info, line_info, CO-RE
    /// relocations right after the header as LLVM lays them out,
    /// ignoring any raw layout. Record sizes of 0 (absent sub-section)
    /// become the standard size when records exist; larger record sizes
    /// are zero-padded. The reader compares the input with this to know
    /// whether to keep the input's layout; the writer uses it otherwise.
    pub fn standard_bytes(&self) -> Vec<u8> {
        let e = self.endian;
        let func = sub(e, self.func_info_rec_size, 8, &self.func_info, |r| {
            vec![r.insn.0.wrapping_mul(8), r.type_id]
        });
        let line = sub(e, self.line_info_rec_size, 16, &self.line_info, |r| {
            vec![
                r.insn.0.wrapping_mul(8),
                r.file_name_off,
                r.line_off,
                r.line_col,
            ]
        });
        let core = sub(e, self.core_relo_rec_size, 16, &self.core_relos, |r| {
            vec![
                r.insn.0.wrapping_mul(8),
                r.type_id,
                r.access_str_off,
                r.kind,
            ]
        });
        // Without CO-RE records a 24-byte header is enough, unless 32 was used.
        let hdr_len: u32 = if self.hdr_len >= 32 || !core.is_empty() {
            32
        } else {
            24
        };
        let mut out = Vec::with_capacity(hdr_len as usize + func.len() + line.len() + core.len());
        out.extend_from_slice(&e.u16_bytes(BTF_MAGIC));
        out.push(self.version);
        out.push(self.flags);
        let put = |out: &mut Vec<u8>, v: u32| out.extend_from_slice(&e.u32_bytes(v));
        put(&mut out, hdr_len);
        let (fl, ll, cl) = (func.len() as u32, line.len() as u32, core.len() as u32);
        put(&mut out, 0);
        put(&mut out, fl);
        put(&mut out, fl);
        put(&mut out, ll);
        if hdr_len >= 32 {
            put(&mut out, fl + ll);
            put(&mut out, cl);
        }
        out.extend_from_slice(&func);
        out.extend_from_slice(&line);
        out.extend_from_slice(&core);
        out
    }
}

/// One sub-section in the standard encoding: the record size, then per
/// set its section name, record count and records (`words` of each,
/// zero-padded to the record size).
fn sub<T>(
    e: Endian,
    rec_size: u32,
    std_size: u32,
    sets: &[ExtSection<T>],
    words: impl Fn(&T) -> Vec<u32>,
) -> Vec<u8> {
    let mut out = Vec::new();
    // No records, no sub-section: a lone record size is rejected by libbpf
    // ("has no records") and by our reader.
    if sets.iter().all(|s| s.records.is_empty()) {
        return out;
    }
    let rec_size = rec_size.max(std_size);
    out.extend_from_slice(&e.u32_bytes(rec_size));
    for s in sets {
        out.extend_from_slice(&e.u32_bytes(s.sec_name_off));
        out.extend_from_slice(&e.u32_bytes(s.records.len() as u32));
        for r in &s.records {
            let w = words(r);
            for v in &w {
                out.extend_from_slice(&e.u32_bytes(*v));
            }
            out.resize(out.len() + (rec_size as usize - 4 * w.len()), 0);
        }
    }
    out
}
