//! `bpftool btf dump file FILE` (raw format), byte for byte as bpftool 7.1
//! prints it, and its JSON form.
//!
//! The dump reads types through [`TypeTable`], which both the model
//! ([`Btf`]) and a view of the encoded types in place implement
//! (re-exported here from `model::btf`), and
//! writes type by type to any [`std::io::Write`]: [`with_file`] lists a
//! large object without a model of its types or its text in memory.

use std::borrow::Cow;
use std::io::{self, Write};

use crate::model::btf::{int_bits, int_encoding, int_offset, Btf, Kind};
use crate::model::btf::{BTF_INT_BOOL, BTF_INT_CHAR, BTF_INT_SIGNED};
use crate::read::btf_view::BtfView;
use crate::Result;

pub use crate::model::btf::{TypeFields, TypeTable};

/// The BTF of a file viewed in place, ready to be dumped type by type
/// (see [`with_file`]).
pub struct FileBtf<'a>(&'a BtfView<'a>);

impl FileBtf<'_> {
    /// The raw dump ([`dump_raw`]) written type by type to `out`.
    pub fn write_raw(&self, out: &mut impl Write) -> io::Result<()> {
        dump_raw_to(self.0, out)
    }

    /// The JSON dump ([`dump_json`], pretty-printed, no final newline)
    /// written type by type to `out`.
    pub fn write_json(&self, out: &mut impl Write) -> io::Result<()> {
        dump_json_to(self.0, out)
    }
}

/// Views the BTF of file `path` and calls `f` with it: the `.BTF` section
/// of an ELF object (only the ELF headers and that section are read) or a
/// raw BTF file (a `.btf`, `/sys/kernel/btf/vmlinux`). All of it is
/// checked before `f` runs, so a listing never stops half-way on bad
/// input. Errors name the file (and the section). This is how `bpfld btf
/// dump` streams its listing.
///
/// ```
/// use bpfld::show::btf_dump;
/// use std::path::Path;
///
/// let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/xdp_pass.o"));
/// let mut text = Vec::new();
/// btf_dump::with_file(path, |btf| btf.write_raw(&mut text))??;
/// let whole = bpfld::Object::read_file(path)?.btf.expect("clang writes BTF");
/// assert_eq!(String::from_utf8(text).unwrap(), btf_dump::dump_raw(&whole));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn with_file<T>(path: &std::path::Path, f: impl FnOnce(&FileBtf<'_>) -> T) -> Result<T> {
    crate::read::btf_view::with_file(path, |view| f(&FileBtf(view)))
}

/// A BTF dump as a value: prints (`Display`) as [`dump_raw`], bpftool's
/// raw format, and serializes as [`dump_json`], bpftool's JSON.
///
/// ```
/// use bpfld::model::Object;
/// use bpfld::show::btf_dump::BtfDump;
///
/// let obj = Object::parse(include_bytes!("../../../../fixtures/xdp_pass.o"))?;
/// let dump = BtfDump(obj.btf.as_ref().expect("clang writes BTF"));
/// assert!(dump.to_string().contains("FUNC 'xdp_pass' type_id="));
/// let json = serde_json::to_value(dump).unwrap();
/// assert!(json["types"].as_array().is_some_and(|t| !t.is_empty()));
/// # Ok::<(), bpfld::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct BtfDump<'a>(pub &'a Btf);

impl std::fmt::Display for BtfDump<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&dump_raw(self.0))
    }
}

impl serde::Serialize for BtfDump<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        dump_json(self.0).serialize(s)
    }
}

/// The raw dump of every type, one `[id] KIND 'name' ...` entry per type.
pub fn dump_raw(btf: &Btf) -> String {
    let mut out = Vec::with_capacity(btf.types.len() * 64);
    // Writing into a Vec cannot fail.
    let _ = dump_raw_to(btf, &mut out);
    into_string(out)
}

/// The raw dump written type by type to `out`.
pub fn dump_raw_to<S: TypeTable + ?Sized>(src: &S, out: &mut impl Write) -> io::Result<()> {
    for id in 1..src.count() as u32 {
        write_type(src, id, out)?;
    }
    Ok(())
}

