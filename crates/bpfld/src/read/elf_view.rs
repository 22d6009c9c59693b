//! The parts of an ELF object a listing shows, without reading the rest:
//! the checks of [`super::elf::parse`] on the file header and on every
//! section header (same messages, same order), then only the sections
//! asked for: `.BTF` for `btf dump`; code, symbols and relocations (with
//! the full reader's checks on them) for `disasm`. What a listing does not
//! show is not read, so damage there does not stop it (as it does not
//! stop bpftool or objdump).

use object::elf;
use object::read::elf::{FileHeader, SectionHeader as _, SectionTable, Sym as _};
use object::Endianness;
use object::ReadRef;

use crate::bail;
use crate::error::{Error, Result};
use crate::model::object::{Reloc, SectionId, Symbol, SymbolKind, SymbolPlace};
use crate::model::Endian;

type Header = elf::FileHeader64<Endianness>;

/// As in [`super::elf`]: the largest zero-filled and alignment accepted.
const MAX_NOBITS: u64 = u32::MAX as u64;
const MAX_ALIGN: u64 = 1 << 12;

fn elf_err(what: &str) -> impl Fn(object::read::Error) -> Error + '_ {
    move |e| Error::new(format!("{what}: {e}"))
}

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

/// The bytes of a string table at `(offset, size)` of `data`, as the
/// `object` crate's string tables see them (`None`: every lookup fails).
fn table_bytes<'a, R: ReadRef<'a>>(data: R, range: Option<(u64, u64)>) -> Option<&'a [u8]> {
    let (off, size) = range?;
    data.read_bytes_at(off, size).ok()
}

