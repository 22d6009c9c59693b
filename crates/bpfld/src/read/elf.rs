//! The ELF reader: a relocatable BPF object into an [`Object`].
//!
//! Built on the `object` crate's low-level ELF types, which check every
//! offset and size against the input; this module adds the BPF rules
//! (EM_BPF, ET_REL, REL relocations only, code in 8-byte slots) and attaches
//! `.BTF.ext` records to the sections they describe.

use object::elf;
use object::read::elf::{FileHeader, Rel as _, SectionHeader as _, Sym as _};
use object::Endianness;

use crate::error::{Error, Result};
use crate::model::btf::Btf;
use crate::model::object::{
    Binding, Object, Reloc, RelocKind, Section, SectionId, SectionKind, Symbol, SymbolId,
    SymbolKind, SymbolPlace, Visibility,
};
use crate::model::Endian;
use crate::{bail, read};

type Header = elf::FileHeader64<Endianness>;

/// The largest zero-filled section accepted: it becomes one map value,
/// whose size the kernel keeps in 32 bits.
const MAX_NOBITS: u64 = u32::MAX as u64;

/// The largest section alignment accepted; BPF sections need at most 8.
const MAX_ALIGN: u64 = 1 << 12;

/// The four bytes every ELF file starts with.
pub const ELF_MAGIC: &[u8; 4] = b"\x7fELF";

/// Whether `data` looks like an ELF file (as opposed to raw BTF).
pub fn is_elf(data: &[u8]) -> bool {
    data.starts_with(ELF_MAGIC)
}

/// Reads a whole object from a file, naming the file in any error.
pub fn read_file(path: &std::path::Path) -> Result<Object> {
    let data = std::fs::read(path)
        .map_err(|e| Error::new(format!("cannot read: {e}")).in_file(path.display()))?;
    let name = path.display().to_string();
    read::workarounds::reading(&name, || parse(&data)).map_err(|e| e.in_file(&name))
}

/// Names what the `object` crate failed to read.
pub(crate) fn elf_err(what: &str) -> impl Fn(object::read::Error) -> Error + '_ {
    move |e| Error::new(format!("{what}: {e}"))
}

