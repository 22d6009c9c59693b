//! The text listing of a whole object: walks each code section's bytes
//! and symbols the way objdump does (zero runs become `...`, chunks only
//! data symbols label are dumped as hex, misaligned leftovers and
//! relocation lines come out the same), asking [`super::format`] for each
//! instruction's text.

use std::io::{self, Write};

use super::format::{decode_llvm, Decoded};
use super::lenient_btf::CoreNotes;
use super::reloc::{reloc_name, reloc_value};
use super::{ListedSection, Listing};
use crate::model::object::{Object, Reloc, SymbolKind, SymbolPlace};

// ELF symbol types objdump treats as data.
const STT_OBJECT: u8 = 1;
const STT_FUNC: u8 = 2;
const STT_COMMON: u8 = 5;

/// The line llvm-objdump prints before a file's disassembly.
pub fn file_header(path: &str) -> String {
    format!("\n{path}:\tfile format elf64-bpf\n")
}

/// A symbol as objdump's disassembler sees it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Sym {
    addr: u64,
    name: String,
    ty: u8,
}

fn sym_type(kind: SymbolKind) -> u8 {
    match kind {
        SymbolKind::NoType => 0,
        SymbolKind::Object => 1,
        SymbolKind::Func => 2,
        SymbolKind::Section => 3,
        SymbolKind::File => 4,
        SymbolKind::Other(t) => t,
    }
}

/// Leading zero bytes objdump folds into `...`: at least 8, in steps of 4.
fn skippable_zeros(bytes: &[u8]) -> usize {
    let n = bytes.iter().take_while(|&&b| b == 0).count();
    if n < 8 {
        0
    } else {
        n & !3
    }
}

/// objdump's dump of a chunk that only data symbols label: hex and ASCII,
/// eight bytes a line.
fn dump_data(out: &mut impl Write, bytes: &[u8], start: usize, end: usize) -> io::Result<()> {
    let mut ascii = String::new();
    let mut n = 0usize;
    for index in start..end {
        if n == 0 {
            write!(out, "{index:8x}:")?;
        }
        let b = bytes.get(index).copied().unwrap_or(0);
        write!(out, " {b:02x}")?;
        ascii.push(if (0x20..0x7f).contains(&b) {
            b as char
        } else {
            '.'
        });
        n += 1;
        if index + 1 == end || n == 8 {
            let pad = 3 * (8 - n);
            writeln!(out, "{}         {ascii}", " ".repeat(pad))?;
            ascii.clear();
            n = 0;
        }
    }
    Ok(())
}

