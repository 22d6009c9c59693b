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
//! Not rendered: the `CO-RE <kind> ...` lines llvm-objdump adds after
//! instructions with a BTF.ext CO-RE relocation (they need the BTF model).

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

fn disasm_section(out: &mut String, obj: &Object, sec: &Section) {
    let bytes = section_bytes(obj, sec);
    let sect_size = bytes.len() as u64;
    if sect_size == 0 {
        return;
    }
    let named = |s: &&crate::model::object::Symbol| {
        !s.name.is_empty() && !matches!(s.kind, SymbolKind::Section | SymbolKind::File)
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
    for sec in &obj.sections {
        if sec.sh_flags & SHF_EXECINSTR != 0 && sec.sh_type != SHT_NOBITS {
            disasm_section(&mut out, obj, sec);
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
        if sec.sh_flags & SHF_EXECINSTR == 0 || sec.sh_type == SHT_NOBITS {
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
        let mut insns = Vec::new();
        for l in logical(&sec.insns) {
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
            entry["labels"] = Value::from(
                labels
                    .iter()
                    .filter(|(a, _)| *a == at)
                    .map(|(_, n)| Value::from(*n))
                    .collect::<Vec<_>>(),
            );
            entry["relocations"] = Value::from(
                relocs
                    .iter()
                    .filter(|r| r.offset >= at && r.offset < at + slots * INSN_SIZE as u64)
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
