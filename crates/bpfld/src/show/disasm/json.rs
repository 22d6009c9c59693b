//! The disassembly as JSON, one entry per logical instruction.

use std::io::{self, Write};

use serde::ser::{SerializeMap, SerializeSeq};
use serde_json::{json, Value};

use super::format::insn_text;
use super::reloc::{reloc_name, reloc_value};
use super::{ListedSection, Listing};
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
pub fn disasm_json(obj: &Object) -> Value {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail, and what is written is JSON.
    let _ = Listing::from_object(obj).write_json(&mut out);
    serde_json::from_slice(&out).unwrap_or(Value::Null)
}

impl Listing<'_> {
    /// [`disasm_json`]'s document, pretty-printed as `serde_json` prints
    /// it, written instruction by instruction.
    pub fn write_json(&self, out: &mut impl Write) -> io::Result<()> {
        serde_json::to_writer_pretty(out, &Doc(self)).map_err(io::Error::from)
    }
}

/// The JSON listing ([`disasm_json`]'s document).
impl serde::Serialize for Listing<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Doc(self).serialize(s)
    }
}

struct Doc<'l, 'a>(&'l Listing<'a>);
struct Sections<'l, 'a>(&'l Listing<'a>);
struct Instructions<'l, 'a>(&'l Listing<'a>, &'l ListedSection<'a>);

impl serde::Serialize for Doc<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry("sections", &Sections(self.0))?;
        map.end()
    }
}

impl serde::Serialize for Sections<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let listed = self
            .0
            .sections
            .iter()
            .filter(|sec| sec.is_listed() && !sec.bytes.is_empty());
        let mut seq = s.serialize_seq(None)?;
        for sec in listed {
            seq.serialize_element(&Section(self.0, sec))?;
        }
        seq.end()
    }
}

struct Section<'l, 'a>(&'l Listing<'a>, &'l ListedSection<'a>);

impl serde::Serialize for Section<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Keys in the order a JSON object map keeps them (sorted).
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("instructions", &Instructions(self.0, self.1))?;
        map.serialize_entry("name", &self.1.name)?;
        map.end()
    }
}

impl serde::Serialize for Instructions<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (obj, sec) = (self.0, self.1);
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
        // The slots of the bytes (a truncated tail is left out).
        let whole = sec.bytes.len() / INSN_SIZE * INSN_SIZE;
        let slots: Vec<Insn> =
            crate::read::insn::decode(&sec.bytes[..whole], obj.endian).unwrap_or_default();
        let mut seq = s.serialize_seq(None)?;
        for l in logical(&slots) {
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
            seq.serialize_element(&entry)?;
        }
        seq.end()
    }
}
