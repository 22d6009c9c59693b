//! The hash table of representatives the struct/union and reference
//! passes share.

use super::NONE;

/// 64-bit hash → 32 bits with the high bits mixed into the low ones
/// (table indexes use the low ones).
pub(super) fn mix(v: u64) -> u32 {
    ((v ^ (v >> 31)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as u32
}

/// Representatives by hash: open addressing over 4-byte type ids, each
/// id's hash kept beside it. Among equal hashes probing meets the ids in
/// insertion order, so the first representative found is the oldest.
/// Sized once for all the ids it may receive: it never fills up.
pub(super) struct IdTable {
    slots: Vec<u32>,
    /// Type id → hash, for the ids inserted.
    hashes: Vec<u32>,
}

impl IdTable {
    pub(super) fn new(n_types: usize, expected: usize) -> Self {
        IdTable {
            slots: vec![NONE; (2 * expected + 2).next_power_of_two().max(16)],
            hashes: vec![0; n_types],
        }
    }
    pub(super) fn start(&self, h: u32) -> usize {
        h as usize & (self.slots.len() - 1)
    }
    pub(super) fn next(&self, pos: usize) -> usize {
        (pos + 1) & (self.slots.len() - 1)
    }
    /// The id at `pos` (NONE when empty) and whether its hash is `h`.
    pub(super) fn at(&self, pos: usize, h: u32) -> (u32, bool) {
        let id = self.slots.get(pos).copied().unwrap_or(NONE);
        (id, self.hashes.get(id as usize) == Some(&h))
    }
    pub(super) fn insert(&mut self, pos: usize, id: u32, h: u32) {
        if let Some(slot) = self.slots.get_mut(pos) {
            *slot = id;
        }
        if let Some(slot) = self.hashes.get_mut(id as usize) {
            *slot = h;
        }
    }
}
