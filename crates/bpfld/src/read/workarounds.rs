//! What real producers write that the format (or the kernel) does not
//! allow, in one place.
//!
//! Two kinds of quirk live here, each a documented function:
//! - **read quirks**: input whose meaning is clear although a field breaks
//!   a rule. The reader accepts it (with a warning on stderr when the input
//!   breaks the format) instead of an error; everything else stays strict
//!   (hostile input is still refused).
//! - **link quirks**: what the kernel (its BTF verifier above all) or a
//!   loader refuses although the object means something clear.
//!   [`normalize_object`] rewrites them when an object enters the linker, so the
//!   linker sees a canonical model and its output loads with BTF (libbpf
//!   instead drops the BTF of such objects).
//!
//! Listings (`btf dump`, `disasm`, `inspect`) show the object as read, not
//! normalised.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::model::btf::{
    int_encoding, Btf, TypeData, TypeId, BTF_FUNC_EXTERN, BTF_FUNC_GLOBAL, BTF_FUNC_STATIC,
    BTF_INT_CHAR, BTF_INT_SIGNED, BTF_VAR_GLOBAL_ALLOCATED, BTF_VAR_GLOBAL_EXTERN,
};
use crate::model::btf_ext::{FuncInfo, LineInfo};
use crate::model::insn::{InsnIndex, CALL};
use crate::model::object::{
    Binding, Object, RelocKind, Section, SectionId, SectionKind, Symbol, SymbolKind, SymbolPlace,
};

/// `SHT_NOBITS`.
const SHT_NOBITS: u32 = 8;
/// A call's `src` for a BPF-to-BPF call.
const BPF_PSEUDO_CALL: u8 = 1;

// ---------------------------------------------------------------------------
// Warnings

