//! The ELF writer: an [`Object`] into relocatable ELF64 bytes.
//!
//! The layout is LLVM's: the null section, content sections in model order
//! each followed by its `.rel` section, then `.symtab` and one `.strtab`
//! holding both section and symbol names. Code is encoded from the model's
//! instructions, `.BTF` from its type graph and `.BTF.ext` from the records
//! attached to each section, so whatever a pass changed in the model is what
//! gets written. The output depends on nothing but the model.

use std::collections::HashMap;
use std::io::{Seek, SeekFrom, Write};

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

/// Serialises an object.
pub fn to_bytes(obj: &Object) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    write_to(obj, &mut out)?;
    Ok(out.into_inner())
}

/// The header fields of one output section.
struct Header {
    name: u32,
    sh_type: u32,
    flags: u64,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
    align: u64,
    entsize: u64,
}

/// A sink that counts what it has written, so sections can be aligned.
struct Counted<'a, W: Write> {
    w: &'a mut W,
    pos: u64,
}

impl<W: Write> Counted<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.w
            .write_all(bytes)
            .map_err(|e| crate::error::Error::new(format!("cannot write: {e}")))?;
        self.pos += bytes.len() as u64;
        Ok(())
    }
    fn align(&mut self, align: u64) -> Result<()> {
        let to = self.pos.next_multiple_of(align.max(1));
        let zeros = [0u8; 64];
        while self.pos < to {
            let n = (to - self.pos).min(zeros.len() as u64) as usize;
            self.write(&zeros[..n])?;
        }
        Ok(())
    }
}

/// Writes an object as ELF into `w`, one section at a time (no copy of the
/// whole file is built), then goes back to fill in the file header.
pub fn write_to<W: Write + Seek>(obj: &Object, w: &mut W) -> Result<()> {
    write_impl(&mut Model::Shared(obj), None, w)
}

/// [`write_to`] that frees each part of `obj` once it is written (the
/// object is left without code, data, relocations or BTF). `code` holds
/// instructions of code sections that are not in the model.
pub fn write_consuming<W: Write + Seek>(
    obj: &mut Object,
    code: Option<&mut dyn SpilledCode>,
    w: &mut W,
) -> Result<()> {
    write_impl(&mut Model::Owned(obj), code, w)
}

