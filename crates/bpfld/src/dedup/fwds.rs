//! Pass 4, forward declarations: a FWD still unresolved after the
//! composite pass resolves to the struct/union of its name and kind when
//! exactly one such canonical type exists.

use super::fxhash::{map_with_capacity, FxMap};
use super::shape::is_composite;
use super::state::Deduper;
use super::NONE;
use crate::error::Result;
use crate::model::btf::Kind;

impl Deduper {
    pub(super) fn resolve_fwds(&mut self) -> Result<()> {
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
}