thread_local! {
    /// The file being read on this thread, named in warnings.
    static READING: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Lines already printed: the linker reads each input twice.
static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// The warnings printed so far, in order, without the `bpfld: warning: `
/// prefix (`FILE: what`): a `--json` report lists them too.
static GIVEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The warnings given so far in this process (each once, in order), as
/// `FILE: what`.
///
/// Reading accepts a few things compilers are known to write although the
/// format forbids them (GCC's BTF quirks, for one) and prints a warning
/// `bpfld: warning: FILE: what` on standard error the first time each is
/// seen; `FILE` is the name given to [`Object::read_file`] or
/// [`Object::parse_named`]. A report (the command line's `--json`) lists
/// them again from here.
///
/// ```
/// use bpfld::Object;
///
/// // clang's objects need no workaround.
/// Object::parse_named("xdp_pass.o", include_bytes!("../../../../fixtures/xdp_pass.o"))?;
/// assert!(!bpfld::warnings_given().iter().any(|w| w.starts_with("xdp_pass.o:")));
/// # Ok::<(), bpfld::Error>(())
/// ```
pub fn warnings_given() -> Vec<String> {
    GIVEN.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Runs `f` with `file` named in the warnings it gives.
pub fn reading<T>(file: &str, f: impl FnOnce() -> T) -> T {
    let prev = READING.with(|r| r.replace(Some(file.to_string())));
    let out = f();
    READING.with(|r| *r.borrow_mut() = prev);
    out
}

/// Prints `bpfld: warning: FILE: what` on stderr, once per process.
fn warn(what: &str) {
    let text = READING.with(|r| match &*r.borrow() {
        Some(file) => format!("{file}: {what}"),
        None => what.to_string(),
    });
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if seen.get_or_insert_with(HashSet::new).insert(text.clone()) {
        // Always standard error: standard output may be a --json report.
        eprintln!("bpfld: warning: {text}");
        GIVEN.lock().unwrap_or_else(|e| e.into_inner()).push(text);
    }
}

// ---------------------------------------------------------------------------
// Read quirks

/// GCC 12 (`bpf-gcc -gbtf`) writes a FWD's size/type field non-zero (the
/// kernel and the format want 0). A FWD has no size or referenced type, so
/// the field means nothing: it is read as 0, with a warning.
/// `what` names the type (`type [N] FWD 'name' at offset O`).
pub fn fwd_size_or_type(what: &str, value: u32) {
    warn(&format!(
        "section '.BTF': {what}: size/type field {value} of a FWD read as 0 \
         (written by GCC's BTF; it carries no meaning)"
    ));
}

/// An executable section with no instructions (clang for a naked empty
/// function, as in the kernel selftests' `.empty_section`) still gets a
/// func_info and line_info record at instruction 0. The record describes
/// code that does not exist, and libbpf never loads such a section as a
/// program, but links it: the record is accepted (and kept, so that the
/// object writes back as it was). Whether `insn` of `sec` is such a record.
pub fn record_for_empty_code(sec: &Section, insn: u32) -> bool {
    sec.insns.is_empty() && sec.sh_size == 0 && insn == 0
}

/// What an unknown relocation type `raw` is in binutils' numbering up to
/// 2.40, for the error refusing it (empty if binutils had no such number,
/// or gave it the meaning LLVM's has): ` (NAME in binutils 2.40 and older,
/// why it is not read)`. Only the numbers LLVM's numbering leaves unused
/// are named: 1 and 10 mean the same in both (ld_imm64, call), 2 to 4
/// differ and cannot be told apart, so they are read as LLVM's.
pub fn unknown_reloc_note(raw: u32, is_code: bool) -> String {
    let name = match raw {
        5 => "R_BPF_DATA_8_PCREL",
        6 => "R_BPF_DATA_16_PCREL",
        7 => "R_BPF_DATA_32_PCREL",
        8 => "R_BPF_DATA_8",
        9 => "R_BPF_DATA_16",
        11 => "R_BPF_DATA_32",
        12 => "R_BPF_DATA_64",
        13 => "R_BPF_DATA_64_PCREL",
        _ => return String::new(),
    };
    let why = if raw == 12 && is_code {
        "a 64-bit data word, which no instruction holds"
    } else {
        "which bpfld does not read"
    };
    format!(" ({name} in binutils 2.40 and older, {why})")
}

/// The relocation type of raw number `raw` in relocation section
/// `rel_name`, whose target holds code (`is_code`) or data.
///
/// GCC with binutils 2.40 or older (Debian 12's `bpf-gcc`) numbers BPF
/// relocations its own way; later binutils use LLVM's numbers. The 64-bit
/// absolute address of a symbol in a data section (a prog array's or
/// map-in-map's `__array(values, ...)` slot in `.maps`, a `.struct_ops`
/// function pointer) is then `R_BPF_DATA_64` (12), which means exactly
/// LLVM's `R_BPF_64_ABS64`; libbpf's loader does not look at the type of
/// such relocations and loads these objects. It is read as
/// `R_BPF_64_ABS64`, with a warning, and `link` writes it back in LLVM's
/// numbering. Likewise `R_BPF_DATA_32` (11) in `.BTF` or `.BTF.ext`
/// (GCC writes one in `.BTF.ext` for the start of a section's records)
/// is the 32-bit offset clang writes there as `R_BPF_64_NODYLD32`, which
/// loaders ignore; elsewhere (a 32-bit word in `.maps`, say) it is no
/// slot libbpf fills. In code they mean nothing an instruction can hold,
/// and the other old numbers have no LLVM equivalent: they stay unknown.
pub fn reloc_kind(raw: u32, is_code: bool, rel_name: &str) -> RelocKind {
    let btf = matches!(rel_name, ".rel.BTF" | ".rel.BTF.ext");
    let (old, new, kind) = match raw {
        12 => ("R_BPF_DATA_64", "R_BPF_64_ABS64", RelocKind::Abs64),
        11 if btf => ("R_BPF_DATA_32", "R_BPF_64_NODYLD32", RelocKind::NoDyld32),
        _ => return RelocKind::from_raw(raw),
    };
    if is_code {
        return RelocKind::from_raw(raw);
    }
    warn(&format!(
        "section '{rel_name}': {old} (type {raw} in binutils 2.40 and older) read as {new}"
    ));
    kind
}

// ---------------------------------------------------------------------------
// Link quirks

/// Whether [`normalize_object`] would change anything.
pub fn needs_normalizing(obj: &Object) -> bool {
    let btf_quirks = || {
        let Some(btf) = &obj.btf else {
            return false;
        };
        let symbols = Symbols::of(&obj.symbols, Some(btf));
        btf.iter()
            .any(|(id, _)| quirk_of(btf, &symbols, id).is_some())
            || missing_ext_info(obj, &symbols).is_some()
    };
    obj.sections.iter().any(|s| is_unused_empty_data(obj, s))
        || !call_addends_in_bytes(obj).is_empty()
        || btf_quirks()
}

/// Rewrites the link quirks of `obj` in place. Every type keeps its id
/// (strings may be added).
pub fn normalize_object(obj: &mut Object) {
    let symbols = Symbols::of(&obj.symbols, obj.btf.as_ref());
    let ext_info = missing_ext_info(obj, &symbols);
    if let Some(btf) = &mut obj.btf {
        for i in 1..btf.types.len() {
            let id = TypeId(i as u32);
            if let Some(fix) = quirk_of(btf, &symbols, id) {
                fix(btf, id);
            }
        }
    }
    if let Some(records) = ext_info {
        add_ext_info(obj, records);
    }
    for (sec, insn) in call_addends_in_bytes(obj) {
        if let Some(i) = obj.sections[sec].insns.get_mut(insn) {
            i.imm = -1;
        }
    }
    let unused: Vec<usize> = (0..obj.sections.len())
        .filter(|&i| is_unused_empty_data(obj, &obj.sections[i]))
        .collect();
    for i in unused {
        let s = &mut obj.sections[i];
        // How the linker marks a section it no longer links.
        s.kind = SectionKind::Other;
        s.sh_type = SHT_NOBITS;
    }
}

/// GCC 12 always writes `.data` and `.bss`, empty when the source has no
/// such variables. Linked, they would become empty output sections, which
/// libbpf skips but other loaders (aya) turn into maps of size 0 that the
/// kernel refuses. An empty data section that no symbol lies in and no
/// relocation names is not linked.
fn is_unused_empty_data(obj: &Object, s: &Section) -> bool {
    if !matches!(s.kind, SectionKind::Data | SectionKind::Bss) || s.sh_size != 0 {
        return false;
    }
    let in_it: HashSet<u32> = obj
        .symbols
        .iter()
        .filter(|sym| sym.place == SymbolPlace::Section(s.id))
        .map(|sym| sym.id.0)
        .collect();
    let named = obj
        .symbols
        .iter()
        .any(|sym| sym.place == SymbolPlace::Section(s.id) && sym.kind != SymbolKind::Section);
    let relocated = obj
        .sections
        .iter()
        .flat_map(|t| &t.relocs)
        .any(|r| in_it.contains(&r.symbol.0));
    !named && !relocated
}

/// GCC 12 writes no func_info and no line_info at all, although its BTF
/// has a FUNC for every function. Without func_info the kernel does not
/// attach the BTF to the programs; once such code is linked with clang's
/// (which has both) libbpf drops the records of a program that lacks them
/// and refuses to relocate a call into a function that lacks them. The
/// records are made as the compiler would have: per function symbol, a
/// func_info naming the FUNC of the same name (a clone's: its origin's)
/// and a line_info at its first instruction (file from the object's FILE
/// symbol; no line known: 0, with empty line text). Only for GCC 12's BTF
/// (every FUNC static), with no such records anywhere, and when every
/// function (and every code section's first instruction) has its FUNC;
/// otherwise the object is left as it is.
fn missing_ext_info(obj: &Object, symbols: &Symbols) -> Option<Vec<(SectionId, Vec<FuncInfo>)>> {
    let btf = obj.btf.as_ref()?;
    if !symbols.funcs_all_static {
        return None;
    }
    let code = || {
        obj.sections
            .iter()
            .filter(|s| s.is_program() && !s.insns.is_empty())
    };
    if code().next().is_none() || code().any(|s| !s.func_info.is_empty() || !s.line_info.is_empty())
    {
        return None;
    }
    let funcs: HashMap<&str, TypeId> = btf
        .iter()
        .filter(|(_, t)| t.name_off != 0 && matches!(t.data, TypeData::Func { .. }))
        .filter_map(|(id, t)| Some((btf.name(t.name_off).ok()?, id)))
        .collect();
    let mut out = Vec::new();
    for sec in code() {
        let mut records: Vec<FuncInfo> = Vec::new();
        for sym in &obj.symbols {
            if sym.kind != SymbolKind::Func || sym.place != SymbolPlace::Section(sec.id) {
                continue;
            }
            let type_id = funcs.get(sym.name.as_str()).or_else(|| {
                // A clone (`f.isra.0`, `f.constprop.0`, `f.part.0`) is
                // static and keeps f's FUNC: the kernel expects optimised
                // static functions not to match their BTF arguments.
                let (base, _) = sym.name.split_once('.')?;
                (sym.binding == Binding::Local).then(|| funcs.get(base))?
            })?;
            records.push(FuncInfo {
                insn: InsnIndex((sym.value / 8) as u32),
                type_id: type_id.0,
            });
        }
        records.sort_by_key(|r| r.insn);
        records.dedup_by_key(|r| r.insn);
        if records.first().map(|r| r.insn.0) != Some(0) {
            return None;
        }
        out.push((sec.id, records));
    }
    Some(out)
}

/// Adds the records [`missing_ext_info`] found missing.
fn add_ext_info(obj: &mut Object, func_info: Vec<(SectionId, Vec<FuncInfo>)>) {
    let file = obj
        .symbols
        .iter()
        .find(|s| s.kind == SymbolKind::File)
        .map(|s| s.name.clone())
        .unwrap_or_default();
    let Some(btf) = &mut obj.btf else {
        return;
    };
    let file_name_off = btf
        .find_string(&file)
        .unwrap_or_else(|| btf.add_string(&file));
    for (sec, records) in func_info {
        if let Some(s) = obj.sections.get_mut(sec.0 as usize) {
            // .BTF.ext names the section through the BTF string table.
            if btf.find_string(&s.name).is_none() {
                btf.add_string(&s.name);
            }
            s.line_info = records
                .iter()
                .map(|r| LineInfo {
                    insn: r.insn,
                    file_name_off,
                    line_off: 0,
                    line_col: 0,
                })
                .collect();
            s.func_info = records;
        }
    }
}

/// What the symbol table says of a name: an extern, or a global (or weak)
/// definition. Local symbols are not listed.
#[derive(Default)]
struct Symbols<'a> {
    externs: HashSet<&'a str>,
    globals: HashSet<&'a str>,
    /// Every named FUNC is static: GCC 12's BTF, whose FUNC linkage says
    /// nothing (clang's never looks like this once a function is global,
    /// and a FUNC made static on purpose is left alone elsewhere).
    funcs_all_static: bool,
}

impl<'a> Symbols<'a> {
    fn of(symbols: &'a [Symbol], btf: Option<&Btf>) -> Symbols<'a> {
        let mut s = Symbols {
            funcs_all_static: btf.is_some_and(|btf| {
                btf.iter().all(|(_, t)| match t.data {
                    TypeData::Func { linkage, .. } => t.name_off == 0 || linkage == BTF_FUNC_STATIC,
                    _ => true,
                })
            }),
            ..Symbols::default()
        };
        for sym in symbols {
            if sym.kind == SymbolKind::Section || sym.binding == Binding::Local {
                continue;
            }
            if sym.is_extern() {
                s.externs.insert(&sym.name);
            } else {
                s.globals.insert(&sym.name);
            }
        }
        s
    }

    fn is_extern(&self, name: &str) -> bool {
        self.externs.contains(name) && !self.globals.contains(name)
    }
}

type Fix = fn(&mut Btf, TypeId);

/// The rewrite type `id` needs, if any.
fn quirk_of(btf: &Btf, symbols: &Symbols, id: TypeId) -> Option<Fix> {
    let t = btf.get(id)?;
    let name = || btf.name(t.name_off).unwrap_or("");
    match &t.data {
        TypeData::Int { data, .. } if int_encoding(*data) == BTF_INT_SIGNED | BTF_INT_CHAR => {
            Some(signed_char_int)
        }
        TypeData::Func { .. } if t.name_off == 0 => Some(anonymous_func),
        TypeData::Func {
            linkage: BTF_FUNC_STATIC,
            ..
        } if symbols.funcs_all_static && symbols.is_extern(name()) => Some(static_extern_func),
        TypeData::Func {
            linkage: BTF_FUNC_STATIC,
            ..
        } if symbols.funcs_all_static && symbols.globals.contains(name()) => {
            Some(static_global_func)
        }
        TypeData::Var {
            linkage: BTF_VAR_GLOBAL_ALLOCATED,
            ..
        } if symbols.is_extern(name()) => Some(allocated_extern_var),
        _ => None,
    }
}

/// GCC 12 encodes `char` and `signed char` as INT with both SIGNED and
/// CHAR set; the kernel allows one encoding bit at most ("Unsupported
/// encoding"). Clang writes SIGNED for both, which is what they mean.
fn signed_char_int(btf: &mut Btf, id: TypeId) {
    if let Some(TypeData::Int { data, .. }) = btf.get_mut(id).map(|t| &mut t.data) {
        *data &= !(u32::from(BTF_INT_CHAR) << 24);
    }
}

/// GCC 12 writes an anonymous static FUNC (with unnamed parameters) for
/// the type of each helper it declares (`static long (*bpf_x)(...) = (void
/// *)N`); the kernel refuses a FUNC without a name. Nothing refers to these
/// FUNCs (no code, no func_info), so each becomes what it stands for: a
/// pointer to its prototype, which keeps every type id in place.
fn anonymous_func(btf: &mut Btf, id: TypeId) {
    if let Some(t) = btf.get_mut(id) {
        if let TypeData::Func { proto, .. } = t.data {
            t.data = TypeData::Ptr(proto);
            t.kind_flag = false;
        }
    }
}

/// GCC 12 gives every FUNC static linkage. A function the object only
/// declares (its symbol is undefined) is an extern: the linker must
/// resolve it against its definition, whose FUNC replaces this one.
fn static_extern_func(btf: &mut Btf, id: TypeId) {
    set_func_linkage(btf, id, BTF_FUNC_EXTERN);
}

/// The other half of the same quirk: a function defined with a global (or
/// weak) symbol is global, as clang writes it, so that it fills the
/// externs of other objects.
fn static_global_func(btf: &mut Btf, id: TypeId) {
    set_func_linkage(btf, id, BTF_FUNC_GLOBAL);
}

fn set_func_linkage(btf: &mut Btf, id: TypeId, to: u16) {
    if let Some(TypeData::Func { linkage, .. }) = btf.get_mut(id).map(|t| &mut t.data) {
        *linkage = to;
    }
}

/// GCC 12 writes an `extern` variable as an allocated global VAR and lists
/// it in the DATASEC of the section it would live in (`.bss` for a plain
/// extern, `.kconfig` for `__kconfig`). Its symbol is undefined: the VAR
/// becomes an extern, and it leaves any DATASEC of a real section (the
/// object holds no bytes for it). The loader's ephemeral sections
/// (`.kconfig`, `.ksyms`) list their externs, as clang's objects do.
fn allocated_extern_var(btf: &mut Btf, id: TypeId) {
    if let Some(TypeData::Var { linkage, .. }) = btf.get_mut(id).map(|t| &mut t.data) {
        *linkage = BTF_VAR_GLOBAL_EXTERN;
    }
    for i in 1..btf.types.len() {
        let sec = TypeId(i as u32);
        let keep = matches!(btf.type_name(sec), ".kconfig" | ".ksyms");
        if let Some(TypeData::Datasec { vars, .. }) = btf.get_mut(sec).map(|t| &mut t.data) {
            if !keep {
                vars.retain(|v| v.type_id != id);
            }
        }
    }
}

/// GCC 12 writes the call to a function through a relocation against the
/// function's own symbol with the immediate set to the symbol's *byte*
/// offset minus one; clang (and libbpf's rule: target = symbol's
/// instruction + imm + 1) want -1 there, the symbol alone naming the
/// target. libbpf loads such calls into the wrong instruction and refuses
/// the object. The call's meaning is clear (call the symbol): the immediate
/// becomes -1. Only that exact pattern is rewritten. Returns (section
/// index, instruction index) of each such call.
fn call_addends_in_bytes(obj: &Object) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (si, s) in obj.sections.iter().enumerate() {
        if !s.is_program() {
            continue;
        }
        for r in &s.relocs {
            let Some(sym) = obj.symbols.get(r.symbol.0 as usize) else {
                continue;
            };
            let i = (r.offset / 8) as usize;
            let Some(insn) = s.insns.get(i) else {
                continue;
            };
            let in_code = match sym.place {
                SymbolPlace::Section(id) => obj
                    .sections
                    .get(id.0 as usize)
                    .is_some_and(|t| t.is_program()),
                _ => false,
            };
            let gcc_addend = i64::from(insn.imm) + 1 == sym.value as i64;
            if insn.code == CALL
                && insn.src == BPF_PSEUDO_CALL
                && sym.kind == SymbolKind::Func
                && in_code
                && sym.value != 0
                && gcc_addend
            {
                out.push((si, i));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::btf::{BtfType, Param, VarSecinfo};
    use crate::model::insn::Insn;
    use crate::model::object::{Reloc, RelocKind, Symbol, SymbolId, Visibility};
    use crate::model::Endian;

    fn sym(id: u32, name: &str, binding: Binding, place: SymbolPlace, value: u64) -> Symbol {
        Symbol {
            id: SymbolId(id),
            name: name.into(),
            binding,
            visibility: Visibility::Default,
            kind: SymbolKind::Func,
            place,
            value,
            size: 8,
            st_other: 0,
        }
    }

    /// An object with one code section (`xdp`, two instructions) and `btf`.
    fn object(btf: Btf, symbols: Vec<Symbol>) -> Object {
        let mut code = Section::empty(SectionId(1), "xdp", SectionKind::Program, 1);
        code.insns = vec![Insn::default(); 2];
        code.sh_size = 16;
        let null = Section::empty(SectionId(0), "", SectionKind::Null, 0);
        let mut all = vec![sym(0, "", Binding::Local, SymbolPlace::Undefined, 0)];
        all.extend(symbols);
        Object {
            endian: Endian::Little,
            sections: vec![null, code],
            symbols: all,
            btf: Some(btf),
            btf_ext_raw: None,
        }
    }

    fn add(btf: &mut Btf, name: &str, data: TypeData) -> TypeId {
        let off = if name.is_empty() {
            0
        } else {
            btf.add_string(name)
        };
        btf.add_type(BtfType::new(off, false, data))
    }

    #[test]
    fn signed_char_loses_its_char_bit_and_unsigned_char_keeps_it() {
        let mut btf = Btf::new(Endian::Little);
        let both = u32::from(BTF_INT_SIGNED | BTF_INT_CHAR) << 24 | 8;
        let sc = add(
            &mut btf,
            "signed char",
            TypeData::Int {
                size: 1,
                data: both,
            },
        );
        let uc_data = u32::from(BTF_INT_CHAR) << 24 | 8;
        let uc = add(
            &mut btf,
            "unsigned char",
            TypeData::Int {
                size: 1,
                data: uc_data,
            },
        );
        let mut obj = object(btf, vec![]);
        assert!(needs_normalizing(&obj));
        normalize_object(&mut obj);
        let btf = obj.btf.unwrap();
        let data = |id| match btf.get(id).map(|t| &t.data) {
            Some(TypeData::Int { data, .. }) => *data,
            other => panic!("{other:?}"),
        };
        assert_eq!(data(sc), u32::from(BTF_INT_SIGNED) << 24 | 8);
        assert_eq!(data(uc), uc_data);
    }

    /// GCC's shape: a prototype, an anonymous FUNC, `f` defined (global
    /// symbol) and `g` declared (undefined symbol), both FUNCs static.
    fn gcc_like() -> (Object, [TypeId; 4]) {
        let mut btf = Btf::new(Endian::Little);
        let int = add(
            &mut btf,
            "int",
            TypeData::Int {
                size: 4,
                data: 1 << 24 | 32,
            },
        );
        let x = btf.add_string("x");
        let proto = add(
            &mut btf,
            "",
            TypeData::FuncProto {
                ret: int,
                params: vec![Param {
                    name_off: x,
                    type_id: int,
                }],
            },
        );
        let anon = add(&mut btf, "", TypeData::Func { proto, linkage: 0 });
        let f = add(&mut btf, "f", TypeData::Func { proto, linkage: 0 });
        let g = add(&mut btf, "g", TypeData::Func { proto, linkage: 0 });
        let symbols = vec![
            sym(
                1,
                "f",
                Binding::Global,
                SymbolPlace::Section(SectionId(1)),
                0,
            ),
            sym(2, "g", Binding::Global, SymbolPlace::Undefined, 0),
        ];
        (object(btf, symbols), [proto, anon, f, g])
    }

    #[test]
    fn gcc_funcs_get_linkage_names_and_func_info() {
        let (mut obj, [proto, anon, f, g]) = gcc_like();
        normalize_object(&mut obj);
        let btf = obj.btf.as_ref().unwrap();
        assert_eq!(btf.get(anon).unwrap().data, TypeData::Ptr(proto));
        let linkage = |id| match btf.get(id).map(|t| &t.data) {
            Some(TypeData::Func { linkage, .. }) => *linkage,
            other => panic!("{other:?}"),
        };
        assert_eq!(linkage(f), BTF_FUNC_GLOBAL);
        assert_eq!(linkage(g), BTF_FUNC_EXTERN);
        let code = &obj.sections[1];
        assert_eq!(code.func_info.len(), 1);
        assert_eq!(
            (code.func_info[0].insn.0, code.func_info[0].type_id),
            (0, f.0)
        );
        assert_eq!(code.line_info.len(), 1);
        assert!(!needs_normalizing(&obj));
    }

    #[test]
    fn linkage_is_left_alone_once_any_func_is_not_static() {
        // Not GCC 12's BTF: a FUNC made static on purpose stays static.
        let (mut obj, [_, _, f, g]) = gcc_like();
        if let Some(TypeData::Func { linkage, .. }) =
            obj.btf.as_mut().unwrap().get_mut(g).map(|t| &mut t.data)
        {
            *linkage = BTF_FUNC_EXTERN;
        }
        normalize_object(&mut obj);
        let btf = obj.btf.as_ref().unwrap();
        assert!(matches!(
            btf.get(f).unwrap().data,
            TypeData::Func { linkage: 0, .. }
        ));
        assert!(obj.sections[1].func_info.is_empty());
    }

    #[test]
    fn an_extern_var_leaves_real_sections_but_not_kconfig() {
        let mut btf = Btf::new(Endian::Little);
        let int = add(
            &mut btf,
            "int",
            TypeData::Int {
                size: 4,
                data: 1 << 24 | 32,
            },
        );
        let v = add(
            &mut btf,
            "v",
            TypeData::Var {
                type_id: int,
                linkage: 1,
            },
        );
        let k = add(
            &mut btf,
            "CONFIG_HZ",
            TypeData::Var {
                type_id: int,
                linkage: 1,
            },
        );
        let entry = |id| VarSecinfo {
            type_id: id,
            offset: 0,
            size: 4,
        };
        let bss = add(
            &mut btf,
            ".bss",
            TypeData::Datasec {
                size: 0,
                vars: vec![entry(v)],
            },
        );
        let kc = add(
            &mut btf,
            ".kconfig",
            TypeData::Datasec {
                size: 0,
                vars: vec![entry(k)],
            },
        );
        let mut symbols = vec![
            sym(1, "v", Binding::Global, SymbolPlace::Undefined, 0),
            sym(2, "CONFIG_HZ", Binding::Global, SymbolPlace::Undefined, 0),
        ];
        symbols.iter_mut().for_each(|s| s.kind = SymbolKind::NoType);
        let mut obj = object(btf, symbols);
        normalize_object(&mut obj);
        let btf = obj.btf.as_ref().unwrap();
        for id in [v, k] {
            assert!(matches!(
                btf.get(id).unwrap().data,
                TypeData::Var {
                    linkage: BTF_VAR_GLOBAL_EXTERN,
                    ..
                }
            ));
        }
        let vars = |id| match btf.get(id).map(|t| &t.data) {
            Some(TypeData::Datasec { vars, .. }) => vars.len(),
            other => panic!("{other:?}"),
        };
        assert_eq!((vars(bss), vars(kc)), (0, 1));
    }

    #[test]
    fn only_gccs_exact_call_addend_is_rewritten() {
        // A call in `xdp` to `f` at byte 8 of the same section: GCC writes
        // imm 7 (8 - 1); any other immediate is left as it is.
        for (imm, want) in [(7, -1), (-1, -1), (3, 3)] {
            let (mut obj, _) = gcc_like();
            obj.symbols[1].value = 8;
            let code = &mut obj.sections[1];
            code.insns[0] = Insn {
                code: CALL,
                dst: 0,
                src: BPF_PSEUDO_CALL,
                off: 0,
                imm,
            };
            code.relocs.push(Reloc {
                offset: 0,
                kind: RelocKind::Bpf64_32,
                symbol: SymbolId(1),
            });
            normalize_object(&mut obj);
            assert_eq!(obj.sections[1].insns[0].imm, want, "imm {imm}");
        }
    }
}
