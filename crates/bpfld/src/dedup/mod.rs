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
//! accepts that. The linker does not want it ([`dedup_linked`]): there,
//! identical static VARs of two inputs are two variables.
//!
//! The passes live one per file and run in this order from [`dedup_many`]:
//! `state` (inputs into one id space; names interned by `strings`),
//! `prims`, `structs`, `fwds`, `refs`, `compact`. `shape` holds the
//! shallow comparison and hashing they share, `table` the hash table of
//! representatives; `remap` rewrites BTF.ext records and objects through
//! the result, `concat` and `verify` stand beside the passes.

mod compact;
mod concat;
mod fwds;
mod prims;
mod refs;
mod remap;
mod shape;
mod state;
mod strings;
mod structs;
mod table;
mod verify;

/// Re-exported for the linker, which hashes with it too.
pub(crate) use crate::util::fxhash;

pub use concat::concat;
pub use verify::verify;

use crate::error::Result;
use crate::model::btf::{Btf, StringTable, TypeData, TypeId};
use crate::model::object::Object;
use state::Deduper;

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

impl Dedup {
    /// The deduplicated BTF as bytes (header, types, strings), as `bpfld
    /// btf dedup` writes it.
    ///
    /// Deduplication only keeps or drops types and remaps ids within the
    /// output, so when its inputs were valid BTF (read by [`Btf::parse`]
    /// or from an [`Object`]) so is the result, and only what merging can
    /// break is checked: BTF's 16-bit count of members or entries. For
    /// inputs built in memory, [`Btf::to_bytes`] on [`Dedup::btf`] checks
    /// everything (at the cost of a pass over all types).
    ///
    /// ```
    /// use bpfld::{dedup::dedup, Btf, Object};
    ///
    /// let obj = Object::parse(include_bytes!("../../../../fixtures/xdp_pass.o"))?;
    /// let d = dedup(obj.btf.as_ref().expect("clang writes BTF"))?;
    /// let again = Btf::parse(&d.to_bytes()?)?;
    /// assert_eq!(again.type_count(), d.btf.type_count());
    /// # Ok::<(), bpfld::Error>(())
    /// ```
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        if let Some((id, t)) = self
            .btf
            .iter()
            .find(|(_, t)| !matches!(t.data, TypeData::Func { .. }) && t.vlen() > 0xffff)
        {
            crate::bail!(
                "type {}: {} entries do not fit BTF's 16-bit vlen",
                self.btf.describe(id),
                t.vlen()
            );
        }
        Ok(crate::write::btf::to_bytes(&self.btf))
    }
}

/// Deduplicates `btf`. The input is not modified.
///
/// ```
/// use bpfld::dedup::{concat, dedup};
/// use bpfld::Object;
///
/// let btf = |bytes: &[u8]| Object::parse(bytes).map(|o| o.btf.expect("has BTF"));
/// let a = btf(include_bytes!("../../../../fixtures/comp_count.o"))?;
/// let b = btf(include_bytes!("../../../../fixtures/comp_mark.o"))?;
/// // Both declare `struct xdp_md`, `__u32`, `__u64`, ...: merged, each is
/// // one type again.
/// let both = concat(vec![a, b])?;
/// let d = dedup(&both)?;
/// assert!(d.btf.type_count() < both.type_count());
/// let xdp_md = |t: &bpfld::Btf| {
///     t.iter().filter(|(_, ty)| t.name(ty.name_off).is_ok_and(|n| n == "xdp_md")).count()
/// };
/// assert_eq!((xdp_md(&both), xdp_md(&d.btf)), (2, 1));
/// // `map` takes every input id to its representative.
/// assert_eq!(d.map.len(), both.type_count());
/// # Ok::<(), bpfld::Error>(())
/// ```
pub fn dedup(btf: &Btf) -> Result<Dedup> {
    dedup_owned(btf.clone())
}

/// [`dedup`] consuming its input (saves a copy of every type).
pub fn dedup_owned(btf: Btf) -> Result<Dedup> {
    dedup_many(vec![btf])
}

/// Deduplicates the concatenation of `btfs` (as [`concat()`] would make it,
/// without building it): [`Dedup::map`] is indexed by concatenated ids,
/// where type `i` of input `k` has id `i` plus the type counts (void
/// excluded) of the inputs before `k`. The output has the first input's
/// byte order. This is what `bpfld btf dedup` runs.
pub fn dedup_many(btfs: Vec<Btf>) -> Result<Dedup> {
    run(Deduper::new(btfs)?)
}

/// [`dedup_owned`] for a linked object's BTF: static VARs never merge.
/// Two identical `static int x;` of two inputs are two variables, each
/// with its own DATASEC entry (as libbpf keeps them); merging them would
/// make both entries name one VAR, and a later link could not tell them
/// apart.
pub fn dedup_linked(btf: Btf) -> Result<Dedup> {
    let mut d = Deduper::new(vec![btf])?;
    d.keep_static_vars = true;
    run(d)
}

fn run(mut d: Deduper) -> Result<Dedup> {
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