/// The dump holds only valid UTF-8 (names are converted lossily).
fn into_string(v: Vec<u8>) -> String {
    String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// bpftool's `btf_str`: `(anon)` for offset 0, `(invalid)` when unresolvable.
fn name<S: TypeTable + ?Sized>(src: &S, off: u32) -> Cow<'_, str> {
    if off == 0 {
        return "(anon)".into();
    }
    match src.str_bytes(off) {
        Some(b) => String::from_utf8_lossy(b),
        None => "(invalid)".into(),
    }
}

fn int_enc(enc: u8) -> &'static str {
    match enc {
        0 => "(none)",
        BTF_INT_SIGNED => "SIGNED",
        BTF_INT_CHAR => "CHAR",
        BTF_INT_BOOL => "BOOL",
        _ => "UNKN",
    }
}

/// The value of ENUM/ENUM64 entry `i` as bpftool's text prints it (signed
/// when the kind flag says so).
fn enum_val(t: &impl TypeFields, i: usize) -> i128 {
    match (t.kind(), t.kind_flag()) {
        (Kind::Enum64, signed) => {
            let v = u64::from(t.word(3 * i + 2)) << 32 | u64::from(t.word(3 * i + 1));
            if signed {
                i128::from(v as i64)
            } else {
                i128::from(v)
            }
        }
        (_, true) => i128::from(t.word(2 * i + 1) as i32),
        (_, false) => i128::from(t.word(2 * i + 1)),
    }
}

/// Writes one type's entry (with its trailing newline).
pub(crate) fn write_type<S: TypeTable + ?Sized>(
    src: &S,
    id: u32,
    out: &mut impl Write,
) -> io::Result<()> {
    let Some(t) = src.at(id) else {
        return Ok(());
    };
    let kind = t.kind();
    write!(out, "[{id}] {} '{}'", kind.name(), name(src, t.name_off()))?;
    let kflag = t.kind_flag();
    let size = t.size_or_type();
    match kind {
        Kind::Int => {
            let data = t.word(0);
            write!(
                out,
                " size={size} bits_offset={} nr_bits={} encoding={}",
                int_offset(data),
                int_bits(data),
                int_enc(int_encoding(data))
            )?;
        }
        Kind::Ptr
        | Kind::Const
        | Kind::Volatile
        | Kind::Restrict
        | Kind::Typedef
        | Kind::TypeTag => {
            write!(out, " type_id={size}")?;
        }
        Kind::Array => write!(
            out,
            " type_id={} index_type_id={} nr_elems={}",
            t.word(0),
            t.word(1),
            t.word(2)
        )?,
        Kind::Struct | Kind::Union => {
            write!(out, " size={size} vlen={}", t.vlen())?;
            for i in 0..t.vlen() {
                let offset = t.word(3 * i + 2);
                let (off, bits) = if kflag {
                    (offset & 0xff_ffff, offset >> 24)
                } else {
                    (offset, 0)
                };
                write!(
                    out,
                    "\n\t'{}' type_id={} bits_offset={off}",
                    name(src, t.word(3 * i)),
                    t.word(3 * i + 1),
                )?;
                if bits != 0 {
                    write!(out, " bitfield_size={bits}")?;
                }
            }
        }
        Kind::Enum | Kind::Enum64 => {
            // bpftool prints a signed enum's values as signed.
            let signed = if kflag { "SIGNED" } else { "UNSIGNED" };
            let (width, suffix) = match (kind, kflag) {
                (Kind::Enum, _) => (2, ""),
                (_, true) => (3, "LL"),
                (_, false) => (3, "ULL"),
            };
            write!(out, " encoding={signed} size={size} vlen={}", t.vlen())?;
            for i in 0..t.vlen() {
                let v = enum_val(&t, i);
                write!(
                    out,
                    "\n\t'{}' val={v}{suffix}",
                    name(src, t.word(width * i))
                )?;
            }
        }
        Kind::Fwd => write!(out, " fwd_kind={}", if kflag { "union" } else { "struct" })?,
        Kind::Func => write!(
            out,
            " type_id={size} linkage={}",
            linkage_str(t.vlen() as u32)
        )?,
        Kind::FuncProto => {
            write!(out, " ret_type_id={size} vlen={}", t.vlen())?;
            for i in 0..t.vlen() {
                write!(
                    out,
                    "\n\t'{}' type_id={}",
                    name(src, t.word(2 * i)),
                    t.word(2 * i + 1)
                )?;
            }
        }
        Kind::Var => write!(out, " type_id={size}, linkage={}", linkage_str(t.word(0)))?,
        Kind::Datasec => {
            write!(out, " size={size} vlen={}", t.vlen())?;
            for i in 0..t.vlen() {
                let vid = t.word(3 * i);
                write!(
                    out,
                    "\n\ttype_id={vid} offset={} size={}",
                    t.word(3 * i + 1),
                    t.word(3 * i + 2)
                )?;
                if let Some(vt) = src.at(vid) {
                    write!(
                        out,
                        " ({} '{}')",
                        vt.kind().name(),
                        name(src, vt.name_off())
                    )?;
                }
            }
        }
        Kind::Float => write!(out, " size={size}")?,
        Kind::DeclTag => write!(out, " type_id={size} component_idx={}", t.word(0) as i32)?,
        Kind::Void => {}
    }
    out.write_all(b"\n")
}

