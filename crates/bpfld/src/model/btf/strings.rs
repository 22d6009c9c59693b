//! The string table, interned: each distinct string once.

use super::Btf;

/// Interns strings into a BTF string table, each distinct string once.
///
/// The index keeps only offsets, keyed by a hash of the bytes (compared
/// against the table on a hit), not a copy of every string: tables of
/// linked objects hold tens of thousands of source lines.
#[derive(Debug, Default)]
pub struct StringTable {
    /// The table: NUL-terminated strings, starting with the empty one.
    pub bytes: Vec<u8>,
    /// Hash of a string's bytes → its first offset.
    offsets: crate::util::fxhash::FxMap<u32, u32>,
    /// Strings whose hash another string already has.
    collided: std::collections::HashMap<Vec<u8>, u32>,
}

/// 32 bits are plenty to tell strings apart in a table (the few that share
/// a hash go to the side map), and halve the index.
fn string_hash(s: &[u8]) -> u32 {
    use std::hash::Hasher;
    let mut h = crate::util::fxhash::FxHasher::default();
    h.write(s);
    h.write_usize(s.len());
    let h = h.finish();
    (h ^ (h >> 32)) as u32
}

impl StringTable {
    /// A table holding what `btf` already has.
    pub fn from_btf(btf: &Btf) -> Self {
        let mut t = StringTable {
            bytes: btf.strings.clone(),
            offsets: Default::default(),
            collided: std::collections::HashMap::new(),
        };
        if t.bytes.is_empty() {
            t.bytes.push(0);
        }
        let mut off = 0usize;
        for chunk in btf.strings.split(|&b| b == 0) {
            if !chunk.is_empty() && t.find(chunk).is_none() {
                t.index(chunk, off as u32);
            }
            off += chunk.len() + 1;
        }
        // The empty string is at 0, as BTF requires.
        let h = string_hash(b"");
        if let Some(&other) = t.offsets.get(&h) {
            let end = t.bytes[other as usize..]
                .iter()
                .position(|&b| b == 0)
                .map_or(t.bytes.len(), |p| other as usize + p);
            let moved = t.bytes[other as usize..end].to_vec();
            t.collided.entry(moved).or_insert(other);
        }
        t.offsets.insert(h, 0);
        t
    }

    /// The offset of `s` when the table holds it.
    fn find(&self, s: &[u8]) -> Option<u32> {
        let off = *self.offsets.get(&string_hash(s))?;
        if s.is_empty() {
            return Some(off);
        }
        let start = off as usize;
        let here = self.bytes.get(start..start + s.len()) == Some(s)
            && self.bytes.get(start + s.len()) == Some(&0);
        if here {
            Some(off)
        } else {
            self.collided.get(s).copied()
        }
    }

    fn index(&mut self, s: &[u8], off: u32) {
        match self.offsets.entry(string_hash(s)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(off);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.collided.entry(s.to_vec()).or_insert(off);
            }
        }
    }

    /// Appends `s` (or finds it) and returns its offset.
    pub fn add(&mut self, s: &[u8]) -> u32 {
        if let Some(off) = self.find(s) {
            return off;
        }
        let off = self.bytes.len() as u32;
        self.bytes.extend_from_slice(s);
        self.bytes.push(0);
        self.index(s, off);
        off
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_table_finds_each_string_at_its_first_offset() {
        let mut btf = Btf::new(crate::model::Endian::Little);
        btf.strings = b"\0int\0char\0int\0".to_vec();
        let mut t = StringTable::from_btf(&btf);
        assert_eq!(t.add(b""), 0);
        assert_eq!(t.add(b"int"), 1);
        assert_eq!(t.add(b"char"), 5);
        // New strings go at the end, once.
        let long = t.add(b"long");
        assert_eq!(long, 14);
        assert_eq!(t.add(b"long"), long);
        // A prefix or suffix of a string is a string of its own.
        let i = t.add(b"in");
        assert_eq!(i, 19);
        assert_eq!(t.add(b"nt"), 22);
        assert_eq!(t.bytes, b"\0int\0char\0int\0long\0in\0nt\0".to_vec());
        for k in 0..5000u32 {
            let s = format!("s{k}");
            let off = t.add(s.as_bytes());
            assert_eq!(t.add(s.as_bytes()), off, "{s}");
        }
    }

    #[test]
    fn string_table_strings_sharing_a_hash_stay_apart() {
        // Enough strings that some share a 32-bit hash.
        let mut t = StringTable::from_btf(&Btf::new(crate::model::Endian::Little));
        let offs: Vec<u32> = (0..300_000u32)
            .map(|k| t.add(format!("line {k}").as_bytes()))
            .collect();
        assert!(!t.collided.is_empty(), "no two strings shared a hash");
        for (k, &off) in offs.iter().enumerate() {
            let s = format!("line {k}");
            assert_eq!(t.add(s.as_bytes()), off, "{s}");
            let start = off as usize;
            assert_eq!(&t.bytes[start..start + s.len()], s.as_bytes());
        }
        // And a table rebuilt from the bytes finds the same offsets.
        let mut btf = Btf::new(crate::model::Endian::Little);
        btf.strings = t.bytes.clone();
        let mut again = StringTable::from_btf(&btf);
        for (k, &off) in offs.iter().enumerate().step_by(7) {
            assert_eq!(again.add(format!("line {k}").as_bytes()), off);
        }
        assert_eq!(again.bytes, t.bytes);
    }
}
