//! Pass 6, compaction: representatives keep their relative order, every
//! id is remapped, and the string table is rebuilt with only the strings
//! the kept types name, each once.

use super::state::Deduper;
use super::{Dedup, NONE};
use crate::error::{Error, Result};
use crate::model::btf::{Btf, BtfType, TypeData, TypeId};

impl Deduper {
    pub(super) fn compact(self) -> Result<Dedup> {
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
