//! Disassembly in llvm-objdump's BPF syntax.
//!
//! [`insn_text`] renders one instruction exactly as `llvm-objdump-19 -d
//! --no-show-raw-insn` does, including its decoder's quirks: registers above
//! r11 and unassigned opcodes are `<unknown>`, fields the decoder ignores are
//! ignored, 32-bit loads print with `r` registers (objdump's default CPU has
//! no ALU32 decoder table), and so on. [`disasm`] renders a whole object like
//! `llvm-objdump-19 -dr --no-show-raw-insn`, minus the leading
//! `FILE:\tfile format elf64-bpf` line (see [`file_header`]): it walks the
//! section bytes the way objdump does, so zero runs (`...`), misaligned
//! leftovers and relocation lines come out the same.
//!
//! The `CO-RE <kind> [id] type::field (access)` lines objdump adds from
//! `.BTF.ext` are rendered too, from the raw `.BTF`/`.BTF.ext` section bytes
//! read the way llvm's `BTFParser` reads them.

use std::fmt::Write as _;

use crate::model::insn::*;
use crate::model::object::{Object, Reloc, RelocKind, Section, SymbolKind, SymbolPlace};
use crate::model::Endian;
use crate::read::insn::decode_slot;
use crate::write::insn::encode;

/// `sh_flags` bit of executable sections, the ones objdump disassembles.
const SHF_EXECINSTR: u64 = 0x4;
const SHT_NOBITS: u32 = 8;
// ELF symbol types objdump treats as data.
const STT_OBJECT: u8 = 1;
const STT_FUNC: u8 = 2;
const STT_COMMON: u8 = 5;

/// What llvm's BPF decoder makes of the bytes at some position.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Decoded {
    /// An instruction of `size` bytes (8 or 16); `branch` is the signed slot
    /// distance for instructions objdump resolves a target for.
    Insn {
        text: String,
        size: u64,
        branch: Option<i64>,
    },
    /// Not decodable; `size` is how far objdump moves on (8, or 0 when the
    /// bytes ran out, which objdump turns into 1).
    Unknown { size: u64 },
}

/// `rN`/`wN`, or `None` for registers the decoder rejects (above r11).
fn reg(r: u8, w: bool) -> Option<String> {
    if r > 11 {
        return None;
    }
    Some(format!("{}{r}", if w { 'w' } else { 'r' }))
}

/// An immediate as llvm's `formatImm` prints it in hex mode.
fn imm(v: i64) -> String {
    if v < 0 {
        format!("-{:#x}", v.unsigned_abs())
    } else {
        format!("{v:#x}")
    }
}

/// A branch displacement: always signed.
fn disp(v: i64) -> String {
    if v < 0 {
        format!("-{:#x}", v.unsigned_abs())
    } else {
        format!("+{v:#x}")
    }
}

/// A memory operand `rN + 0xoff` (without parentheses).
fn mem(base: u8, off: i16) -> Option<String> {
    let r = reg(base, false)?;
    let off = i64::from(off);
    Some(if off < 0 {
        format!("{r} - {:#x}", off.unsigned_abs())
    } else {
        format!("{r} + {off:#x}")
    })
}

fn size_name(size: u8) -> &'static str {
    match size {
        BPF_W => "32",
        BPF_H => "16",
        BPF_B => "8",
        _ => "64",
    }
}

fn alu_op(op: u8) -> Option<&'static str> {
    Some(match op {
        BPF_ADD => "+",
        BPF_SUB => "-",
        BPF_MUL => "*",
        BPF_DIV => "/",
        BPF_OR => "|",
        BPF_AND => "&",
        BPF_LSH => "<<",
        BPF_RSH => ">>",
        BPF_MOD => "%",
        BPF_XOR => "^",
        BPF_ARSH => "s>>",
        _ => return None,
    })
}

fn jmp_op(op: u8) -> Option<&'static str> {
    Some(match op {
        BPF_JEQ => "==",
        BPF_JGT => ">",
        BPF_JGE => ">=",
        BPF_JSET => "&",
        BPF_JNE => "!=",
        BPF_JSGT => "s>",
        BPF_JSGE => "s>=",
        BPF_JLT => "<",
        BPF_JLE => "<=",
        BPF_JSLT => "s<",
        BPF_JSLE => "s<=",
        _ => return None,
    })
}

fn alu(i: &Insn) -> Option<String> {
    let w = i.class() == BPF_ALU;
    let x = i.source() == BPF_X;
    let d = reg(i.dst, w)?;
    match i.op() {
        BPF_NEG => {
            if x {
                return None;
            }
            Some(format!("{d} = -{d}"))
        }
        BPF_END => {
            let name = match (w, x) {
                (true, false) => "le",
                (true, true) => "be",
                (false, false) => "bswap",
                (false, true) => return None,
            };
            if !matches!(i.imm, 16 | 32 | 64) {
                return None;
            }
            let r = reg(i.dst, false)?;
            Some(format!("{r} = {name}{} {r}", i.imm))
        }
        BPF_MOV => {
            if !x {
                return (i.off == 0).then(|| format!("{d} = {}", imm(i64::from(i.imm))));
            }
            let s = reg(i.src, w)?;
            match (i.off, w) {
                (0, _) => Some(format!("{d} = {s}")),
                (8 | 16, _) | (32, false) => Some(format!("{d} = (s{}){s}", i.off)),
                (1, false) => {
                    let (dst_as, src_as) = i.addr_spaces();
                    Some(format!(
                        "{d} = addr_space_cast({s}, {dst_as:#x}, {src_as:#x})"
                    ))
                }
                _ => None,
            }
        }
        op => {
            let sym = alu_op(op)?;
            let signed = match (op, i.off) {
                (_, 0) => "",
                (BPF_DIV | BPF_MOD, 1) => "s",
                _ => return None,
            };
            let rhs = if x {
                reg(i.src, w)?
            } else {
                imm(i64::from(i.imm))
            };
            Some(format!("{d} {signed}{sym}= {rhs}"))
        }
    }
}

