//! The ELF writer: an [`Object`] into relocatable ELF64 bytes.
//!
//! The layout is LLVM's: the null section, content sections in model order
//! each followed by its `.rel` section, then `.symtab` and one `.strtab`
//! holding both section and symbol names. Code is encoded from the model's
//! instructions, `.BTF` from its type graph and `.BTF.ext` from the records
//! attached to each section, so whatever a pass changed in the model is what
//! gets written. The output depends on nothing but the model.

use std::collections::HashMap;

use crate::error::Result;
use crate::model::object::{
    Binding, Object, Section, SectionKind, SymbolKind, SymbolPlace, Visibility,
};
use crate::model::Endian;

const EHDR_SIZE: u64 = 64;
const SHDR_SIZE: u64 = 64;
const SYM_SIZE: u64 = 24;
const REL_SIZE: u64 = 16;

const SHT_SYMTAB: u32 = 2;
const SHT_STRTAB: u32 = 3;
const SHT_NOBITS: u32 = 8;
const SHT_REL: u32 = 9;
const SHF_INFO_LINK: u64 = 0x40;
const EM_BPF: u16 = 247;

/// A string table that stores each distinct string once, in first-use order.
#[derive(Default)]
struct StrTab {
    bytes: Vec<u8>,
    offsets: HashMap<String, u32>,
}

impl StrTab {
    fn new() -> Self {
        StrTab {
            bytes: vec![0],
            offsets: HashMap::from([(String::new(), 0)]),
        }
    }
    fn add(&mut self, s: &str) -> u32 {
        if let Some(&off) = self.offsets.get(s) {
            return off;
        }
        let off = self.bytes.len() as u32;
        self.bytes.extend_from_slice(s.as_bytes());
        self.bytes.push(0);
        self.offsets.insert(s.to_string(), off);
        off
    }
}

struct OutSection {
    name: String,
    sh_type: u32,
    flags: u64,
    align: u64,
    size: u64,
    link: u32,
    info: u32,
    entsize: u64,
    data: Vec<u8>,
}

