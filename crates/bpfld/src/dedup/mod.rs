//! BTF deduplication: collapses equivalent types of a (usually merged) BTF
//! into one representative each and compacts the result.
//!
//! The rules are libbpf's `btf__dedup` ones, implemented independently:
//!
//! 1. Strings: every name is replaced by a string id, equal bytes giving
//!    equal ids, so names compare as integers. The output string table
//!    holds only referenced strings, each once.
//! 2. Primitives (INT, FLOAT, ENUM, ENUM64, FWD) merge when identical; an
//!    enum forward declaration (vlen 0) merges into the first full enum of
//!    the same kind, name, size and signedness.
//! 3. STRUCT/UNION merge by graph equivalence: a candidate with the same
//!    shallow layout (name, size, member names and offsets) is compared
//!    by walking both type graphs in lock step, recording a hypothetical
//!    mapping canonical → candidate; cycles end at an already-mapped pair.
//!    A FWD met on one side is equivalent to a struct/union of the same
//!    name and kind. On success every struct/union and FWD of the walked
//!    graph is merged at once.
//! 4. A FWD still unresolved is resolved to the struct/union of its name
//!    and kind when exactly one such canonical type exists.
//! 5. Reference types (PTR, TYPEDEF, modifiers, TYPE_TAG, ARRAY,
//!    FUNC_PROTO, FUNC, DECL_TAG) merge when identical after their
//!    referenced types are deduplicated, children first. Beyond libbpf,
//!    VAR and DATASEC are treated the same way, so identical variables and
//!    sections merge too.
//! 6. Compaction: representatives keep their relative order; every id is
//!    remapped.
//!
//! Everything is hash-based (no pairwise scans) and iterative (no
//! recursion on the input's depth).
//!
//! BTF.ext records: a caller remaps a `type_id` through [`Dedup::map`]
//! (or [`Dedup::type_id`]), and string offsets (line info file/line,
//! CO-RE access strings, section names) with [`Dedup::string`], which
//! re-adds the needed strings to the compacted table; [`Dedup::remap_sections`]
//! and [`Dedup::remap_btf_ext`] do both for whole sections, and
//! [`dedup_object`] does everything for an [`Object`] (also keeping the
//! section names `.BTF.ext` needs in the string table).
//!
//! Merging VARs means two DATASEC entries may name one VAR id (two
//! identical `static int x;` of different objects, say); the kernel
//! accepts that.

pub(crate) mod fxhash;

use crate::error::{Error, Result};
use crate::model::btf::{Btf, BtfType, Kind, StringTable, TypeData, TypeId};
use crate::model::btf_ext::BtfExt;
use crate::model::object::{Object, Section};
use fxhash::{map_with_capacity, FxHasher, FxMap};
use std::hash::Hasher;

/// Not yet processed / no value.
const NONE: u32 = u32::MAX;
/// Bound on map-chain walks (chains are short; this only guards bugs).
const MAX_CHAIN: usize = 1 << 20;
/// Work bound of one "identical types" comparison.
const IDENTICAL_BUDGET: usize = 4096;

/// The result of [`dedup`].
#[derive(Debug)]
pub struct Dedup {
    /// The deduplicated BTF: representatives only, strings compacted.
    pub btf: Btf,
    /// Old type id → new type id (`map[0]` is `VOID`).
    pub map: Vec<TypeId>,
    /// Interning table over `btf.strings`, built on the first
    /// [`Dedup::string`] call.
    strings: Option<StringTable>,
}

/// Deduplicates `btf`. The input is not modified.
pub fn dedup(btf: &Btf) -> Result<Dedup> {
    dedup_owned(btf.clone())
}

/// [`dedup`] consuming its input (saves a copy of every type).
pub fn dedup_owned(btf: Btf) -> Result<Dedup> {
    dedup_many(vec![btf])
}

/// Deduplicates the concatenation of `btfs` (as [`concat`] would make it,
/// without building it): [`Dedup::map`] is indexed by concatenated ids,
/// where type `i` of input `k` has id `i` plus the type counts (void
/// excluded) of the inputs before `k`. The output has the first input's
/// byte order. This is what `bpfld btf dedup` runs.
pub fn dedup_many(btfs: Vec<Btf>) -> Result<Dedup> {
    let mut d = Deduper::new(btfs)?;
    d.dedup_prims();
    d.dedup_structs()?;
    d.resolve_fwds()?;
    d.dedup_refs()?;
    d.compact()
}

/// Deduplicates an object's BTF in place and remaps the BTF.ext records
/// of its sections (func_info, line_info, CO-RE relocations), which the
/// ELF writer re-encodes. Returns the id map (old id → new id). An object
/// without BTF is left alone (empty map).
pub fn dedup_object(obj: &mut Object) -> Result<Vec<TypeId>> {
    let Some(old) = obj.btf.take() else {
        return Ok(Vec::new());
    };
    let result = dedup(&old).and_then(|mut d| {
        d.remap_sections(&old, &mut obj.sections)?;
        Ok(d)
    });
    match result {
        Ok(d) => {
            obj.btf = Some(d.btf);
            Ok(d.map)
        }
        Err(e) => {
            obj.btf = Some(old);
            Err(e.context("deduplicating BTF"))
        }
    }
}

