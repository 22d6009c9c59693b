//! Pass 2, primitives: INT, FLOAT, ENUM, ENUM64 and FWD merge when
//! identical; an enum forward declaration (vlen 0) merges into the first
//! full enum of the same kind, name, size and signedness.

use super::fxhash::{map_with_capacity, FxMap};
use super::shape::{is_enum_fwd, is_prim};
use super::state::Deduper;
use crate::model::btf::{BtfType, Kind};

impl Deduper {
    pub(super) fn dedup_prims(&mut self) {
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
}