/// The ELF header of a BPF relocatable object, checked (magic, ELF64,
/// EM_BPF, ET_REL), with its byte order. Shared by the whole-object reader
/// and the listings' view.
pub(crate) fn header<'d, R: object::ReadRef<'d>>(
    data: R,
) -> Result<(&'d Header, Endianness, Endian)> {
    let magic = data.read_bytes_at(0, 4).unwrap_or(&[]);
    if !is_elf(magic) {
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
    Ok((header, e, endian))
}

/// Parses a relocatable BPF ELF object.
pub fn parse(data: &[u8]) -> Result<Object> {
    let (header, e, endian) = header(data)?;
    let table = header
        .sections(e, data)
        .map_err(elf_err("bad section header table"))?;

    let mut sections = Vec::with_capacity(table.len());
    for (index, sh) in table.enumerate() {
        let id = SectionId(index.0 as u32);
        let name = table
            .section_name(e, sh)
            .map_err(|err| Error::new(format!("section {}: bad name: {err}", index.0)))?;
        let name = String::from_utf8_lossy(name).into_owned();
        check_section_header(&name, sh, e, data.len() as u64)?;
        let sh_type = sh.sh_type(e).0;
        // Cannot fail: the contents were found inside the file (NOBITS
        // has none in it).
        let data_bytes = sh.data(e, data).unwrap_or_default();
        let kind = classify(&name, sh_type, sh.sh_flags(e).0);
        // Only what the model needs is copied: code becomes slots, tables
        // are parsed below, DWARF is not used.
        let data = match kind {
            // bpfld's link report, a string table so that libbpf skips it.
            SectionKind::StrTab if name == crate::model::object::LINKMAP_SECTION => {
                data_bytes.to_vec()
            }
            SectionKind::Program | SectionKind::SymTab | SectionKind::StrTab | SectionKind::Rel => {
                Vec::new()
            }
            _ if name.starts_with(".debug") => Vec::new(),
            _ => data_bytes.to_vec(),
        };
        let insns = if kind == SectionKind::Program {
            read::insn::decode(data_bytes, endian).map_err(|err| err.in_section(&name))?
        } else {
            Vec::new()
        };
        sections.push(Section {
            id,
            name,
            kind,
            sh_type,
            sh_flags: sh.sh_flags(e).0,
            sh_addralign: sh.sh_addralign(e),
            sh_size: sh.sh_size(e),
            sh_link: sh.sh_link(e),
            sh_info: sh.sh_info(e),
            sh_entsize: sh.sh_entsize(e),
            data,
            insns,
            relocs: Vec::new(),
            func_info: Vec::new(),
            line_info: Vec::new(),
            core_relos: Vec::new(),
        });
    }

    for sec in &sections {
        check_entsize(&sec.name, sec.sh_type, sec.sh_entsize)?;
    }
    let symbols = read_symbols(&table, e, data, sections.len())?;
    check_symbol_places(&sections, &symbols)?;
    for (target, relocs) in read_relocations(&table, e, data, &sections, symbols.len())? {
        sections[target].relocs.extend(relocs);
    }

    let btf = match sections.iter().find(|s| s.kind == SectionKind::Btf) {
        Some(s) => Some(
            read::btf::parse_in_object(&s.data, endian).map_err(|err| err.in_section(".BTF"))?,
        ),
        None => None,
    };
    // The parsed forms replace the raw bytes (the BTF.ext bytes are kept
    // once, for writing an unchanged object back byte for byte).
    if let Some(s) = sections.iter_mut().find(|s| s.kind == SectionKind::Btf) {
        s.data = Vec::new();
    }
    let btf_ext_raw = sections
        .iter_mut()
        .find(|s| s.kind == SectionKind::BtfExt)
        .map(|s| std::mem::take(&mut s.data));
    if let Some(raw) = &btf_ext_raw {
        let Some(btf) = &btf else {
            bail!("section '.BTF.ext' present without '.BTF'");
        };
        attach_btf_ext(raw, btf, &mut sections).map_err(|err| err.in_section(".BTF.ext"))?;
    }

    Ok(Object {
        endian,
        sections,
        symbols,
        btf,
        btf_ext_raw,
    })
}

/// Decides what a section is from its name, type and flags, the way libbpf
/// does (`.maps`, `.data*`, `.rodata*`, `.bss*`, executable → program).
fn classify(name: &str, sh_type: u32, flags: u64) -> SectionKind {
    let prefixed = |p: &str| name == p || name.starts_with(&format!("{p}."));
    match sh_type {
        t if t == elf::SHT_NULL.0 => SectionKind::Null,
        t if t == elf::SHT_SYMTAB.0 => SectionKind::SymTab,
        t if t == elf::SHT_STRTAB.0 => SectionKind::StrTab,
        t if t == elf::SHT_REL.0 || t == elf::SHT_RELA.0 => SectionKind::Rel,
        t if t == elf::SHT_NOBITS.0 && prefixed(".bss") => SectionKind::Bss,
        t if t == elf::SHT_PROGBITS.0 => {
            if flags & elf::SHF_EXECINSTR.0 != 0 {
                SectionKind::Program
            } else if name == ".BTF" {
                SectionKind::Btf
            } else if name == ".BTF.ext" {
                SectionKind::BtfExt
            } else if name == ".maps" {
                SectionKind::Maps
            } else if name == "maps" || name.starts_with("maps/") {
                SectionKind::LegacyMaps
            } else if prefixed(".data") {
                SectionKind::Data
            } else if prefixed(".rodata") {
                SectionKind::Rodata
            } else if name == "license" {
                SectionKind::License
            } else if name == "version" {
                SectionKind::Version
            } else {
                SectionKind::Other
            }
        }
        _ => SectionKind::Other,
    }
}

/// The bytes of a string table at `(offset, size)` of `data`, as the
/// `object` crate's string tables see them (`None`: every lookup fails).
pub(crate) fn table_bytes<'d, R: object::ReadRef<'d>>(
    data: R,
    range: Option<(u64, u64)>,
) -> Option<&'d [u8]> {
    let (off, size) = range?;
    data.read_bytes_at(off, size).ok()
}

