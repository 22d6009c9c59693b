//! BTF: the type graph of an object or of a raw BTF file
//! (`include/uapi/linux/btf.h`).
//!
//! Types live in a `Vec` indexed by [`TypeId`] (index 0 is `void`, kept as a
//! placeholder so ids index directly). Names stay string-table offsets so
//! that linking and deduplication can add types and strings; [`Btf::name`]
//! resolves them. The raw string table and the header layout are kept so
//! that writing an unmodified model gives back the original bytes.
//!
//! Files: `types` (ids, kinds, per-kind data), `strings` (the interning
//! string table), `query` (reference-following questions: describe,
//! resolve, size_of, members, signatures), `table` (the accessor traits
//! the model and the listings' view of bytes share, and the questions
//! answered through them); this file holds the [`Btf`]
//! container, its direct accessors and appending one BTF to another.

pub mod c_type;
mod query;
mod strings;
mod table;
mod types;

pub use query::{DatasecVar, MemberInfo, Signature};
pub use strings::StringTable;
pub(crate) use table::{describe as describe_in, ref_type, size_of as size_of_in, walk_edge};
pub use table::{TypeFields, TypeTable};
pub use types::*;

use super::Endian;
use crate::error::{Error, Result};

/// Raw BTF ready for `BPF_BTF_LOAD`, as [`Object::kernel_btf`](crate::Object::kernel_btf) makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelBtf {
    /// Header, types and strings, little-endian.
    pub bytes: Vec<u8>,
    /// Number of types, `void` not counted (the last type id).
    pub types: usize,
    /// One line per rewrite made (e.g. "`.ksyms` FUNC 'bpf_obj_new_impl'
    /// made global"), empty when the BTF goes to the kernel as it is.
    pub rewrites: Vec<String>,
}

/// `BTF_MAGIC`, as the first two bytes read in the file's byte order.
pub const BTF_MAGIC: u16 = 0xeb9f;
/// Size of `struct btf_header`.
pub const BTF_HEADER_LEN: u32 = 24;

/// Upper bound on reference-chain walks. A validated BTF has no cycles
/// through typedefs/modifiers/arrays, but models built with
/// [`Btf::add_type`] are not validated, so every walk is bounded.
const MAX_CHAIN: usize = 1 << 16;

/// Placement of the type and string sections when the input did not use
/// the standard layout (types right after the header, strings right after
/// the types, nothing else): the whole data area is kept so writing an
/// unmodified model reproduces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawLayout {
    /// Offset of the type section after the header.
    pub type_off: u32,
    /// Length of the type section.
    pub type_len: u32,
    /// Offset of the string section after the header.
    pub str_off: u32,
    /// Length of the string section.
    pub str_len: u32,
    /// Bytes after the header, as found.
    pub data: Vec<u8>,
}

/// A whole BTF blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Btf {
    /// Byte order.
    pub endian: Endian,
    /// Format version (1).
    pub version: u8,
    /// Header flags (0).
    pub flags: u8,
    /// Header length as found (24 unless a newer header).
    pub hdr_len: u32,
    /// Header bytes beyond the 24 known ones, as found.
    pub hdr_extra: Vec<u8>,
    /// `types[0]` is `void`; `types[i]` has id `i`.
    pub types: Vec<BtfType>,
    /// The raw string table (starts and ends with NUL).
    pub strings: Vec<u8>,
    /// Original non-standard section placement, if any.
    pub raw_layout: Option<RawLayout>,
}

impl Default for Btf {
    fn default() -> Self {
        Btf::new(Endian::Little)
    }
}

impl Btf {
    /// An empty BTF: only `void` and the empty string.
    pub fn new(endian: Endian) -> Self {
        Btf {
            endian,
            version: 1,
            flags: 0,
            hdr_len: BTF_HEADER_LEN,
            hdr_extra: Vec::new(),
            types: vec![BtfType::new(0, false, TypeData::Void)],
            strings: vec![0],
            raw_layout: None,
        }
    }

    /// Number of types including `void` (ids are `0..type_count()`).
    pub fn type_count(&self) -> usize {
        self.types.len()
    }

    /// The last valid type id.
    pub fn last_id(&self) -> TypeId {
        TypeId(self.types.len().saturating_sub(1) as u32)
    }

    /// The type `id`, if it exists.
    pub fn get(&self, id: TypeId) -> Option<&BtfType> {
        self.types.get(id.0 as usize)
    }

    /// The type `id` to change, if it exists.
    pub fn get_mut(&mut self, id: TypeId) -> Option<&mut BtfType> {
        self.types.get_mut(id.0 as usize)
    }

