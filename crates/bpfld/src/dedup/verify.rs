//! An independent check of a deduplication's result.

use super::shape::{child, nchildren, shallow_eq_by};
use super::Dedup;
use crate::error::{Error, Result};
use crate::model::btf::{Btf, Kind, TypeData, TypeId};

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