/// The `object` crate's string lookup: the bytes at `off` up to a NUL.
pub(crate) fn string_at(table: Option<&[u8]>, off: u32) -> Option<&[u8]> {
    let rest = table?.get(off as usize..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    Some(&rest[..end])
}

/// The checks on one section header (its name resolved) that do not need
/// its contents: a zero-filled section fits in a map value, the contents
/// lie inside the file of `file_len` bytes, the alignment is a power of
/// two up to [`MAX_ALIGN`], and code is whole instruction slots. Shared
/// by the whole-object reader and the listings' view, which reads no
/// contents here.
pub(crate) fn check_section_header(
    name: &str,
    sh: &elf::SectionHeader64<Endianness>,
    e: Endianness,
    file_len: u64,
) -> Result<()> {
    let (off, size) = (sh.sh_offset(e), sh.sh_size(e));
    if sh.sh_type(e) == elf::SHT_NOBITS {
        // No bytes in the file, but the loader allocates this much.
        if size > MAX_NOBITS {
            bail!("section '{name}': size {size:#x} is more than a BPF map value can hold");
        }
    } else if size != 0 && off.checked_add(size).is_none_or(|end| end > file_len) {
        // What the `object` crate's `data` refuses, in its words.
        return Err(Error::new(format!(
            "contents at offset {off:#x} size {size:#x} lie outside the file: Invalid ELF section size or offset"
        ))
        .in_section(name));
    }
    let align = sh.sh_addralign(e);
    if align > 1 && (!align.is_power_of_two() || align > MAX_ALIGN) {
        bail!("section '{name}': alignment {align:#x} is not a power of two up to {MAX_ALIGN:#x}");
    }
    if is_code(sh.sh_type(e).0, sh.sh_flags(e).0) {
        read::insn::check_len(size).map_err(|err| err.in_section(name))?;
    }
    Ok(())
}

/// Whether a section is code (PROGBITS, executable), as [`classify`]
/// decides.
pub(crate) fn is_code(sh_type: u32, sh_flags: u64) -> bool {
    sh_type == elf::SHT_PROGBITS.0 && sh_flags & elf::SHF_EXECINSTR.0 != 0
}

/// The symbol table and relocation sections have entries of their size.
pub(crate) fn check_entsize(name: &str, sh_type: u32, entsize: u64) -> Result<()> {
    let want = match sh_type {
        t if t == elf::SHT_SYMTAB.0 => 24,
        t if t == elf::SHT_REL.0 => 16,
        _ => return Ok(()),
    };
    if entsize != want {
        bail!("section '{name}': sh_entsize is {entsize}, expected {want}");
    }
    Ok(())
}

/// Every symbol of the symbol table, its name and section index checked.
/// Names are looked up in the string table read whole, since the range
/// cache the listings read files through gives up on strings longer than
/// 4 KiB (a slice does not).
pub(crate) fn read_symbols<'d, R: object::ReadRef<'d>>(
    table: &object::read::elf::SectionTable<'d, Header, R>,
    e: Endianness,
    data: R,
    nsections: usize,
) -> Result<Vec<Symbol>> {
    let symtab = table
        .symbols(e, data, elf::SHT_SYMTAB)
        .map_err(elf_err("bad symbol table"))?;
    let strings = table
        .iter()
        .find(|sh| sh.sh_type(e) == elf::SHT_SYMTAB)
        .map(|sh| sh.sh_link(e) as usize)
        .filter(|&link| link != 0)
        .and_then(|link| table.iter().as_slice().get(link))
        .and_then(|sh| table_bytes(data, sh.file_range(e)));
    let mut symbols = Vec::with_capacity(symtab.len());
    for (index, sym) in symtab.enumerate() {
        let name = string_at(strings, sym.st_name(e)).ok_or_else(|| {
            Error::new(format!(
                "symbol {}: name offset {:#x} outside the string table",
                index.0,
                sym.st_name(e)
            ))
        })?;
        let name = String::from_utf8_lossy(name).into_owned();
        symbols.push(model_symbol(&symtab, index, sym, name, e, nsections)?);
    }
    Ok(symbols)
}

/// One ELF symbol in the model, its section index checked against
/// `nsections` (shared by the whole-object reader and the listings' view).
pub(crate) fn model_symbol<'d, R: object::ReadRef<'d>>(
    symtab: &object::read::elf::SymbolTable<'d, Header, R>,
    index: object::SymbolIndex,
    sym: &elf::Sym64<Endianness>,
    name: String,
    e: Endianness,
    nsections: usize,
) -> Result<Symbol> {
    let shndx = sym.st_shndx(e).0;
    let place = if shndx == elf::SHN_UNDEF.0 {
        SymbolPlace::Undefined
    } else if shndx == elf::SHN_ABS.0 {
        SymbolPlace::Absolute
    } else if shndx == elf::SHN_COMMON.0 {
        SymbolPlace::Common
    } else {
        let idx = if shndx == elf::SHN_XINDEX.0 {
            symtab.shndx(e, index).unwrap_or(u32::MAX)
        } else {
            u32::from(shndx)
        };
        if idx as usize >= nsections {
            bail!(
                "symbol {} '{name}': section index {idx} beyond the last section {}",
                index.0,
                nsections.saturating_sub(1)
            );
        }
        SymbolPlace::Section(SectionId(idx))
    };
    let binding = match sym.st_bind().0 {
        b if b == elf::STB_LOCAL.0 => Binding::Local,
        b if b == elf::STB_GLOBAL.0 => Binding::Global,
        b if b == elf::STB_WEAK.0 => Binding::Weak,
        b => Binding::Other(b),
    };
    let visibility = match sym.st_visibility().0 {
        v if v == elf::STV_HIDDEN.0 => Visibility::Hidden,
        v if v == elf::STV_INTERNAL.0 => Visibility::Internal,
        v if v == elf::STV_PROTECTED.0 => Visibility::Protected,
        _ => Visibility::Default,
    };
    let kind = match sym.st_type().0 {
        t if t == elf::STT_NOTYPE.0 => SymbolKind::NoType,
        t if t == elf::STT_OBJECT.0 => SymbolKind::Object,
        t if t == elf::STT_FUNC.0 => SymbolKind::Func,
        t if t == elf::STT_SECTION.0 => SymbolKind::Section,
        t if t == elf::STT_FILE.0 => SymbolKind::File,
        t => SymbolKind::Other(t),
    };
    Ok(Symbol {
        id: SymbolId(index.0 as u32),
        name,
        binding,
        visibility,
        kind,
        place,
        value: sym.st_value(e),
        size: sym.st_size(e),
        st_other: sym.st_other().0,
    })
}

/// What the symbol and relocation checks need of a section: its header
/// and, for code, its instructions. The model's sections and the
/// listings' view of them both provide it.
pub(crate) trait SectionFacts {
    fn name(&self) -> &str;
    fn sh_type(&self) -> u32;
    fn sh_flags(&self) -> u64;
    fn sh_size(&self) -> u64;
    /// The opcode of the instruction at byte `offset` of code (0 past the
    /// end).
    fn opcode_at(&self, offset: u64) -> u8;
    /// Which instruction slots of code are the second halves of an
    /// `ld_imm64`.
    fn second_halves(&self) -> Vec<bool>;
}

impl SectionFacts for Section {
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
        self.insns.get((offset / 8) as usize).map_or(0, |i| i.code)
    }
    fn second_halves(&self) -> Vec<bool> {
        crate::model::insn::second_halves(&self.insns)
    }
}