/// Concatenates several BTFs into one (ids and string offsets shifted, no
/// deduplication; [`dedup`] does that, and [`dedup_many`] does both at
/// once). The result has the first input's byte order.
pub fn concat(btfs: Vec<Btf>) -> Result<Btf> {
    let endian = btfs
        .first()
        .map_or(crate::model::Endian::Little, |b| b.endian);
    let total: usize = btfs.iter().map(|b| b.types.len().saturating_sub(1)).sum();
    let strings_total: usize = btfs.iter().map(|b| b.strings.len() + 1).sum();
    let mut out = Btf::new(endian);
    let mut btfs = btfs.into_iter().peekable();
    // The first input's types need no shifting: start from them.
    if let Some(first) = btfs.next_if(|b| {
        b.types.first().is_some_and(|t| t.data == TypeData::Void)
            && b.strings.first() == Some(&0)
            && b.strings.last() == Some(&0)
    }) {
        let n = first.types.len() as u32;
        let slen = first.strings.len() as u32;
        for (i, t) in first.types.iter().enumerate().skip(1) {
            let bad_id = (0..nchildren(t))
                .filter_map(|k| child(t, k))
                .find(|&c| c >= n);
            let mut bad_str = None;
            for_each_name(t, |off| {
                if off >= slen {
                    bad_str = Some(off);
                }
            });
            let what = || format!("input 1: type [{i}] {}", t.kind().name());
            if let Some(id) = bad_id {
                return Err(Error::new(format!(
                    "{} refers to type {id} beyond the last type {}",
                    what(),
                    n - 1
                )));
            }
            if let Some(off) = bad_str {
                return Err(Error::new(format!(
                    "{}: string offset {off} beyond the string section of {slen} bytes",
                    what()
                )));
            }
        }
        out.types = first.types;
        out.strings = first.strings;
    }
    out.types
        .reserve(total + 1 - out.types.len().min(total + 1));
    out.strings
        .reserve(strings_total.saturating_sub(out.strings.len()));
    let skip = usize::from(out.types.len() > 1);
    for (n, b) in btfs.enumerate() {
        let n = n + skip;
        let id_base = out.types.len() as u32 - 1;
        let str_base = out.strings.len() as u32;
        out.strings.extend_from_slice(&b.strings);
        // A table not ending in NUL would let a string run into the next one.
        if b.strings.last() != Some(&0) {
            out.strings.push(0);
        }
        let ntypes = b.types.len() as u32;
        let slen = b.strings.len() as u32;
        for (i, mut t) in b.types.into_iter().enumerate().skip(1) {
            let mut bad_id = None;
            t.map_ids(|id| {
                if id.0 >= ntypes {
                    bad_id = Some(id);
                    id
                } else if id.0 == 0 {
                    id
                } else {
                    TypeId(id.0 + id_base)
                }
            });
            let mut bad_str = None;
            t.map_strings(|off| {
                if off == 0 {
                    // The empty name: our table's leading NUL serves.
                    0
                } else if off >= slen {
                    bad_str = Some(off);
                    0
                } else {
                    off + str_base
                }
            });
            let what = || format!("input {}: type [{i}] {}", n + 1, t.kind().name());
            if let Some(id) = bad_id {
                return Err(Error::new(format!(
                    "{} refers to type {id} beyond the last type {}",
                    what(),
                    ntypes - 1
                )));
            }
            if let Some(off) = bad_str {
                return Err(Error::new(format!(
                    "{}: string offset {off} beyond the string section of {slen} bytes",
                    what()
                )));
            }
            out.types.push(t);
        }
    }
    if out.strings.is_empty() {
        out.strings.push(0);
    }
    Ok(out)
}

impl Dedup {
    /// The new id of old type id `old` (for BTF.ext `type_id` fields).
    pub fn type_id(&self, old: u32) -> Result<u32> {
        self.map.get(old as usize).map(|t| t.0).ok_or_else(|| {
            Error::new(format!(
                "type id {old} beyond the last type {} of the deduplicated input",
                self.map.len().saturating_sub(1)
            ))
        })
    }

    /// The offset in the new string table of the string at offset `off`
    /// of `old`'s table (the BTF given to [`dedup`]; after [`dedup_many`],
    /// use [`Dedup::add_string`] with the input's bytes); the string is
    /// added when the compacted table does not hold it.
    pub fn string(&mut self, old: &Btf, off: u32) -> Result<u32> {
        let bytes = old.name_bytes(off)?;
        Ok(self.add_string(bytes))
    }

    /// The offset of `bytes` in the new string table, added when absent
    /// (e.g. the section names `.BTF.ext` refers to).
    pub fn add_string(&mut self, bytes: &[u8]) -> u32 {
        let btf = &self.btf;
        let table = self
            .strings
            .get_or_insert_with(|| StringTable::from_btf(btf));
        let new = table.add(bytes);
        if let Some(added) = table.bytes.get(self.btf.strings.len()..) {
            self.btf.strings.extend_from_slice(added);
        }
        new
    }

    /// Remaps the func_info, line_info and CO-RE records of `sections`
    /// (which referred to `old`, the BTF given to [`dedup`]) to the
    /// deduplicated BTF, and adds the names of the sections that have
    /// records to its string table (`.BTF.ext` names sections through
    /// it). On error the sections are unchanged.
    pub fn remap_sections(&mut self, old: &Btf, sections: &mut [Section]) -> Result<()> {
        let mut records = Vec::with_capacity(sections.len());
        for s in sections.iter() {
            let (mut f, mut l, mut c) = (
                s.func_info.clone(),
                s.line_info.clone(),
                s.core_relos.clone(),
            );
            self.remap_records(old, &mut f, &mut l, &mut c)
                .map_err(|e| e.in_section(&s.name))?;
            if !(f.is_empty() && l.is_empty() && c.is_empty()) {
                self.add_string(s.name.as_bytes());
            }
            records.push((f, l, c));
        }
        for (s, (f, l, c)) in sections.iter_mut().zip(records) {
            s.func_info = f;
            s.line_info = l;
            s.core_relos = c;
        }
        Ok(())
    }

    /// Remaps a whole `.BTF.ext` model (records and section names).
    pub fn remap_btf_ext(&mut self, old: &Btf, ext: &mut BtfExt) -> Result<()> {
        for s in &mut ext.func_info {
            s.sec_name_off = self.string(old, s.sec_name_off)?;
            self.remap_records(old, &mut s.records, &mut [], &mut [])
                .map_err(|e| e.in_section(&s.sec_name))?;
        }
        for s in &mut ext.line_info {
            s.sec_name_off = self.string(old, s.sec_name_off)?;
            self.remap_records(old, &mut [], &mut s.records, &mut [])
                .map_err(|e| e.in_section(&s.sec_name))?;
        }
        for s in &mut ext.core_relos {
            s.sec_name_off = self.string(old, s.sec_name_off)?;
            self.remap_records(old, &mut [], &mut [], &mut s.records)
                .map_err(|e| e.in_section(&s.sec_name))?;
        }
        Ok(())
    }

    fn remap_records(
        &mut self,
        old: &Btf,
        func_info: &mut [crate::model::btf_ext::FuncInfo],
        line_info: &mut [crate::model::btf_ext::LineInfo],
        core_relos: &mut [crate::model::btf_ext::CoreRelo],
    ) -> Result<()> {
        for f in func_info {
            f.type_id = self
                .type_id(f.type_id)
                .map_err(|e| e.context(format!("func_info at instruction {}", f.insn.0)))?;
        }
        for l in line_info {
            l.file_name_off = self.string(old, l.file_name_off)?;
            l.line_off = self.string(old, l.line_off)?;
        }
        for r in core_relos {
            r.type_id = self
                .type_id(r.type_id)
                .map_err(|e| e.context(format!("CO-RE relocation at instruction {}", r.insn.0)))?;
            r.access_str_off = self.string(old, r.access_str_off)?;
        }
        Ok(())
    }
}