/// The `bpftool -j btf dump file FILE` document: `{"types": [...]}` with
/// bpftool's field names per kind.
pub fn dump_json(btf: &Btf) -> serde_json::Value {
    let types: Vec<serde_json::Value> = (1..btf.types.len() as u32)
        .filter_map(|id| type_json(btf, id))
        .collect();
    serde_json::json!({ "types": types })
}

/// [`dump_json`] written type by type to `out` as pretty-printed JSON
/// (what `serde_json::to_writer_pretty` makes of the whole document).
pub fn dump_json_to<S: TypeTable + ?Sized>(src: &S, out: &mut impl Write) -> io::Result<()> {
    use serde::ser::{SerializeMap, SerializeSeq};
    struct Types<'s, S: ?Sized>(&'s S);
    impl<S: TypeTable + ?Sized> serde::Serialize for Types<'_, S> {
        fn serialize<Z: serde::Serializer>(&self, z: Z) -> Result<Z::Ok, Z::Error> {
            let n = self.0.count().saturating_sub(1);
            let mut seq = z.serialize_seq(Some(n))?;
            for id in 1..self.0.count() as u32 {
                if let Some(v) = type_json(self.0, id) {
                    seq.serialize_element(&v)?;
                }
            }
            seq.end()
        }
    }
    struct Doc<'s, S: ?Sized>(&'s S);
    impl<S: TypeTable + ?Sized> serde::Serialize for Doc<'_, S> {
        fn serialize<Z: serde::Serializer>(&self, z: Z) -> Result<Z::Ok, Z::Error> {
            let mut map = z.serialize_map(Some(1))?;
            map.serialize_entry("types", &Types(self.0))?;
            map.end()
        }
    }
    serde_json::to_writer_pretty(&mut *out, &Doc(src)).map_err(io::Error::from)
}

