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
//!
//! Both listings work from a [`Listing`]: made from a parsed [`Object`]
//! ([`disasm`], [`disasm_json`]), or read from a file with only what they
//! show ([`with_file`], what `bpfld disasm` uses), and written section by
//! section to any writer.
//!
//! Files: `format` renders one instruction (no sections, no symbols),
//! `walk` walks sections and symbols into the text listing, `json` gives
//! the same walk as JSON, `reloc` the relocation columns, `lenient_btf`
//! the raw `.BTF`/`.BTF.ext` reading for CO-RE lines and `core_relo` their
//! text.

mod core_relo;
mod format;
mod json;
mod lenient_btf;
mod reloc;
mod walk;

use std::borrow::Cow;
use std::path::Path;

pub use format::{insn_text, listing};
pub use json::disasm_json;
pub use walk::{disasm, file_header};

use crate::error::{Error, Result};
use crate::model::object::{Object, Reloc, SectionId, Symbol};
use crate::model::Endian;
use lenient_btf::CoreNotes;

/// `sh_flags` bit of executable sections, the ones objdump disassembles.
const SHF_EXECINSTR: u64 = 0x4;
const SHT_NOBITS: u32 = 8;

/// What a disassembly reads: every section's name and flags, the bytes
/// and relocations of the executable ones, the symbols, and the CO-RE
/// notes of `.BTF.ext`. Made from a parsed [`Object`] or, reading only
/// those parts, from a file ([`with_file`]).
///
/// It prints (`Display`) as [`disasm`] and serializes as [`disasm_json`]:
///
/// ```
/// use bpfld::model::Object;
/// use bpfld::show::disasm::Listing;
///
/// let obj = Object::parse(include_bytes!("../../../../../fixtures/xdp_pass.o"))?;
/// let listing = Listing::from_object(&obj);
/// let text = listing.to_string();
/// assert!(text.contains("<xdp_pass>:") && text.contains("exit"), "{text}");
/// let json = serde_json::to_value(&listing).unwrap();
/// assert_eq!(json["sections"][0]["name"], "xdp");
/// # Ok::<(), bpfld::Error>(())
/// ```
#[derive(Debug, PartialEq)]
pub struct Listing<'a> {
    endian: Endian,
    sections: Vec<ListedSection<'a>>,
    symbols: Cow<'a, [Symbol]>,
    core: Option<CoreNotes>,
}

#[derive(Debug, PartialEq)]
struct ListedSection<'a> {
    id: SectionId,
    name: Cow<'a, str>,
    sh_type: u32,
    sh_flags: u64,
    /// The bytes objdump reads (empty for sections it does not list).
    bytes: Cow<'a, [u8]>,
    relocs: Cow<'a, [Reloc]>,
}

impl ListedSection<'_> {
    /// objdump disassembles executable sections with contents.
    fn is_listed(&self) -> bool {
        self.sh_flags & SHF_EXECINSTR != 0 && self.sh_type != SHT_NOBITS
    }
}