/// Checks that `d` is a faithful deduplication of `old`: every old type
/// maps to a new one of the same shape (kind, name, sizes, member names,
/// offsets, values) whose referenced types are the images of the old
/// one's, except that a FWD (struct, union or enum) may map to the full
/// definition of its name. Used by tests and as a debugging aid.
pub fn verify(old: &Btf, d: &Dedup) -> Result<()> {
    let new = &d.btf;
    if d.map.len() != old.types.len() {
        return Err(Error::new(format!(
            "map has {} entries for {} types",
            d.map.len(),
            old.types.len()
        )));
    }
    if d.map.first() != Some(&TypeId::VOID) {
        return Err(Error::new("void does not map to void"));
    }
    for (i, t) in old.iter() {
        let nid = d.map[i.0 as usize];
        let fail = |why: &str| {
            Err(Error::new(format!(
                "old type {} maps to {}: {why}",
                old.describe(i),
                new.describe(nid)
            )))
        };
        let Some(n) = new.get(nid) else {
            return fail("no such new type");
        };
        if old.name_bytes(t.name_off)? != new.name_bytes(n.name_off)? {
            return fail("names differ");
        }
        let (ok, kind) = (t.kind(), n.kind());
        if ok == Kind::Fwd && (kind == Kind::Struct || kind == Kind::Union) {
            if t.kind_flag != (kind == Kind::Union) {
                return fail("FWD kind differs");
            }
            continue;
        }
        let enum_fwd = matches!(&t.data, TypeData::Enum { values, .. } if values.is_empty())
            || matches!(&t.data, TypeData::Enum64 { values, .. } if values.is_empty());
        if enum_fwd && ok == kind {
            if t.kind_flag != n.kind_flag || t.size_field() != n.size_field() {
                return fail("enum forward declaration differs");
            }
            continue;
        }
        if ok != kind {
            return fail("kinds differ");
        }
        let strs_eq =
            |a: u32, b: u32| -> Result<bool> { Ok(old.name_bytes(a)? == new.name_bytes(b)?) };
        if !shallow_eq_by(t, n, &strs_eq)? {
            return fail("shapes differ");
        }
        for k in 0..nchildren(t) {
            let (Some(oc), Some(nc)) = (child(t, k), child(n, k)) else {
                return fail("reference counts differ");
            };
            if d.map.get(oc as usize).map(|x| x.0) != Some(nc) {
                return fail(&format!(
                    "reference {k} is old {} (new {:?}) but new {}",
                    old.describe(TypeId(oc)),
                    d.map.get(oc as usize),
                    new.describe(TypeId(nc))
                ));
            }
        }
    }
    Ok(())
}

