//! The parts of an ELF object a listing shows, without reading the rest:
//! the checks of [`super::elf::parse`] on the file header and on every
//! section header (the same functions, in the same order), then only the
//! sections asked for: `.BTF` for `btf dump`; code, symbols and
//! relocations (read and checked by the full reader's functions) for
//! `disasm`. What a listing does not
//! show is not read, so damage there does not stop it (as it does not
//! stop bpftool or objdump).

use object::elf;
use object::read::elf::{FileHeader, SectionHeader as _, SectionTable};
use object::Endianness;
use object::ReadRef;

use crate::error::{Error, Result};
use crate::model::object::{Reloc, SectionId, Symbol};
use crate::model::Endian;
use crate::read::elf::{elf_err, is_code, string_at, table_bytes, SectionFacts};

type Header = elf::FileHeader64<Endianness>;

/// An ELF object whose file and section headers passed the full reader's
/// checks; section contents are read only when asked for, so `R` can be a
/// [`object::ReadCache`] over a file that reads just those bytes.
pub struct ElfView<'a, R: ReadRef<'a>> {
    data: R,
    e: Endianness,
    endian: Endian,
    table: SectionTable<'a, Header, R>,
    /// The section-name string table, read whole: names are looked up in
    /// it rather than through `R`, whose cached reader gives up on
    /// strings longer than 4 KiB (the full reader's slice does not).
    shstrtab: Option<&'a [u8]>,
}

impl<'a, R: ReadRef<'a>> ElfView<'a, R> {
    /// Checks the file header and every section header (name, place in
    /// the file, size, alignment, code in whole slots) as
    /// [`super::elf::parse`] does.
    pub fn parse(data: R) -> Result<Self> {
        let (header, e, endian) = super::elf::header(data)?;
        let table = header
            .sections(e, data)
            .map_err(elf_err("bad section header table"))?;
        let shstrtab = match header.shstrndx(e, data) {
            Ok(i) if !table.is_empty() => {
                let sh = table.iter().as_slice().get(i as usize);
                table_bytes(data, sh.and_then(|sh| sh.file_range(e)))
            }
            _ => None,
        };
        let file_len = data.len().unwrap_or(0);
        for (index, sh) in table.enumerate() {
            let name = string_at(shstrtab, sh.sh_name(e)).ok_or_else(|| {
                Error::new(format!(
                    "section {}: bad name: Invalid ELF section name offset",
                    index.0
                ))
            })?;
            super::elf::check_section_header(&String::from_utf8_lossy(name), sh, e, file_len)?;
        }
        Ok(ElfView {
            data,
            e,
            endian,
            table,
            shstrtab,
        })
    }

    /// The object's byte order.
    pub fn endian(&self) -> Endian {
        self.endian
    }

    /// The name of a section header (`None` when it does not resolve).
    fn section_name(&self, sh: &elf::SectionHeader64<Endianness>) -> Option<&'a [u8]> {
        string_at(self.shstrtab, sh.sh_name(self.e))
    }

    /// The index of the `.BTF` section as the full reader finds it (the
    /// first PROGBITS, non-executable section of that name).
    pub fn btf_index(&self) -> Option<usize> {
        self.data_section_index(".BTF")
    }

    /// The index of the first PROGBITS, non-executable section named
    /// `name` (how the full reader finds `.BTF` and `.BTF.ext`).
    pub fn data_section_index(&self, name: &str) -> Option<usize> {
        let e = self.e;
        self.table.enumerate().find_map(|(index, sh)| {
            let found = sh.sh_type(e) == elf::SHT_PROGBITS
                && sh.sh_flags(e).0 & elf::SHF_EXECINSTR.0 == 0
                && self.section_name(sh) == Some(name.as_bytes());
            found.then_some(index.0)
        })
    }

    /// Section header `index` (the null section 0 included, which the
    /// `object` crate's lookup refuses).
    fn header(&self, index: usize) -> Result<&'a elf::SectionHeader64<Endianness>> {
        self.table
            .iter()
            .as_slice()
            .get(index)
            .ok_or_else(|| Error::new(format!("no section {index}")))
    }

    /// The first `n` bytes of section `index` (fewer if it is shorter).
    pub fn section_head(&self, index: usize, n: u64) -> Result<&'a [u8]> {
        let sh = self.header(index)?;
        let Some((off, size)) = sh.file_range(self.e) else {
            return Ok(&[]);
        };
        self.data
            .read_bytes_at(off, size.min(n))
            .map_err(|()| Error::new(format!("cannot read section {index}")))
    }

    /// The contents of section `index` (empty for NOBITS), read now.
    pub fn section_data(&self, index: usize) -> Result<&'a [u8]> {
        let sh = self.header(index)?;
        sh.data(self.e, self.data)
            .map_err(|err| Error::new(format!("cannot read section {index}: {err}")))
    }
}

