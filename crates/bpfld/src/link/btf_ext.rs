//! BTF.ext records (func_info, line_info, CO-RE relocations) moved with
//! their instructions, their type ids and strings translated to the
//! merged BTF's.

use std::collections::HashMap;

use crate::error::Result;
use crate::model::btf::TypeId;
use crate::model::btf_ext::{CoreRelo, FuncInfo, LineInfo};
use crate::model::insn::InsnIndex;

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