/// Jumps; the second value is the branch displacement objdump resolves.
fn jmp(i: &Insn) -> Option<(String, Option<i64>)> {
    let w = i.class() == BPF_JMP32;
    let x = i.source() == BPF_X;
    match (i.op(), w, x) {
        (BPF_JA, false, false) => Some((
            format!("goto {}", disp(i64::from(i.off))),
            Some(i64::from(i.off)),
        )),
        (BPF_JA, true, false) => Some((
            format!("gotol {}", disp(i64::from(i.imm))),
            Some(i64::from(i.imm)),
        )),
        (BPF_CALL, false, false) => Some((format!("call {}", imm(i64::from(i.imm))), None)),
        (BPF_CALL, false, true) => Some((format!("callx {}", reg(i.dst, false)?), None)),
        (BPF_EXIT, false, false) => (i.imm == 0).then(|| ("exit".to_string(), None)),
        (BPF_JCOND, false, false) => Some((
            format!("may_goto {}", disp(i64::from(i.off))),
            Some(i64::from(i.off)),
        )),
        (op, _, _) => {
            let cc = jmp_op(op)?;
            let d = reg(i.dst, w)?;
            let rhs = if x {
                reg(i.src, w)?
            } else {
                imm(i64::from(i.imm))
            };
            let off = i64::from(i.off);
            Some((format!("if {d} {cc} {rhs} goto {}", disp(off)), Some(off)))
        }
    }
}

fn ld(i: &Insn) -> Option<String> {
    let size = match i.size() {
        BPF_DW => return None,
        s => size_name(s),
    };
    match i.mode() {
        BPF_ABS => Some(format!("r0 = *(u{size} *)skb[{}]", imm(i64::from(i.imm)))),
        BPF_IND => Some(format!("r0 = *(u{size} *)skb[{}]", reg(i.src, false)?)),
        _ => None,
    }
}

fn ldx(i: &Insn) -> Option<String> {
    let sign = match i.mode() {
        BPF_MEM => 'u',
        BPF_MEMSX if i.size() != BPF_DW => 's',
        _ => return None,
    };
    let d = reg(i.dst, false)?;
    let m = mem(i.src, i.off)?;
    Some(format!("{d} = *({sign}{} *)({m})", size_name(i.size())))
}

fn st(i: &Insn) -> Option<String> {
    if i.mode() != BPF_MEM {
        return None;
    }
    let m = mem(i.dst, i.off)?;
    Some(format!(
        "*(u{} *)({m}) = {}",
        size_name(i.size()),
        imm(i64::from(i.imm))
    ))
}

fn stx(i: &Insn) -> Option<String> {
    let m = mem(i.dst, i.off)?;
    let s = reg(i.src, false)?;
    let size = size_name(i.size());
    match (i.mode(), i.size()) {
        (BPF_MEM, _) => Some(format!("*(u{size} *)({m}) = {s}")),
        // Without ALU32 the decoder knows only the plain 32-bit add, and
        // looks at the operation nibble alone.
        (BPF_ATOMIC, BPF_W) => {
            ((i.imm & 0xf0) == BPF_ATOMIC_ADD).then(|| format!("lock *(u32 *)({m}) += {s}"))
        }
        (BPF_ATOMIC, BPF_DW) => {
            // Only the low byte of imm is decoded.
            let op = i.imm & 0xf0;
            let fetch = (i.imm & 0x0f) == BPF_FETCH;
            let name = match op {
                BPF_ATOMIC_ADD => ("add", "+"),
                BPF_ATOMIC_OR => ("or", "|"),
                BPF_ATOMIC_AND => ("and", "&"),
                BPF_ATOMIC_XOR => ("xor", "^"),
                0xe0 if fetch => return Some(format!("{s} = xchg_64({m}, {s})")),
                0xf0 if fetch => return Some(format!("r0 = cmpxchg_64({m}, r0, {s})")),
                _ => return None,
            };
            Some(if fetch {
                format!("{s} = atomic_fetch_{}((u64 *)({m}), {s})", name.0)
            } else {
                format!("lock *(u64 *)({m}) {}= {s}", name.1)
            })
        }
        _ => None,
    }
}

/// Decodes like llvm's BPF disassembler at the start of `bytes`.
fn decode_llvm(bytes: &[u8], endian: Endian) -> Decoded {
    let Some(slot) = bytes.get(..INSN_SIZE) else {
        return Decoded::Unknown { size: 0 };
    };
    let mut b = [0u8; INSN_SIZE];
    b.copy_from_slice(slot);
    let i = decode_slot(b, endian);
    let next = bytes.get(INSN_SIZE..2 * INSN_SIZE).map(|s| {
        let mut b = [0u8; INSN_SIZE];
        b.copy_from_slice(s);
        decode_slot(b, endian)
    });
    match text_and_branch(&i, next.as_ref()) {
        Ok((text, branch)) => Decoded::Insn {
            text,
            size: if i.is_ld_imm64() { 16 } else { 8 },
            branch,
        },
        Err(size) => Decoded::Unknown { size },
    }
}