impl<'a> Listing<'a> {
    /// The listing of a parsed object (code as the model holds it now).
    pub fn from_object(obj: &'a Object) -> Listing<'a> {
        let sections = obj
            .sections
            .iter()
            .map(|sec| {
                let mut s = ListedSection {
                    id: sec.id,
                    name: Cow::Borrowed(sec.name.as_str()),
                    sh_type: sec.sh_type,
                    sh_flags: sec.sh_flags,
                    bytes: Cow::Borrowed(&[][..]),
                    relocs: Cow::Borrowed(&sec.relocs[..]),
                };
                if s.is_listed() {
                    // The slots when the model has them (they may have
                    // been rewritten), else the raw contents.
                    s.bytes = if sec.insns.is_empty() {
                        Cow::Borrowed(&sec.data[..])
                    } else {
                        Cow::Owned(crate::write::insn::encode(&sec.insns, obj.endian))
                    };
                }
                s
            })
            .collect();
        Listing {
            endian: obj.endian,
            sections,
            symbols: Cow::Borrowed(&obj.symbols[..]),
            core: CoreNotes::from_object(obj),
        }
    }
}

/// The text listing ([`disasm`]'s).
impl std::fmt::Display for Listing<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = Vec::new();
        self.write_text(&mut out).map_err(|_| std::fmt::Error)?;
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

/// Reads what a disassembly of the object at `path` needs and calls `f`
/// with it: the ELF and section headers, symbols, code and its
/// relocations, checked as the full reader checks them (same messages).
/// Data sections are not read, and `.BTF`/`.BTF.ext` only when `.BTF.ext`
/// holds CO-RE records, whose lines need them: then the whole object is
/// checked by the full reader first and the records are read as objdump
/// reads them. Errors name the file.
pub fn with_file<T>(path: &Path, f: impl FnOnce(&Listing<'_>) -> T) -> Result<T> {
    let in_file = |e: Error| e.in_file(path.display());
    // Warnings about what a producer wrote name the file.
    let name = path.display().to_string();
    crate::read::workarounds::reading(&name, || {
        match crate::read::open_seekable(path).map_err(in_file)? {
            Ok(file) => with_reader(file, f),
            Err(bytes) => with_reader(std::io::Cursor::new(bytes), f),
        }
    })
    .map_err(in_file)
}

/// [`with_file`] on any seekable reader (errors do not name a file).
pub fn with_reader<T, R: std::io::Read + std::io::Seek>(
    reader: R,
    f: impl FnOnce(&Listing<'_>) -> T,
) -> Result<T> {
    let cache = object::ReadCache::new(reader);
    Ok(f(&Listing::read(&cache)?))
}

impl<'a> Listing<'a> {
    /// The listing of object bytes, read as [`with_file`] reads a file.
    pub fn from_bytes(data: &'a [u8]) -> Result<Listing<'a>> {
        Self::read(data)
    }

    fn read<R: object::ReadRef<'a>>(data: R) -> Result<Listing<'a>> {
        let elf = crate::read::elf_view::ElfView::parse(data)?;
        let endian = elf.endian();
        let parts = elf.code_parts()?;
        let btf = elf.data_section_index(".BTF");
        let core = match (btf, elf.data_section_index(".BTF.ext")) {
            (Some(btf), Some(ext)) => {
                let head = elf.section_head(ext, lenient_btf::EXT_HEAD)?;
                if lenient_btf::has_core_relos(head, endian) {
                    // CO-RE lines read the BTF and the records: the whole
                    // object must pass the full reader first, as the
                    // listing of a parsed object does (a hostile record
                    // set can otherwise print without bound).
                    let all = data
                        .len()
                        .and_then(|len| data.read_bytes_at(0, len))
                        .map_err(|()| Error::new("cannot read the whole object"))?;
                    crate::read::elf::parse(all)?;
                    let btf = elf.section_data(btf)?;
                    let ext = elf.section_data(ext)?;
                    CoreNotes::from_bytes(btf, ext, endian)
                } else {
                    None
                }
            }
            _ => None,
        };
        let sections = parts
            .sections
            .into_iter()
            .map(|sec| {
                let mut s = ListedSection {
                    id: sec.id,
                    name: Cow::Owned(sec.name),
                    sh_type: sec.sh_type,
                    sh_flags: sec.sh_flags,
                    bytes: Cow::Borrowed(sec.bytes),
                    relocs: Cow::Owned(sec.relocs),
                };
                if !s.is_listed() {
                    s.bytes = Cow::Borrowed(&[][..]);
                }
                s
            })
            .collect();
        Ok(Listing {
            endian,
            sections,
            symbols: Cow::Owned(parts.symbols),
            core,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::insn::*;
    use crate::model::object::{
        Binding, Object, Reloc, RelocKind, Section, SectionId, SectionKind, Symbol, SymbolId,
        SymbolKind, SymbolPlace, Visibility,
    };
    use crate::model::Endian;
    use crate::write::insn::encode;

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
