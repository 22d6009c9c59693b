//! A borrowed view of BTF bytes, for listings: the type and string
//! sections stay where they are (a mapped file, a section of one), and the
//! view keeps only where each type starts.
//!
//! [`BtfView::parse`] accepts exactly what [`super::btf::parse`] accepts and
//! fails with the same message on the same first fault, because both run
//! the same checks: [`super::btf::header`] on the header,
//! [`super::btf::type_head`] on each type as it is found, and
//! [`super::btf::check_types`] on the whole table (the view answers the
//! model's [`TypeTable`] questions from the bytes). A test and a fuzz
//! target compare the two readers' listings.

use crate::bail;
use crate::error::{Error, Result};
use crate::model::btf::{Kind, TypeFields, TypeTable};
use crate::model::Endian;
use crate::read::btf::{detect_endian, trailing_len, type_head};
use crate::read::elf_view::ElfView;
use object::ReadRef;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// BTF whose types and strings are borrowed from the input bytes.
#[derive(Clone, Debug)]
pub struct BtfView<'a> {
    endian: Endian,
    types: &'a [u8],
    strings: &'a [u8],
    /// Byte offset in `types` of each type; `starts[0]` (void) is unused.
    starts: Vec<u32>,
}

/// One `struct btf_type` and the words that follow it, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct RawType<'a> {
    pub name_off: u32,
    pub info: u32,
    pub size_or_type: u32,
    /// The trailing words (INT data, ARRAY, members, values, ...).
    rest: &'a [u8],
    endian: Endian,
}

impl RawType<'_> {
    const VOID: RawType<'static> = RawType {
        name_off: 0,
        info: 0,
        size_or_type: 0,
        rest: &[],
        endian: Endian::Little,
    };

    /// The kind; `Void` for type 0 (a view holds only known kinds).
    pub fn kind(&self) -> Kind {
        Kind::from_raw((self.info >> 24) & 0x1f).unwrap_or(Kind::Void)
    }

    pub fn kind_flag(&self) -> bool {
        self.info >> 31 != 0
    }

    pub fn vlen(&self) -> usize {
        (self.info & 0xffff) as usize
    }

    /// Trailing word `i` (0 past the end, which a parsed view never reads).
    pub fn word(&self, i: usize) -> u32 {
        match self.rest.get(i * 4..i * 4 + 4) {
            Some(b) => self.endian.read_u32([b[0], b[1], b[2], b[3]]),
            None => 0,
        }
    }
}