/// Instructions of an object's code sections kept outside the model (a
/// linker's temporary file): for each code section, they come before the
/// ones in its `Section::insns`.
pub trait SpilledCode {
    /// Writes, through `out`, the encoded instructions of the section at
    /// `index` in `Object::sections` that are not in its `insns`.
    fn write_code(
        &mut self,
        index: usize,
        endian: Endian,
        out: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()>;
}

/// The object being written: borrowed, or owned and freed as it goes.
enum Model<'a> {
    Shared(&'a Object),
    Owned(&'a mut Object),
}

impl Model<'_> {
    fn get(&self) -> &Object {
        match self {
            Model::Shared(o) => o,
            Model::Owned(o) => o,
        }
    }

    /// Section `k` has been written: its contents are no longer needed
    /// (its BTF.ext records are, until `.BTF.ext` is written).
    fn written(&mut self, k: usize) {
        if let Model::Owned(o) = self {
            if let Some(s) = o.sections.get_mut(k) {
                s.insns = Vec::new();
                s.data = Vec::new();
                s.relocs = Vec::new();
            }
        }
    }

    /// `.BTF.ext` has been written: the records and BTF are done.
    fn ext_written(&mut self) {
        if let Model::Owned(o) = self {
            for s in &mut o.sections {
                s.func_info = Vec::new();
                s.line_info = Vec::new();
                s.core_relos = Vec::new();
            }
            o.btf = None;
        }
    }
}

fn write_impl<W: Write + Seek>(
    model: &mut Model<'_>,
    mut code: Option<&mut dyn SpilledCode>,
    w: &mut W,
) -> Result<()> {
    let obj = model.get();
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
    let shnum = u64::from(strtab_index) + 1;
    if shnum >= 0xff00 {
        crate::bail!("too many sections ({shnum}) for an ELF header");
    }

    // Symbols: the null symbol, locals, then everything else (ELF's rule).
    let mut order: Vec<usize> = Vec::with_capacity(obj.symbols.len());
    order.extend((1..obj.symbols.len()).filter(|&i| obj.symbols[i].binding == Binding::Local));
    let first_global = order.len() as u32 + 1;
    order.extend((1..obj.symbols.len()).filter(|&i| obj.symbols[i].binding != Binding::Local));
    let mut sym_index: HashMap<u32, u32> = HashMap::from([(0, 0)]);
    for (n, &i) in order.iter().enumerate() {
        sym_index.insert(obj.symbols[i].id.0, n as u32 + 1);
    }

    // Section names first, then symbol names, so the table is stable.
    let mut strtab = StrTab::new();
    let mut name_offs = Vec::with_capacity(next as usize + 1);
    for s in &kept {
        name_offs.push(strtab.add(&s.name));
        if !s.relocs.is_empty() {
            name_offs.push(strtab.add(&format!(".rel{}", s.name)));
        }
    }
    let symtab_name = strtab.add(".symtab");
    let strtab_name = strtab.add(".strtab");
    let mut names = name_offs.into_iter();
    let mut name = move || names.next().unwrap_or(0);
    // Positions of the kept sections in `obj.sections`, so that each can be
    // freed once written.
    let kept: Vec<usize> = obj
        .sections
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            !matches!(
                s.kind,
                SectionKind::Null | SectionKind::Rel | SectionKind::SymTab | SectionKind::StrTab
            )
        })
        .map(|(k, _)| k)
        .collect();

    let mut out = Counted { w, pos: 0 };
    out.write(&[0u8; EHDR_SIZE as usize])?;
    let mut headers: Vec<Header> = Vec::with_capacity(next as usize + 1);
    for k in kept {
        let obj = model.get();
        let Some(s) = obj.sections.get(k) else {
            continue;
        };
        out.align(s.sh_addralign)?;
        let offset = out.pos;
        let size = write_contents(obj, k, s, &mut code, &mut out)?;
        headers.push(Header {
            name: name(),
            sh_type: s.sh_type,
            flags: s.sh_flags,
            offset,
            size: if s.sh_type == SHT_NOBITS {
                s.sh_size
            } else {
                size
            },
            link: 0,
            info: 0,
            align: s.sh_addralign,
            entsize: s.sh_entsize,
        });
        if !s.relocs.is_empty() {
            out.align(8)?;
            let offset = out.pos;
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
            out.write(&rel)?;
            headers.push(Header {
                name: name(),
                sh_type: SHT_REL,
                flags: SHF_INFO_LINK,
                offset,
                size: rel.len() as u64,
                link: symtab_index,
                info: new_index[&s.id.0],
                align: 8,
                entsize: REL_SIZE,
            });
        }
        let ext = s.kind == SectionKind::BtfExt;
        model.written(k);
        if ext {
            model.ext_written();
        }
    }

    let obj = model.get();
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
    out.align(8)?;
    headers.push(Header {
        name: symtab_name,
        sh_type: SHT_SYMTAB,
        flags: 0,
        offset: out.pos,
        size: symtab.len() as u64,
        link: strtab_index,
        info: first_global,
        align: 8,
        entsize: SYM_SIZE,
    });
    out.write(&symtab)?;
    drop(symtab);
    headers.push(Header {
        name: strtab_name,
        sh_type: SHT_STRTAB,
        flags: 0,
        offset: out.pos,
        size: strtab.bytes.len() as u64,
        link: 0,
        info: 0,
        align: 1,
        entsize: 0,
    });
    out.write(&strtab.bytes)?;

    // The section header table, after the contents.
    out.align(8)?;
    let shoff = out.pos;
    let mut table = Vec::with_capacity((headers.len() + 1) * SHDR_SIZE as usize);
    table.extend_from_slice(&[0u8; SHDR_SIZE as usize]);
    for h in &headers {
        table.extend_from_slice(&e.u32_bytes(h.name));
        table.extend_from_slice(&e.u32_bytes(h.sh_type));
        table.extend_from_slice(&e.u64_bytes(h.flags));
        table.extend_from_slice(&e.u64_bytes(0));
        table.extend_from_slice(&e.u64_bytes(h.offset));
        table.extend_from_slice(&e.u64_bytes(h.size));
        table.extend_from_slice(&e.u32_bytes(h.link));
        table.extend_from_slice(&e.u32_bytes(h.info));
        table.extend_from_slice(&e.u64_bytes(h.align));
        table.extend_from_slice(&e.u64_bytes(h.entsize));
    }
    out.write(&table)?;

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
    let io = |err: std::io::Error| crate::error::Error::new(format!("cannot write: {err}"));
    out.w.seek(SeekFrom::Start(0)).map_err(io)?;
    out.w.write_all(&h).map_err(io)?;
    out.w.seek(SeekFrom::End(0)).map_err(io)?;
    Ok(())
}

