//! Input sections cut into pieces (one per function or variable where the
//! symbols allow it) and where each kept piece lands in the output.
//!
//! Every offset that moves during a link (symbol values, relocation
//! offsets, call targets, BTF.ext instruction offsets, DATASEC offsets) is
//! translated through [`Placement::map`], so dropping a piece or moving it
//! to another section keeps everything that refers to the rest consistent.

use std::collections::HashMap;

use crate::model::object::{Object, SectionId, SectionKind, SymbolKind, SymbolPlace};

/// A byte range of one input section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    pub start: u64,
    pub end: u64,
    /// The symbol whose body this piece is, when the section could be cut
    /// along symbol boundaries.
    pub owner: Option<crate::model::object::SymbolId>,
    pub keep: bool,
}

/// Cuts a section into pieces along its sized FUNC/OBJECT symbols. Bytes no
/// symbol covers (clang's unnamed constants, padding) stay attached to the
/// piece before them, or form a piece of their own at the start; a section
/// whose symbols overlap stays one piece.
pub fn cut(obj: &Object, id: SectionId) -> Vec<Piece> {
    let Some(sec) = obj.section(id) else {
        return Vec::new();
    };
    let size = match sec.kind {
        SectionKind::Bss => sec.sh_size,
        SectionKind::Program => sec.insns.len() as u64 * 8,
        _ => sec.data.len() as u64,
    };
    let mut bounds: Vec<(u64, u64, crate::model::object::SymbolId)> = obj
        .symbols
        .iter()
        .filter(|s| {
            s.place == SymbolPlace::Section(id)
                && matches!(s.kind, SymbolKind::Func | SymbolKind::Object)
                && s.size > 0
        })
        .map(|s| (s.value, s.value.saturating_add(s.size), s.id))
        .collect();
    bounds.sort();
    bounds.dedup_by_key(|b| (b.0, b.1));
    let whole = vec![Piece {
        start: 0,
        end: size,
        owner: None,
        keep: true,
    }];
    if bounds.is_empty() {
        return whole;
    }
    let mut pieces: Vec<Piece> = Vec::new();
    let mut at = 0;
    for &(start, end, owner) in &bounds {
        if start < at || end > size {
            return whole;
        }
        if start > at {
            match pieces.last_mut() {
                Some(p) => p.end = start,
                None => pieces.push(Piece {
                    start: at,
                    end: start,
                    owner: None,
                    keep: true,
                }),
            }
        }
        pieces.push(Piece {
            start,
            end,
            owner: Some(owner),
            keep: true,
        });
        at = end;
    }
    if at < size {
        if let Some(p) = pieces.last_mut() {
            p.end = size;
        }
    }
    pieces
}

/// Where the kept pieces of every input section landed.
#[derive(Default, Debug)]
pub struct Placement {
    /// (input, input section) → pieces with their output section index and
    /// offset there, sorted by input offset.
    placed: HashMap<(usize, SectionId), Vec<Placed>>,
}

#[derive(Clone, Copy, Debug)]
pub struct Placed {
    pub start: u64,
    pub end: u64,
    pub out_sec: usize,
    pub out_off: u64,
}

impl Placement {
    pub fn add(&mut self, input: usize, sec: SectionId, p: Placed) {
        let v = self.placed.entry((input, sec)).or_default();
        v.push(p);
        v.sort_by_key(|p| p.start);
    }

    /// The output (section, offset) of input offset `off`, which must lie
    /// inside a placed piece.
    pub fn map(&self, input: usize, sec: SectionId, off: u64) -> Option<(usize, u64)> {
        let v = self.placed.get(&(input, sec))?;
        let i = v.partition_point(|p| p.start <= off);
        let p = v.get(i.checked_sub(1)?)?;
        (off < p.end).then(|| (p.out_sec, p.out_off + (off - p.start)))
    }

    /// Where a symbol of `size` bytes at `value` lands: its whole extent
    /// must lie in one placed piece. A zero-size symbol may also mark the
    /// end of a piece (or a placed empty chunk).
    pub fn map_symbol(
        &self,
        input: usize,
        sec: SectionId,
        value: u64,
        size: u64,
    ) -> Option<(usize, u64)> {
        let v = self.placed.get(&(input, sec))?;
        if size > 0 {
            let (o, off) = self.map(input, sec, value)?;
            let i = v.partition_point(|p| p.start <= value);
            let p = v[i - 1];
            return (value.saturating_add(size) <= p.end).then_some((o, off));
        }
        if let Some(hit) = self.map(input, sec, value) {
            return Some(hit);
        }
        v.iter()
            .rev()
            .find(|p| p.end == value)
            .map(|p| (p.out_sec, p.out_off + (p.end - p.start)))
    }
}
