//! The disassembly as JSON, one entry per logical instruction.

use super::format::insn_text;
use super::reloc::{reloc_name, reloc_value};
use super::{SHF_EXECINSTR, SHT_NOBITS};
use crate::model::insn::{logical, Insn, INSN_SIZE};
use crate::model::object::{Object, Reloc, SymbolKind, SymbolPlace};

/// The disassembly as JSON: per code section, one entry per logical
/// instruction (slot index, byte offset, raw fields, llvm-objdump text,
/// jump/call target slot, symbols defined there, relocations on it).
///
/// ```json
/// {"sections": [{"name": "xdp", "instructions": [
///   {"index": 4, "offset": 32, "code": 24, "dst": 1, "src": 0, "off": 0,
///    "imm": 0, "imm64": 0, "slots": 2, "text": "r1 = 0x0 ll",
///    "labels": [], "relocations": [{"offset": 32, "type": "R_BPF_64_64",
///    "symbol": "counts"}]}]}]}
/// ```
pub fn disasm_json(obj: &Object) -> serde_json::Value {
    use serde_json::{json, Value};
    let mut sections = Vec::new();
    for sec in &obj.sections {
        let empty = sec.data.is_empty() && sec.insns.is_empty();
        if sec.sh_flags & SHF_EXECINSTR == 0 || sec.sh_type == SHT_NOBITS || empty {
            continue;
        }
        let mut labels: Vec<(u64, &str)> = obj
            .symbols
            .iter()
            .filter(|s| {
                s.place == SymbolPlace::Section(sec.id)
                    && !s.name.is_empty()
                    && !matches!(s.kind, SymbolKind::Section | SymbolKind::File)
            })
            .map(|s| (s.value, s.name.as_str()))
            .collect();
        labels.sort();
        let mut relocs: Vec<&Reloc> = sec.relocs.iter().collect();
        relocs.sort_by_key(|r| r.offset);
        // Slots from the model, or decoded from the bytes when the model
        // has none (a truncated tail is left out).
        let slots_owned;
        let slots: &[Insn] = if sec.insns.is_empty() {
            let whole = sec.data.len() / INSN_SIZE * INSN_SIZE;
            slots_owned =
                crate::read::insn::decode(&sec.data[..whole], obj.endian).unwrap_or_default();
            &slots_owned
        } else {
            &sec.insns
        };
        let mut insns = Vec::new();
        for l in logical(slots) {
            let i = l.insn;
            let at = u64::from(l.index.0) * INSN_SIZE as u64;
            let slots: u64 = if l.second.is_some() { 2 } else { 1 };
            let text = insn_text(i, l.second).unwrap_or_else(|| "<unknown>".into());
            let mut entry = json!({
                "index": l.index.0,
                "offset": at,
                "code": i.code,
                "dst": i.dst,
                "src": i.src,
                "off": i.off,
                "imm": i.imm,
                "slots": slots,
                "text": text,
            });
            if let Some(v) = l.imm64() {
                entry["imm64"] = json!(v);
            }
            if let Some(t) = i.jump_target(l.index).or_else(|| i.call_target(l.index)) {
                entry["target"] = json!(t);
            }
            // Both lists are sorted: take the slice for this instruction.
            let from = labels.partition_point(|(a, _)| *a < at);
            let to = labels.partition_point(|(a, _)| *a <= at);
            entry["labels"] = Value::from(
                labels[from..to]
                    .iter()
                    .map(|(_, n)| Value::from(*n))
                    .collect::<Vec<_>>(),
            );
            let end = at + slots * INSN_SIZE as u64;
            let from = relocs.partition_point(|r| r.offset < at);
            let to = relocs.partition_point(|r| r.offset < end);
            entry["relocations"] = Value::from(
                relocs[from..to]
                    .iter()
                    .map(|r| {
                        json!({
                            "offset": r.offset,
                            "type": reloc_name(r.kind),
                            "symbol": reloc_value(obj, r),
                        })
                    })
                    .collect::<Vec<_>>(),
            );
            insns.push(entry);
        }
        sections.push(json!({ "name": sec.name, "instructions": insns }));
    }
    json!({ "sections": sections })
}
