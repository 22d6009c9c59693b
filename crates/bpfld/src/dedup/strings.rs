//! Strings: every name of every input becomes a dense string id, equal
//! bytes giving equal ids, so later passes compare names as integers.

use super::fxhash::FxHasher;
use super::NONE;
use std::hash::Hasher;

/// Index of the first NUL byte of `s`, eight bytes at a time (the string
/// table scan is a good part of the whole deduplication).
pub(super) fn find_nul(s: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut chunks = s.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        let v = u64::from_le_bytes(b);
        let z = v.wrapping_sub(LO) & !v & HI;
        if z != 0 {
            return Some(base + (z.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == 0)
        .map(|i| base + i)
}

/// Interns byte strings of the inputs' string tables as dense string ids.
/// An open-addressing table of 4-byte ids, with each id's hash kept beside
/// it: a quarter of the memory of a map keyed by slices, and the table
/// scan is a good part of the whole deduplication.
pub(super) struct Interner<'a> {
    pub(super) tables: Vec<&'a [u8]>,
    /// String id → (input, offset, length).
    pub(super) strs: Vec<(u32, u32, u32)>,
    /// String id → hash.
    pub(super) hashes: Vec<u32>,
    /// Ids by hash; NONE is an empty slot.
    pub(super) slots: Vec<u32>,
}

impl<'a> Interner<'a> {
    /// With id 0 the empty string.
    pub(super) fn new(tables: Vec<&'a [u8]>, expected: usize) -> Self {
        let mut i = Interner {
            tables,
            strs: Vec::with_capacity(expected + 1),
            hashes: Vec::with_capacity(expected + 1),
            slots: vec![NONE; (2 * expected + 2).next_power_of_two().max(16)],
        };
        i.intern(0, 0, &[]);
        i
    }

    fn hash(s: &[u8]) -> u32 {
        let mut h = FxHasher::default();
        h.write(s);
        let v = h.finish();
        // Mix the high bits down: the index uses the low ones.
        ((v ^ (v >> 31)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as u32
    }

    fn bytes(&self, sid: u32) -> &'a [u8] {
        self.strs
            .get(sid as usize)
            .and_then(|&(k, o, l)| {
                self.tables
                    .get(k as usize)?
                    .get(o as usize..(o + l) as usize)
            })
            .unwrap_or_default()
    }

    /// The id of `s`, which is at `off` in input `k`'s table.
    pub(super) fn intern(&mut self, k: u32, off: u32, s: &'a [u8]) -> u32 {
        if (self.strs.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let h = Self::hash(s);
        let mask = self.slots.len() - 1;
        let mut i = h as usize & mask;
        loop {
            let id = self.slots[i];
            if id == NONE {
                let id = self.strs.len() as u32;
                self.slots[i] = id;
                self.strs.push((k, off, s.len() as u32));
                self.hashes.push(h);
                return id;
            }
            if self.hashes.get(id as usize) == Some(&h) && self.bytes(id) == s {
                return id;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let size = self.slots.len() * 2;
        self.slots = vec![NONE; size];
        let mask = size - 1;
        for (id, &h) in self.hashes.iter().enumerate() {
            let mut i = h as usize & mask;
            while self.slots[i] != NONE {
                i = (i + 1) & mask;
            }
            self.slots[i] = id as u32;
        }
    }
}

/// Start-of-string lookup for one string table: every string of the table
/// is interned once, in a table scan; names (nearly always string starts)
/// then find their string id through a start bitmap with ranks, without
/// hashing. Offsets inside a string (suffixes) take a hashed slow path.
pub(super) struct StartIndex {
    pub(super) starts: Vec<u64>,
    pub(super) rank: Vec<u32>,
    pub(super) sids: Vec<u32>,
}

impl StartIndex {
    pub(super) fn build<'a>(
        input: u32,
        strings: &'a [u8],
        interner: &mut Interner<'a>,
        reuse: StartIndex,
    ) -> StartIndex {
        let StartIndex {
            mut starts,
            mut rank,
            mut sids,
        } = reuse;
        let words = strings.len() / 64 + 1;
        starts.clear();
        starts.resize(words, 0);
        sids.clear();
        let mut pos = 0usize;
        while let Some(len) = strings.get(pos..).and_then(find_nul) {
            let bytes = &strings[pos..pos + len];
            let sid = interner.intern(input, pos as u32, bytes);
            starts[pos / 64] |= 1 << (pos % 64);
            sids.push(sid);
            pos += len + 1;
        }
        rank.clear();
        let mut acc = 0u32;
        for w in &starts {
            rank.push(acc);
            acc += w.count_ones();
        }
        StartIndex { starts, rank, sids }
    }

    #[inline]
    pub(super) fn get(&self, off: u32) -> Option<u32> {
        let o = off as usize;
        let (w, r) = (self.starts.get(o / 64)?, self.rank.get(o / 64)?);
        let bit = 1u64 << (o % 64);
        if w & bit == 0 {
            return None;
        }
        self.sids
            .get((*r + (w & (bit - 1)).count_ones()) as usize)
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::find_nul;

    #[test]
    fn find_nul_finds_the_first_nul_anywhere() {
        for len in 0..40 {
            for at in 0..=len {
                let mut v = vec![0x80u8; len];
                // Bytes that trip naive zero-byte tricks around the NUL.
                for (i, b) in v.iter_mut().enumerate() {
                    *b = [0x01, 0x80, 0xff, 0x7f][i % 4];
                }
                if at < len {
                    v[at] = 0;
                    if at + 1 < len {
                        v[at + 1] = 0;
                    }
                }
                let want = v.iter().position(|&b| b == 0);
                assert_eq!(find_nul(&v), want, "len {len} at {at}");
            }
        }
    }
}
