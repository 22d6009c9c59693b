//! Output sections: the kept pieces of every input's sections of one
//! name concatenated (a component's code goes to `.text`), each input's
//! chunk aligned; `license` and `version` kept once and checked to agree,
//! placed after the others at the end.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::model::insn::Insn;
use crate::model::object::{Section, SectionId, SectionKind};

use super::pieces::{self, Placed, Placement};
use super::{Input, Out};

/// Whether the linker copies a section of this kind into the output by
/// concatenation.
pub(super) fn is_concatenated(s: &Section) -> bool {
    match s.kind {
        SectionKind::Program
        | SectionKind::Data
        | SectionKind::Rodata
        | SectionKind::Bss
        | SectionKind::Maps
        | SectionKind::LegacyMaps => true,
        SectionKind::Other => {
            s.sh_type == 1 /* SHT_PROGBITS */
                && !s.name.starts_with(".debug")
                && s.name != super::report::LINKMAP_SECTION
        }
        _ => false,
    }
}

/// An output section being built.
pub(super) struct OutSec {
    pub(super) sec: Section,
    /// Bytes so far (for NOBITS: the size).
    pub(super) size: u64,
    /// Instructions moved to the spill file: `sec.insns` holds the ones
    /// after them.
    pub(super) spilled: usize,
}

impl OutSec {
    pub(super) fn insn_count(&self) -> usize {
        self.spilled + self.sec.insns.len()
    }

    /// Instruction slot `slot` of the section, which must not be spilled.
    pub(super) fn insn_mut(&mut self, slot: usize) -> Result<&mut Insn> {
        let name = &self.sec.name;
        slot.checked_sub(self.spilled)
            .and_then(|k| self.sec.insns.get_mut(k))
            .ok_or_else(|| {
                Error::new(format!(
                    "section '{name}': instruction {slot} is not in memory (internal error)"
                ))
            })
    }
}

/// Upper bounds of an output section's contents.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Sizes {
    insns: usize,
    relocs: usize,
    func_info: usize,
    line_info: usize,
    core_relos: usize,
}

impl Sizes {
    /// Adds what input `input` brings to each output section, by name
    /// (a component's code goes to `.text`).
    pub(super) fn add_input(sizes: &mut HashMap<String, Sizes>, input: &Input, component: bool) {
        for s in input.object.sections.iter().filter(|s| is_concatenated(s)) {
            let name = if component && s.is_program() {
                ".text"
            } else {
                s.name.as_str()
            };
            match sizes.get_mut(name) {
                Some(t) => t.add(s),
                None => {
                    let mut t = Sizes::default();
                    t.add(s);
                    sizes.insert(name.to_string(), t);
                }
            }
        }
    }

    fn add(&mut self, s: &Section) {
        self.insns += s.insns.len();
        self.relocs += s.relocs.len();
        self.func_info += s.func_info.len();
        self.line_info += s.line_info.len();
        self.core_relos += s.core_relos.len();
    }
}

/// Placeholder output indices of `license` and `version`, which follow
/// every concatenated section, whose number is known only at the end.
pub(super) const SINGLE_OUT: [usize; 2] = [0xffff_fff0, 0xffff_fff1];

