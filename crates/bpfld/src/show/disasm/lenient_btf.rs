//! The raw `.BTF` and `.BTF.ext` section bytes read the way llvm's
//! `BTFParser` reads them for objdump's CO-RE lines, including where it
//! gives up. Kept private and minimal: the full BTF model lives in
//! `model::btf`; this only mirrors what objdump's parser reads.

use std::collections::HashMap;

use crate::model::object::Object;
use crate::model::Endian;

const BTF_MAGIC: u16 = 0xeb9f;
pub(super) const KIND_ARRAY: u32 = 3;
pub(super) const KIND_STRUCT: u32 = 4;
pub(super) const KIND_UNION: u32 = 5;
pub(super) const KIND_ENUM: u32 = 6;
pub(super) const KIND_FWD: u32 = 7;
pub(super) const KIND_TYPEDEF: u32 = 8;
pub(super) const KIND_VOLATILE: u32 = 9;
pub(super) const KIND_CONST: u32 = 10;
pub(super) const KIND_RESTRICT: u32 = 11;
pub(super) const KIND_TYPE_TAG: u32 = 18;
pub(super) const KIND_ENUM64: u32 = 19;

/// One `struct btf_type` with its trailing words.
#[derive(Debug, PartialEq)]
pub(super) struct Type {
    pub(super) name_off: u32,
    pub(super) info: u32,
    pub(super) size_or_type: u32,
    pub(super) extra: Vec<u32>,
}

