//! A borrowed view of BTF bytes, for listings: the type and string
//! sections stay where they are (a mapped file, a section of one), and the
//! view keeps only where each type starts.
//!
//! [`BtfView::parse`] accepts exactly what [`super::btf::parse`] accepts and
//! fails with the same message on the same first fault (the checks run in
//! the same order), so a listing made from a view reads like one made from
//! the model. A test and a fuzz target compare the two readers; a rule
//! added to one must be added to the other.

use crate::bail;
use crate::error::{Error, Result};
use crate::model::btf::{Kind, BTF_MAGIC};
use crate::model::Endian;
use crate::read::elf_view::ElfView;
use object::ReadRef;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The model's bound on reference walks (`model::btf`'s `MAX_CHAIN`):
/// the size of an array reached through more links than this is an error
/// there, so it is one here.
const MAX_CHAIN: usize = 1 << 16;

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

    /// The one type this kind refers to through `size_or_type`, if any
    /// (as the model's `ref_type`).
    fn ref_type(&self) -> Option<u32> {
        use Kind::*;
        match self.kind() {
            Ptr | Typedef | Volatile | Const | Restrict | TypeTag | Func | Var | DeclTag => {
                Some(self.size_or_type)
            }
            _ => None,
        }
    }

    /// The size field of the kinds that carry one.
    fn size_field(&self) -> Option<u32> {
        use Kind::*;
        match self.kind() {
            Int | Struct | Union | Enum | Enum64 | Datasec | Float => Some(self.size_or_type),
            _ => None,
        }
    }

    /// The edge that size walks follow: modifiers, typedefs, array elements.
    fn walk_edge(&self) -> Option<u32> {
        use Kind::*;
        match self.kind() {
            Typedef | Const | Volatile | Restrict | TypeTag => Some(self.size_or_type),
            Array => Some(self.word(0)),
            _ => None,
        }
    }
}

