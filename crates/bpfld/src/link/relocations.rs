//! Relocations carried from the inputs to the output: re-pointed at the
//! output's symbols, with the addends that live in instruction immediates
//! (calls and `ld_imm64` against a section symbol, calls within a
//! section, which carry no relocation) moved with their targets.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::model::insn::Insn;
use crate::model::object::{
    Reloc, RelocKind, Section, SectionKind, SymbolId, SymbolKind, SymbolPlace,
};

use super::pieces::Placement;
use super::sections::{is_concatenated, OutSec, SINGLE_OUT};
use super::symtab::{tagged, TAG_SECTION};
use super::Input;

pub(super) const BPF_JMP_CALL: u8 = 0x85;

pub(super) const BPF_LD_IMM64: u8 = 0x18;

pub(super) const BPF_PSEUDO_CALL: u8 = 1;

pub(super) const BPF_PSEUDO_FUNC: u8 = 4;

pub(super) fn is_call(insn: &Insn) -> bool {
    insn.code == BPF_JMP_CALL
}

/// Carries input `i`'s relocations over, and re-targets calls and
/// addresses whose addend lives in the instruction's immediate.
pub(super) fn emit_relocations(
    i: usize,
    input: &Input,
    placement: &Placement,
    sym_map: &HashMap<SymbolId, SymbolId>,
    outs: &mut [OutSec],
) -> Result<()> {
    let obj = &input.object;
    for s in obj.sections.iter().filter(|s| is_concatenated(s)) {
        let at = |off: u64| format!("{}: section '{}' offset {off:#x}", input.name, s.name);
        let is_code = s.kind == SectionKind::Program;
        let mut relocated = std::collections::HashSet::new();
        for r in &s.relocs {
            let Some((o, off)) = placement.map(i, s.id, r.offset) else {
                continue; // the piece was dropped
            };
            relocated.insert(r.offset / 8);
            let sym = obj.symbol(r.symbol).ok_or_else(|| {
                Error::new(format!(
                    "{}: relocation against missing symbol {}",
                    at(r.offset),
                    r.symbol.0
                ))
            })?;
            if sym.kind == SymbolKind::Section {
                if !is_code {
                    crate::bail!(
                        "{}: relocation against section symbol '{}' outside code is not supported",
                        at(r.offset),
                        sym.name
                    );
                }
                let SymbolPlace::Section(target_sec) = sym.place else {
                    crate::bail!("{}: section symbol without a section", at(r.offset));
                };
                let slot = (off / 8) as usize;
                let insn = *outs[o].insn_mut(slot)?;
                let sym_off = sym.value as i64;
                // Where the instruction points inside the target section.
                let (target, kind) = if is_call(&insn) {
                    (sym_off + (i64::from(insn.imm) + 1) * 8, 0)
                } else if insn.code == BPF_LD_IMM64 && insn.src == BPF_PSEUDO_FUNC {
                    (sym_off + (i64::from(insn.imm) / 8 + 1) * 8, 1)
                } else if insn.code == BPF_LD_IMM64 {
                    (sym_off + i64::from(insn.imm as u32), 2)
                } else {
                    crate::bail!(
                        "{}: relocation {} against section '{}' on an instruction that is neither a call nor ld_imm64",
                        at(r.offset),
                        r.kind.name(),
                        sym.name
                    );
                };
                let Some((to, toff)) = u64::try_from(target)
                    .ok()
                    .and_then(|t| placement.map(i, target_sec, t))
                else {
                    crate::bail!(
                        "{}: refers to offset {target:#x} of section '{}', which is not linked",
                        at(r.offset),
                        sym.name
                    );
                };
                let new_imm = match kind {
                    0 => (toff / 8) as i64 - 1,
                    1 => ((toff / 8) as i64 - 1) * 8,
                    _ => toff as i64,
                };
                let Ok(new_imm) = i32::try_from(new_imm) else {
                    crate::bail!("{}: target offset overflows the immediate", at(r.offset));
                };
                outs[o].insn_mut(slot)?.imm = new_imm;
                if SINGLE_OUT.contains(&to) {
                    crate::bail!("{}: target section has no section symbol", at(r.offset));
                }
                outs[o].sec.relocs.push(Reloc {
                    offset: off,
                    kind: r.kind,
                    symbol: tagged(TAG_SECTION, to)?,
                });
                continue;
            }
            let Some(&new_sym) = sym_map.get(&r.symbol) else {
                // A local symbol in a dropped piece.
                crate::bail!(
                    "{}: relocation against '{}', which is not linked",
                    at(r.offset),
                    sym.name
                );
            };
            outs[o].sec.relocs.push(Reloc {
                offset: off,
                kind: r.kind,
                symbol: new_sym,
            });
        }
        if is_code {
            fix_local_calls(input, i, s, placement, &relocated, outs)?;
        }
    }
    Ok(())
}

/// Calls to a function of the same section carry no relocation: their
/// immediate is relative to the call. Re-target them after the move.
pub(super) fn fix_local_calls(
    input: &Input,
    i: usize,
    s: &Section,
    placement: &Placement,
    relocated: &std::collections::HashSet<u64>,
    outs: &mut [OutSec],
) -> Result<()> {
    let mut slot = 0usize;
    while slot < s.insns.len() {
        let insn = s.insns[slot];
        let width = if insn.code == BPF_LD_IMM64 { 2 } else { 1 };
        if is_call(&insn) && insn.src == BPF_PSEUDO_CALL && !relocated.contains(&(slot as u64)) {
            if let Some((o, off)) = placement.map(i, s.id, slot as u64 * 8) {
                let target = slot as i64 + i64::from(insn.imm) + 1;
                let Some((to, toff)) = u64::try_from(target)
                    .ok()
                    .and_then(|t| placement.map(i, s.id, t * 8))
                else {
                    crate::bail!(
                        "{}: section '{}' instruction {slot}: call to instruction {target}, which is not linked",
                        input.name,
                        s.name
                    );
                };
                let new_slot = (off / 8) as i64;
                let t = (toff / 8) as i64;
                if to == o {
                    outs[o].insn_mut(new_slot as usize)?.imm = (t - new_slot - 1) as i32;
                } else {
                    outs[o].insn_mut(new_slot as usize)?.imm = (t - 1) as i32;
                    if SINGLE_OUT.contains(&to) {
                        crate::bail!(
                            "{}: section '{}': call target section has no section symbol",
                            input.name,
                            s.name
                        );
                    }
                    outs[o].sec.relocs.push(Reloc {
                        offset: off,
                        kind: RelocKind::Bpf64_32,
                        symbol: tagged(TAG_SECTION, to)?,
                    });
                }
            }
        }
        slot += width;
    }
    Ok(())
}
