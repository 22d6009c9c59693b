//! Pass 5, reference types: PTR, TYPEDEF, modifiers, TYPE_TAG, ARRAY,
//! FUNC_PROTO, FUNC, DECL_TAG, and (beyond libbpf) VAR and DATASEC merge
//! when identical once the types they refer to are deduplicated, children
//! first, iteratively. The linker keeps static VARs apart (each is a
//! variable of its own input).

use super::fxhash::FxHasher;
use super::shape::{child, nchildren, shallow_eq, shallow_hash};
use super::state::Deduper;
use super::table::{mix, IdTable};
use super::NONE;
use crate::error::{Error, Result};
use crate::model::btf::TypeData;
use std::hash::Hasher;

impl Deduper {
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

    pub(super) fn dedup_refs(&mut self) -> Result<()> {
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
                // A static VAR of a linked object is one variable of one
                // input: another input's identical one is another variable,
                // with its own DATASEC entry.
                if self.keep_static_vars && matches!(t.data, TypeData::Var { linkage: 0, .. }) {
                    self.set(x, x);
                    in_progress[x as usize] = false;
                    stack.pop();
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
}