/// Appends the kept pieces of input `i`'s concatenated sections to the
/// output sections of their names (made on first sight, in input order),
/// each input's chunk aligned to its own alignment.
pub(super) fn layout(
    i: usize,
    input: &Input,
    cuts: &HashMap<SectionId, Vec<pieces::Piece>>,
    is_component: bool,
    out: &mut Out,
    placement: &mut Placement,
) -> Result<()> {
    let (outs, by_name, sizes, spill) = (&mut out.secs, &mut out.by_name, &out.sizes, &out.spill);
    for s in input.object.sections.iter().filter(|s| is_concatenated(s)) {
        let Some(ps) = cuts.get(&s.id) else {
            continue;
        };
        // A component's code is called, not attached: it goes to .text,
        // the only code section libbpf accepts calls into.
        let out_name = if is_component && s.is_program() {
            ".text".to_string()
        } else {
            s.name.clone()
        };
        if is_component && ps.iter().all(|p| !p.keep) {
            continue;
        }
        let o = match by_name.get(&out_name) {
            Some(&o) => {
                let out = &outs[o].sec;
                if out.sh_type != s.sh_type || out.kind != s.kind {
                    crate::bail!(
                        "{}: section '{}' has type {} but an earlier input's section of that name has type {}",
                        input.name,
                        s.name,
                        s.sh_type,
                        out.sh_type
                    );
                }
                o
            }
            None => {
                let sec = Section {
                    id: s.id,
                    name: out_name.clone(),
                    kind: s.kind,
                    sh_type: s.sh_type,
                    sh_flags: s.sh_flags,
                    sh_addralign: 1,
                    sh_size: s.sh_size,
                    sh_link: s.sh_link,
                    sh_info: s.sh_info,
                    sh_entsize: s.sh_entsize,
                    ..Section::empty(s.id, &out_name, s.kind, s.sh_type)
                };
                let mut sec = sec;
                if let Some(t) = sizes.get(&out_name) {
                    if spill.is_none() {
                        sec.insns.reserve_exact(t.insns);
                    }
                    sec.relocs.reserve_exact(t.relocs);
                    sec.func_info.reserve_exact(t.func_info);
                    sec.line_info.reserve_exact(t.line_info);
                    sec.core_relos.reserve_exact(t.core_relos);
                }
                outs.push(OutSec {
                    sec,
                    size: 0,
                    spilled: 0,
                });
                by_name.insert(out_name.clone(), outs.len() - 1);
                outs.len() - 1
            }
        };
        let out = &mut outs[o];
        let align = s.sh_addralign.max(1);
        if !align.is_power_of_two() {
            crate::bail!(
                "{}: section '{}': alignment {align} is not a power of two",
                input.name,
                s.name
            );
        }
        out.sec.sh_addralign = out.sec.sh_addralign.max(align);
        let is_code = s.kind == SectionKind::Program;
        let chunk = out.size.next_multiple_of(if is_code { 8 } else { align });
        pad_to(out, chunk, s.kind);
        for p in ps.iter().filter(|p| p.keep) {
            // Keep each piece's alignment within the chunk: the largest
            // power of two dividing its original offset, up to the
            // section's alignment.
            let piece_align = if p.start == 0 {
                align
            } else {
                (1u64 << p.start.trailing_zeros()).min(align)
            };
            let at = out
                .size
                .next_multiple_of(piece_align.max(if is_code { 8 } else { 1 }));
            pad_to(out, at, s.kind);
            match s.kind {
                SectionKind::Bss => out.size += p.end - p.start,
                SectionKind::Program => {
                    let (a, b) = ((p.start / 8) as usize, (p.end / 8) as usize);
                    out.sec
                        .insns
                        .extend_from_slice(&s.insns[a..b.min(s.insns.len())]);
                    out.size = out.insn_count() as u64 * 8;
                }
                _ => {
                    let (a, b) = (p.start as usize, p.end as usize);
                    out.sec
                        .data
                        .extend_from_slice(&s.data[a..b.min(s.data.len())]);
                    out.size = out.sec.data.len() as u64;
                }
            }
            placement.add(
                i,
                s.id,
                Placed {
                    start: p.start,
                    end: p.end,
                    out_sec: o,
                    out_off: at,
                },
            );
        }
        if ps.iter().all(|p| !p.keep) || ps.is_empty() {
            // Even an empty chunk places its start, for symbols at 0.
            placement.add(
                i,
                s.id,
                Placed {
                    start: 0,
                    end: 0,
                    out_sec: o,
                    out_off: chunk,
                },
            );
        }
    }
    Ok(())
}

pub(super) fn pad_to(out: &mut OutSec, at: u64, kind: SectionKind) {
    match kind {
        SectionKind::Bss => out.size = out.size.max(at),
        SectionKind::Program => {
            // Code chunks are whole instructions; `at` is a multiple of 8.
            while (out.insn_count() as u64) * 8 < at {
                out.sec.insns.push(Insn::default());
            }
            out.size = out.insn_count() as u64 * 8;
        }
        _ => {
            out.sec.data.resize(at as usize, 0);
            out.size = at;
        }
    }
}