/// The NUL-terminated string at `off` without its NUL, `None` when `off`
/// is past the end or no NUL follows (as the model's `name_bytes`).
pub fn cstr(strings: &[u8], off: u32) -> Option<&[u8]> {
    let rest = strings.get(off as usize..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    Some(&rest[..end])
}

impl<'a> BtfView<'a> {
    /// Views BTF, taking the byte order from the magic.
    pub fn parse(bytes: &'a [u8]) -> Result<BtfView<'a>> {
        let endian = detect_endian(bytes)?;
        Self::parse_with_endian(bytes, endian)
    }

    /// Views BTF that must be in byte order `endian` (the ELF's).
    pub fn parse_with_endian(bytes: &'a [u8], endian: Endian) -> Result<BtfView<'a>> {
        Self::parse_checked(bytes, endian, false)
    }

    /// [`Self::parse_with_endian`] for the `.BTF` section of an object:
    /// the quirks compilers are known to write are read with a warning,
    /// as [`super::btf::parse_in_object`] reads them.
    pub fn parse_in_object(bytes: &'a [u8], endian: Endian) -> Result<BtfView<'a>> {
        Self::parse_checked(bytes, endian, true)
    }

    fn parse_checked(bytes: &'a [u8], endian: Endian, lenient: bool) -> Result<BtfView<'a>> {
        let found = detect_endian(bytes)?;
        if found != endian {
            bail!(
                "BTF magic is byte-swapped: {:?}-endian BTF in a {:?}-endian object",
                found,
                endian
            );
        }
        let view = decode(bytes, endian, lenient)?;
        super::btf::check_types(&view)?;
        Ok(view)
    }

    #[cfg_attr(not(feature = "internals"), allow(dead_code))] // tests, fuzz targets
    pub fn endian(&self) -> Endian {
        self.endian
    }

    /// The string section.
    #[cfg_attr(not(feature = "internals"), allow(dead_code))] // tests, fuzz targets
    pub fn strings(&self) -> &'a [u8] {
        self.strings
    }

    /// Number of types including `void` (so the last id is `len() - 1`).
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether there is no type but `void`.
    #[cfg_attr(not(feature = "internals"), allow(dead_code))] // tests, fuzz targets
    pub fn is_empty(&self) -> bool {
        self.starts.len() <= 1
    }

    /// Type `id` (`void` for 0), if it exists.
    pub fn get(&self, id: u32) -> Option<RawType<'a>> {
        if id == 0 {
            return Some(RawType::VOID);
        }
        let start = *self.starts.get(id as usize)? as usize;
        let e = self.endian;
        let b = &self.types[start..];
        let rd = |o: usize| e.read_u32([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let (name_off, info, size_or_type) = (rd(0), rd(4), rd(8));
        let kind = Kind::from_raw((info >> 24) & 0x1f).unwrap_or(Kind::Void);
        let n = trailing_len(kind, (info & 0xffff) as usize);
        Some(RawType {
            name_off,
            info,
            size_or_type,
            rest: &b[12..12 + n],
            endian: e,
        })
    }

    /// The string at `off` (see [`cstr`]).
    pub fn name_bytes(&self, off: u32) -> Option<&'a [u8]> {
        cstr(self.strings, off)
    }
}

impl TypeFields for RawType<'_> {
    fn name_off(&self) -> u32 {
        self.name_off
    }
    fn kind(&self) -> Kind {
        RawType::kind(self)
    }
    fn kind_flag(&self) -> bool {
        RawType::kind_flag(self)
    }
    fn size_or_type(&self) -> u32 {
        self.size_or_type
    }
    fn vlen(&self) -> usize {
        RawType::vlen(self)
    }
    fn word(&self, i: usize) -> u32 {
        RawType::word(self, i)
    }
}

impl<'a> TypeTable for BtfView<'a> {
    type Ty<'s>
        = RawType<'a>
    where
        Self: 's;
    fn count(&self) -> usize {
        self.len()
    }
    fn at(&self, id: u32) -> Option<RawType<'a>> {
        self.get(id)
    }
    fn str_bytes(&self, off: u32) -> Option<&[u8]> {
        self.name_bytes(off)
    }
    fn strings_len(&self) -> usize {
        self.strings.len()
    }
}

/// Views the BTF of a file and calls `f` with it: the `.BTF` section of an
/// ELF object (only the headers and that section are read, see
/// [`super::elf_view`]) or a raw BTF file. Errors name the file (and the
/// section).
pub fn with_file<T>(path: &Path, f: impl FnOnce(&BtfView<'_>) -> T) -> Result<T> {
    let in_file = |e: Error| e.in_file(path.display());
    // Warnings about what a producer wrote name the file.
    let name = path.display().to_string();
    crate::read::workarounds::reading(&name, || {
        match super::open_seekable(path).map_err(in_file)? {
            Ok(file) => with_reader(file, f),
            Err(bytes) => with_reader(std::io::Cursor::new(bytes), f),
        }
    })
    .map_err(in_file)
}

/// [`with_file`] on any seekable reader (errors do not name a file).
pub fn with_reader<T, R: Read + Seek>(reader: R, f: impl FnOnce(&BtfView<'_>) -> T) -> Result<T> {
    let cache = object::ReadCache::new(reader);
    let is_elf = (&cache).read_bytes_at(0, 4).is_ok_and(super::elf::is_elf);
    if is_elf {
        let elf = ElfView::parse(&cache)?;
        let index = elf
            .btf_index()
            .ok_or_else(|| Error::new("object has no .BTF section"))?;
        let bytes = elf.section_data(index)?;
        let view =
            BtfView::parse_in_object(bytes, elf.endian()).map_err(|e| e.in_section(".BTF"))?;
        Ok(f(&view))
    } else {
        // Raw BTF is read whole, once.
        let mut reader = cache.into_inner();
        let mut raw = Vec::new();
        reader
            .seek(SeekFrom::Start(0))
            .and_then(|_| reader.read_to_end(&mut raw))
            .map_err(|e| Error::new(format!("cannot read: {e}")))?;
        Ok(f(&BtfView::parse(&raw)?))
    }
}

/// The header checks and the per-type structure checks of the model's
/// reader ([`type_head`]), recording where each type starts instead of
/// copying it.
fn decode(bytes: &[u8], e: Endian, lenient: bool) -> Result<BtfView<'_>> {
    let super::btf::Header {
        types: type_sec,
        strings: str_sec,
        ..
    } = super::btf::header(bytes, e)?;
    let starts = type_starts(type_sec, str_sec, e, lenient)?;
    Ok(BtfView {
        endian: e,
        types: type_sec,
        strings: str_sec,
        starts,
    })
}

fn type_starts(sec: &[u8], strings: &[u8], e: Endian, lenient: bool) -> Result<Vec<u32>> {
    // Each type takes at least 12 bytes, which bounds the allocation.
    let mut starts = Vec::with_capacity(sec.len() / 12 + 1);
    starts.push(0);
    let mut pos = 0usize;
    while pos < sec.len() {
        let head = type_head(sec, pos, starts.len(), strings, e, lenient)?;
        starts.push(pos as u32);
        pos += 12 + head.trailing;
    }
    starts.shrink_to_fit();
    Ok(starts)
}