/// Writes the bytes a section holds in the output; returns their number.
fn write_contents<W: Write>(
    obj: &Object,
    k: usize,
    s: &Section,
    code: &mut Option<&mut dyn SpilledCode>,
    out: &mut Counted<'_, W>,
) -> Result<u64> {
    let start = out.pos;
    match s.kind {
        SectionKind::Program => {
            if let Some(code) = code.as_mut() {
                code.write_code(k, obj.endian, &mut |b| out.write(b))?;
            }
            // Through a small buffer: no copy of the whole section.
            let mut buf = Vec::with_capacity(4096);
            for chunk in s.insns.chunks(512) {
                buf.clear();
                for insn in chunk {
                    buf.extend_from_slice(&crate::write::insn::encode_slot(insn, obj.endian));
                }
                out.write(&buf)?;
            }
        }
        SectionKind::BtfExt => match &obj.btf {
            Some(btf) => {
                crate::write::btf_ext::write_from_sections(obj, btf, &mut |b| out.write(b))?
            }
            None => out.write(&s.data)?,
        },
        SectionKind::Btf if obj.btf.is_some() => {
            out.write(&section_contents(obj, s)?)?;
        }
        _ if s.sh_type == SHT_NOBITS => {}
        _ => out.write(&s.data)?,
    }
    Ok(out.pos - start)
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

/// Writes `obj` to `path` atomically, like [`write_atomic`], encoding one
/// section at a time rather than the whole file first, and freeing each
/// part of the object once it is written.
pub fn write_object_atomic(path: &std::path::Path, obj: Object) -> Result<()> {
    write_object_atomic_with(path, obj, None)
}

/// [`write_object_atomic`] for an object part of whose code is in `code`.
pub fn write_object_atomic_with(
    path: &std::path::Path,
    mut obj: Object,
    code: Option<&mut dyn SpilledCode>,
) -> Result<()> {
    atomic(path, |f| {
        let mut w = std::io::BufWriter::new(f);
        write_consuming(&mut obj, code, &mut w)?;
        w.flush()
            .map_err(|e| crate::error::Error::new(format!("cannot write: {e}")))
    })
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, then a rename, so a failure leaves no partial output and an
/// existing file untouched.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("bpfld-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let out = dir.join("pass.o");
/// let obj = bpfld::Object::parse(include_bytes!("../../../../fixtures/xdp_pass.o"))?;
/// bpfld::write_atomic(&out, &obj.to_bytes()?)?;
/// assert_eq!(bpfld::Object::read_file(&out)?.symbols.len(), obj.symbols.len());
/// // A directory that does not exist: an error naming the file, nothing written.
/// let err = bpfld::write_atomic(&dir.join("no/such/dir/x.o"), b"x").unwrap_err();
/// assert!(err.to_string().contains("x.o"), "{err}");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), bpfld::Error>(())
/// ```
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    atomic(path, |f| {
        f.write_all(bytes)
            .map_err(|e| crate::error::Error::new(format!("cannot write: {e}")))
    })
}

fn atomic(
    path: &std::path::Path,
    fill: impl FnOnce(&mut std::fs::File) -> Result<()>,
) -> Result<()> {
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
        fill(&mut f).map_err(|e| e.in_file(path.display()))?;
        f.sync_all().map_err(|e| err("sync", e))?;
        std::fs::rename(&tmp, path).map_err(|e| err("rename the temporary file", e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
