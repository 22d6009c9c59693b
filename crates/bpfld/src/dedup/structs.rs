//! Pass 3, composites: STRUCT/UNION merge by graph equivalence. A
//! candidate whose hash (shallow layout plus a summary of its members'
//! types) matches a canonical type's is compared by walking both graphs in
//! lock step, recording a hypothetical canonical → candidate map; a cycle
//! ends at an already-mapped pair, and a FWD matches the struct/union of
//! its name and kind. On success the whole walked graph merges at once.

use super::fxhash::FxHasher;
use super::shape::{child, is_composite, is_enum_fwd, nchildren, shallow_eq, shallow_hash};
use super::state::Deduper;
use super::table::{mix, IdTable};
use super::{IDENTICAL_BUDGET, NONE};
use crate::error::Result;
use crate::model::btf::{Kind, TypeData};
use std::hash::Hasher;

impl Deduper {
    pub(super) fn dedup_structs(&mut self) -> Result<()> {
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
}