/// Serialises an object.
pub fn to_bytes(obj: &Object) -> Result<Vec<u8>> {
    let e = obj.endian;

    // Which model sections are written, and their new indices. Relocation
    // sections, the symbol table and string tables are rebuilt.
    let mut kept: Vec<&Section> = Vec::new();
    for s in &obj.sections {
        match s.kind {
            SectionKind::Null | SectionKind::Rel | SectionKind::SymTab | SectionKind::StrTab => {}
            _ => kept.push(s),
        }
    }
    let mut new_index: HashMap<u32, u32> = HashMap::new();
    let mut next = 1u32;
    for s in &kept {
        new_index.insert(s.id.0, next);
        next += 1;
        if !s.relocs.is_empty() {
            next += 1;
        }
    }
    let symtab_index = next;
    let strtab_index = next + 1;

    // Symbols: the null symbol, locals, then everything else (ELF's rule).
    let mut order: Vec<usize> = Vec::with_capacity(obj.symbols.len());
    order.extend((1..obj.symbols.len()).filter(|&i| obj.symbols[i].binding == Binding::Local));
    let first_global = order.len() as u32 + 1;
    order.extend((1..obj.symbols.len()).filter(|&i| obj.symbols[i].binding != Binding::Local));
    let mut sym_index: HashMap<u32, u32> = HashMap::from([(0, 0)]);
    for (n, &i) in order.iter().enumerate() {
        sym_index.insert(obj.symbols[i].id.0, n as u32 + 1);
    }

    let mut strtab = StrTab::new();
    let mut out: Vec<OutSection> = Vec::new();
    for s in &kept {
        let data = section_contents(obj, s)?;
        let is_nobits = s.sh_type == SHT_NOBITS;
        out.push(OutSection {
            name: s.name.clone(),
            sh_type: s.sh_type,
            flags: s.sh_flags,
            align: s.sh_addralign,
            size: if is_nobits {
                s.sh_size
            } else {
                data.len() as u64
            },
            link: 0,
            info: 0,
            entsize: s.sh_entsize,
            data: if is_nobits { Vec::new() } else { data },
        });
        if !s.relocs.is_empty() {
            let mut rel = Vec::with_capacity(s.relocs.len() * REL_SIZE as usize);
            for r in &s.relocs {
                let Some(&sym) = sym_index.get(&r.symbol.0) else {
                    crate::bail!(
                        "section '{}': relocation at {:#x} refers to symbol {} which does not exist",
                        s.name,
                        r.offset,
                        r.symbol.0
                    );
                };
                rel.extend_from_slice(&e.u64_bytes(r.offset));
                rel.extend_from_slice(
                    &e.u64_bytes((u64::from(sym) << 32) | u64::from(r.kind.raw())),
                );
            }
            let rel_name = format!(".rel{}", s.name);
            out.push(OutSection {
                name: rel_name,
                sh_type: SHT_REL,
                flags: SHF_INFO_LINK,
                align: 8,
                size: rel.len() as u64,
                link: symtab_index,
                info: new_index[&s.id.0],
                entsize: REL_SIZE,
                data: rel,
            });
        }
    }

    // Section names first, then symbol names, so the table is stable.
    let mut name_offs: Vec<u32> = out.iter().map(|s| strtab.add(&s.name)).collect();
    let symtab_name = strtab.add(".symtab");
    let strtab_name = strtab.add(".strtab");

    let mut symtab = vec![0u8; SYM_SIZE as usize];
    for &i in &order {
        let sym = &obj.symbols[i];
        let name = if sym.kind == SymbolKind::Section {
            0
        } else {
            strtab.add(&sym.name)
        };
        let shndx: u16 = match sym.place {
            SymbolPlace::Undefined => 0,
            SymbolPlace::Absolute => 0xfff1,
            SymbolPlace::Common => 0xfff2,
            SymbolPlace::Section(id) => match new_index.get(&id.0) {
                Some(&n) if n < 0xff00 => n as u16,
                Some(_) => crate::bail!("too many sections for a 16-bit section index"),
                None => crate::bail!(
                    "symbol '{}' is defined in section {} which is not written",
                    sym.name,
                    id.0
                ),
            },
        };
        let bind: u8 = match sym.binding {
            Binding::Local => 0,
            Binding::Global => 1,
            Binding::Weak => 2,
            Binding::Other(b) => b,
        };
        let typ: u8 = match sym.kind {
            SymbolKind::NoType => 0,
            SymbolKind::Object => 1,
            SymbolKind::Func => 2,
            SymbolKind::Section => 3,
            SymbolKind::File => 4,
            SymbolKind::Other(t) => t,
        };
        let vis: u8 = match sym.visibility {
            Visibility::Default => 0,
            Visibility::Internal => 1,
            Visibility::Hidden => 2,
            Visibility::Protected => 3,
        };
        symtab.extend_from_slice(&e.u32_bytes(name));
        symtab.push((bind << 4) | (typ & 0xf));
        symtab.push((sym.st_other & !3) | vis);
        symtab.extend_from_slice(&e.u16_bytes(shndx));
        symtab.extend_from_slice(&e.u64_bytes(sym.value));
        symtab.extend_from_slice(&e.u64_bytes(sym.size));
    }
    out.push(OutSection {
        name: ".symtab".into(),
        sh_type: SHT_SYMTAB,
        flags: 0,
        align: 8,
        size: symtab.len() as u64,
        link: strtab_index,
        info: first_global,
        entsize: SYM_SIZE,
        data: symtab,
    });
    name_offs.push(symtab_name);
    let strtab_bytes = std::mem::take(&mut strtab.bytes);
    out.push(OutSection {
        name: ".strtab".into(),
        sh_type: SHT_STRTAB,
        flags: 0,
        align: 1,
        size: strtab_bytes.len() as u64,
        link: 0,
        info: 0,
        entsize: 0,
        data: strtab_bytes,
    });
    name_offs.push(strtab_name);

    // Layout: header, contents, section header table; sized up front so
    // the buffer is allocated once.
    let mut total = EHDR_SIZE as usize;
    for s in &out {
        total = total.next_multiple_of(s.align.max(1) as usize) + s.data.len();
    }
    total = total.next_multiple_of(8) + (out.len() + 1) * SHDR_SIZE as usize;
    let mut bytes = Vec::with_capacity(total);
    bytes.resize(EHDR_SIZE as usize, 0);
    let mut offsets = Vec::with_capacity(out.len());
    for s in &out {
        let align = s.align.max(1) as usize;
        while bytes.len() % align != 0 {
            bytes.push(0);
        }
        offsets.push(bytes.len() as u64);
        bytes.extend_from_slice(&s.data);
    }
    while bytes.len() % 8 != 0 {
        bytes.push(0);
    }
    let shoff = bytes.len() as u64;
    bytes.extend_from_slice(&[0u8; SHDR_SIZE as usize]);
    for (i, s) in out.iter().enumerate() {
        bytes.extend_from_slice(&e.u32_bytes(name_offs[i]));
        bytes.extend_from_slice(&e.u32_bytes(s.sh_type));
        bytes.extend_from_slice(&e.u64_bytes(s.flags));
        bytes.extend_from_slice(&e.u64_bytes(0));
        bytes.extend_from_slice(&e.u64_bytes(offsets[i]));
        bytes.extend_from_slice(&e.u64_bytes(s.size));
        bytes.extend_from_slice(&e.u32_bytes(s.link));
        bytes.extend_from_slice(&e.u32_bytes(s.info));
        bytes.extend_from_slice(&e.u64_bytes(s.align));
        bytes.extend_from_slice(&e.u64_bytes(s.entsize));
    }
    let shnum = out.len() as u64 + 1;
    if shnum >= 0xff00 {
        crate::bail!("too many sections ({shnum}) for an ELF header");
    }

    let mut h = Vec::with_capacity(EHDR_SIZE as usize);
    h.extend_from_slice(b"\x7fELF");
    h.push(2); // ELFCLASS64
    h.push(match e {
        Endian::Little => 1,
        Endian::Big => 2,
    });
    h.push(1); // EV_CURRENT
    h.extend_from_slice(&[0; 9]); // OS ABI, padding
    h.extend_from_slice(&e.u16_bytes(1)); // ET_REL
    h.extend_from_slice(&e.u16_bytes(EM_BPF));
    h.extend_from_slice(&e.u32_bytes(1));
    h.extend_from_slice(&e.u64_bytes(0)); // e_entry
    h.extend_from_slice(&e.u64_bytes(0)); // e_phoff
    h.extend_from_slice(&e.u64_bytes(shoff));
    h.extend_from_slice(&e.u32_bytes(0)); // e_flags
    h.extend_from_slice(&e.u16_bytes(EHDR_SIZE as u16));
    h.extend_from_slice(&e.u16_bytes(0)); // e_phentsize
    h.extend_from_slice(&e.u16_bytes(0)); // e_phnum
    h.extend_from_slice(&e.u16_bytes(SHDR_SIZE as u16));
    h.extend_from_slice(&e.u16_bytes(shnum as u16));
    h.extend_from_slice(&e.u16_bytes(strtab_index as u16));
    bytes[..EHDR_SIZE as usize].copy_from_slice(&h);
    Ok(bytes)
}

/// The bytes a section holds in the output.
fn section_contents(obj: &Object, s: &Section) -> Result<Vec<u8>> {
    Ok(match s.kind {
        SectionKind::Program => crate::write::insn::encode(&s.insns, obj.endian),
        SectionKind::Btf => match &obj.btf {
            Some(btf) => crate::write::btf::to_bytes(btf),
            None => s.data.clone(),
        },
        SectionKind::BtfExt => match &obj.btf {
            Some(btf) => crate::write::btf_ext::from_sections(obj, btf)?,
            None => s.data.clone(),
        },
        _ => s.data.clone(),
    })
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, then a rename, so a failure leaves no partial output and an
/// existing file untouched.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let err = |what: &str, e: std::io::Error| {
        crate::error::Error::new(format!("cannot {what}: {e}")).in_file(path.display())
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| err("create a temporary file", e))?;
        f.write_all(bytes).map_err(|e| err("write", e))?;
        f.sync_all().map_err(|e| err("sync", e))?;
        std::fs::rename(&tmp, path).map_err(|e| err("rename the temporary file", e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