/// Every symbol lies inside its section, and a function in code starts
/// and ends on instruction boundaries (never inside an `ld_imm64`).
pub(crate) fn check_symbol_places<S: SectionFacts>(
    sections: &[S],
    symbols: &[Symbol],
) -> Result<()> {
    // The second slots of `ld_imm64`s, per code section, found lazily.
    let mut halves: Vec<Option<Vec<bool>>> = vec![None; sections.len()];
    for sym in symbols {
        let SymbolPlace::Section(id) = sym.place else {
            continue;
        };
        let sec = &sections[id.0 as usize];
        if sym.kind == SymbolKind::Section || sec.sh_type() == elf::SHT_NULL.0 {
            continue;
        }
        if sym
            .value
            .checked_add(sym.size)
            .is_none_or(|end| end > sec.sh_size())
        {
            bail!(
                "symbol {} '{}': value {:#x} size {:#x} lies outside section '{}' of size {:#x}",
                sym.id.0,
                sym.name,
                sym.value,
                sym.size,
                sec.name(),
                sec.sh_size()
            );
        }
        // A function is whole instructions: it starts at one and is a
        // number of slots long, never inside an ld_imm64.
        if is_code(sec.sh_type(), sec.sh_flags()) && sym.kind == SymbolKind::Func {
            let h = halves[id.0 as usize].get_or_insert_with(|| sec.second_halves());
            let inside = |off: u64| h.get((off / 8) as usize).copied().unwrap_or(false);
            let starts_inside = inside(sym.value) || inside(sym.value.saturating_add(sym.size));
            if sym.value % 8 != 0 || sym.size % 8 != 0 || starts_inside {
                bail!(
                    "function {} '{}' at {:#x} size {:#x} in section '{}' does not start and end on instruction boundaries",
                    sym.id.0,
                    sym.name,
                    sym.value,
                    sym.size,
                    sec.name()
                );
            }
        }
    }
    Ok(())
}

