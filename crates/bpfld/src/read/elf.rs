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

fn elf_err(what: &str) -> impl Fn(object::read::Error) -> Error + '_ {
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
        let sh_type = sh.sh_type(e).0;
        let data_bytes = if sh_type == elf::SHT_NOBITS.0 {
            // No bytes in the file, but the loader allocates this much.
            if sh.sh_size(e) > MAX_NOBITS {
                bail!(
                    "section '{name}': size {:#x} is more than a BPF map value can hold",
                    sh.sh_size(e)
                );
            }
            &[][..]
        } else {
            sh.data(e, data).map_err(|err| {
                Error::new(format!(
                    "contents at offset {:#x} size {:#x} lie outside the file: {err}",
                    sh.sh_offset(e),
                    sh.sh_size(e)
                ))
                .in_section(&name)
            })?
        };
        let kind = classify(&name, sh_type, sh.sh_flags(e).0);
        let align = sh.sh_addralign(e);
        if align > 1 && (!align.is_power_of_two() || align > MAX_ALIGN) {
            bail!(
                "section '{name}': alignment {align:#x} is not a power of two up to {MAX_ALIGN:#x}"
            );
        }
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
        let want = match sec.kind {
            SectionKind::SymTab => 24,
            SectionKind::Rel if sec.sh_type == elf::SHT_REL.0 => 16,
            _ => continue,
        };
        if sec.sh_entsize != want {
            bail!(
                "section '{}': sh_entsize is {}, expected {want}",
                sec.name,
                sec.sh_entsize
            );
        }
    }
    let symbols = read_symbols(&table, e, data, sections.len())?;
    let halves: Vec<Vec<bool>> = sections
        .iter()
        .map(|s| crate::model::insn::second_halves(&s.insns))
        .collect();
    for sym in &symbols {
        let SymbolPlace::Section(id) = sym.place else {
            continue;
        };
        let sec = &sections[id.0 as usize];
        if sym.kind == SymbolKind::Section || sec.kind == SectionKind::Null {
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
        // A function is whole instructions: it starts at one and is a
        // number of slots long, never inside an ld_imm64.
        if sec.kind == SectionKind::Program && sym.kind == SymbolKind::Func {
            let inside = |off: u64| {
                halves[id.0 as usize]
                    .get((off / 8) as usize)
                    .copied()
                    .unwrap_or(false)
            };
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

    read_relocations(&table, e, data, &mut sections, symbols.len())?;

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

fn read_symbols(
    table: &object::read::elf::SectionTable<'_, Header>,
    e: Endianness,
    data: &[u8],
    nsections: usize,
) -> Result<Vec<Symbol>> {
    let symtab = table
        .symbols(e, data, elf::SHT_SYMTAB)
        .map_err(elf_err("bad symbol table"))?;
    let strings = symtab.strings();
    let mut symbols = Vec::with_capacity(symtab.len());
    for (index, sym) in symtab.enumerate() {
        let name = strings
            .get(sym.st_name(e))
            .map_err(|_| {
                Error::new(format!(
                    "symbol {}: name offset {:#x} outside the string table",
                    index.0,
                    sym.st_name(e)
                ))
            })
            .map(|n| String::from_utf8_lossy(n).into_owned())?;
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

fn read_relocations(
    table: &object::read::elf::SectionTable<'_, Header>,
    e: Endianness,
    data: &[u8],
    sections: &mut [Section],
    nsymbols: usize,
) -> Result<()> {
    for (index, sh) in table.enumerate() {
        let sh_type = sh.sh_type(e);
        let rel_name = sections[index.0].name.clone();
        if sh_type == elf::SHT_RELA {
            bail!("section '{rel_name}': RELA relocations are not used by BPF objects");
        }
        if sh_type != elf::SHT_REL {
            continue;
        }
        let rels: &[elf::Rel64<Endianness>] = sh.data_as_array(e, data).map_err(|err| {
            Error::new(format!("bad relocation entries: {err}")).in_section(&rel_name)
        })?;
        let link = sh.sh_link(e) as usize;
        if sections.get(link).map(|s| s.kind) != Some(SectionKind::SymTab) {
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
        let target_name = target_sec.name.clone();
        if target_name.starts_with(".debug") {
            continue; // DWARF is neither used nor written
        }
        let is_code = target_sec.kind == SectionKind::Program;
        let size = target_sec.sh_size;
        let mut relocs = Vec::with_capacity(rels.len());
        let t = RelTarget {
            rel_name: &rel_name,
            target_name: &target_name,
            size,
            is_code,
            nsymbols,
        };
        let insns = &target_sec.insns;
        for (i, rel) in rels.iter().enumerate() {
            let opcode = |offset: u64| insns.get((offset / 8) as usize).map_or(0, |i| i.code);
            relocs.push(check_reloc(rel, i, e, &t, opcode)?);
        }
        sections[target].relocs.extend(relocs);
    }
    Ok(())
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