/// Index of the first NUL byte of `s`, eight bytes at a time (the string
/// table scan is a good part of the whole deduplication).
fn find_nul(s: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut chunks = s.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        let v = u64::from_le_bytes(b);
        let z = v.wrapping_sub(LO) & !v & HI;
        if z != 0 {
            return Some(base + (z.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == 0)
        .map(|i| base + i)
}

/// Calls `f` with every string offset `t` holds.
fn for_each_name(t: &BtfType, mut f: impl FnMut(u32)) {
    use TypeData as D;
    f(t.name_off);
    match &t.data {
        D::Struct { members, .. } | D::Union { members, .. } => {
            members.iter().for_each(|m| f(m.name_off))
        }
        D::Enum { values, .. } => values.iter().for_each(|v| f(v.name_off)),
        D::Enum64 { values, .. } => values.iter().for_each(|v| f(v.name_off)),
        D::FuncProto { params, .. } => params.iter().for_each(|p| f(p.name_off)),
        _ => {}
    }
}

/// Number of referenced ids of `t` (see [`child`]).
#[inline]
fn nchildren(t: &BtfType) -> usize {
    use TypeData as D;
    match &t.data {
        D::Array { .. } => 2,
        D::Struct { members, .. } | D::Union { members, .. } => members.len(),
        D::FuncProto { params, .. } => params.len() + 1,
        D::Datasec { vars, .. } => vars.len(),
        D::Ptr(_)
        | D::Typedef(_)
        | D::Volatile(_)
        | D::Const(_)
        | D::Restrict(_)
        | D::TypeTag(_)
        | D::Func { .. }
        | D::Var { .. }
        | D::DeclTag { .. } => 1,
        _ => 0,
    }
}

/// Referenced id number `k` of `t`, in encoding order.
#[inline]
fn child(t: &BtfType, k: usize) -> Option<u32> {
    use TypeData as D;
    Some(match &t.data {
        D::Array { elem, index, .. } => match k {
            0 => elem.0,
            1 => index.0,
            _ => return None,
        },
        D::Struct { members, .. } | D::Union { members, .. } => members.get(k)?.type_id.0,
        D::FuncProto { ret, params } => {
            if k == 0 {
                ret.0
            } else {
                params.get(k - 1)?.type_id.0
            }
        }
        D::Datasec { vars, .. } => vars.get(k)?.type_id.0,
        _ if k == 0 => t.ref_type()?.0,
        _ => return None,
    })
}

/// Whether `a` and `b` agree on everything but their referenced ids;
/// `str_eq` compares two name offsets.
fn shallow_eq_by(
    a: &BtfType,
    b: &BtfType,
    str_eq: &dyn Fn(u32, u32) -> Result<bool>,
) -> Result<bool> {
    use TypeData as D;
    if a.kind_flag != b.kind_flag || !str_eq(a.name_off, b.name_off)? {
        return Ok(false);
    }
    Ok(match (&a.data, &b.data) {
        (D::Void, D::Void)
        | (D::Fwd, D::Fwd)
        | (D::Ptr(_), D::Ptr(_))
        | (D::Typedef(_), D::Typedef(_))
        | (D::Volatile(_), D::Volatile(_))
        | (D::Const(_), D::Const(_))
        | (D::Restrict(_), D::Restrict(_))
        | (D::TypeTag(_), D::TypeTag(_)) => true,
        (D::Int { size: s1, data: d1 }, D::Int { size: s2, data: d2 }) => s1 == s2 && d1 == d2,
        (D::Float { size: s1 }, D::Float { size: s2 }) => s1 == s2,
        (D::Func { linkage: l1, .. }, D::Func { linkage: l2, .. }) => l1 == l2,
        (D::Array { nelems: n1, .. }, D::Array { nelems: n2, .. }) => n1 == n2,
        (D::Var { linkage: l1, .. }, D::Var { linkage: l2, .. }) => l1 == l2,
        (
            D::DeclTag {
                component_idx: c1, ..
            },
            D::DeclTag {
                component_idx: c2, ..
            },
        ) => c1 == c2,
        (
            D::Struct {
                size: s1,
                members: m1,
            },
            D::Struct {
                size: s2,
                members: m2,
            },
        )
        | (
            D::Union {
                size: s1,
                members: m1,
            },
            D::Union {
                size: s2,
                members: m2,
            },
        ) => s1 == s2 && same_named(m1, m2, |m| (m.name_off, u64::from(m.offset)), str_eq)?,
        (
            D::Enum {
                size: s1,
                values: v1,
            },
            D::Enum {
                size: s2,
                values: v2,
            },
        ) => s1 == s2 && same_named(v1, v2, |v| (v.name_off, u64::from(v.val)), str_eq)?,
        (
            D::Enum64 {
                size: s1,
                values: v1,
            },
            D::Enum64 {
                size: s2,
                values: v2,
            },
        ) => s1 == s2 && same_named(v1, v2, |v| (v.name_off, v.val), str_eq)?,
        (D::FuncProto { params: p1, .. }, D::FuncProto { params: p2, .. }) => {
            same_named(p1, p2, |p| (p.name_off, 0), str_eq)?
        }
        (D::Datasec { size: s1, vars: v1 }, D::Datasec { size: s2, vars: v2 }) => {
            s1 == s2
                && v1.len() == v2.len()
                && v1
                    .iter()
                    .zip(v2)
                    .all(|(x, y)| x.offset == y.offset && x.size == y.size)
        }
        _ => false,
    })
}

/// Whether two lists have the same length and, pairwise, the same value
/// and name (`part` gives an element's name offset and value).
fn same_named<T>(
    a: &[T],
    b: &[T],
    part: impl Fn(&T) -> (u32, u64),
    str_eq: &dyn Fn(u32, u32) -> Result<bool>,
) -> Result<bool> {
    if a.len() != b.len() {
        return Ok(false);
    }
    for (x, y) in a.iter().zip(b) {
        let ((nx, vx), (ny, vy)) = (part(x), part(y));
        if vx != vy || !str_eq(nx, ny)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// [`shallow_eq_by`] for types of one BTF whose names are string ids.
#[inline]
fn shallow_eq(a: &BtfType, b: &BtfType) -> bool {
    shallow_eq_by(a, b, &|x, y| Ok(x == y)).unwrap_or(false)
}

/// Hash of everything [`shallow_eq`] compares.
fn shallow_hash(t: &BtfType, h: &mut FxHasher) {
    use TypeData as D;
    h.write_u8(t.kind() as u8);
    h.write_u8(t.kind_flag as u8);
    h.write_u32(t.name_off);
    match &t.data {
        D::Int { size, data } => {
            h.write_u32(*size);
            h.write_u32(*data);
        }
        D::Float { size } => h.write_u32(*size),
        D::Func { linkage, .. } => h.write_u32(*linkage as u32),
        D::Array { nelems, .. } => h.write_u32(*nelems),
        D::Var { linkage, .. } => h.write_u32(*linkage),
        D::DeclTag { component_idx, .. } => h.write_u32(*component_idx as u32),
        D::Struct { size, members } | D::Union { size, members } => {
            h.write_u32(*size);
            h.write_usize(members.len());
            for m in members {
                h.write_u32(m.name_off);
                h.write_u32(m.offset);
            }
        }
        D::Enum { size, values } => {
            h.write_u32(*size);
            for v in values {
                h.write_u32(v.name_off);
                h.write_u32(v.val);
            }
        }
        D::Enum64 { size, values } => {
            h.write_u32(*size);
            for v in values {
                h.write_u32(v.name_off);
                h.write_u64(v.val);
            }
        }
        D::FuncProto { params, .. } => {
            h.write_usize(params.len());
            for p in params {
                h.write_u32(p.name_off);
            }
        }
        D::Datasec { size, vars } => {
            h.write_u32(*size);
            for v in vars {
                h.write_u32(v.offset);
                h.write_u32(v.size);
            }
        }
        _ => {}
    }
}

fn is_enum_fwd(t: &BtfType) -> bool {
    match &t.data {
        TypeData::Enum { values, .. } => values.is_empty(),
        TypeData::Enum64 { values, .. } => values.is_empty(),
        _ => false,
    }
}

fn is_prim(k: Kind) -> bool {
    matches!(
        k,
        Kind::Int | Kind::Float | Kind::Enum | Kind::Enum64 | Kind::Fwd
    )
}

fn is_composite(k: Kind) -> bool {
    matches!(k, Kind::Struct | Kind::Union)
}

/// 64-bit hash → 32 bits with the high bits mixed into the low ones
/// (table indexes use the low ones).
fn mix(v: u64) -> u32 {
    ((v ^ (v >> 31)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as u32
}

/// Representatives by hash: open addressing over 4-byte type ids, each
/// id's hash kept beside it. Among equal hashes probing meets the ids in
/// insertion order, so the first representative found is the oldest.
/// Sized once for all the ids it may receive: it never fills up.
struct IdTable {
    slots: Vec<u32>,
    /// Type id → hash, for the ids inserted.
    hashes: Vec<u32>,
}

impl IdTable {
    fn new(n_types: usize, expected: usize) -> Self {
        IdTable {
            slots: vec![NONE; (2 * expected + 2).next_power_of_two().max(16)],
            hashes: vec![0; n_types],
        }
    }
    fn start(&self, h: u32) -> usize {
        h as usize & (self.slots.len() - 1)
    }
    fn next(&self, pos: usize) -> usize {
        (pos + 1) & (self.slots.len() - 1)
    }
    /// The id at `pos` (NONE when empty) and whether its hash is `h`.
    fn at(&self, pos: usize, h: u32) -> (u32, bool) {
        let id = self.slots.get(pos).copied().unwrap_or(NONE);
        (id, self.hashes.get(id as usize) == Some(&h))
    }
    fn insert(&mut self, pos: usize, id: u32, h: u32) {
        if let Some(slot) = self.slots.get_mut(pos) {
            *slot = id;
        }
        if let Some(slot) = self.hashes.get_mut(id as usize) {
            *slot = h;
        }
    }
}

struct Deduper {
    /// The inputs (their types moved to `types`; their string tables
    /// still here, `strs` points into them).
    inputs: Vec<Btf>,
    /// The inputs' types, concatenated, with ids shifted and names
    /// replaced by string ids.
    types: Vec<BtfType>,
    /// String id → (input, offset, length).
    strs: Vec<(u32, u32, u32)>,
    /// Type id → representative (possibly through a chain), or NONE when
    /// not processed yet.
    map: Vec<u32>,
    /// Canonical id → candidate id during one equivalence check.
    hypot: Vec<u32>,
    hypot_list: Vec<u32>,
}

/// Interns byte strings of the inputs' string tables as dense string ids.
/// An open-addressing table of 4-byte ids, with each id's hash kept beside
/// it: a quarter of the memory of a map keyed by slices, and the table
/// scan is a good part of the whole deduplication.
struct Interner<'a> {
    tables: Vec<&'a [u8]>,
    /// String id → (input, offset, length).
    strs: Vec<(u32, u32, u32)>,
    /// String id → hash.
    hashes: Vec<u32>,
    /// Ids by hash; NONE is an empty slot.
    slots: Vec<u32>,
}

impl<'a> Interner<'a> {
    /// With id 0 the empty string.
    fn new(tables: Vec<&'a [u8]>, expected: usize) -> Self {
        let mut i = Interner {
            tables,
            strs: Vec::with_capacity(expected + 1),
            hashes: Vec::with_capacity(expected + 1),
            slots: vec![NONE; (2 * expected + 2).next_power_of_two().max(16)],
        };
        i.intern(0, 0, &[]);
        i
    }

    fn hash(s: &[u8]) -> u32 {
        let mut h = FxHasher::default();
        h.write(s);
        let v = h.finish();
        // Mix the high bits down: the index uses the low ones.
        ((v ^ (v >> 31)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as u32
    }

    fn bytes(&self, sid: u32) -> &'a [u8] {
        self.strs
            .get(sid as usize)
            .and_then(|&(k, o, l)| {
                self.tables
                    .get(k as usize)?
                    .get(o as usize..(o + l) as usize)
            })
            .unwrap_or_default()
    }

    /// The id of `s`, which is at `off` in input `k`'s table.
    fn intern(&mut self, k: u32, off: u32, s: &'a [u8]) -> u32 {
        if (self.strs.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let h = Self::hash(s);
        let mask = self.slots.len() - 1;
        let mut i = h as usize & mask;
        loop {
            let id = self.slots[i];
            if id == NONE {
                let id = self.strs.len() as u32;
                self.slots[i] = id;
                self.strs.push((k, off, s.len() as u32));
                self.hashes.push(h);
                return id;
            }
            if self.hashes.get(id as usize) == Some(&h) && self.bytes(id) == s {
                return id;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let size = self.slots.len() * 2;
        self.slots = vec![NONE; size];
        let mask = size - 1;
        for (id, &h) in self.hashes.iter().enumerate() {
            let mut i = h as usize & mask;
            while self.slots[i] != NONE {
                i = (i + 1) & mask;
            }
            self.slots[i] = id as u32;
        }
    }
}

/// Start-of-string lookup for one string table: every string of the table
/// is interned once, in a table scan; names (nearly always string starts)
/// then find their string id through a start bitmap with ranks, without
/// hashing. Offsets inside a string (suffixes) take a hashed slow path.
struct StartIndex {
    starts: Vec<u64>,
    rank: Vec<u32>,
    sids: Vec<u32>,
}

impl StartIndex {
    fn build<'a>(
        input: u32,
        strings: &'a [u8],
        interner: &mut Interner<'a>,
        reuse: StartIndex,
    ) -> StartIndex {
        let StartIndex {
            mut starts,
            mut rank,
            mut sids,
        } = reuse;
        let words = strings.len() / 64 + 1;
        starts.clear();
        starts.resize(words, 0);
        sids.clear();
        let mut pos = 0usize;
        while let Some(len) = strings.get(pos..).and_then(find_nul) {
            let bytes = &strings[pos..pos + len];
            let sid = interner.intern(input, pos as u32, bytes);
            starts[pos / 64] |= 1 << (pos % 64);
            sids.push(sid);
            pos += len + 1;
        }
        rank.clear();
        let mut acc = 0u32;
        for w in &starts {
            rank.push(acc);
            acc += w.count_ones();
        }
        StartIndex { starts, rank, sids }
    }

    #[inline]
    fn get(&self, off: u32) -> Option<u32> {
        let o = off as usize;
        let (w, r) = (self.starts.get(o / 64)?, self.rank.get(o / 64)?);
        let bit = 1u64 << (o % 64);
        if w & bit == 0 {
            return None;
        }
        self.sids
            .get((*r + (w & (bit - 1)).count_ones()) as usize)
            .copied()
    }
}

impl Deduper {
    /// Takes the inputs' types into one id space (input k's id i becomes
    /// the sum of the earlier inputs' type counts, void excluded, plus i)
    /// with names as string ids, checking every id and name offset.
    fn new(mut inputs: Vec<Btf>) -> Result<Self> {
        let n = 1 + inputs
            .iter()
            .map(|b| b.types.len().saturating_sub(1))
            .sum::<usize>();
        if n > (NONE as usize) / 2 {
            return Err(Error::new(format!("BTF with {n} type slots")));
        }
        let many = inputs.len() > 1;
        let mut tables: Vec<Vec<BtfType>> = inputs
            .iter_mut()
            .map(|b| std::mem::take(&mut b.types))
            .collect();
        // The first input's vector grows in place to hold them all.
        let mut types = match tables.first_mut() {
            Some(first) if !first.is_empty() => std::mem::take(first),
            _ => vec![BtfType::new(0, false, TypeData::Void)],
        };
        types.reserve(n.saturating_sub(types.len()));
        let strs;
        {
            let total_strings: usize = inputs.iter().map(|b| b.strings.len()).sum();
            let mut interner = Interner::new(
                inputs.iter().map(|b| &b.strings[..]).collect(),
                total_strings / 40,
            );
            let mut index = StartIndex {
                starts: Vec::new(),
                rank: Vec::new(),
                sids: Vec::new(),
            };
            let mut base = 0u32;
            for (k, b) in inputs.iter().enumerate() {
                let strings = &b.strings[..];
                index = StartIndex::build(k as u32, strings, &mut interner, index);
                let mut by_off: FxMap<u32, u32> = map_with_capacity(0);
                let own = if k == 0 {
                    types.len() as u32
                } else {
                    tables.get(k).map_or(0, |t| t.len() as u32)
                };
                let mut fix = |i: usize, t: &mut BtfType| -> Result<()> {
                    let mut bad_id = None;
                    t.map_ids(|id| {
                        if id.0 >= own {
                            bad_id = Some(id);
                            id
                        } else if id.0 == 0 {
                            id
                        } else {
                            TypeId(id.0 + base)
                        }
                    });
                    let mut bad_str = None;
                    t.map_strings(|off| {
                        if off == 0 {
                            return 0;
                        }
                        if let Some(sid) = index.get(off) {
                            return sid;
                        }
                        if let Some(&sid) = by_off.get(&off) {
                            return sid;
                        }
                        let bytes = strings
                            .get(off as usize..)
                            .and_then(|rest| find_nul(rest).map(|e| &rest[..e]));
                        match bytes {
                            Some(bytes) => {
                                let sid = interner.intern(k as u32, off, bytes);
                                by_off.insert(off, sid);
                                sid
                            }
                            None => {
                                bad_str = Some(off);
                                0
                            }
                        }
                    });
                    let what = || {
                        let input = if many {
                            format!("input {}: ", k + 1)
                        } else {
                            String::new()
                        };
                        format!("{input}type [{i}] {}", t.kind().name())
                    };
                    if let Some(id) = bad_id {
                        return Err(Error::new(format!(
                            "{} refers to type {id} beyond the last type {}",
                            what(),
                            own.saturating_sub(1)
                        )));
                    }
                    if let Some(off) = bad_str {
                        return Err(Error::new(format!(
                            "{}: string offset {off} is outside the string section or not NUL-terminated",
                            what()
                        )));
                    }
                    Ok(())
                };
                if k == 0 {
                    for (i, t) in types.iter_mut().enumerate().skip(1) {
                        fix(i, t)?;
                    }
                } else if let Some(table) = tables.get_mut(k) {
                    for (i, mut t) in std::mem::take(table).into_iter().enumerate().skip(1) {
                        fix(i, &mut t)?;
                        types.push(t);
                    }
                }
                base += own.saturating_sub(1);
            }
            strs = interner.strs;
        }
        let mut map = vec![NONE; n];
        map[0] = 0;
        Ok(Deduper {
            inputs,
            types,
            strs,
            map,
            hypot: vec![NONE; n],
            hypot_list: Vec::new(),
        })
    }

    fn str_bytes(&self, sid: u32) -> &[u8] {
        self.strs
            .get(sid as usize)
            .and_then(|&(k, o, l)| {
                self.inputs
                    .get(k as usize)?
                    .strings
                    .get(o as usize..(o + l) as usize)
            })
            .unwrap_or_default()
    }

    fn describe(&self, id: u32) -> String {
        let t = self.ty(id);
        let name = String::from_utf8_lossy(self.str_bytes(t.name_off));
        let name = if name.is_empty() {
            "(anon)".into()
        } else {
            name
        };
        format!("[{id}] {} '{name}'", t.kind().name())
    }

    fn ty(&self, id: u32) -> &BtfType {
        // Ids were validated in `new`; void stands in for the impossible.
        self.types.get(id as usize).unwrap_or(&self.types[0])
    }

    fn kind(&self, id: u32) -> Kind {
        self.ty(id).kind()
    }

    /// The current representative of `id` (itself when unprocessed).
    #[inline]
    fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..MAX_CHAIN {
            match self.map.get(id as usize) {
                Some(&m) if m != NONE && m != id => id = m,
                _ => return id,
            }
        }
        id
    }

    fn processed(&self, id: u32) -> bool {
        self.map.get(id as usize).is_some_and(|&m| m != NONE)
    }

    fn set(&mut self, id: u32, to: u32) {
        if let Some(slot) = self.map.get_mut(id as usize) {
            *slot = to;
        }
    }

    fn dedup_prims(&mut self) {
        let n = self.types.len();
        let mut seen: FxMap<&BtfType, u32> = map_with_capacity(n / 8);
        // First full enum per (kind, signedness, name, size).
        let mut enums: FxMap<(u8, bool, u32, u32), u32> = map_with_capacity(n / 16);
        let mut fwd_enums = Vec::new();
        for (i, t) in self.types.iter().enumerate().skip(1) {
            if !is_prim(t.kind()) {
                continue;
            }
            let rep = *seen.entry(t).or_insert(i as u32);
            self.map[i] = rep;
            if rep == i as u32 {
                if is_enum_fwd(t) {
                    if t.name_off != 0 {
                        fwd_enums.push(i);
                    }
                } else if let Some(size) = t.size_field() {
                    if matches!(t.kind(), Kind::Enum | Kind::Enum64) {
                        enums
                            .entry((t.kind() as u8, t.kind_flag, t.name_off, size))
                            .or_insert(i as u32);
                    }
                }
            }
        }
        for i in fwd_enums {
            let t = &self.types[i];
            if let Some(size) = t.size_field() {
                if let Some(&full) = enums.get(&(t.kind() as u8, t.kind_flag, t.name_off, size)) {
                    self.map[i] = full;
                }
            }
        }
    }

    fn dedup_structs(&mut self) -> Result<()> {
        let n = self.types.len();
        let count = self.types.iter().filter(|t| is_composite(t.kind())).count();
        let mut table = IdTable::new(n, count);
        for i in 1..n as u32 {
            if !is_composite(self.kind(i)) || self.processed(i) {
                continue;
            }
            let h = mix(self.struct_hash(i));
            let mut pos = table.start(h);
            let mut found = false;
            loop {
                let (cand, same) = table.at(pos, h);
                if cand == NONE {
                    break;
                }
                if same {
                    if self.equiv(i, cand)? {
                        self.merge_hypot();
                        found = true;
                    }
                    self.clear_hypot();
                    if found {
                        break;
                    }
                }
                pos = table.next(pos);
            }
            if !found {
                self.set(i, i);
                table.insert(pos, i, h);
            } else if !self.processed(i) {
                // Equivalent to a canonical one that merge did not map
                // (cannot happen: the root pair always merges).
                self.set(i, i);
            }
        }
        Ok(())
    }

    /// Hash of a struct/union: its shallow layout plus a summary of each
    /// member's type that equivalent graphs share (kind and name; a FWD
    /// and the struct/union it declares summarise alike; deduplicated
    /// INT/FLOAT by id). Without the summaries, the many anonymous unions
    /// of one layout would all share one bucket.
    fn struct_hash(&self, id: u32) -> u64 {
        let t = self.ty(id);
        let mut h = FxHasher::default();
        shallow_hash(t, &mut h);
        for j in 0..nchildren(t) {
            let Some(c) = child(t, j) else { continue };
            let c = self.resolve(c);
            let ct = self.ty(c);
            match ct.kind() {
                Kind::Int | Kind::Float => h.write_u32(c),
                Kind::Struct | Kind::Union | Kind::Fwd => {
                    h.write_u8(0xff);
                    h.write_u32(ct.name_off);
                }
                Kind::Array => {
                    h.write_u8(Kind::Array as u8);
                    h.write_u32(match &ct.data {
                        TypeData::Array { nelems, .. } => *nelems,
                        _ => 0,
                    });
                }
                k => {
                    h.write_u8(k as u8);
                    h.write_u32(ct.name_off);
                }
            }
        }
        h.finish()
    }

    fn clear_hypot(&mut self) {
        for &k in &self.hypot_list {
            if let Some(slot) = self.hypot.get_mut(k as usize) {
                *slot = NONE;
            }
        }
        self.hypot_list.clear();
    }

    /// Whether the graph under candidate `cand` is equivalent to the one
    /// under canonical `canon`, filling the hypothetical map.
    fn equiv(&mut self, cand: u32, canon: u32) -> Result<bool> {
        let mut stack: Vec<(u32, u32)> = vec![(cand, canon)];
        while let Some((c, k)) = stack.pop() {
            let c = self.resolve(c);
            let k = self.resolve(k);
            if c == k {
                continue;
            }
            let h = self.hypot.get(k as usize).copied().unwrap_or(NONE);
            if h != NONE {
                if h == c || self.identical(h, c) {
                    continue;
                }
                return Ok(false);
            }
            self.hypot[k as usize] = c;
            self.hypot_list.push(k);
            let (ct, kt) = (self.ty(c), self.ty(k));
            if ct.name_off != kt.name_off {
                return Ok(false);
            }
            let (ck, kk) = (ct.kind(), kt.kind());
            if ck != kk && (ck == Kind::Fwd || kk == Kind::Fwd) {
                let (fwd, real) = if ck == Kind::Fwd { (ct, kk) } else { (kt, ck) };
                let fwd_kind = if fwd.kind_flag {
                    Kind::Union
                } else {
                    Kind::Struct
                };
                if fwd_kind != real {
                    return Ok(false);
                }
                continue;
            }
            if ck != kk {
                return Ok(false);
            }
            match ck {
                Kind::Int | Kind::Float | Kind::Fwd => {
                    if ct != kt {
                        return Ok(false);
                    }
                }
                Kind::Enum | Kind::Enum64 => {
                    let ok = if is_enum_fwd(ct) || is_enum_fwd(kt) {
                        ct.kind_flag == kt.kind_flag && ct.size_field() == kt.size_field()
                    } else {
                        ct == kt
                    };
                    if !ok {
                        return Ok(false);
                    }
                }
                Kind::Ptr
                | Kind::Typedef
                | Kind::Volatile
                | Kind::Const
                | Kind::Restrict
                | Kind::TypeTag
                | Kind::Func
                | Kind::Array
                | Kind::Struct
                | Kind::Union
                | Kind::FuncProto
                // Not reachable from a struct in valid BTF, but compared
                // the same way when a model has them there.
                | Kind::Var
                | Kind::Datasec
                | Kind::DeclTag
                | Kind::Void => {
                    if !shallow_eq(ct, kt) {
                        return Ok(false);
                    }
                    let m = nchildren(ct);
                    for j in (0..m).rev() {
                        if let (Some(a), Some(b)) = (child(ct, j), child(kt, j)) {
                            stack.push((a, b));
                        }
                    }
                }
            }
        }
        Ok(true)
    }

    /// Whether `a` and `b` (both candidate-side, met against the same
    /// canonical type) are identical type trees: compilers emit duplicate
    /// definitions of e.g. the same array type, not merged yet here.
    fn identical(&self, a: u32, b: u32) -> bool {
        let mut budget = IDENTICAL_BUDGET;
        let mut stack = vec![(a, b)];
        // Pairs already assumed identical: cycles (a struct reaching
        // itself) compare as identical when nothing else differs.
        let mut seen: std::collections::HashSet<(u32, u32), _> =
            std::collections::HashSet::with_hasher(
                std::hash::BuildHasherDefault::<FxHasher>::default(),
            );
        while let Some((a, b)) = stack.pop() {
            let (a, b) = (self.resolve(a), self.resolve(b));
            if a == b || !seen.insert((a, b)) {
                continue;
            }
            if budget == 0 {
                return false;
            }
            budget -= 1;
            let (ta, tb) = (self.ty(a), self.ty(b));
            if ta.kind() != tb.kind() || !shallow_eq(ta, tb) {
                return false;
            }
            for j in 0..nchildren(ta) {
                match (child(ta, j), child(tb, j)) {
                    (Some(x), Some(y)) => stack.push((x, y)),
                    _ => return false,
                }
            }
        }
        true
    }

    fn merge_hypot(&mut self) {
        for idx in 0..self.hypot_list.len() {
            let k = self.hypot_list[idx];
            let c = self.hypot.get(k as usize).copied().unwrap_or(NONE);
            if c == NONE {
                continue;
            }
            let t = self.resolve(c);
            let k = self.resolve(k);
            if t == k {
                continue;
            }
            let (tk, kk) = (self.kind(t), self.kind(k));
            if tk != Kind::Fwd && kk == Kind::Fwd {
                // A declaration on the canonical side: the definition wins.
                self.set(k, t);
            } else if (tk == Kind::Fwd && kk != Kind::Fwd)
                || (is_composite(tk) && tk == kk && self.processed(k) && !self.processed(t))
            {
                // A candidate-side declaration, or a candidate struct/union
                // not processed yet whose canonical twin is: map it now.
                self.set(t, k);
            }
        }
    }

    fn resolve_fwds(&mut self) -> Result<()> {
        const AMBIGUOUS: u32 = NONE;
        let n = self.types.len();
        let mut by_name: FxMap<u32, u32> = map_with_capacity(n / 4);
        for i in 1..n as u32 {
            let t = self.ty(i);
            if is_composite(t.kind()) && t.name_off != 0 && self.resolve(i) == i {
                by_name
                    .entry(t.name_off)
                    .and_modify(|e| {
                        if *e != i {
                            *e = AMBIGUOUS
                        }
                    })
                    .or_insert(i);
            }
        }
        for i in 1..n as u32 {
            let t = self.ty(i);
            if t.kind() != Kind::Fwd || self.resolve(i) != i {
                continue;
            }
            let want = if t.kind_flag {
                Kind::Union
            } else {
                Kind::Struct
            };
            if let Some(&s) = by_name.get(&t.name_off) {
                if s != AMBIGUOUS && self.kind(s) == want {
                    self.set(i, s);
                }
            }
        }
        Ok(())
    }

    fn ref_hash(&self, id: u32) -> u64 {
        let t = self.ty(id);
        let mut h = FxHasher::default();
        shallow_hash(t, &mut h);
        for j in 0..nchildren(t) {
            h.write_u32(child(t, j).map(|c| self.resolve(c)).unwrap_or(NONE));
        }
        h.finish()
    }

    fn ref_eq(&self, a: u32, b: u32) -> bool {
        let (ta, tb) = (self.ty(a), self.ty(b));
        if ta.kind() != tb.kind() || !shallow_eq(ta, tb) {
            return false;
        }
        (0..nchildren(ta)).all(|j| match (child(ta, j), child(tb, j)) {
            (Some(x), Some(y)) => self.resolve(x) == self.resolve(y),
            _ => false,
        })
    }

    fn dedup_refs(&mut self) -> Result<()> {
        let n = self.types.len();
        let count = (1..n as u32).filter(|&i| !self.processed(i)).count();
        let mut table = IdTable::new(n, count);
        let mut in_progress = vec![false; n];
        let mut stack: Vec<u32> = Vec::new();
        for root in 1..n as u32 {
            if self.processed(root) {
                continue;
            }
            stack.push(root);
            while let Some(&x) = stack.last() {
                if self.processed(x) {
                    stack.pop();
                    continue;
                }
                let t = self.ty(x);
                let mut pending = false;
                for j in 0..nchildren(t) {
                    let Some(c) = child(t, j) else { continue };
                    let r = self.resolve(c);
                    if !self.processed(r) {
                        if in_progress[r as usize] {
                            return Err(Error::new(format!(
                                "type {} is part of a reference cycle through {}",
                                self.describe(x),
                                self.describe(r)
                            )));
                        }
                        stack.push(r);
                        pending = true;
                    }
                }
                if pending {
                    in_progress[x as usize] = true;
                    continue;
                }
                let h = mix(self.ref_hash(x));
                let mut pos = table.start(h);
                let mut rep = NONE;
                loop {
                    let (cand, same) = table.at(pos, h);
                    if cand == NONE {
                        break;
                    }
                    if same && self.ref_eq(x, cand) {
                        rep = cand;
                        break;
                    }
                    pos = table.next(pos);
                }
                if rep == NONE {
                    table.insert(pos, x, h);
                    rep = x;
                }
                self.set(x, rep);
                in_progress[x as usize] = false;
                stack.pop();
            }
        }
        Ok(())
    }

    fn compact(self) -> Result<Dedup> {
        let n = self.types.len();
        let mut newid = vec![NONE; n];
        newid[0] = 0;
        let mut next = 1u32;
        for i in 1..n as u32 {
            if self.resolve(i) == i {
                newid[i as usize] = next;
                next += 1;
            }
        }
        let map: Vec<TypeId> = (0..n as u32)
            .map(|i| TypeId(newid[self.resolve(i) as usize]))
            .collect();
        if let Some(bad) = map.iter().position(|t| t.0 == NONE) {
            return Err(Error::new(format!(
                "internal: type {} left without a representative",
                self.describe(bad as u32)
            )));
        }
        let endian = self
            .inputs
            .first()
            .map_or(crate::model::Endian::Little, |b| b.endian);
        let mut out = Btf::new(endian);
        let total: usize = self.strs.iter().map(|s| s.2 as usize + 1).sum();
        out.strings = Vec::with_capacity(total + 1);
        out.strings.push(0);
        let mut str_off = vec![NONE; self.strs.len()];
        str_off[0] = 0;
        let (inputs, strs) = (&self.inputs, &self.strs);
        // Compacted in place: representatives keep their order.
        let mut types = self.types;
        let mut i = 0usize;
        types.retain_mut(|t| {
            i += 1;
            let id = i - 1;
            if id == 0 {
                *t = BtfType::new(0, false, TypeData::Void);
                return true;
            }
            if newid[id] == NONE {
                return false;
            }
            t.map_ids(|id| map[id.0 as usize]);
            t.map_strings(|sid| {
                let slot = &mut str_off[sid as usize];
                if *slot == NONE {
                    *slot = out.strings.len() as u32;
                    let bytes = strs.get(sid as usize).and_then(|&(k, o, l)| {
                        inputs
                            .get(k as usize)?
                            .strings
                            .get(o as usize..(o + l) as usize)
                    });
                    out.strings.extend_from_slice(bytes.unwrap_or_default());
                    out.strings.push(0);
                }
                *slot
            });
            true
        });
        types.shrink_to_fit();
        out.types = types;
        Ok(Dedup {
            btf: out,
            map,
            strings: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::find_nul;

    #[test]
    fn find_nul_finds_the_first_nul_anywhere() {
        for len in 0..40 {
            for at in 0..=len {
                let mut v = vec![0x80u8; len];
                // Bytes that trip naive zero-byte tricks around the NUL.
                for (i, b) in v.iter_mut().enumerate() {
                    *b = [0x01, 0x80, 0xff, 0x7f][i % 4];
                }
                if at < len {
                    v[at] = 0;
                    if at + 1 < len {
                        v[at + 1] = 0;
                    }
                }
                let want = v.iter().position(|&b| b == 0);
                assert_eq!(find_nul(&v), want, "len {len} at {at}");
            }
        }
    }
}
