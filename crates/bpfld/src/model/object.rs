//! A relocatable BPF ELF object: sections, symbols, relocations, BTF.

use super::btf::Btf;
use super::btf_ext::{CoreRelo, FuncInfo, LineInfo};
use super::insn::{Insn, InsnIndex};
use super::Endian;

/// Index of a section in the ELF section header table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct SectionId(pub u32);

/// Index of a symbol in `.symtab` (0 is the null symbol).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct SymbolId(pub u32);

/// A whole object file.
#[derive(Clone, Debug)]
pub struct Object {
    /// Byte order of every section.
    pub endian: Endian,
    /// All sections in header order; `sections[i].id == SectionId(i)`,
    /// including the null section at index 0.
    pub sections: Vec<Section>,
    /// All symbols in `.symtab` order, including the null symbol at 0.
    pub symbols: Vec<Symbol>,
    /// `.BTF`, when present.
    pub btf: Option<Btf>,
    /// Raw `.BTF.ext` bytes, when present; its records are attached to the
    /// program sections they describe (`Section::func_info` and friends).
    pub btf_ext_raw: Option<Vec<u8>>,
}

/// What a section holds, as far as BPF is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionKind {
    /// The null section and anything without contents that matters.
    Null,
    /// Executable code (`SHF_EXECINSTR`): `.text` or an entry program.
    Program,
    /// BTF-defined maps (`.maps`).
    Maps,
    /// Legacy `maps` section with `struct bpf_map_def`.
    LegacyMaps,
    /// `.data`, `.data.*`.
    Data,
    /// `.rodata`, `.rodata.*`.
    Rodata,
    /// `.bss`, `.bss.*` (no file contents).
    Bss,
    /// `license`: the license string the kernel checks for GPL-only helpers.
    License,
    /// `version`: the legacy kernel version word.
    Version,
    /// `.BTF`.
    Btf,
    /// `.BTF.ext`.
    BtfExt,
    /// `.symtab`.
    SymTab,
    /// A string table (`.strtab`, `.shstrtab`).
    StrTab,
    /// A `SHT_REL` section; its entries live in the target's `relocs`.
    Rel,
    /// Anything else (`.xdp_run_config`, `.llvm_addrsig`, DWARF, ...).
    Other,
}

/// One ELF section.
#[derive(Clone, Debug)]
pub struct Section {
    /// Its index, `sections[id]`.
    pub id: SectionId,
    /// Its name.
    pub name: String,
    /// What it holds, for BPF.
    pub kind: SectionKind,
    /// ELF `sh_type`.
    pub sh_type: u32,
    /// ELF `sh_flags`.
    pub sh_flags: u64,
    /// ELF `sh_addralign`.
    pub sh_addralign: u64,
    /// ELF `sh_size` (for `SHT_NOBITS`, the size without contents).
    pub sh_size: u64,
    /// ELF `sh_link`.
    pub sh_link: u32,
    /// ELF `sh_info`.
    pub sh_info: u32,
    /// ELF `sh_entsize`.
    pub sh_entsize: u64,
    /// File contents (empty for `SHT_NOBITS`).
    pub data: Vec<u8>,
    /// Decoded instruction slots, for `SectionKind::Program`.
    pub insns: Vec<Insn>,
    /// Relocations that apply to this section, from its `.rel` section.
    pub relocs: Vec<Reloc>,
    /// BTF.ext records attached to this section's instructions.
    pub func_info: Vec<FuncInfo>,
    /// Line-info records of this section's instructions.
    pub line_info: Vec<LineInfo>,
    /// CO-RE relocation records of this section's instructions.
    pub core_relos: Vec<CoreRelo>,
}

impl Section {
    /// A section with no contents yet, for passes that build objects.
    pub fn empty(id: SectionId, name: &str, kind: SectionKind, sh_type: u32) -> Section {
        Section {
            id,
            name: name.into(),
            kind,
            sh_type,
            sh_flags: 0,
            sh_addralign: 1,
            sh_size: 0,
            sh_link: 0,
            sh_info: 0,
            sh_entsize: 0,
            data: Vec::new(),
            insns: Vec::new(),
            relocs: Vec::new(),
            func_info: Vec::new(),
            line_info: Vec::new(),
            core_relos: Vec::new(),
        }
    }

    /// Whether it holds code (an entry program or `.text`).
    pub fn is_program(&self) -> bool {
        self.kind == SectionKind::Program
    }
}

/// A symbol's binding (`STB_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Binding {
    /// `STB_LOCAL`.
    Local,
    /// `STB_GLOBAL`.
    Global,
    /// `STB_WEAK`.
    Weak,
    /// Another binding value.
    Other(u8),
}

/// A symbol's visibility (`STV_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// `STV_DEFAULT`.
    Default,
    /// `STV_INTERNAL`.
    Internal,
    /// `STV_HIDDEN` (`__hidden`): not visible to other objects after linking.
    Hidden,
    /// `STV_PROTECTED`.
    Protected,
}