/// One type's JSON object.
fn type_json<S: TypeTable + ?Sized>(src: &S, id: u32) -> Option<serde_json::Value> {
    use serde_json::{json, Value};
    let t = src.at(id)?;
    let kind = t.kind();
    let kflag = t.kind_flag();
    let size = t.size_or_type();
    let mut o = serde_json::Map::new();
    o.insert("id".into(), json!(id));
    o.insert("kind".into(), json!(kind.name()));
    o.insert("name".into(), json!(name(src, t.name_off())));
    let signed = if kflag { "SIGNED" } else { "UNSIGNED" };
    let mut put = |k: &str, v: Value| {
        o.insert(k.into(), v);
    };
    match kind {
        Kind::Int => {
            let data = t.word(0);
            put("size", json!(size));
            put("bits_offset", json!(int_offset(data)));
            put("nr_bits", json!(int_bits(data)));
            put("encoding", json!(int_enc(int_encoding(data))));
        }
        Kind::Ptr
        | Kind::Const
        | Kind::Volatile
        | Kind::Restrict
        | Kind::Typedef
        | Kind::TypeTag => put("type_id", json!(size)),
        Kind::Array => {
            put("type_id", json!(t.word(0)));
            put("index_type_id", json!(t.word(1)));
            put("nr_elems", json!(t.word(2)));
        }
        Kind::Struct | Kind::Union => {
            put("size", json!(size));
            put("vlen", json!(t.vlen()));
            let ms: Vec<Value> = (0..t.vlen())
                .map(|i| {
                    let offset = t.word(3 * i + 2);
                    let (off, bits) = if kflag {
                        (offset & 0xff_ffff, offset >> 24)
                    } else {
                        (offset, 0)
                    };
                    let mut v = json!({"name": name(src, t.word(3 * i)), "type_id": t.word(3 * i + 1), "bits_offset": off});
                    if bits != 0 {
                        v["bitfield_size"] = json!(bits);
                    }
                    v
                })
                .collect();
            put("members", Value::Array(ms));
        }
        Kind::Enum => {
            put("encoding", json!(signed));
            put("size", json!(size));
            put("vlen", json!(t.vlen()));
            let vs: Vec<Value> = (0..t.vlen())
                .map(|i| {
                    let raw = t.word(2 * i + 1);
                    // bpftool 7.1 widens the s32 field with its sign even
                    // for UNSIGNED enums; match it.
                    let val = if kflag {
                        json!(raw as i32)
                    } else {
                        json!(raw as i32 as i64 as u64)
                    };
                    json!({"name": name(src, t.word(2 * i)), "val": val})
                })
                .collect();
            put("values", Value::Array(vs));
        }
        Kind::Enum64 => {
            put("encoding", json!(signed));
            put("size", json!(size));
            put("vlen", json!(t.vlen()));
            let vs: Vec<Value> = (0..t.vlen())
                .map(|i| {
                    let raw = u64::from(t.word(3 * i + 2)) << 32 | u64::from(t.word(3 * i + 1));
                    let val = if kflag { json!(raw as i64) } else { json!(raw) };
                    json!({"name": name(src, t.word(3 * i)), "val": val})
                })
                .collect();
            put("values", Value::Array(vs));
        }
        Kind::Fwd => put("fwd_kind", json!(if kflag { "union" } else { "struct" })),
        Kind::Func => {
            put("type_id", json!(size));
            put("linkage", json!(linkage_str(t.vlen() as u32)));
        }
        Kind::FuncProto => {
            put("ret_type_id", json!(size));
            put("vlen", json!(t.vlen()));
            let ps: Vec<Value> = (0..t.vlen())
                .map(|i| json!({"name": name(src, t.word(2 * i)), "type_id": t.word(2 * i + 1)}))
                .collect();
            put("params", Value::Array(ps));
        }
        Kind::Var => {
            put("type_id", json!(size));
            put("linkage", json!(linkage_str(t.word(0))));
        }
        Kind::Datasec => {
            put("size", json!(size));
            put("vlen", json!(t.vlen()));
            let vs: Vec<Value> = (0..t.vlen())
                .map(|i| json!({"type_id": t.word(3 * i), "offset": t.word(3 * i + 1), "size": t.word(3 * i + 2)}))
                .collect();
            put("vars", Value::Array(vs));
        }
        Kind::Float => put("size", json!(size)),
        Kind::DeclTag => {
            put("type_id", json!(size));
            put("component_idx", json!(t.word(0) as i32));
        }
        Kind::Void => {}
    }
    Some(Value::Object(o))
}

/// FUNC and VAR linkage names as bpftool prints them.
fn linkage_str(l: u32) -> &'static str {
    match l {
        0 => "static",
        1 => "global",
        2 => "extern",
        _ => "(unknown)",
    }
}