/// The text and branch displacement, or the byte count objdump skips.
fn text_and_branch(i: &Insn, next: Option<&Insn>) -> Result<(String, Option<i64>), u64> {
    let plain = |t: Option<String>| t.map(|t| (t, None)).ok_or(8u64);
    match i.class() {
        BPF_LD if i.code == LD_IMM64 => {
            if i.off != 0 {
                return Err(8);
            }
            let d = reg(i.dst, false).ok_or(8u64)?;
            // The decoder succeeds first, then finds the second slot missing.
            let hi = next.ok_or(0u64)?;
            if i.src == 0 {
                Ok((format!("{d} = {} ll", imm(imm64(i, hi) as i64)), None))
            } else {
                Ok((
                    format!("ld_pseudo\t{d}, {:#x}, {:#x}", i.src, i.imm as u32),
                    None,
                ))
            }
        }
        BPF_LD => plain(ld(i)),
        BPF_LDX => plain(ldx(i)),
        BPF_ST => plain(st(i)),
        BPF_STX => plain(stx(i)),
        BPF_ALU | BPF_ALU64 => plain(alu(i)),
        _ => jmp(i).ok_or(8),
    }
}

/// One instruction as llvm-objdump prints it (without the target hint it
/// appends to jumps), or `None` where it prints `<unknown>`. `next` is the
/// following slot, which an `ld_imm64` needs.
pub fn insn_text(insn: &Insn, next: Option<&Insn>) -> Option<String> {
    text_and_branch(insn, next).ok().map(|(t, _)| t)
}

/// The slot at `index` of `insns` as llvm-objdump prints it, `<unknown>`
/// included (an `ld_imm64` reads its second half from `index + 1`).
pub fn format_insn(insns: &[Insn], index: usize) -> String {
    match insns.get(index) {
        Some(i) => insn_text(i, insns.get(index + 1)).unwrap_or_else(|| "<unknown>".into()),
        None => "<unknown>".into(),
    }
}

/// One listing line per logical instruction, as `llvm-objdump -d
/// --no-show-raw-insn` prints a section without symbols or relocations:
/// `{index:>8}:\t{text}`, second halves of `ld_imm64` skipped. Unlike
/// [`disasm`] this works on slots, so zero slots are shown, not elided.
pub fn listing(insns: &[Insn]) -> String {
    let mut out = String::new();
    let mut i = 0usize;
    while i < insns.len() {
        let slot = &insns[i];
        let _ = writeln!(out, "{i:>8}:\t{}", format_insn(insns, i));
        i += if slot.is_ld_imm64() && insn_text(slot, insns.get(i + 1)).is_some() {
            2
        } else {
            1
        };
    }
    out
}

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

/// Relocation type names as llvm prints them.
fn reloc_name(kind: RelocKind) -> String {
    match kind {
        RelocKind::Unknown(_) => "Unknown".into(),
        k => k.name(),
    }
}

/// The value column of a relocation: the symbol's name, a section
/// symbol's section name, or `*ABS*` without a symbol.
fn reloc_value(obj: &Object, r: &Reloc) -> String {
    if r.symbol.0 == 0 {
        return "*ABS*".into();
    }
    let Some(sym) = obj.symbol(r.symbol) else {
        return format!("<symbol {}>", r.symbol.0);
    };
    if sym.kind == SymbolKind::Section {
        if let SymbolPlace::Section(id) = sym.place {
            if let Some(s) = obj.section(id) {
                return s.name.clone();
            }
        }
    }
    sym.name.clone()
}