impl Type {
    pub(super) fn kind(&self) -> u32 {
        (self.info >> 24) & 0x1f
    }
    pub(super) fn vlen(&self) -> usize {
        (self.info & 0xffff) as usize
    }
    pub(super) fn kflag(&self) -> bool {
        self.info >> 31 != 0
    }
    /// Word `i` of member/value record `n` of `width` words.
    pub(super) fn word(&self, n: usize, width: usize, i: usize) -> u32 {
        self.extra.get(n * width + i).copied().unwrap_or(0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Relo {
    pub insn_off: u32,
    pub(super) type_id: u32,
    pub(super) spec_off: u32,
    pub(super) kind: u32,
}

#[derive(Debug, PartialEq)]
pub(super) struct CoreNotes {
    pub(super) strings: Vec<u8>,
    pub(super) types: Vec<Type>,
    pub(super) relos: HashMap<String, Vec<Relo>>,
}

/// Bytes `[start, end)` clamped like llvm's `StringRef::slice`.
fn slice(data: &[u8], start: u32, end: u32) -> &[u8] {
    let start = (start as usize).min(data.len());
    let end = (end as usize).clamp(start, data.len());
    &data[start..end]
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    endian: Endian,
}

impl Reader<'_> {
    /// A reader past the header start that .BTF and .BTF.ext share
    /// (magic, version 1, flags, a header length of at least 8), and
    /// that length.
    fn header(data: &[u8], endian: Endian) -> Option<(Reader<'_>, u32)> {
        let mut r = Reader {
            data,
            pos: 0,
            endian,
        };
        if r.u16()? != BTF_MAGIC || r.u8()? != 1 {
            return None;
        }
        r.u8()?;
        let hdr_len = r.u32()?;
        (hdr_len >= 8).then_some((r, hdr_len))
    }
    fn u32(&mut self) -> Option<u32> {
        let b = self.data.get(self.pos..self.pos.checked_add(4)?)?;
        self.pos += 4;
        Some(self.endian.read_u32([b[0], b[1], b[2], b[3]]))
    }
    fn u16(&mut self) -> Option<u16> {
        let b = self.data.get(self.pos..self.pos.checked_add(2)?)?;
        self.pos += 2;
        Some(self.endian.read_u16([b[0], b[1]]))
    }
    fn u8(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }
}

/// How many leading bytes of `.BTF.ext` [`has_core_relos`] reads.
pub(super) const EXT_HEAD: u64 = 32;

/// Whether a `.BTF.ext` (its first [`EXT_HEAD`] bytes suffice) announces
/// CO-RE records as objdump reads its header. Without them no CO-RE line
/// is printed, so neither section need be read further.
pub(super) fn has_core_relos(ext: &[u8], endian: Endian) -> bool {
    let Some((mut r, _)) = Reader::header(ext, endian) else {
        return false;
    };
    let lens = (0..6).map(|_| r.u32()).collect::<Option<Vec<u32>>>();
    // An older header without the CO-RE fields: objdump stops there.
    lens.is_some_and(|l| l[5] != 0)
}

fn words_after(kind: u32, vlen: usize) -> usize {
    match kind {
        1 | 14 | 17 => 1,
        KIND_ARRAY => 3,
        KIND_STRUCT | KIND_UNION | 15 => 3 * vlen,
        KIND_ENUM | 13 => 2 * vlen,
        KIND_ENUM64 => 3 * vlen,
        _ => 0,
    }
}

impl CoreNotes {
    /// `None` where objdump prints no CO-RE lines: no `.BTF` or
    /// `.BTF.ext` section, or one it fails to parse before the records.
    pub(super) fn from_object(obj: &Object) -> Option<CoreNotes> {
        // The reader keeps BTF parsed and BTF.ext raw; objdump reads the
        // section bytes, which these are again.
        let btf = obj.btf.as_ref()?;
        let built;
        let ext = match &obj.btf_ext_raw {
            Some(raw) => raw,
            None if obj
                .sections
                .iter()
                .any(|s| s.kind == crate::model::object::SectionKind::BtfExt) =>
            {
                built = crate::write::btf_ext::from_sections(obj, btf).ok()?;
                &built
            }
            None => return None,
        };
        if !has_core_relos(ext, obj.endian) {
            return None;
        }
        Self::from_bytes(&crate::write::btf::to_bytes(btf), ext, obj.endian)
    }

    /// The notes of raw `.BTF` and `.BTF.ext` section bytes.
    pub(super) fn from_bytes(btf: &[u8], ext: &[u8], endian: Endian) -> Option<CoreNotes> {
        let mut notes = CoreNotes {
            strings: Vec::new(),
            types: Vec::new(),
            relos: HashMap::new(),
        };
        notes.parse_btf(btf, endian)?;
        notes.parse_ext(ext, endian);
        Some(notes)
    }

    fn parse_btf(&mut self, data: &[u8], endian: Endian) -> Option<()> {
        let (mut r, hdr_len) = Reader::header(data, endian)?;
        let (type_off, type_len, str_off, str_len) = (r.u32()?, r.u32()?, r.u32()?, r.u32()?);
        let str_start = hdr_len.wrapping_add(str_off);
        let str_end = str_start.wrapping_add(str_len);
        let types_start = hdr_len.wrapping_add(type_off);
        let types_end = types_start.wrapping_add(type_len);
        if (data.len() as u64) < u64::from(str_end.max(types_end)) {
            return None;
        }
        self.strings = slice(data, str_start, str_end).to_vec();
        // Type 0 is void.
        self.types.push(Type {
            name_off: 0,
            info: 0,
            size_or_type: 0,
            extra: Vec::new(),
        });
        if type_len == 0 {
            return Some(());
        }
        let raw = slice(data, types_start, types_end);
        let mut r = Reader {
            data: raw,
            pos: 0,
            endian,
        };
        while r.pos < raw.len() {
            let (name_off, info, size_or_type) = (r.u32()?, r.u32()?, r.u32()?);
            let n = words_after((info >> 24) & 0x1f, (info & 0xffff) as usize);
            if raw.len() - r.pos < n * 4 {
                return None;
            }
            let extra = (0..n).map(|_| r.u32()).collect::<Option<Vec<u32>>>()?;
            self.types.push(Type {
                name_off,
                info,
                size_or_type,
                extra,
            });
        }
        Some(())
    }

    /// Reads the CO-RE records; stops at the first error, keeping the
    /// records read so far, as objdump does.
    fn parse_ext(&mut self, data: &[u8], endian: Endian) -> Option<()> {
        let (mut r, hdr_len) = Reader::header(data, endian)?;
        let _func = (r.u32()?, r.u32()?);
        let _line = (r.u32()?, r.u32()?);
        let (off, len) = (r.u32()?, r.u32()?);
        if len == 0 {
            return Some(());
        }
        let start = hdr_len.wrapping_add(off);
        let end = start.wrapping_add(len) as usize;
        r.pos = start as usize;
        let rec_size = r.u32()? as usize;
        if rec_size < 16 {
            return None;
        }
        while r.pos < end {
            let sec = self.string(r.u32()?).to_string();
            let count = r.u32()?;
            let mut list = Vec::new();
            for _ in 0..count {
                let at = r.pos;
                let rec = (r.u32(), r.u32(), r.u32(), r.u32());
                let (Some(insn_off), Some(type_id), Some(spec_off), Some(kind)) = rec else {
                    self.sort_relos();
                    self.relos.entry(sec).or_default().extend(list);
                    return None;
                };
                list.push(Relo {
                    insn_off,
                    type_id,
                    spec_off,
                    kind,
                });
                r.pos = at.checked_add(rec_size)?;
            }
            self.relos.entry(sec).or_default().extend(list);
        }
        self.sort_relos();
        Some(())
    }

    /// Every section's records by instruction, stably: sorting once at
    /// the end orders them as sorting after each set would, without
    /// the quadratic cost of many small sets.
    fn sort_relos(&mut self) {
        for list in self.relos.values_mut() {
            list.sort_by_key(|r| r.insn_off);
        }
    }

    pub(super) fn for_section(&self, name: &str) -> &[Relo] {
        self.relos.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    pub(super) fn string(&self, off: u32) -> &str {
        let s = self.strings.get(off as usize..).unwrap_or(&[]);
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        std::str::from_utf8(&s[..end]).unwrap_or("")
    }

    pub(super) fn ty(&self, id: u32) -> Option<&Type> {
        self.types.get(id as usize)
    }
}