    /// The type `id`, or an error saying it does not exist.
    pub fn ty(&self, id: TypeId) -> Result<&BtfType> {
        self.get(id).ok_or_else(|| {
            Error::new(format!(
                "type id {} beyond the last type {}",
                id.0,
                self.last_id().0
            ))
        })
    }

    /// Iterates over `(id, type)` excluding `void`.
    pub fn iter(&self) -> impl Iterator<Item = (TypeId, &BtfType)> {
        self.types
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, t)| (TypeId(i as u32), t))
    }

    /// The string at offset `off` of the string table.
    pub fn name(&self, off: u32) -> Result<&str> {
        let bytes = self.name_bytes(off)?;
        std::str::from_utf8(bytes)
            .map_err(|_| Error::new(format!("BTF string at offset {off} is not UTF-8")))
    }

    /// The raw bytes of the string at offset `off` (without the NUL).
    pub fn name_bytes(&self, off: u32) -> Result<&[u8]> {
        let start = off as usize;
        let Some(rest) = self.strings.get(start..) else {
            return Err(Error::new(format!(
                "string offset {off} beyond the string section of {} bytes",
                self.strings.len()
            )));
        };
        match rest.iter().position(|&b| b == 0) {
            Some(end) => Ok(&rest[..end]),
            None => Err(Error::new(format!(
                "string at offset {off} is not NUL-terminated"
            ))),
        }
    }

    /// The name of type `id` ("" when anonymous or unresolvable).
    pub fn type_name(&self, id: TypeId) -> &str {
        self.get(id)
            .and_then(|t| self.name(t.name_off).ok())
            .unwrap_or("")
    }

    /// Appends `s` to the string table and returns its offset. The empty
    /// string is offset 0. No deduplication (see [`Btf::find_string`]).
    pub fn add_string(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        off
    }

    /// The offset of a string equal to `s` that starts a table entry, if
    /// any (linear scan).
    pub fn find_string(&self, s: &str) -> Option<u32> {
        if s.is_empty() {
            return Some(0);
        }
        let mut off = 0usize;
        for chunk in self.strings.split(|&b| b == 0) {
            if chunk == s.as_bytes() {
                return Some(off as u32);
            }
            off += chunk.len() + 1;
        }
        None
    }

    /// Appends a type and returns its id.
    pub fn add_type(&mut self, t: BtfType) -> TypeId {
        self.types.push(t);
        TypeId(self.types.len() as u32 - 1)
    }
}

impl Btf {
    /// Appends every type of `other` (but its `void`) with ids and string
    /// offsets translated, and returns the map from `other`'s ids to the
    /// new ones (`map[0]` is void). Strings are shared with the ones
    /// already present.
    pub fn append(&mut self, other: &Btf, strings: &mut StringTable) -> Result<Vec<TypeId>> {
        let map = self.append_types(other, strings)?;
        self.strings = strings.bytes.clone();
        Ok(map)
    }

    /// Like [`Btf::append`] but leaves `self.strings` stale: the caller
    /// sets it from `strings` once all inputs are in (linking hundreds of
    /// objects would otherwise copy the table each time).
    pub fn append_types(&mut self, other: &Btf, strings: &mut StringTable) -> Result<Vec<TypeId>> {
        let base = self.types.len() as u32 - 1;
        let n = other.types.len() as u32;
        let map: Vec<TypeId> = (0..n)
            .map(|i| {
                if i == 0 {
                    TypeId::VOID
                } else {
                    TypeId(base + i)
                }
            })
            .collect();
        for (i, t) in other.types.iter().enumerate().skip(1) {
            let mut t = t.clone();
            let mut bad = None;
            t.map_ids(|id| match map.get(id.0 as usize) {
                Some(&m) => m,
                None => {
                    bad = Some(id);
                    id
                }
            });
            if let Some(id) = bad {
                return Err(Error::new(format!(
                    "type {} refers to type {id}, beyond the last type {}",
                    other.describe(TypeId(i as u32)),
                    n - 1
                )));
            }
            let mut bad_str = None;
            t.map_strings(|off| match other.name_bytes(off) {
                Ok(s) => strings.add(s),
                Err(_) => {
                    bad_str = Some(off);
                    0
                }
            });
            if let Some(off) = bad_str {
                return Err(Error::new(format!(
                    "type {}: string offset {off} is outside the string table",
                    other.describe(TypeId(i as u32))
                )));
            }
            self.types.push(t);
        }
        self.raw_layout = None;
        Ok(map)
    }
}