/// A symbol's type (`STT_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SymbolKind {
    /// `STT_NOTYPE` (externs, labels).
    NoType,
    /// `STT_OBJECT`: a variable or map.
    Object,
    /// `STT_FUNC`: a function.
    Func,
    /// `STT_SECTION`.
    Section,
    /// `STT_FILE`.
    File,
    /// Another type value.
    Other(u8),
}

/// Where a symbol is defined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SymbolPlace {
    /// `SHN_UNDEF`: an extern.
    Undefined,
    /// `SHN_ABS`.
    Absolute,
    /// `SHN_COMMON`.
    Common,
    /// Defined in this section.
    Section(SectionId),
}

/// One `.symtab` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    /// Its index, `symbols[id]`.
    pub id: SymbolId,
    /// Its name.
    pub name: String,
    /// Its binding.
    pub binding: Binding,
    /// Its visibility.
    pub visibility: Visibility,
    /// Its type.
    pub kind: SymbolKind,
    /// Where it is defined.
    pub place: SymbolPlace,
    /// `st_value`: for a defined symbol, its offset in its section.
    pub value: u64,
    /// `st_size` in bytes.
    pub size: u64,
    /// The raw `st_other`, kept for exact round trips.
    pub st_other: u8,
}

impl Symbol {
    /// Whether it is an extern (undefined, not the null symbol).
    pub fn is_extern(&self) -> bool {
        self.place == SymbolPlace::Undefined && self.id.0 != 0
    }
}

/// BPF relocation types (`R_BPF_*`), some of which `object` has no
/// constants for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum RelocKind {
    /// `R_BPF_NONE` (0).
    None,
    /// `R_BPF_64_64` (1): the 64-bit immediate of an `ld_imm64`.
    Bpf64_64,
    /// `R_BPF_64_ABS64` (2): a 64-bit data word.
    Abs64,
    /// `R_BPF_64_ABS32` (3): a 32-bit data word (BTF/DWARF).
    Abs32,
    /// `R_BPF_64_NODYLD32` (4): a 32-bit word in `.BTF.ext`/DWARF.
    NoDyld32,
    /// `R_BPF_64_32` (10): a call's immediate, in instructions.
    Bpf64_32,
    /// Another type number.
    Unknown(u32),
}

impl RelocKind {
    /// The kind of raw type number `r`.
    pub fn from_raw(r: u32) -> Self {
        match r {
            0 => RelocKind::None,
            1 => RelocKind::Bpf64_64,
            2 => RelocKind::Abs64,
            3 => RelocKind::Abs32,
            4 => RelocKind::NoDyld32,
            10 => RelocKind::Bpf64_32,
            other => RelocKind::Unknown(other),
        }
    }
    /// The raw type number.
    pub fn raw(self) -> u32 {
        match self {
            RelocKind::None => 0,
            RelocKind::Bpf64_64 => 1,
            RelocKind::Abs64 => 2,
            RelocKind::Abs32 => 3,
            RelocKind::NoDyld32 => 4,
            RelocKind::Bpf64_32 => 10,
            RelocKind::Unknown(r) => r,
        }
    }
    /// The name llvm-objdump and readelf print.
    pub fn name(self) -> String {
        match self {
            RelocKind::None => "R_BPF_NONE".into(),
            RelocKind::Bpf64_64 => "R_BPF_64_64".into(),
            RelocKind::Abs64 => "R_BPF_64_ABS64".into(),
            RelocKind::Abs32 => "R_BPF_64_ABS32".into(),
            RelocKind::NoDyld32 => "R_BPF_64_NODYLD32".into(),
            RelocKind::Bpf64_32 => "R_BPF_64_32".into(),
            RelocKind::Unknown(r) => format!("R_BPF_{r}"),
        }
    }
}

/// One `Elf64_Rel` entry (BPF objects use REL, never RELA).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reloc {
    /// Byte offset in the target section (for code: the instruction's start).
    pub offset: u64,
    /// Its relocation type.
    pub kind: RelocKind,
    /// The symbol it refers to.
    pub symbol: SymbolId,
}

impl Reloc {
    /// The instruction slot a relocation in a program section applies to.
    pub fn insn(&self) -> InsnIndex {
        InsnIndex((self.offset / 8) as u32)
    }
}

impl Object {
    /// The section `id`, if it exists.
    pub fn section(&self, id: SectionId) -> Option<&Section> {
        self.sections.get(id.0 as usize)
    }
    /// The first section named `name`.
    pub fn section_by_name(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }
    /// The symbol `id`, if it exists.
    pub fn symbol(&self, id: SymbolId) -> Option<&Symbol> {
        self.symbols.get(id.0 as usize)
    }
}

/// The section that carries the link report inside a linked object: a
/// string table (SHT_STRTAB) holding the report as one JSON string.
/// Loaders ignore it: libbpf skips string tables silently (an unknown
/// PROGBITS section, the first form, made it print "skipping
/// unrecognized data section"), aya and cilium/ebpf skip unknown
/// sections. The first form (PROGBITS, the JSON alone) is still read.
pub const LINKMAP_SECTION: &str = ".bpfld.linkmap";