fn disasm_section(
    out: &mut impl Write,
    obj: &Listing<'_>,
    sec: &ListedSection<'_>,
    core: Option<&CoreNotes>,
) -> io::Result<()> {
    let bytes: &[u8] = &sec.bytes;
    let sect_size = bytes.len() as u64;
    if sect_size == 0 {
        return Ok(());
    }
    // objdump skips the null symbol, unnamed ones, sections and files.
    let named = |s: &&crate::model::object::Symbol| {
        s.id.0 != 0
            && !s.name.is_empty()
            && !matches!(s.kind, SymbolKind::Section | SymbolKind::File)
    };
    let mut syms: Vec<Sym> = obj
        .symbols
        .iter()
        .filter(named)
        .filter(|s| s.place == SymbolPlace::Section(sec.id))
        .map(|s| Sym {
            addr: s.value,
            name: s.name.clone(),
            ty: sym_type(s.kind),
        })
        .collect();
    let mut absolute: Vec<Sym> = obj
        .symbols
        .iter()
        .filter(named)
        .filter(|s| !matches!(s.place, SymbolPlace::Section(_)))
        .map(|s| Sym {
            addr: s.value,
            name: s.name.clone(),
            ty: sym_type(s.kind),
        })
        .collect();
    syms.sort();
    absolute.sort();
    if !syms.iter().any(|s| s.addr == 0) {
        // objdump invents a label named after the section.
        syms.insert(
            0,
            Sym {
                addr: 0,
                name: sec.name.to_string(),
                ty: STT_FUNC,
            },
        );
    }
    let mut relocs: Vec<&Reloc> = sec.relocs.iter().collect();
    relocs.sort_by_key(|r| r.offset);
    let mut rel = 0usize;
    let core_relos = core.map(|c| c.for_section(&sec.name)).unwrap_or(&[]);

    // The name objdump puts in `<...>` after a jump to byte `target`.
    let hint = |target: u64| -> Option<String> {
        let last = |list: &[Sym]| {
            let n = list.partition_point(|s| s.addr <= target);
            n.checked_sub(1).and_then(|i| list.get(i).cloned())
        };
        let s = last(&syms).or_else(|| last(&absolute))?;
        let d = target.wrapping_sub(s.addr);
        Some(if d == 0 {
            format!(" <{}>", s.name)
        } else {
            format!(" <{}+{d:#x}>", s.name)
        })
    };

    let mut printed_section = false;
    let mut si = 0usize;
    while si < syms.len() {
        let first = si;
        let start = syms[si].addr;
        while si < syms.len() && syms[si].addr == start {
            si += 1;
        }
        let here = &syms[first..si];
        let mut end = sect_size;
        if let Some(next) = syms.get(si) {
            end = end.min(next.addr);
        }
        if start >= end {
            continue;
        }
        let code_at = here
            .iter()
            .rposition(|s| s.ty != STT_OBJECT && s.ty != STT_COMMON);
        let shown = &here[code_at.unwrap_or(here.len() - 1)];
        if !printed_section {
            printed_section = true;
            writeln!(out, "\nDisassembly of section {}:", sec.name)?;
        }
        writeln!(out, "\n{start:016x} <{}>:", shown.name)?;
        // Both bounds are within the section: end <= sect_size.
        let (start, end) = (start as usize, end as usize);
        if code_at.is_none() {
            dump_data(out, bytes, start, end)?;
            continue;
        }
        while relocs.get(rel).is_some_and(|r| r.offset < start as u64) {
            rel += 1;
        }
        let mut index = start;
        while index < end {
            let mut max = end - index;
            if let Some(r) = relocs.get(rel) {
                max = max.min(r.offset.saturating_sub(index as u64) as usize);
            }
            let window = bytes.get(index..index + max).unwrap_or(&[]);
            let zeros = skippable_zeros(window);
            if zeros > 0 {
                out.write_all(b"\t\t...\n")?;
                index += zeros;
                continue;
            }
            let rest = bytes.get(index..).unwrap_or(&[]);
            let decoded = decode_llvm(rest, obj.endian);
            let size = match &decoded {
                Decoded::Insn { size, .. } => *size as usize,
                Decoded::Unknown { size: 0 } => 1,
                Decoded::Unknown { size } => *size as usize,
            };
            write!(out, "{:>8}:\t", index / 8)?;
            match decoded {
                Decoded::Insn { text, branch, .. } => {
                    out.write_all(text.as_bytes())?;
                    if let Some(delta) = branch {
                        let target = (index as u64)
                            .wrapping_add(size as u64)
                            .wrapping_add((delta as u64).wrapping_mul(size as u64));
                        if let Some(h) = hint(target) {
                            out.write_all(h.as_bytes())?;
                        }
                    }
                }
                Decoded::Unknown { .. } => out.write_all(b"<unknown>")?,
            }
            out.write_all(b"\n")?;
            if let Some(c) = core {
                let at = core_relos.partition_point(|r| u64::from(r.insn_off) < index as u64);
                if let Some(r) = core_relos.get(at).filter(|r| r.insn_off as usize == index) {
                    writeln!(out, "\t\t{index:016x}:  CO-RE {}", c.describe(r))?;
                }
            }
            while let Some(r) = relocs.get(rel) {
                if r.offset >= (index + size) as u64 {
                    break;
                }
                if r.offset >= index as u64 {
                    writeln!(
                        out,
                        "\t\t{:016x}:  {}\t{}",
                        r.offset,
                        reloc_name(r.kind),
                        reloc_value(obj, r)
                    )?;
                }
                rel += 1;
            }
            index += size;
        }
    }
    Ok(())
}

/// The whole object as `llvm-objdump -dr --no-show-raw-insn` lists it,
/// without the file header line ([`file_header`]).
pub fn disasm(obj: &Object) -> String {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = Listing::from_object(obj).write_text(&mut out);
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

impl Listing<'_> {
    /// The listing of [`disasm`], written section by section.
    pub fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        for sec in &self.sections {
            if sec.is_listed() {
                disasm_section(out, self, sec, self.core.as_ref())?;
            }
        }
        Ok(())
    }
}