/// The bytes objdump reads for a section: the slots when the model has
/// them (they may have been rewritten), else the raw contents.
fn section_bytes(obj: &Object, sec: &Section) -> Vec<u8> {
    if sec.insns.is_empty() {
        sec.data.clone()
    } else {
        encode(&sec.insns, obj.endian)
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
fn dump_data(out: &mut String, bytes: &[u8], start: usize, end: usize) {
    let mut ascii = String::new();
    let mut n = 0usize;
    for index in start..end {
        if n == 0 {
            let _ = write!(out, "{index:8x}:");
        }
        let b = bytes.get(index).copied().unwrap_or(0);
        let _ = write!(out, " {b:02x}");
        ascii.push(if (0x20..0x7f).contains(&b) {
            b as char
        } else {
            '.'
        });
        n += 1;
        if index + 1 == end || n == 8 {
            let pad = 3 * (8 - n);
            let _ = writeln!(out, "{}         {ascii}", " ".repeat(pad));
            ascii.clear();
            n = 0;
        }
    }
}

fn disasm_section(out: &mut String, obj: &Object, sec: &Section, core: Option<&core::CoreNotes>) {
    let bytes = section_bytes(obj, sec);
    let sect_size = bytes.len() as u64;
    if sect_size == 0 {
        return;
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
                name: sec.name.clone(),
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
            let _ = writeln!(out, "\nDisassembly of section {}:", sec.name);
        }
        let _ = writeln!(out, "\n{start:016x} <{}>:", shown.name);
        // Both bounds are within the section: end <= sect_size.
        let (start, end) = (start as usize, end as usize);
        if code_at.is_none() {
            dump_data(out, &bytes, start, end);
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
                out.push_str("\t\t...\n");
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
            let _ = write!(out, "{:>8}:\t", index / 8);
            match decoded {
                Decoded::Insn { text, branch, .. } => {
                    out.push_str(&text);
                    if let Some(delta) = branch {
                        let target = (index as u64)
                            .wrapping_add(size as u64)
                            .wrapping_add((delta as u64).wrapping_mul(size as u64));
                        if let Some(h) = hint(target) {
                            out.push_str(&h);
                        }
                    }
                }
                Decoded::Unknown { .. } => out.push_str("<unknown>"),
            }
            out.push('\n');
            if let Some(c) = core {
                let at = core_relos.partition_point(|r| u64::from(r.insn_off) < index as u64);
                if let Some(r) = core_relos.get(at).filter(|r| r.insn_off as usize == index) {
                    let _ = writeln!(out, "\t\t{index:016x}:  CO-RE {}", c.describe(r));
                }
            }
            while let Some(r) = relocs.get(rel) {
                if r.offset >= (index + size) as u64 {
                    break;
                }
                if r.offset >= index as u64 {
                    let _ = writeln!(
                        out,
                        "\t\t{:016x}:  {}\t{}",
                        r.offset,
                        reloc_name(r.kind),
                        reloc_value(obj, r)
                    );
                }
                rel += 1;
            }
            index += size;
        }
    }
}

/// The whole object as `llvm-objdump -dr --no-show-raw-insn` lists it,
/// without the file header line ([`file_header`]).
pub fn disasm(obj: &Object) -> String {
    let mut out = String::new();
    let core = core::CoreNotes::from_object(obj);
    for sec in &obj.sections {
        if sec.sh_flags & SHF_EXECINSTR != 0 && sec.sh_type != SHT_NOBITS {
            disasm_section(&mut out, obj, sec, core.as_ref());
        }
    }
    out
}

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

/// CO-RE relocation descriptions as llvm-objdump prints them, from the raw
/// `.BTF` and `.BTF.ext` sections. Kept private and minimal: the full BTF
/// model lives in `model::btf`; this only mirrors what objdump's parser
/// reads, including where it gives up.
mod core {
    use std::collections::HashMap;

    use crate::model::object::Object;
    use crate::model::Endian;

    const BTF_MAGIC: u16 = 0xeb9f;
    const KIND_ARRAY: u32 = 3;
    const KIND_STRUCT: u32 = 4;
    const KIND_UNION: u32 = 5;
    const KIND_ENUM: u32 = 6;
    const KIND_FWD: u32 = 7;
    const KIND_TYPEDEF: u32 = 8;
    const KIND_VOLATILE: u32 = 9;
    const KIND_CONST: u32 = 10;
    const KIND_RESTRICT: u32 = 11;
    const KIND_TYPE_TAG: u32 = 18;
    const KIND_ENUM64: u32 = 19;

    /// One `struct btf_type` with its trailing words.
    struct Type {
        name_off: u32,
        info: u32,
        size_or_type: u32,
        extra: Vec<u32>,
    }

    impl Type {
        fn kind(&self) -> u32 {
            (self.info >> 24) & 0x1f
        }
        fn vlen(&self) -> usize {
            (self.info & 0xffff) as usize
        }
        fn kflag(&self) -> bool {
            self.info >> 31 != 0
        }
        /// Word `i` of member/value record `n` of `width` words.
        fn word(&self, n: usize, width: usize, i: usize) -> u32 {
            self.extra.get(n * width + i).copied().unwrap_or(0)
        }
    }

    #[derive(Clone, Copy, Debug)]
    pub(super) struct Relo {
        pub insn_off: u32,
        type_id: u32,
        spec_off: u32,
        kind: u32,
    }

    pub(super) struct CoreNotes {
        strings: Vec<u8>,
        types: Vec<Type>,
        relos: HashMap<String, Vec<Relo>>,
    }

    /// Bytes `[start, end)` clamped like llvm's `StringRef::slice`.
    fn slice(data: &[u8], start: u32, end: u32) -> &[u8] {
        let start = (start as usize).min(data.len());
        let end = (end as usize).clamp(start, data.len());
        &data[start..end]
    }

    struct Reader<'a> {
        data: &'a [u8],
        pos: usize,
        endian: Endian,
    }

    impl Reader<'_> {
        /// A reader past the header start that .BTF and .BTF.ext share
        /// (magic, version 1, flags, a header length of at least 8), and
        /// that length.
        fn header(data: &[u8], endian: Endian) -> Option<(Reader<'_>, u32)> {
            let mut r = Reader {
                data,
                pos: 0,
                endian,
            };
            if r.u16()? != BTF_MAGIC || r.u8()? != 1 {
                return None;
            }
            r.u8()?;
            let hdr_len = r.u32()?;
            (hdr_len >= 8).then_some((r, hdr_len))
        }
        fn u32(&mut self) -> Option<u32> {
            let b = self.data.get(self.pos..self.pos.checked_add(4)?)?;
            self.pos += 4;
            Some(self.endian.read_u32([b[0], b[1], b[2], b[3]]))
        }
        fn u16(&mut self) -> Option<u16> {
            let b = self.data.get(self.pos..self.pos.checked_add(2)?)?;
            self.pos += 2;
            Some(self.endian.read_u16([b[0], b[1]]))
        }
        fn u8(&mut self) -> Option<u8> {
            let b = *self.data.get(self.pos)?;
            self.pos += 1;
            Some(b)
        }
    }

    fn words_after(kind: u32, vlen: usize) -> usize {
        match kind {
            1 | 14 | 17 => 1,
            KIND_ARRAY => 3,
            KIND_STRUCT | KIND_UNION | 15 => 3 * vlen,
            KIND_ENUM | 13 => 2 * vlen,
            KIND_ENUM64 => 3 * vlen,
            _ => 0,
        }
    }

    impl CoreNotes {
        /// `None` where objdump prints no CO-RE lines: no `.BTF` or
        /// `.BTF.ext` section, or one it fails to parse before the records.
        pub(super) fn from_object(obj: &Object) -> Option<CoreNotes> {
            // The reader keeps BTF parsed and BTF.ext raw; objdump reads the
            // section bytes, which these are again.
            let btf = crate::write::btf::to_bytes(obj.btf.as_ref()?);
            let ext = match &obj.btf_ext_raw {
                Some(raw) => raw.clone(),
                None if obj
                    .sections
                    .iter()
                    .any(|s| s.kind == crate::model::object::SectionKind::BtfExt) =>
                {
                    crate::write::btf_ext::from_sections(obj, obj.btf.as_ref()?).ok()?
                }
                None => return None,
            };
            let endian = obj.endian;
            let mut notes = CoreNotes {
                strings: Vec::new(),
                types: Vec::new(),
                relos: HashMap::new(),
            };
            notes.parse_btf(&btf, endian)?;
            notes.parse_ext(&ext, endian);
            Some(notes)
        }

        fn parse_btf(&mut self, data: &[u8], endian: Endian) -> Option<()> {
            let (mut r, hdr_len) = Reader::header(data, endian)?;
            let (type_off, type_len, str_off, str_len) = (r.u32()?, r.u32()?, r.u32()?, r.u32()?);
            let str_start = hdr_len.wrapping_add(str_off);
            let str_end = str_start.wrapping_add(str_len);
            let types_start = hdr_len.wrapping_add(type_off);
            let types_end = types_start.wrapping_add(type_len);
            if (data.len() as u64) < u64::from(str_end.max(types_end)) {
                return None;
            }
            self.strings = slice(data, str_start, str_end).to_vec();
            // Type 0 is void.
            self.types.push(Type {
                name_off: 0,
                info: 0,
                size_or_type: 0,
                extra: Vec::new(),
            });
            if type_len == 0 {
                return Some(());
            }
            let raw = slice(data, types_start, types_end);
            let mut r = Reader {
                data: raw,
                pos: 0,
                endian,
            };
            while r.pos < raw.len() {
                let (name_off, info, size_or_type) = (r.u32()?, r.u32()?, r.u32()?);
                let n = words_after((info >> 24) & 0x1f, (info & 0xffff) as usize);
                if raw.len() - r.pos < n * 4 {
                    return None;
                }
                let extra = (0..n).map(|_| r.u32()).collect::<Option<Vec<u32>>>()?;
                self.types.push(Type {
                    name_off,
                    info,
                    size_or_type,
                    extra,
                });
            }
            Some(())
        }

        /// Reads the CO-RE records; stops at the first error, keeping the
        /// records read so far, as objdump does.
        fn parse_ext(&mut self, data: &[u8], endian: Endian) -> Option<()> {
            let (mut r, hdr_len) = Reader::header(data, endian)?;
            let _func = (r.u32()?, r.u32()?);
            let _line = (r.u32()?, r.u32()?);
            let (off, len) = (r.u32()?, r.u32()?);
            if len == 0 {
                return Some(());
            }
            let start = hdr_len.wrapping_add(off);
            let end = start.wrapping_add(len) as usize;
            r.pos = start as usize;
            let rec_size = r.u32()? as usize;
            if rec_size < 16 {
                return None;
            }
            while r.pos < end {
                let sec = self.string(r.u32()?).to_string();
                let count = r.u32()?;
                let mut list = Vec::new();
                for _ in 0..count {
                    let at = r.pos;
                    let rec = (r.u32(), r.u32(), r.u32(), r.u32());
                    let (Some(insn_off), Some(type_id), Some(spec_off), Some(kind)) = rec else {
                        self.sort_relos();
                        self.relos.entry(sec).or_default().extend(list);
                        return None;
                    };
                    list.push(Relo {
                        insn_off,
                        type_id,
                        spec_off,
                        kind,
                    });
                    r.pos = at.checked_add(rec_size)?;
                }
                self.relos.entry(sec).or_default().extend(list);
            }
            self.sort_relos();
            Some(())
        }

        /// Every section's records by instruction, stably: sorting once at
        /// the end orders them as sorting after each set would, without
        /// the quadratic cost of many small sets.
        fn sort_relos(&mut self) {
            for list in self.relos.values_mut() {
                list.sort_by_key(|r| r.insn_off);
            }
        }

        pub(super) fn for_section(&self, name: &str) -> &[Relo] {
            self.relos.get(name).map(Vec::as_slice).unwrap_or(&[])
        }

        fn string(&self, off: u32) -> &str {
            let s = self.strings.get(off as usize..).unwrap_or(&[]);
            let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
            std::str::from_utf8(&s[..end]).unwrap_or("")
        }

        fn name_or_anon(&self, off: u32, idx: u32) -> String {
            match self.string(off) {
                "" => format!("<anon {idx}>"),
                s => s.to_string(),
            }
        }

        fn ty(&self, id: u32) -> Option<&Type> {
            self.types.get(id as usize)
        }

        /// Follows modifiers and typedefs (bounded, where llvm would loop).
        fn skip_mods_and_typedefs<'a>(&'a self, mut t: &'a Type) -> &'a Type {
            for _ in 0..64 {
                let k = t.kind();
                if !(is_mod(k) || k == KIND_TYPEDEF) {
                    break;
                }
                match self.ty(t.size_or_type) {
                    Some(base) => t = base,
                    None => break,
                }
            }
            t
        }

        /// The text after `CO-RE `.
        pub(super) fn describe(&self, r: &Relo) -> String {
            let spec_str = self.string(r.spec_off);
            let kind = kind_name(r.kind);
            let fail = |msg: String| format!("{kind} [{}] '{spec_str}' <{msg}>", r.type_id);
            let mut spec = Vec::new();
            let mut rest = spec_str;
            while !rest.is_empty() {
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                let Ok(v) = rest[..digits].parse::<u64>() else {
                    return fail("spec string is not a number".into());
                };
                spec.push(v as u32);
                rest = &rest[digits..];
                match rest.chars().next() {
                    None => break,
                    Some(':') => rest = &rest[1..],
                    Some(c) => return fail(format!("unexpected spec string delimiter: '{c}'")),
                }
            }
            let mut out = kind.clone();
            let mut cur = r.type_id;
            let Some(mut t) = self.ty(cur) else {
                return fail(format!("unknown type id: {}", cur as i32));
            };
            out.push_str(&format!(" [{cur}]"));
            let mut chain = 0;
            while let Some(m) = self.modifier(t) {
                out.push_str(&m);
                if chain >= 32 {
                    return fail("modifiers chain is too long".into());
                }
                chain += 1;
                cur = t.size_or_type;
                let Some(next) = self.ty(cur) else {
                    return fail(format!(
                        "unknown type id: {} in modifiers chain",
                        cur as i32
                    ));
                };
                t = next;
            }
            if cur == 0 {
                out.push_str(" void");
            } else {
                out.push_str(match t.kind() {
                    KIND_TYPEDEF => " typedef",
                    KIND_STRUCT => " struct",
                    KIND_UNION => " union",
                    KIND_ENUM | KIND_ENUM64 => " enum",
                    KIND_FWD if t.kflag() => " fwd union",
                    KIND_FWD => " fwd struct",
                    _ => "",
                });
                out.push(' ');
                out.push_str(&self.name_or_anon(t.name_off, cur));
            }
            match r.kind {
                // Type-based: the access string must be "0".
                6..=9 | 12 => {
                    if spec != [0] {
                        return fail("unexpected type-based relocation spec: should be '0'".into());
                    }
                    out
                }
                10 | 11 => {
                    out.push_str("::");
                    let t = self.skip_mods_and_typedefs(t);
                    if spec.len() != 1 {
                        return fail("unexpected enumval relocation spec size".into());
                    }
                    let idx = spec[0];
                    let i = idx as usize;
                    let (name_off, val) = match t.kind() {
                        KIND_ENUM if i < t.vlen() => {
                            (t.word(i, 2, 0), t.word(i, 2, 1) as i32 as i64 as u64)
                        }
                        KIND_ENUM64 if i < t.vlen() => (
                            t.word(i, 3, 0),
                            u64::from(t.word(i, 3, 2)) << 32 | u64::from(t.word(i, 3, 1)),
                        ),
                        KIND_ENUM | KIND_ENUM64 => {
                            return fail(format!("bad value index: {}", idx as i32))
                        }
                        k => return fail(format!("unexpected type kind for enum relocation: {k}")),
                    };
                    out.push_str(&self.name_or_anon(name_off, idx));
                    if t.kflag() {
                        out.push_str(&format!(" = {}", val as i64));
                    } else {
                        out.push_str(&format!(" = {val}"));
                    }
                    out
                }
                0..=5 => {
                    out.push_str("::");
                    let Some(&first) = spec.first() else {
                        return fail("field spec too short".into());
                    };
                    if first != 0 {
                        out.push_str(&format!("[{first}]"));
                    }
                    for (n, &idx) in spec.iter().enumerate().skip(1) {
                        let s = self.skip_mods_and_typedefs(t);
                        let i = idx as usize;
                        match s.kind() {
                            KIND_STRUCT | KIND_UNION => {
                                if s.vlen() <= i {
                                    return fail(format!(
                                        "member index {} for spec sub-string {n} is out of range",
                                        idx as i32
                                    ));
                                }
                                if n != 1 || first != 0 {
                                    out.push('.');
                                }
                                out.push_str(&self.name_or_anon(s.word(i, 3, 0), idx));
                                let mt = s.word(i, 3, 1);
                                let Some(next) = self.ty(mt) else {
                                    return fail(format!(
                                        "unknown member type id {} for spec sub-string {n}",
                                        mt as i32
                                    ));
                                };
                                t = next;
                            }
                            KIND_ARRAY => {
                                out.push_str(&format!("[{idx}]"));
                                let et = s.word(0, 3, 0);
                                let Some(next) = self.ty(et) else {
                                    return fail(format!(
                                        "unknown element type id {} for spec sub-string {n}",
                                        et as i32
                                    ));
                                };
                                t = next;
                            }
                            k => {
                                return fail(format!(
                                    "unexpected type kind {k} for spec sub-string {n}"
                                ))
                            }
                        }
                    }
                    out.push_str(&format!(" ({spec_str})"));
                    out
                }
                k => fail(format!("unknown relocation kind: {}", k as i32)),
            }
        }

        fn modifier(&self, t: &Type) -> Option<String> {
            Some(match t.kind() {
                KIND_CONST => " const".into(),
                KIND_VOLATILE => " volatile".into(),
                KIND_RESTRICT => " restrict".into(),
                KIND_TYPE_TAG => format!(" type_tag(\"{}\")", self.string(t.name_off)),
                _ => return None,
            })
        }
    }

    fn is_mod(kind: u32) -> bool {
        matches!(
            kind,
            KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG
        )
    }

    fn kind_name(kind: u32) -> String {
        let name = match kind {
            0 => "byte_off",
            1 => "byte_sz",
            2 => "field_exists",
            3 => "signed",
            4 => "lshift_u64",
            5 => "rshift_u64",
            6 => "local_type_id",
            7 => "target_type_id",
            8 => "type_exists",
            12 => "type_matches",
            9 => "type_size",
            10 => "enumval_exists",
            11 => "enumval_value",
            k => return format!("<reloc kind #{k}>"),
        };
        format!("<{name}>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::object::{
        Binding, Section, SectionId, SectionKind, Symbol, SymbolId, Visibility,
    };

    fn text(i: Insn) -> String {
        insn_text(&i, None).unwrap_or_else(|| "<unknown>".into())
    }

    // Expected strings below were taken from llvm-objdump-19 output.
    #[test]
    fn formats_like_llvm_objdump() {
        assert_eq!(text(Insn::mov64_imm(0, 2)), "r0 = 0x2");
        assert_eq!(text(Insn::mov64_imm(1, -4)), "r1 = -0x4");
        assert_eq!(text(Insn::load(BPF_W, 1, 1, 4)), "r1 = *(u32 *)(r1 + 0x4)");
        assert_eq!(
            text(Insn::store_imm(BPF_W, 10, -4, 0)),
            "*(u32 *)(r10 - 0x4) = 0x0"
        );
        assert_eq!(
            text(Insn::jmp_imm(BPF_JGT, 1, 5, 3)),
            "if r1 > 0x5 goto +0x3"
        );
        assert_eq!(
            text(Insn::new(BPF_JMP32 | BPF_JSGT | BPF_K, 7, 0, 1, 0x4d)),
            "if w7 s> 0x4d goto +0x1"
        );
        assert_eq!(text(Insn::call_helper(1)), "call 0x1");
        assert_eq!(text(Insn::call_pseudo(-1)), "call -0x1");
        assert_eq!(text(Insn::new(CALLX, 3, 0, 0, 0)), "callx r3");
        assert_eq!(text(Insn::exit()), "exit");
        assert_eq!(
            text(Insn::new(BPF_STX | BPF_ATOMIC | BPF_DW, 1, 2, 0, 0)),
            "lock *(u64 *)(r1 + 0x0) += r2"
        );
        assert_eq!(
            text(Insn::new(BPF_STX | BPF_ATOMIC | BPF_DW, 0, 5, 0, BPF_FETCH)),
            "r5 = atomic_fetch_add((u64 *)(r0 + 0x0), r5)"
        );
        assert_eq!(
            text(Insn::new(
                BPF_STX | BPF_ATOMIC | BPF_DW,
                8,
                1,
                0,
                BPF_CMPXCHG
            )),
            "r0 = cmpxchg_64(r8 + 0x0, r0, r1)"
        );
        assert_eq!(
            text(Insn::new(BPF_STX | BPF_ATOMIC | BPF_DW, 0, 6, 0, BPF_XCHG)),
            "r6 = xchg_64(r0 + 0x0, r6)"
        );
        assert_eq!(text(Insn::new(0xd7, 0, 0, 0, 16)), "r0 = bswap16 r0");
        assert_eq!(text(Insn::new(0xdc, 0, 0, 0, 32)), "r0 = be32 r0");
        assert_eq!(text(Insn::mov32_reg(0, 1)), "w0 = w1");
        assert_eq!(text(Insn::new(0xbf, 1, 2, 8, 0)), "r1 = (s8)r2");
        assert_eq!(text(Insn::new(0xbc, 0, 1, 8, 0)), "w0 = (s8)w1");
        assert_eq!(text(Insn::new(0x3f, 3, 2, 1, 0)), "r3 s/= r2");
        assert_eq!(text(Insn::new(0x94, 1, 0, 1, 7)), "w1 s%= 0x7");
        assert_eq!(text(Insn::new(0x81, 1, 2, 0, 0)), "r1 = *(s32 *)(r2 + 0x0)");
        assert_eq!(text(Insn::new(GOTOL, 0, 0, 0, 5)), "gotol +0x5");
        assert_eq!(text(Insn::new(JCOND, 0, 0, 2, 0)), "may_goto +0x2");
        assert_eq!(
            text(Insn::new(0xbf, 1, 2, 1, 1 << 16)),
            "r1 = addr_space_cast(r2, 0x1, 0x0)"
        );
        assert_eq!(text(Insn::new(0x20, 0, 0, 0, 4)), "r0 = *(u32 *)skb[0x4]");
        // The decoder's rejections.
        assert_eq!(text(Insn::mov64_imm(12, 0)), "<unknown>");
        assert_eq!(text(Insn::new(EXIT, 0, 0, 0, 1)), "<unknown>");
        assert_eq!(text(Insn::new(0x00, 0, 0, 0, 0)), "<unknown>");
    }

    #[test]
    fn ld_imm64_reads_the_next_slot() {
        let [a, b] = Insn::ld_imm64(1, 0, 0x1_2345_6789);
        assert_eq!(format_insn(&[a, b], 0), "r1 = 0x123456789 ll");
        let [a, b] = Insn::ld_imm64(0, 0, u64::MAX);
        assert_eq!(format_insn(&[a, b], 0), "r0 = -0x1 ll");
        let [a, b] = Insn::ld_imm64(1, BPF_PSEUDO_MAP_VALUE, 5);
        assert_eq!(format_insn(&[a, b], 0), "ld_pseudo\tr1, 0x2, 0x5");
        // Cut off at the end: objdump cannot decode it.
        assert_eq!(format_insn(&[a], 0), "<unknown>");
        assert_eq!(format_insn(&[a], 7), "<unknown>");
        assert_eq!(
            listing(&[Insn::mov64_imm(0, 2), a, b, Insn::exit()]),
            "       0:\tr0 = 0x2\n       1:\tld_pseudo\tr1, 0x2, 0x5\n       3:\texit\n"
        );
    }

    fn section(id: u32, name: &str, data: Vec<u8>, relocs: Vec<Reloc>) -> Section {
        Section {
            id: SectionId(id),
            name: name.into(),
            kind: SectionKind::Program,
            sh_type: 1,
            sh_flags: 0x6,
            sh_addralign: 8,
            sh_size: data.len() as u64,
            sh_link: 0,
            sh_info: 0,
            sh_entsize: 0,
            data,
            insns: Vec::new(),
            relocs,
            func_info: Vec::new(),
            line_info: Vec::new(),
            core_relos: Vec::new(),
        }
    }

    fn symbol(id: u32, name: &str, kind: SymbolKind, place: SymbolPlace, value: u64) -> Symbol {
        Symbol {
            id: SymbolId(id),
            name: name.into(),
            binding: Binding::Global,
            visibility: Visibility::Default,
            kind,
            place,
            value,
            size: 0,
            st_other: 0,
        }
    }

    #[test]
    fn whole_object_layout() {
        let insns = [
            Insn::jmp_imm(BPF_JEQ, 1, 0, 1),
            Insn::call_pseudo(-1),
            Insn::exit(),
        ];
        let data = encode(&insns, Endian::Little);
        let reloc = Reloc {
            offset: 8,
            kind: RelocKind::Bpf64_32,
            symbol: SymbolId(1),
        };
        let obj = Object {
            endian: Endian::Little,
            sections: vec![
                section(0, "", vec![], vec![]),
                section(1, "xdp", data, vec![reloc]),
            ],
            symbols: vec![
                symbol(0, "", SymbolKind::NoType, SymbolPlace::Undefined, 0),
                symbol(
                    1,
                    "prog",
                    SymbolKind::Func,
                    SymbolPlace::Section(SectionId(1)),
                    0,
                ),
            ],
            btf: None,
            btf_ext_raw: None,
        };
        assert_eq!(
            disasm(&obj),
            "\nDisassembly of section xdp:\n\n0000000000000000 <prog>:\n       \
             0:\tif r1 == 0x0 goto +0x1 <prog+0x10>\n       1:\tcall -0x1\n\
             \t\t0000000000000008:  R_BPF_64_32\tprog\n       2:\texit\n"
        );
        let json = disasm_json(&obj);
        let first = &json["sections"][0]["instructions"][0];
        assert_eq!(first["target"], 2);
        assert_eq!(first["labels"][0], "prog");
        let call = &json["sections"][0]["instructions"][1];
        assert_eq!(call["relocations"][0]["type"], "R_BPF_64_32");
        assert_eq!(call["target"], 1);
    }

    /// Hostile models: random code, symbols, relocations and BTF bytes
    /// must render without panicking.
    #[test]
    fn garbage_never_panics() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..200 {
            let len = (next() % 200) as usize;
            let mut data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Plenty of zero runs and ld_imm64 opcodes.
            for b in data.iter_mut() {
                match next() % 4 {
                    0 => *b = 0,
                    1 if next() % 8 == 0 => *b = 0x18,
                    _ => {}
                }
            }
            let mut btf: Vec<u8> = (0..(next() % 120)).map(|_| next() as u8).collect();
            if btf.len() >= 4 && round % 2 == 0 {
                btf[..4].copy_from_slice(&[0x9f, 0xeb, 1, 0]);
            }
            let mut ext: Vec<u8> = (0..(next() % 120)).map(|_| next() as u8).collect();
            if ext.len() >= 4 && round % 3 == 0 {
                ext[..4].copy_from_slice(&[0x9f, 0xeb, 1, 0]);
            }
            let relocs = (0..next() % 6)
                .map(|_| Reloc {
                    offset: next() % 256,
                    kind: RelocKind::from_raw((next() % 12) as u32),
                    symbol: SymbolId((next() % 6) as u32),
                })
                .collect();
            let kinds = [
                SymbolKind::NoType,
                SymbolKind::Object,
                SymbolKind::Func,
                SymbolKind::Section,
            ];
            let mut symbols = vec![symbol(0, "", SymbolKind::NoType, SymbolPlace::Undefined, 0)];
            for i in 1..5 {
                let place = if next() % 3 == 0 {
                    SymbolPlace::Undefined
                } else {
                    SymbolPlace::Section(SectionId((next() % 5) as u32))
                };
                let kind = kinds[(next() % 4) as usize];
                symbols.push(symbol(i, &format!("s{i}"), kind, place, next() % 300));
            }
            let mut btf_sec = section(2, ".BTF", btf, vec![]);
            btf_sec.sh_flags = 0;
            let mut ext_sec = section(3, ".BTF.ext", ext, vec![]);
            ext_sec.sh_flags = 0;
            let endian = if round % 2 == 0 {
                Endian::Little
            } else {
                Endian::Big
            };
            let obj = Object {
                endian,
                sections: vec![
                    section(0, "", vec![], vec![]),
                    section(1, "prog", data, relocs),
                    btf_sec,
                    ext_sec,
                ],
                symbols,
                btf: None,
                btf_ext_raw: None,
            };
            let _ = disasm(&obj);
            let _ = disasm_json(&obj);
        }
    }
}
