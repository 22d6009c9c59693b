//! Plain concatenation of several BTFs into one id and string space, no
//! deduplication.

use super::shape::{child, for_each_name, nchildren};
use crate::error::{Error, Result};
use crate::model::btf::{Btf, TypeData, TypeId};

/// Concatenates several BTFs into one (ids and string offsets shifted, no
/// deduplication; [`super::dedup`] does that, and [`super::dedup_many`] does both at
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