/// The relocations of every REL section, checked, as `(index of the
/// section they apply to, relocations in file order)`; those of DWARF are
/// skipped (neither used nor written).
pub(crate) fn read_relocations<'d, R: object::ReadRef<'d>, S: SectionFacts>(
    table: &object::read::elf::SectionTable<'d, Header, R>,
    e: Endianness,
    data: R,
    sections: &[S],
    nsymbols: usize,
) -> Result<Vec<(usize, Vec<Reloc>)>> {
    let mut out = Vec::new();
    for (index, sh) in table.enumerate() {
        let sh_type = sh.sh_type(e);
        let rel_name = sections[index.0].name();
        if sh_type == elf::SHT_RELA {
            bail!("section '{rel_name}': RELA relocations are not used by BPF objects");
        }
        if sh_type != elf::SHT_REL {
            continue;
        }
        let rels: &[elf::Rel64<Endianness>] = sh.data_as_array(e, data).map_err(|err| {
            Error::new(format!("bad relocation entries: {err}")).in_section(rel_name)
        })?;
        let link = sh.sh_link(e) as usize;
        if sections.get(link).map(|s| s.sh_type()) != Some(elf::SHT_SYMTAB.0) {
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
            bail!("section '{rel_name}': sh_info {target} is not a section that can be relocated");
        }
        let target_name = target_sec.name();
        if target_name.starts_with(".debug") {
            continue; // DWARF is neither used nor written
        }
        let t = RelTarget {
            rel_name,
            target_name,
            size: target_sec.sh_size(),
            is_code: is_code(target_sec.sh_type(), target_sec.sh_flags()),
            nsymbols,
        };
        let mut relocs = Vec::with_capacity(rels.len());
        for (i, rel) in rels.iter().enumerate() {
            relocs.push(check_reloc(rel, i, e, &t, |off| target_sec.opcode_at(off))?);
        }
        out.push((target, relocs));
    }
    Ok(out)
}

/// Where a relocation section's entries point: what [`check_reloc`]
/// checks them against.
pub(crate) struct RelTarget<'n> {
    pub(crate) rel_name: &'n str,
    pub(crate) target_name: &'n str,
    /// The target section's size.
    pub(crate) size: u64,
    pub(crate) is_code: bool,
    pub(crate) nsymbols: usize,
}

