//! The working state of one deduplication: the inputs' types in one id
//! space with names as string ids, and the representative map the passes
//! fill.

use super::fxhash::{map_with_capacity, FxMap};
use super::strings::{find_nul, Interner, StartIndex};
use super::{MAX_CHAIN, NONE};
use crate::error::{Error, Result};
use crate::model::btf::{Btf, BtfType, Kind, TypeData, TypeId};

pub(super) struct Deduper {
    /// The inputs (their types moved to `types`; their string tables
    /// still here, `strs` points into them).
    pub(super) inputs: Vec<Btf>,
    /// The inputs' types, concatenated, with ids shifted and names
    /// replaced by string ids.
    pub(super) types: Vec<BtfType>,
    /// String id → (input, offset, length).
    pub(super) strs: Vec<(u32, u32, u32)>,
    /// Type id → representative (possibly through a chain), or NONE when
    /// not processed yet.
    pub(super) map: Vec<u32>,
    /// Canonical id → candidate id during one equivalence check.
    pub(super) hypot: Vec<u32>,
    pub(super) hypot_list: Vec<u32>,
    /// Whether static VARs stay apart even when identical (see
    /// [`super::dedup_linked`]).
    pub(super) keep_static_vars: bool,
}

impl Deduper {
    /// Takes the inputs' types into one id space (input k's id i becomes
    /// the sum of the earlier inputs' type counts, void excluded, plus i)
    /// with names as string ids, checking every id and name offset.
    pub(super) fn new(mut inputs: Vec<Btf>) -> Result<Self> {
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
            keep_static_vars: false,
        })
    }

    pub(super) fn str_bytes(&self, sid: u32) -> &[u8] {
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

    pub(super) fn describe(&self, id: u32) -> String {
        let t = self.ty(id);
        let name = String::from_utf8_lossy(self.str_bytes(t.name_off));
        let name = if name.is_empty() {
            "(anon)".into()
        } else {
            name
        };
        format!("[{id}] {} '{name}'", t.kind().name())
    }

    pub(super) fn ty(&self, id: u32) -> &BtfType {
        // Ids were validated in `new`; void stands in for the impossible.
        self.types.get(id as usize).unwrap_or(&self.types[0])
    }

    pub(super) fn kind(&self, id: u32) -> Kind {
        self.ty(id).kind()
    }

    /// The current representative of `id` (itself when unprocessed).
    #[inline]
    pub(super) fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..MAX_CHAIN {
            match self.map.get(id as usize) {
                Some(&m) if m != NONE && m != id => id = m,
                _ => return id,
            }
        }
        id
    }

    pub(super) fn processed(&self, id: u32) -> bool {
        self.map.get(id as usize).is_some_and(|&m| m != NONE)
    }

    pub(super) fn set(&mut self, id: u32, to: u32) {
        if let Some(slot) = self.map.get_mut(id as usize) {
            *slot = to;
        }
    }
}
