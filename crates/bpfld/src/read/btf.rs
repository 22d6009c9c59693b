//! BTF reader: `.BTF` section contents or a raw BTF file
//! (`/sys/kernel/btf/vmlinux`), either byte order.
//!
//! Every header field, count and offset is checked against the input
//! before it is used; after decoding, every type reference, name offset,
//! DECL_TAG component and array size is validated, and cycles through
//! typedefs/modifiers/arrays (which no compiler can produce) are rejected so
//! later walks terminate.

use crate::bail;
use crate::error::{Error, Result};
use crate::model::btf::{
    describe_in, ref_type, size_of_in, walk_edge, Btf, BtfType, Enum64Value, EnumValue, Kind,
    Member, Param, RawLayout, TypeData, TypeFields, TypeId, TypeTable, VarSecinfo, BTF_HEADER_LEN,
    BTF_MAGIC,
};
use crate::model::Endian;

/// Parses BTF, taking the byte order from the magic.
pub fn parse(bytes: &[u8]) -> Result<Btf> {
    let endian = detect_endian(bytes)?;
    parse_with_endian(bytes, endian)
}

/// Parses BTF that must be in byte order `endian` (the ELF's): a
/// byte-swapped magic is an error.
pub fn parse_with_endian(bytes: &[u8], endian: Endian) -> Result<Btf> {
    parse_checked(bytes, endian, false)
}

/// [`parse_with_endian`] for the `.BTF` section of an object, where the
/// quirks compilers are known to write (see [`super::workarounds`]) are
/// read with a warning. Such input is read as its canonical form, so it
/// does not round-trip byte for byte; raw BTF (`btf dump` of a `.btf`
/// file, the kernel's) is read strictly.
pub fn parse_in_object(bytes: &[u8], endian: Endian) -> Result<Btf> {
    parse_checked(bytes, endian, true)
}

fn parse_checked(bytes: &[u8], endian: Endian, lenient: bool) -> Result<Btf> {
    let found = detect_endian(bytes)?;
    if found != endian {
        bail!(
            "BTF magic is byte-swapped: {:?}-endian BTF in a {:?}-endian object",
            found,
            endian
        );
    }
    let btf = decode(bytes, endian, lenient)?;
    validate(&btf)?;
    Ok(btf)
}

/// The byte order the magic is written in.
pub(crate) fn detect_endian(bytes: &[u8]) -> Result<Endian> {
    match bytes {
        [a, b, ..] if u16::from_le_bytes([*a, *b]) == BTF_MAGIC => Ok(Endian::Little),
        [a, b, ..] if u16::from_be_bytes([*a, *b]) == BTF_MAGIC => Ok(Endian::Big),
        [a, b, ..] => bail!("bad BTF magic 0x{:02x}{:02x}", a, b),
        _ => bail!("BTF of {} bytes is too short for a header", bytes.len()),
    }
}

/// A bounds-checked reader over a byte slice.
struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
    e: Endian,
}

impl Cur<'_> {
    fn u32(&mut self) -> Option<u32> {
        let s = self.b.get(self.pos..self.pos.checked_add(4)?)?;
        self.pos += 4;
        Some(self.e.read_u32([s[0], s[1], s[2], s[3]]))
    }
}

/// The header of raw BTF and the type and string sections it places,
/// checked: what every reader of BTF (the model's, the listings' view)
/// needs before it looks at a type.
pub(crate) struct Header<'a> {
    pub(crate) hdr_len: u32,
    pub(crate) type_off: u32,
    pub(crate) type_len: u32,
    pub(crate) str_off: u32,
    pub(crate) str_len: u32,
    /// Everything after the header.
    pub(crate) data: &'a [u8],
    pub(crate) types: &'a [u8],
    pub(crate) strings: &'a [u8],
}