/// The `object` crate's string lookup: the bytes at `off` up to a NUL.
fn string_at(table: Option<&[u8]>, off: u32) -> Option<&[u8]> {
    let rest = table?.get(off as usize..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    Some(&rest[..end])
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
            let name = String::from_utf8_lossy(name);
            if sh.sh_type(e) == elf::SHT_NOBITS {
                if sh.sh_size(e) > MAX_NOBITS {
                    bail!(
                        "section '{name}': size {:#x} is more than a BPF map value can hold",
                        sh.sh_size(e)
                    );
                }
            } else {
                // What `object`'s `data` checks, without reading the bytes.
                let (off, size) = (sh.sh_offset(e), sh.sh_size(e));
                let outside = off.checked_add(size).is_none_or(|end| end > file_len);
                if size != 0 && outside {
                    return Err(Error::new(format!(
                        "contents at offset {off:#x} size {size:#x} lie outside the file: Invalid ELF section size or offset"
                    ))
                    .in_section(&name));
                }
            }
            let align = sh.sh_addralign(e);
            if align > 1 && (!align.is_power_of_two() || align > MAX_ALIGN) {
                bail!(
                    "section '{name}': alignment {align:#x} is not a power of two up to {MAX_ALIGN:#x}"
                );
            }
            // Code is whole instruction slots (as read::insn::decode says).
            let size = sh.sh_size(e);
            if is_code(sh.sh_type(e).0, sh.sh_flags(e).0) && size % 8 != 0 {
                let at = size / 8 * 8;
                return Err(Error::new(format!(
                    "offset {at:#x}: truncated instruction ({} trailing bytes; code size {size:#x} is not a multiple of 8)",
                    size - at
                ))
                .in_section(&name));
            }
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
            let want = match sh_type {
                t if t == elf::SHT_SYMTAB.0 => 24,
                t if t == elf::SHT_REL.0 => 16,
                _ => 0,
            };
            if want != 0 && sh.sh_entsize(e) != want {
                bail!(
                    "section '{name}': sh_entsize is {}, expected {want}",
                    sh.sh_entsize(e)
                );
            }
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
        let symbols = self.symbols(sections.len())?;
        check_symbol_places(&sections, &symbols)?;
        self.relocations(&mut sections, symbols.len())?;
        Ok(CodeParts { sections, symbols })
    }

    fn symbols(&self, nsections: usize) -> Result<Vec<Symbol>> {
        let e = self.e;
        let symtab = self
            .table
            .symbols(e, self.data, elf::SHT_SYMTAB)
            .map_err(elf_err("bad symbol table"))?;
        // Its string table, read whole (see `shstrtab`).
        let strings = self
            .table
            .iter()
            .find(|sh| sh.sh_type(e) == elf::SHT_SYMTAB)
            .map(|sh| sh.sh_link(e) as usize)
            .filter(|&link| link != 0)
            .and_then(|link| self.table.iter().as_slice().get(link))
            .and_then(|sh| table_bytes(self.data, sh.file_range(e)));
        let mut symbols = Vec::with_capacity(symtab.len());
        for (index, sym) in symtab.enumerate() {
            let name = string_at(strings, sym.st_name(e))
                .ok_or(())
                .map_err(|_| {
                    Error::new(format!(
                        "symbol {}: name offset {:#x} outside the string table",
                        index.0,
                        sym.st_name(e)
                    ))
                })
                .map(|n| String::from_utf8_lossy(n).into_owned())?;
            symbols.push(super::elf::model_symbol(
                &symtab, index, sym, name, e, nsections,
            )?);
        }
        Ok(symbols)
    }

    fn relocations(&self, sections: &mut [CodeSection<'a>], nsymbols: usize) -> Result<()> {
        let e = self.e;
        for (index, sh) in self.table.enumerate() {
            let sh_type = sh.sh_type(e);
            let rel_name = sections[index.0].name.clone();
            if sh_type == elf::SHT_RELA {
                bail!("section '{rel_name}': RELA relocations are not used by BPF objects");
            }
            if sh_type != elf::SHT_REL {
                continue;
            }
            let rels: &[elf::Rel64<Endianness>] =
                sh.data_as_array(e, self.data).map_err(|err| {
                    Error::new(format!("bad relocation entries: {err}")).in_section(&rel_name)
                })?;
            let link = sh.sh_link(e) as usize;
            if sections.get(link).map(|s| s.sh_type) != Some(elf::SHT_SYMTAB.0) {
                bail!("section '{rel_name}': sh_link {link} is not the symbol table");
            }
            let target = sh.sh_info(e) as usize;
            let Some(target_sec) = sections.get(target) else {
                bail!(
                    "section '{rel_name}': sh_info {target} names no section (there are {})",
                    sections.len()
                );
            };
            if target == 0 || target == index.0 {
                bail!(
                    "section '{rel_name}': sh_info {target} is not a section that can be relocated"
                );
            }
            let target_name = target_sec.name.clone();
            if target_name.starts_with(".debug") {
                continue;
            }
            let is_code = is_code(target_sec.sh_type, target_sec.sh_flags);
            let size = target_sec.sh_size;
            let code = target_sec.bytes;
            let t = super::elf::RelTarget {
                rel_name: &rel_name,
                target_name: &target_name,
                size,
                is_code,
                nsymbols,
            };
            let mut relocs = Vec::with_capacity(rels.len());
            for (i, rel) in rels.iter().enumerate() {
                let opcode = |offset: u64| code.get(offset as usize & !7).copied().unwrap_or(0);
                relocs.push(super::elf::check_reloc(rel, i, e, &t, opcode)?);
            }
            sections[target].relocs.extend(relocs);
        }
        Ok(())
    }
}

/// Whether the full reader takes a section for code (PROGBITS, executable).
fn is_code(sh_type: u32, sh_flags: u64) -> bool {
    sh_type == elf::SHT_PROGBITS.0 && sh_flags & elf::SHF_EXECINSTR.0 != 0
}

/// Every symbol lies inside its section, and a function in code starts
/// and ends on instruction boundaries (never inside an `ld_imm64`).
fn check_symbol_places(sections: &[CodeSection<'_>], symbols: &[Symbol]) -> Result<()> {
    // The second slots of `ld_imm64`s, per code section, found lazily.
    let mut halves: Vec<Option<Vec<bool>>> = vec![None; sections.len()];
    for sym in symbols {
        let SymbolPlace::Section(id) = sym.place else {
            continue;
        };
        let sec = &sections[id.0 as usize];
        if sym.kind == SymbolKind::Section || sec.sh_type == elf::SHT_NULL.0 {
            continue;
        }
        if sym
            .value
            .checked_add(sym.size)
            .is_none_or(|end| end > sec.sh_size)
        {
            bail!(
                "symbol {} '{}': value {:#x} size {:#x} lies outside section '{}' of size {:#x}",
                sym.id.0,
                sym.name,
                sym.value,
                sym.size,
                sec.name,
                sec.sh_size
            );
        }
        if is_code(sec.sh_type, sec.sh_flags) && sym.kind == SymbolKind::Func {
            let h = halves[id.0 as usize].get_or_insert_with(|| second_halves(sec.bytes));
            let inside = |off: u64| h.get((off / 8) as usize).copied().unwrap_or(false);
            let starts_inside = inside(sym.value) || inside(sym.value.saturating_add(sym.size));
            if sym.value % 8 != 0 || sym.size % 8 != 0 || starts_inside {
                bail!(
                    "function {} '{}' at {:#x} size {:#x} in section '{}' does not start and end on instruction boundaries",
                    sym.id.0,
                    sym.name,
                    sym.value,
                    sym.size,
                    sec.name
                );
            }
        }
    }
    Ok(())
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
