//! BTF.ext records (func_info, line_info, CO-RE relocations): moved with
//! their instructions as each input is added, their type ids and strings
//! translated to the merged BTF's, then to the output's once the BTF is
//! final.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::model::btf::{Btf, StringTable, TypeId};
use crate::model::btf_ext::{CoreRelo, FuncInfo, LineInfo};
use crate::model::insn::InsnIndex;
use crate::model::object::Object;

use super::pieces::Placement;
use super::{Input, Out};

/// Moves input `i`'s func_info, line_info and CO-RE records with their
/// instructions, their types and strings translated to the merged BTF's
/// (`types` maps the input's type ids).
pub(super) fn move_ext(
    i: usize,
    input: &Input,
    placement: &Placement,
    types: &[TypeId],
    out: &mut Out,
) -> Result<()> {
    let ty = |id: u32| types.get(id as usize).copied().unwrap_or(TypeId::VOID).0;
    let mut cache = HashMap::new();
    for s in input.object.sections.iter().filter(|s| s.is_program()) {
        let map = |insn: InsnIndex| {
            placement
                .map(i, s.id, u64::from(insn.0) * 8)
                .map(|(o, off)| (o, InsnIndex((off / 8) as u32)))
        };
        for r in &s.func_info {
            if let Some((o, insn)) = map(r.insn) {
                out.secs[o].sec.func_info.push(FuncInfo {
                    insn,
                    type_id: ty(r.type_id),
                });
            }
        }
        for r in &s.line_info {
            if let Some((o, insn)) = map(r.insn) {
                let file_name_off = out.merger.string(input, r.file_name_off, &mut cache)?;
                let line_off = out.merger.string(input, r.line_off, &mut cache)?;
                out.secs[o].sec.line_info.push(LineInfo {
                    insn,
                    file_name_off,
                    line_off,
                    ..*r
                });
            }
        }
        for r in &s.core_relos {
            if let Some((o, insn)) = map(r.insn) {
                let access_str_off = out.merger.string(input, r.access_str_off, &mut cache)?;
                out.secs[o].sec.core_relos.push(CoreRelo {
                    insn,
                    type_id: ty(r.type_id),
                    access_str_off,
                    ..*r
                });
            }
        }
    }
    Ok(())
}

/// Moves the records' type ids from merged ids to the output's
/// (`output_type`), sorts them by instruction, and adds the names of the
/// sections that have records to `strings` (`.BTF.ext` names sections
/// through the string table). Returns whether any section has records.
pub(super) fn to_output_types(
    object: &mut Object,
    output_type: impl Fn(TypeId) -> TypeId,
    strings: &mut StringTable,
) -> bool {
    let mut has_ext = false;
    for s in &mut object.sections {
        for r in &mut s.func_info {
            r.type_id = output_type(TypeId(r.type_id)).0;
        }
        for r in &mut s.core_relos {
            r.type_id = output_type(TypeId(r.type_id)).0;
        }
        s.func_info.sort_by_key(|r| r.insn);
        s.line_info.sort_by_key(|r| r.insn);
        s.core_relos.sort_by_key(|r| r.insn);
        if !(s.func_info.is_empty() && s.line_info.is_empty() && s.core_relos.is_empty()) {
            has_ext = true;
            strings.add(s.name.as_bytes());
        }
    }
    has_ext
}

/// Moves the records onto the deduplicated types (`map`: old id to new)
/// and the output's string table (`old_strings` holds the records'
/// strings so far).
pub(super) fn to_deduplicated(
    object: &mut Object,
    map: &[TypeId],
    old_strings: &Btf,
    table: &mut StringTable,
) -> Result<()> {
    let type_id = |old: u32| -> Result<u32> {
        map.get(old as usize).map(|t| t.0).ok_or_else(|| {
            Error::new(format!(
                "type id {old} beyond the last type {} of the deduplicated input",
                map.len().saturating_sub(1)
            ))
        })
    };
    for s in &mut object.sections {
        for f in &mut s.func_info {
            f.type_id = type_id(f.type_id)
                .map_err(|e| e.context(format!("func_info at instruction {}", f.insn.0)))
                .map_err(|e| e.in_section(&s.name))?;
        }
        for l in &mut s.line_info {
            l.file_name_off = table.add(old_strings.name_bytes(l.file_name_off)?);
            l.line_off = table.add(old_strings.name_bytes(l.line_off)?);
        }
        for r in &mut s.core_relos {
            r.type_id = type_id(r.type_id)
                .map_err(|e| e.context(format!("CO-RE relocation at instruction {}", r.insn.0)))
                .map_err(|e| e.in_section(&s.name))?;
            r.access_str_off = table.add(old_strings.name_bytes(r.access_str_off)?);
        }
        // `.BTF.ext` names sections through the string table.
        if !(s.func_info.is_empty() && s.line_info.is_empty() && s.core_relos.is_empty()) {
            table.add(s.name.as_bytes());
        }
    }
    Ok(())
}
