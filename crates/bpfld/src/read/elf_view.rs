//! One section of an ELF object without reading the rest: the checks of
//! [`super::elf::parse`] on the file header and on every section header
//! (same messages, same order), then the bytes of the section asked for.
//! Code, symbols, relocations and `.BTF.ext` are not read, so damage
//! there does not stop a listing that does not show them (as bpftool's
//! `btf dump` is not stopped by it).

use object::elf;
use object::read::elf::{FileHeader, SectionHeader as _, SectionTable};
use object::Endianness;
use object::ReadRef;

use crate::bail;
use crate::error::{Error, Result};
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
}

impl<'a, R: ReadRef<'a>> ElfView<'a, R> {
    /// Checks the file header and every section header (name, place in
    /// the file, size, alignment) as [`super::elf::parse`] does.
    pub fn parse(data: R) -> Result<Self> {
        let magic = data.read_bytes_at(0, 4).unwrap_or(&[]);
        if !super::elf::is_elf(magic) {
            bail!("not an ELF file (no \\x7fELF magic at offset 0)");
        }
        if data.read_bytes_at(4, 1).ok() == Some(&[elf::ELFCLASS32.0][..]) {
            bail!("32-bit ELF file: BPF objects are ELF64");
        }
        let header = Header::parse(data).map_err(elf_err("bad ELF header"))?;
        let e = header.endian().map_err(elf_err("bad ELF header"))?;
        let endian = if header.is_little_endian() {
            Endian::Little
        } else {
            Endian::Big
        };
        let machine = header.e_machine(e).0;
        if machine != elf::EM_BPF.0 {
            bail!("not a BPF object: e_machine is {machine}, expected EM_BPF (247)");
        }
        let e_type = header.e_type(e).0;
        if e_type != elf::ET_REL.0 {
            bail!("not a relocatable object: e_type is {e_type}, expected ET_REL (1)");
        }
        let table = header
            .sections(e, data)
            .map_err(elf_err("bad section header table"))?;
        let file_len = data.len().unwrap_or(0);
        for (index, sh) in table.enumerate() {
            let name = table
                .section_name(e, sh)
                .map_err(|err| Error::new(format!("section {}: bad name: {err}", index.0)))?;
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
                if off.checked_add(size).is_none_or(|end| end > file_len) {
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
        }
        Ok(ElfView {
            data,
            e,
            endian,
            table,
        })
    }

    /// The object's byte order.
    pub fn endian(&self) -> Endian {
        self.endian
    }

    /// The index of the `.BTF` section as the full reader finds it (the
    /// first PROGBITS, non-executable section of that name).
    pub fn btf_index(&self) -> Option<usize> {
        let e = self.e;
        self.table.enumerate().find_map(|(index, sh)| {
            let is_btf = sh.sh_type(e) == elf::SHT_PROGBITS
                && sh.sh_flags(e).0 & elf::SHF_EXECINSTR.0 == 0
                && self.table.section_name(e, sh).ok() == Some(&b".BTF"[..]);
            is_btf.then_some(index.0)
        })
    }

    /// The contents of section `index` (empty for NOBITS), read now.
    pub fn section_data(&self, index: usize) -> Result<&'a [u8]> {
        let sh = self
            .table
            .section(object::SectionIndex(index))
            .map_err(elf_err("bad section index"))?;
        sh.data(self.e, self.data)
            .map_err(|err| Error::new(format!("cannot read section {index}: {err}")))
    }
}