/// Words after the common header for `kind` with `vlen` records.
fn trailing_len(kind: Kind, vlen: usize) -> usize {
    let rec = match kind {
        Kind::Struct | Kind::Union | Kind::Datasec | Kind::Enum64 => 12,
        Kind::Enum | Kind::FuncProto => 8,
        _ => 0,
    };
    let fixed = match kind {
        Kind::Int | Kind::Var | Kind::DeclTag => 4,
        Kind::Array => 12,
        _ => 0,
    };
    fixed + rec * vlen
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
        view.validate()?;
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

    /// `[id] KIND 'name'`, as the model's `describe`.
    pub fn describe(&self, id: u32) -> String {
        match self.get(id) {
            Some(t) => {
                let name = match self.name_bytes(t.name_off) {
                    Some([]) => "(anon)".to_string(),
                    Some(b) => String::from_utf8_lossy(b).into_owned(),
                    None => "(invalid)".to_string(),
                };
                format!("[{id}] {} '{name}'", t.kind().name())
            }
            None => format!("[{id}] (no such type)"),
        }
    }

    /// The checks of the model's reader after decoding, in its order:
    /// names and references of every type, reference cycles, then DECL_TAG
    /// components, FUNC prototypes and array sizes.
    fn validate(&self) -> Result<()> {
        let n = self.len() as u64;
        let last = n.saturating_sub(1);
        let strlen = self.strings.len() as u64;
        for id in 1..self.len() as u32 {
            let t = self.get(id).unwrap_or(RawType::VOID);
            let fail = |msg: String| Error::new(format!("type {}: {msg}", self.describe(id)));
            let label = |(part, i): (&str, Option<usize>)| match i {
                Some(i) => format!("{part} {i} "),
                None => part.to_string(),
            };
            let check_name = |what: (&str, Option<usize>), off: u32| -> Result<()> {
                if off as u64 >= strlen {
                    return Err(fail(format!(
                        "{}name offset 0x{off:x} beyond the string section of {strlen} bytes",
                        label(what)
                    )));
                }
                Ok(())
            };
            let check_id = |what: (&str, Option<usize>), tid: u32| -> Result<()> {
                if tid as u64 >= n {
                    return Err(fail(format!(
                        "{}refers to type {tid} beyond the last type {last}",
                        label(what),
                    )));
                }
                if self.get(tid).is_some_and(|r| r.kind() == Kind::Datasec) {
                    return Err(fail(format!(
                        "{}refers to {}, a section description",
                        label(what),
                        self.describe(tid)
                    )));
                }
                Ok(())
            };
            check_name(("", None), t.name_off)?;
            match t.kind() {
                Kind::Array => {
                    check_id(("element ", None), t.word(0))?;
                    check_id(("index ", None), t.word(1))?;
                }
                Kind::Struct | Kind::Union => {
                    for i in 0..t.vlen() {
                        check_name(("member", Some(i)), t.word(3 * i))?;
                        check_id(("member", Some(i)), t.word(3 * i + 1))?;
                    }
                }
                Kind::Enum => {
                    for i in 0..t.vlen() {
                        check_name(("value", Some(i)), t.word(2 * i))?;
                    }
                }
                Kind::Enum64 => {
                    for i in 0..t.vlen() {
                        check_name(("value", Some(i)), t.word(3 * i))?;
                    }
                }
                Kind::FuncProto => {
                    check_id(("return type ", None), t.size_or_type)?;
                    for i in 0..t.vlen() {
                        check_name(("parameter", Some(i)), t.word(2 * i))?;
                        check_id(("parameter", Some(i)), t.word(2 * i + 1))?;
                    }
                }
                Kind::Datasec => {
                    for i in 0..t.vlen() {
                        check_id(("variable", Some(i)), t.word(3 * i))?;
                    }
                }
                _ => {
                    if let Some(r) = t.ref_type() {
                        check_id(("", None), r)?;
                    }
                }
            }
        }
        self.check_cycles()?;
        for id in 1..self.len() as u32 {
            let t = self.get(id).unwrap_or(RawType::VOID);
            let fail = |msg: String| Error::new(format!("type {}: {msg}", self.describe(id)));
            match t.kind() {
                Kind::DeclTag => {
                    let component_idx = t.word(0) as i32;
                    if component_idx < -1 {
                        return Err(fail(format!("component_idx {component_idx} is invalid")));
                    }
                    if component_idx >= 0 {
                        let target = t.size_or_type;
                        let tt = self.get(target).unwrap_or(RawType::VOID);
                        let count = match tt.kind() {
                            Kind::Struct | Kind::Union => tt.vlen(),
                            Kind::Func => match self.get(tt.size_or_type) {
                                Some(p) if p.kind() == Kind::FuncProto => p.vlen(),
                                _ => 0,
                            },
                            _ => 0,
                        };
                        if component_idx as usize >= count {
                            return Err(fail(format!(
                                "component_idx {component_idx} but {} has {count} members/parameters",
                                self.describe(target)
                            )));
                        }
                    }
                }
                Kind::Func => {
                    let proto = t.size_or_type;
                    let pk = self.get(proto).map(|p| p.kind());
                    if pk != Some(Kind::FuncProto) {
                        return Err(fail(format!(
                            "refers to {}, not a FUNC_PROTO",
                            self.describe(proto)
                        )));
                    }
                }
                Kind::Array => self.check_size(id)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Each type has at most one walk edge, so following each unvisited
    /// chain and meeting the current one again finds every cycle.
    fn check_cycles(&self) -> Result<()> {
        const NEW: u8 = 0;
        const ON_PATH: u8 = 1;
        const DONE: u8 = 2;
        let mut state = vec![NEW; self.len()];
        let mut path = Vec::new();
        for start in 1..self.len() {
            if state[start] != NEW {
                continue;
            }
            let mut cur = start;
            loop {
                match state.get(cur).copied() {
                    Some(NEW) => {
                        state[cur] = ON_PATH;
                        path.push(cur);
                        let edge = match cur {
                            0 => None,
                            _ => self.get(cur as u32).and_then(|t| t.walk_edge()),
                        };
                        match edge {
                            Some(next) => cur = next as usize,
                            None => break,
                        }
                    }
                    Some(ON_PATH) => bail!(
                        "type {}: cycle of typedef/modifier/array references (a type containing itself)",
                        self.describe(cur as u32)
                    ),
                    _ => break,
                }
            }
            for p in path.drain(..) {
                state[p] = DONE;
            }
        }
        Ok(())
    }

    /// The model's `size_of` on an array, for its errors only: an array
    /// whose size overflows, or that reaches a type without a size.
    fn check_size(&self, id: u32) -> Result<()> {
        let mut cur = id;
        let mut mult: u64 = 1;
        for _ in 0..MAX_CHAIN {
            let Some(t) = self.get(cur) else {
                bail!(
                    "type id {cur} beyond the last type {}",
                    self.len().saturating_sub(1)
                );
            };
            let size = match (t.kind(), t.size_field()) {
                (_, Some(size)) => u64::from(size),
                (Kind::Ptr, _) => 8,
                (
                    Kind::Typedef
                    | Kind::Const
                    | Kind::Volatile
                    | Kind::Restrict
                    | Kind::TypeTag
                    | Kind::Var,
                    _,
                ) => {
                    cur = t.size_or_type;
                    continue;
                }
                (Kind::Array, _) => {
                    mult = mult.checked_mul(u64::from(t.word(2))).ok_or_else(|| {
                        Error::new(format!("type {}: array size overflows", self.describe(id)))
                    })?;
                    cur = t.word(0);
                    continue;
                }
                _ => bail!(
                    "type {} has no size (reached {})",
                    self.describe(id),
                    self.describe(cur)
                ),
            };
            if size.checked_mul(mult).is_none_or(|v| v > u32::MAX as u64) {
                bail!("type {}: size overflows 32 bits", self.describe(id));
            }
            return Ok(());
        }
        bail!(
            "type {}: reference chain too long or cyclic",
            self.describe(id)
        )
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

fn detect_endian(bytes: &[u8]) -> Result<Endian> {
    match bytes {
        [a, b, ..] if u16::from_le_bytes([*a, *b]) == BTF_MAGIC => Ok(Endian::Little),
        [a, b, ..] if u16::from_be_bytes([*a, *b]) == BTF_MAGIC => Ok(Endian::Big),
        [a, b, ..] => bail!("bad BTF magic 0x{:02x}{:02x}", a, b),
        _ => bail!("BTF of {} bytes is too short for a header", bytes.len()),
    }
}

/// The header checks and the per-type structure checks of the model's
/// reader, recording where each type starts instead of copying it.
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
    let rd = |o: usize| e.read_u32([sec[o], sec[o + 1], sec[o + 2], sec[o + 3]]);
    let mut pos = 0usize;
    while pos < sec.len() {
        let id = starts.len();
        let at = pos;
        if sec.len() - pos < 12 {
            bail!(
                "type [{id}] at offset {at}: truncated type header ({} bytes left in the type section)",
                sec.len() - at
            );
        }
        let (name_off, info, size_or_type) = (rd(pos), rd(pos + 4), rd(pos + 8));
        pos += 12;
        let raw_kind = (info >> 24) & 0x1f;
        let Some(kind) = Kind::from_raw(raw_kind) else {
            bail!("type [{id}] at offset {at}: unknown kind {raw_kind}");
        };
        let kname = kind.name();
        let err = |msg: String| {
            let tname = raw_name(strings, name_off);
            Error::new(format!(
                "type [{id}] {kname} '{tname}' at offset {at}: {msg}"
            ))
        };
        if info & 0x60ff_0000 != 0 {
            return Err(err(format!("unused bits set in info 0x{info:08x}")));
        }
        let vlen = (info & 0xffff) as usize;
        let has_records = matches!(
            kind,
            Kind::Struct
                | Kind::Union
                | Kind::Datasec
                | Kind::Enum64
                | Kind::Enum
                | Kind::FuncProto
        );
        if !has_records && vlen != 0 && kind != Kind::Func {
            return Err(err(format!("vlen {vlen} must be 0 for this kind")));
        }
        let need = trailing_len(kind, if has_records { vlen } else { 0 });
        if sec.len() - pos < need {
            return Err(err(format!(
                "vlen {vlen} needs {need} bytes but only {} remain in the type section",
                sec.len() - pos
            )));
        }
        if kind == Kind::Fwd && size_or_type != 0 && lenient {
            let tname = raw_name(strings, name_off);
            let what = format!("type [{id}] FWD '{tname}' at offset {at}");
            super::workarounds::fwd_size_or_type(&what, size_or_type);
        } else if matches!(kind, Kind::Array | Kind::Fwd) && size_or_type != 0 {
            return Err(err(format!("size/type field {size_or_type} must be 0")));
        }
        starts.push(at as u32);
        pos += need;
    }
    starts.shrink_to_fit();
    Ok(starts)
}

/// A name for error messages before validation: `(anon)`, `(invalid)`.
fn raw_name(strings: &[u8], off: u32) -> String {
    if off == 0 {
        return "(anon)".into();
    }
    match strings.get(off as usize..) {
        Some(rest) => {
            let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            String::from_utf8_lossy(&rest[..end]).into_owned()
        }
        None => "(invalid)".into(),
    }
}