/// Reads and checks the header of raw BTF in byte order `e`.
pub(crate) fn header(bytes: &[u8], e: Endian) -> Result<Header<'_>> {
    if bytes.len() < BTF_HEADER_LEN as usize {
        bail!(
            "BTF of {} bytes is shorter than the {}-byte header",
            bytes.len(),
            BTF_HEADER_LEN
        );
    }
    let rd = |o: usize| e.read_u32([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
    let hdr_len = rd(4);
    let (type_off, type_len, str_off, str_len) = (rd(8), rd(12), rd(16), rd(20));
    if hdr_len < BTF_HEADER_LEN || hdr_len as usize > bytes.len() {
        bail!(
            "BTF header length {} (read {}-endian) is outside 24..={} (the input size)",
            hdr_len,
            if e == Endian::Big { "big" } else { "little" },
            bytes.len()
        );
    }
    let data = &bytes[hdr_len as usize..];
    let sect = |what: &str, off: u32, len: u32| -> Result<&[u8]> {
        let end = (off as u64) + (len as u64);
        if end > data.len() as u64 {
            bail!(
                "BTF {what} section (offset {off}, length {len}) runs past the end of the data ({} bytes after the header)",
                data.len()
            );
        }
        Ok(&data[off as usize..end as usize])
    };
    let type_sec = sect("type", type_off, type_len)?;
    let str_sec = sect("string", str_off, str_len)?;
    if type_off % 4 != 0 {
        bail!("BTF type section offset {type_off} is not 4-byte aligned");
    }
    let overlap = (type_off as u64) < (str_off as u64 + str_len as u64)
        && (str_off as u64) < (type_off as u64 + type_len as u64);
    if overlap {
        bail!("BTF type section ({type_off}+{type_len}) and string section ({str_off}+{str_len}) overlap");
    }
    match (str_sec.first(), str_sec.last()) {
        (Some(0), Some(0)) => {}
        (None, _) => bail!("BTF string section is empty (it must hold at least the empty string)"),
        (Some(_), _) if str_sec[0] != 0 => bail!("BTF string section does not start with NUL"),
        _ => bail!("BTF string section is not NUL-terminated"),
    }
    Ok(Header {
        hdr_len,
        type_off,
        type_len,
        str_off,
        str_len,
        data,
        types: type_sec,
        strings: str_sec,
    })
}

fn decode(bytes: &[u8], e: Endian, lenient: bool) -> Result<Btf> {
    let Header {
        hdr_len,
        type_off,
        type_len,
        str_off,
        str_len,
        data,
        types: type_sec,
        strings: str_sec,
    } = header(bytes, e)?;
    let (version, flags) = (bytes[2], bytes[3]);

    let standard = type_off == 0
        && str_off == type_len
        && data.len() as u64 == type_len as u64 + str_len as u64;
    let raw_layout = (!standard).then(|| RawLayout {
        type_off,
        type_len,
        str_off,
        str_len,
        data: data.to_vec(),
    });

    let types = decode_types(type_sec, str_sec, e, lenient)?;
    Ok(Btf {
        endian: e,
        version,
        flags,
        hdr_len,
        hdr_extra: bytes[BTF_HEADER_LEN as usize..hdr_len as usize].to_vec(),
        types,
        strings: str_sec.to_vec(),
        raw_layout,
    })
}

/// The common header of one encoded type and how many bytes of trailing
/// words follow it, checked.
pub(crate) struct TypeHead {
    pub(crate) name_off: u32,
    pub(crate) info: u32,
    pub(crate) size_or_type: u32,
    pub(crate) kind: Kind,
    /// Bytes of trailing words after the 12-byte header.
    pub(crate) trailing: usize,
}

/// Bytes of trailing words after the common header for `kind` with
/// `vlen` records (FUNC's vlen is its linkage, not a record count).
pub(crate) fn trailing_len(kind: Kind, vlen: usize) -> usize {
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

/// The structure checks on type `id`, which starts at offset `at` of the
/// type section `sec`: a whole header, a known kind, no unused info bits,
/// records only for kinds that have them, all its trailing words present,
/// a zero size/type field for ARRAY and FWD (unless `lenient`, where
/// compilers' nonzero FWD field is read with a warning). Both the model's
/// reader and the listings' view run it on every type.
// Inlined into both loops: what a caller does not use is not computed.
#[inline(always)]
pub(crate) fn type_head(
    sec: &[u8],
    at: usize,
    id: usize,
    strings: &[u8],
    e: Endian,
    lenient: bool,
) -> Result<TypeHead> {
    let left = sec.len() - at;
    let Some(h) = sec.get(at..at + 12) else {
        bail!("type [{id}] at offset {at}: truncated type header ({left} bytes left in the type section)");
    };
    let rd = |o: usize| e.read_u32([h[o], h[o + 1], h[o + 2], h[o + 3]]);
    let (name_off, info, size_or_type) = (rd(0), rd(4), rd(8));
    let raw_kind = (info >> 24) & 0x1f;
    let Some(kind) = Kind::from_raw(raw_kind) else {
        bail!("type [{id}] at offset {at}: unknown kind {raw_kind}");
    };
    let err = |msg: String| head_error(strings, id, kind, name_off, at, msg);
    if info & 0x60ff_0000 != 0 {
        return Err(err(format!("unused bits set in info 0x{info:08x}")));
    }
    let vlen = (info & 0xffff) as usize;
    let has_records = matches!(
        kind,
        Kind::Struct | Kind::Union | Kind::Datasec | Kind::Enum64 | Kind::Enum | Kind::FuncProto
    );
    if !has_records && vlen != 0 && kind != Kind::Func {
        return Err(err(format!("vlen {vlen} must be 0 for this kind")));
    }
    let need = trailing_len(kind, vlen);
    if left - 12 < need {
        return Err(err(format!(
            "vlen {vlen} needs {need} bytes but only {} remain in the type section",
            left - 12
        )));
    }
    if matches!(kind, Kind::Array | Kind::Fwd) && size_or_type != 0 {
        if kind == Kind::Fwd && lenient {
            let what = format!(
                "type [{id}] FWD '{}' at offset {at}",
                raw_name(strings, name_off)
            );
            super::workarounds::fwd_size_or_type(&what, size_or_type);
        } else {
            return Err(err(format!("size/type field {size_or_type} must be 0")));
        }
    }
    Ok(TypeHead {
        name_off,
        info,
        size_or_type,
        kind,
        trailing: need,
    })
}

/// A [`type_head`] error, naming the type (the name is looked up only
/// when there is an error to report).
#[cold]
#[inline(never)]
fn head_error(
    strings: &[u8],
    id: usize,
    kind: Kind,
    name_off: u32,
    at: usize,
    msg: String,
) -> Error {
    let tname = raw_name(strings, name_off);
    Error::new(format!(
        "type [{id}] {} '{tname}' at offset {at}: {msg}",
        kind.name()
    ))
}

fn decode_types(sec: &[u8], strings: &[u8], e: Endian, lenient: bool) -> Result<Vec<BtfType>> {
    // Each type takes at least 12 bytes, which bounds the allocation.
    let mut types = Vec::with_capacity(sec.len() / 12 + 1);
    types.push(BtfType::new(0, false, TypeData::Void));
    let mut c = Cur { b: sec, pos: 0, e };
    while c.pos < sec.len() {
        let TypeHead {
            name_off,
            info,
            size_or_type,
            kind,
            trailing,
        } = type_head(sec, c.pos, types.len(), strings, e, lenient)?;
        c.pos += 12;
        let end = c.pos + trailing;
        let vlen = (info & 0xffff) as usize;
        let kind_flag = info >> 31 != 0;
        // Reads cannot fail: the trailing words are present.
        let mut next = || c.u32().unwrap_or(0);
        let tid = TypeId(size_or_type);
        let data = match kind {
            Kind::Void => TypeData::Void,
            Kind::Int => TypeData::Int {
                size: size_or_type,
                data: next(),
            },
            Kind::Ptr => TypeData::Ptr(tid),
            Kind::Typedef => TypeData::Typedef(tid),
            Kind::Volatile => TypeData::Volatile(tid),
            Kind::Const => TypeData::Const(tid),
            Kind::Restrict => TypeData::Restrict(tid),
            Kind::TypeTag => TypeData::TypeTag(tid),
            Kind::Array => TypeData::Array {
                elem: TypeId(next()),
                index: TypeId(next()),
                nelems: next(),
            },
            // A nonzero size/type field was refused or warned about.
            Kind::Fwd => TypeData::Fwd,
            Kind::Struct | Kind::Union => {
                let members = (0..vlen)
                    .map(|_| Member {
                        name_off: next(),
                        type_id: TypeId(next()),
                        offset: next(),
                    })
                    .collect();
                if kind == Kind::Struct {
                    TypeData::Struct {
                        size: size_or_type,
                        members,
                    }
                } else {
                    TypeData::Union {
                        size: size_or_type,
                        members,
                    }
                }
            }
            Kind::Enum => TypeData::Enum {
                size: size_or_type,
                values: (0..vlen)
                    .map(|_| EnumValue {
                        name_off: next(),
                        val: next(),
                    })
                    .collect(),
            },
            Kind::Enum64 => TypeData::Enum64 {
                size: size_or_type,
                values: (0..vlen)
                    .map(|_| {
                        let name_off = next();
                        let lo = next() as u64;
                        let hi = next() as u64;
                        Enum64Value {
                            name_off,
                            val: hi << 32 | lo,
                        }
                    })
                    .collect(),
            },
            Kind::Func => TypeData::Func {
                proto: tid,
                linkage: vlen as u16,
            },
            Kind::FuncProto => TypeData::FuncProto {
                ret: tid,
                params: (0..vlen)
                    .map(|_| Param {
                        name_off: next(),
                        type_id: TypeId(next()),
                    })
                    .collect(),
            },
            Kind::Var => TypeData::Var {
                type_id: tid,
                linkage: next(),
            },
            Kind::Datasec => TypeData::Datasec {
                size: size_or_type,
                vars: (0..vlen)
                    .map(|_| VarSecinfo {
                        type_id: TypeId(next()),
                        offset: next(),
                        size: next(),
                    })
                    .collect(),
            },
            Kind::Float => TypeData::Float { size: size_or_type },
            Kind::DeclTag => TypeData::DeclTag {
                target: tid,
                component_idx: next() as i32,
            },
        };
        debug_assert_eq!(c.pos, end);
        c.pos = end;
        types.push(BtfType::new(name_off, kind_flag, data));
    }
    // The capacity was a bound from the byte count; give the rest back.
    types.shrink_to_fit();
    Ok(types)
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

/// Checks references, names, DECL_TAG components, array sizes and the
/// absence of typedef/modifier/array cycles.
pub fn validate(btf: &Btf) -> Result<()> {
    check_types(btf)
}

/// [`validate`] on any table of types: the model's reader and the
/// listings' view (`read::btf_view`) both run it, so they accept and
/// refuse the same BTF with the same message. In order: names and
/// references of every type, reference cycles, then DECL_TAG components,
/// FUNC prototypes and array sizes.
pub(crate) fn check_types<T: TypeTable + ?Sized>(table: &T) -> Result<()> {
    let n = table.count() as u64;
    let last = n.saturating_sub(1);
    let strlen = table.strings_len() as u64;
    for id in 1..table.count() as u32 {
        let Some(t) = table.at(id) else { continue };
        let fail = |msg: String| Error::new(format!("type {}: {msg}", describe_in(table, id)));
        // Labels are `(part, index)` and formatted only on failure.
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
            // Only section descriptions are never referred to.
            if table.at(tid).is_some_and(|r| r.kind() == Kind::Datasec) {
                return Err(fail(format!(
                    "{}refers to {}, a section description",
                    label(what),
                    describe_in(table, tid)
                )));
            }
            Ok(())
        };
        check_name(("", None), t.name_off())?;
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
                check_id(("return type ", None), t.size_or_type())?;
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
                if let Some(r) = ref_type(&t) {
                    check_id(("", None), r)?;
                }
            }
        }
    }
    check_cycles(table)?;
    for id in 1..table.count() as u32 {
        let Some(t) = table.at(id) else { continue };
        let fail = |msg: String| Error::new(format!("type {}: {msg}", describe_in(table, id)));
        match t.kind() {
            Kind::DeclTag => {
                let component_idx = t.word(0) as i32;
                if component_idx < -1 {
                    return Err(fail(format!("component_idx {component_idx} is invalid")));
                }
                if component_idx >= 0 {
                    // The target exists: its reference was checked above.
                    let target = t.size_or_type();
                    let count = match table.at(target) {
                        Some(tt) if matches!(tt.kind(), Kind::Struct | Kind::Union) => tt.vlen(),
                        Some(tt) if tt.kind() == Kind::Func => match table.at(tt.size_or_type()) {
                            Some(p) if p.kind() == Kind::FuncProto => p.vlen(),
                            _ => 0,
                        },
                        _ => 0,
                    };
                    if component_idx as usize >= count {
                        return Err(fail(format!(
                            "component_idx {component_idx} but {} has {count} members/parameters",
                            describe_in(table, target)
                        )));
                    }
                }
            }
            Kind::Func => {
                let proto = t.size_or_type();
                if table.at(proto).map(|p| p.kind()) != Some(Kind::FuncProto) {
                    return Err(fail(format!(
                        "refers to {}, not a FUNC_PROTO",
                        describe_in(table, proto)
                    )));
                }
            }
            Kind::Array => {
                // size_of's error already names the array.
                size_of_in(table, id)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Each type has at most one walk edge, so the walk graph is functional:
/// follow each unvisited chain, colouring it; meeting the current chain
/// again is a cycle.
fn check_cycles<T: TypeTable + ?Sized>(table: &T) -> Result<()> {
    const NEW: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![NEW; table.count()];
    let mut path = Vec::new();
    for start in 1..table.count() {
        if state[start] != NEW {
            continue;
        }
        let mut cur = start;
        loop {
            match state.get(cur).copied() {
                Some(NEW) => {
                    state[cur] = ON_PATH;
                    path.push(cur);
                    match table.at(cur as u32).and_then(|t| walk_edge(&t)) {
                        Some(next) => cur = next as usize,
                        None => break,
                    }
                }
                Some(ON_PATH) => bail!(
                    "type {}: cycle of typedef/modifier/array references (a type containing itself)",
                    describe_in(table, cur as u32)
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