/// `license` and `version`: the first input's copy is kept; a later
/// input's must have the same type, flags and contents (trailing NULs
/// aside) and is dropped with its symbols and DATASEC entries (libbpf's
/// rule), so the output holds one variable at offset 0, not one per input.
pub(super) fn single_sections(
    i: usize,
    input: &Input,
    out: &mut Out,
    placement: &mut Placement,
) -> Result<()> {
    for (k, kind) in [SectionKind::License, SectionKind::Version]
        .into_iter()
        .enumerate()
    {
        for s in input.object.sections.iter().filter(|s| s.kind == kind) {
            let Some((name, f)) = &out.single[k] else {
                placement.add(
                    i,
                    s.id,
                    Placed {
                        start: 0,
                        end: s.data.len() as u64,
                        out_sec: SINGLE_OUT[k],
                        out_off: 0,
                    },
                );
                let mut sec = s.clone();
                sec.relocs.clear();
                out.single[k] = Some((input.name.clone(), sec));
                continue;
            };
            if (f.sh_type, f.sh_flags) != (s.sh_type, s.sh_flags) {
                crate::bail!(
                    "section '{}': {} has type {} and flags {:#x} but {} has type {} and flags {:#x}; the section is kept once, so its copies must agree",
                    s.name,
                    name,
                    f.sh_type,
                    f.sh_flags,
                    input.name,
                    s.sh_type,
                    s.sh_flags
                );
            }
            let trim = |d: &[u8]| -> Vec<u8> {
                let end = d.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
                d[..end].to_vec()
            };
            if trim(&f.data) != trim(&s.data) {
                crate::bail!(
                    "section '{}' differs: {} has {:?} but {} has {:?}",
                    s.name,
                    name,
                    String::from_utf8_lossy(&trim(&f.data)),
                    input.name,
                    String::from_utf8_lossy(&trim(&s.data))
                );
            }
        }
    }
    Ok(())
}

pub(super) fn null_section() -> Section {
    Section {
        sh_addralign: 0,
        ..Section::empty(SectionId(0), "", SectionKind::Null, 0)
    }
}

/// Where `license` and `version` went once appended after the
/// concatenated sections.
pub(super) struct Singles([usize; 2]);

impl Singles {
    /// The output section index of a placement index ([`SINGLE_OUT`] for
    /// `license` and `version`).
    pub(super) fn out_index(&self, o: usize) -> usize {
        match SINGLE_OUT.iter().position(|&p| p == o) {
            Some(k) => self.0[k],
            None => o,
        }
    }
}

/// Appends `license` and `version` (as kept) after the concatenated
/// sections.
pub(super) fn append_singles(
    secs: &mut Vec<OutSec>,
    single: [Option<(String, Section)>; 2],
) -> Singles {
    let mut single_at = [usize::MAX; 2];
    for (k, s) in single.into_iter().enumerate() {
        if let Some((_, sec)) = s {
            single_at[k] = secs.len();
            secs.push(OutSec {
                size: sec.data.len() as u64,
                sec,
                spilled: 0,
            });
        }
    }
    Singles(single_at)
}

/// The output's sections: the null section, then the built ones with
/// their ids and sizes.
pub(super) fn assemble(secs: Vec<OutSec>) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::with_capacity(secs.len() + 3);
    sections.push(null_section());
    for (n, o) in secs.into_iter().enumerate() {
        let count = o.insn_count();
        let mut sec = o.sec;
        sec.id = SectionId(n as u32 + 1);
        if sec.kind == SectionKind::Bss {
            sec.sh_size = o.size;
        } else if sec.kind == SectionKind::Program {
            sec.sh_size = count as u64 * 8;
        } else {
            sec.sh_size = sec.data.len() as u64;
        }
        sections.push(sec);
    }
    sections
}