/// Relocation `i` of a relocation section, checked (symbol in range, a
/// BPF type, inside its section, on an instruction of the right kind:
/// `opcode` gives the opcode at an offset of the code). Shared by the
/// whole-object reader and the listings' view.
pub(crate) fn check_reloc(
    rel: &elf::Rel64<Endianness>,
    i: usize,
    e: Endianness,
    t: &RelTarget<'_>,
    opcode: impl Fn(u64) -> u8,
) -> Result<Reloc> {
    let &RelTarget {
        rel_name,
        target_name,
        size,
        is_code,
        nsymbols,
    } = t;
    let offset = rel.r_offset(e);
    let sym = rel.r_sym(e);
    let at = || format!("section '{rel_name}': relocation {i} (offset {offset:#x})");
    let kind = read::workarounds::reloc_kind(rel.r_type(e).0, is_code, rel_name);
    if sym as usize >= nsymbols {
        bail!(
            "{}: symbol index {sym} beyond the last symbol {}",
            at(),
            nsymbols.saturating_sub(1)
        );
    }
    let width: u64 = match kind {
        RelocKind::None => 0,
        RelocKind::Abs32 | RelocKind::NoDyld32 => 4,
        RelocKind::Abs64 => 8,
        RelocKind::Bpf64_32 if is_code => 8,
        RelocKind::Bpf64_32 => 4,
        RelocKind::Bpf64_64 if is_code => 16,
        RelocKind::Bpf64_64 => 8,
        RelocKind::Unknown(r) => bail!(
            "{}: unknown BPF relocation type {r}{}",
            at(),
            read::workarounds::unknown_reloc_note(r, is_code)
        ),
    };
    if offset.checked_add(width).is_none_or(|end| end > size) {
        bail!(
            "{}: {} does not fit in section '{target_name}' of size {size:#x}",
            at(),
            kind.name()
        );
    }
    if is_code && kind != RelocKind::None && offset % 8 != 0 {
        bail!(
            "{}: not at an instruction boundary in section '{target_name}'",
            at()
        );
    }
    if is_code {
        let code = opcode(offset);
        let fits = match kind {
            RelocKind::Bpf64_64 => code == crate::model::insn::LD_IMM64,
            RelocKind::Bpf64_32 => code == crate::model::insn::CALL,
            _ => true,
        };
        if !fits {
            bail!(
                "{}: {} on instruction {} (opcode {code:#04x}) of section '{target_name}', which is not {}",
                at(),
                kind.name(),
                offset / 8,
                if kind == RelocKind::Bpf64_64 { "an ld_imm64" } else { "a call" }
            );
        }
    }
    Ok(Reloc {
        offset,
        kind,
        symbol: SymbolId(sym),
    })
}

/// Attaches `.BTF.ext` records to the program sections they name.
fn attach_btf_ext(raw: &[u8], btf: &Btf, sections: &mut [Section]) -> Result<()> {
    let ext = read::btf_ext::parse(raw, btf)?;
    fn find<'a>(sections: &'a mut [Section], name: &str, what: &str) -> Result<&'a mut Section> {
        match sections.iter_mut().find(|s| s.name == name) {
            Some(s) if s.kind == SectionKind::Program => Ok(s),
            Some(_) => bail!("{what} records for section '{name}', which holds no code"),
            None => bail!("{what} records for section '{name}', which does not exist"),
        }
    }
    fn check(sec: &Section, insn: u32, what: &str) -> Result<()> {
        if insn as usize >= sec.insns.len() {
            bail!(
                "{what} record for instruction {insn} of section '{}', which has {} instructions",
                sec.name,
                sec.insns.len()
            );
        }
        Ok(())
    }
    for s in ext.func_info {
        let sec = find(sections, &s.sec_name, "func_info")?;
        for r in &s.records {
            if !read::workarounds::record_for_empty_code(sec, r.insn.0) {
                check(sec, r.insn.0, "func_info")?;
            }
        }
        sec.func_info.extend(s.records);
    }
    for s in ext.line_info {
        let sec = find(sections, &s.sec_name, "line_info")?;
        for r in &s.records {
            if !read::workarounds::record_for_empty_code(sec, r.insn.0) {
                check(sec, r.insn.0, "line_info")?;
            }
        }
        sec.line_info.extend(s.records);
    }
    for s in ext.core_relos {
        let sec = find(sections, &s.sec_name, "CO-RE relocation")?;
        for r in &s.records {
            check(sec, r.insn.0, "CO-RE relocation")?;
        }
        sec.core_relos.extend(s.records);
    }
    Ok(())
}