/// What a disassembly reads of an object: every section's header, the
/// contents of the executable ones with their relocations, and the
/// symbols, checked as [`super::elf::parse`] checks them. BTF and
/// `.BTF.ext` are left to the caller (objdump reads them leniently).
pub struct CodeParts<'a> {
    pub sections: Vec<CodeSection<'a>>,
    pub symbols: Vec<Symbol>,
}

/// A section header, with contents and relocations for executable ones.
pub struct CodeSection<'a> {
    pub id: SectionId,
    pub name: String,
    pub sh_type: u32,
    pub sh_flags: u64,
    pub sh_size: u64,
    /// Contents of executable sections (empty for the others).
    pub bytes: &'a [u8],
    /// Relocations, in file order (a listing shows those of executable
    /// sections).
    pub relocs: Vec<Reloc>,
}

impl<'a, R: ReadRef<'a>> ElfView<'a, R> {
    /// Reads code, symbols and relocations for a disassembly, with the
    /// full reader's checks on them (entry sizes, symbol names, places and
    /// bounds, function boundaries, every relocation's symbol, place and
    /// instruction) and its messages.
    pub fn code_parts(&self) -> Result<CodeParts<'a>> {
        let e = self.e;
        let mut sections = Vec::with_capacity(self.table.len());
        for (index, sh) in self.table.enumerate() {
            let name = self.section_name(sh).unwrap_or_default();
            let name = String::from_utf8_lossy(name).into_owned();
            let sh_type = sh.sh_type(e).0;
            let sh_flags = sh.sh_flags(e).0;
            // What objdump lists: executable sections with contents, as
            // the full reader keeps them (it keeps no bytes of tables and
            // `.debug*` sections, whatever their flags).
            let table = [
                elf::SHT_SYMTAB,
                elf::SHT_STRTAB,
                elf::SHT_REL,
                elf::SHT_RELA,
            ]
            .iter()
            .any(|t| t.0 == sh_type);
            let listed = is_code(sh_type, sh_flags)
                || (sh_flags & elf::SHF_EXECINSTR.0 != 0
                    && sh_type != elf::SHT_NOBITS.0
                    && !table
                    && !name.starts_with(".debug"));
            let bytes = if listed {
                self.section_data(index.0)
                    .map_err(|err| err.in_section(&name))?
            } else {
                &[][..]
            };
            super::elf::check_entsize(&name, sh_type, sh.sh_entsize(e))?;
            sections.push(CodeSection {
                id: SectionId(index.0 as u32),
                name,
                sh_type,
                sh_flags,
                sh_size: sh.sh_size(e),
                bytes,
                relocs: Vec::new(),
            });
        }
        let symbols = super::elf::read_symbols(&self.table, e, self.data, sections.len())?;
        super::elf::check_symbol_places(&sections, &symbols)?;
        let relocs =
            super::elf::read_relocations(&self.table, e, self.data, &sections, symbols.len())?;
        for (target, relocs) in relocs {
            sections[target].relocs.extend(relocs);
        }
        Ok(CodeParts { sections, symbols })
    }
}

impl SectionFacts for CodeSection<'_> {
    fn name(&self) -> &str {
        &self.name
    }
    fn sh_type(&self) -> u32 {
        self.sh_type
    }
    fn sh_flags(&self) -> u64 {
        self.sh_flags
    }
    fn sh_size(&self) -> u64 {
        self.sh_size
    }
    fn opcode_at(&self, offset: u64) -> u8 {
        self.bytes.get(offset as usize & !7).copied().unwrap_or(0)
    }
    fn second_halves(&self) -> Vec<bool> {
        second_halves(self.bytes)
    }
}

/// [`crate::model::insn::second_halves`] on code bytes: an `ld_imm64`
/// takes the next slot as its second half.
fn second_halves(code: &[u8]) -> Vec<bool> {
    let n = code.len() / 8;
    let mut out = vec![false; n];
    let mut i = 0;
    while i < n {
        if code[8 * i] == crate::model::insn::LD_IMM64 && i + 1 < n {
            out[i + 1] = true;
            i += 2;
        } else {
            i += 1;
        }
    }
    out
}
