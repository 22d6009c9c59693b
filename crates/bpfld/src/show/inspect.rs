//! `bpfld inspect`: what an object holds and what it needs.

use serde::Serialize;

use crate::error::Result;
use std::collections::HashMap;

use crate::model::object::{
    Binding, Object, RelocKind, SectionId, SectionKind, Symbol, SymbolId, SymbolKind, SymbolPlace,
    Visibility,
};
use crate::model::program::program_type;
use crate::model::Endian;

/// Everything `inspect` reports, in the order it prints it.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Byte order.
    pub endian: Endian,
    /// Entry programs.
    pub programs: Vec<Program>,
    /// Every function, entry programs included.
    pub functions: Vec<Function>,
    /// What the object needs from elsewhere.
    pub externs: Vec<Extern>,
    /// Map definitions.
    pub maps: Vec<crate::model::map_def::MapDef>,
    /// Global data sections and their variables.
    pub data: Vec<DataSection>,
    /// The `license` string.
    pub license: Option<String>,
    /// The legacy `version` word.
    pub kernel_version: Option<u32>,
    /// BTF counts, when the object has BTF.
    pub btf: Option<BtfSummary>,
    /// What `bpfld link --resolve` put in, when this object came from it
    /// (in JSON as `bpfld link --json` shows its components).
    #[serde(serialize_with = "crate::link::report::serialize_components")]
    pub link_map: Option<crate::link::LinkReport>,
}

/// An entry program: a global function in an executable section other than
/// `.text` (and not empty).
#[derive(Clone, Debug, Serialize)]
pub struct Program {
    /// Its section.
    pub section: String,
    /// Its function name.
    pub name: String,
    /// The program type libbpf derives from the section name, when known.
    pub prog_type: Option<&'static str>,
    /// Its size in instructions (slots).
    pub insns: u64,
}

/// A function of the object.
#[derive(Clone, Debug, Serialize)]
pub struct Function {
    /// Its name.
    pub name: String,
    /// Its section.
    pub section: String,
    /// "global", "static" or "weak".
    pub linkage: &'static str,
    /// Hidden (`__hidden`): other objects cannot link to it.
    pub hidden: bool,
    /// Whether this is an entry program rather than a subprogram.
    pub entry: bool,
    /// Byte offset in its section.
    pub offset: u64,
    /// Size in instructions (slots).
    pub insns: u64,
}

/// Something the object needs from elsewhere.
#[derive(Clone, Debug, Serialize)]
pub struct Extern {
    /// Its name.
    pub name: String,
    /// "function", "variable", "map", "kfunc", "ksym" or "kconfig".
    pub kind: &'static str,
    /// A weak reference (may stay unresolved).
    pub weak: bool,
    /// Functions whose code refers to this extern.
    pub used_by: Vec<String>,
}

/// A global data section.
#[derive(Clone, Debug, Serialize)]
pub struct DataSection {
    /// Its name.
    pub name: String,
    /// "data", "rodata" or "bss".
    pub kind: &'static str,
    /// Size in bytes.
    pub size: u64,
    /// Its variables, by offset.
    pub variables: Vec<Variable>,
}

/// A global variable.
#[derive(Clone, Debug, Serialize)]
pub struct Variable {
    /// Its name.
    pub name: String,
    /// Byte offset in its section.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
    /// `static`, `global` or `extern`.
    pub linkage: &'static str,
    /// Hidden (`__hidden`): other objects cannot link to it.
    pub hidden: bool,
}

/// BTF counts.
#[derive(Clone, Debug, Serialize)]
pub struct BtfSummary {
    /// Number of types.
    pub types: usize,
    /// Number of func_info records.
    pub func_info: usize,
    /// Number of line_info records.
    pub line_info: usize,
    /// Number of CO-RE relocation records.
    pub core_relos: usize,
}

fn linkage(sym: &Symbol) -> &'static str {
    match sym.binding {
        Binding::Local => "static",
        Binding::Weak => "weak",
        _ => "global",
    }
}

fn is_hidden(sym: &Symbol) -> bool {
    matches!(sym.visibility, Visibility::Hidden | Visibility::Internal)
}

/// Builds the summary of an object: what `bpfld inspect` prints
/// (`Display`) and, as JSON, what `inspect --json` prints (`Serialize`).
///
/// ```
/// use bpfld::model::Object;
/// use bpfld::show::inspect::summarize;
///
/// let obj = Object::parse(include_bytes!("../../../../fixtures/xdp_pass.o"))?;
/// let summary = summarize(&obj)?;
/// assert_eq!(summary.programs[0].name, "xdp_pass");
/// assert!(summary.to_string().starts_with("BPF relocatable object, little-endian\n"));
/// let json = serde_json::to_value(&summary).unwrap();
/// assert_eq!(json["programs"][0]["section"], "xdp");
/// # Ok::<(), bpfld::Error>(())
/// ```
pub fn summarize(obj: &Object) -> Result<Summary> {
    let mut programs = Vec::new();
    let mut functions = Vec::new();
    for sym in &obj.symbols {
        if sym.kind != SymbolKind::Func {
            continue;
        }
        let SymbolPlace::Section(id) = sym.place else {
            continue;
        };
        let Some(sec) = obj.section(id) else { continue };
        // A section with no instructions (a naked empty function) holds
        // no program: libbpf skips it.
        let entry = sec.is_program()
            && !sec.insns.is_empty()
            && sec.name != ".text"
            && sym.binding != Binding::Local;
        let insns = sym.size / 8;
        if entry {
            programs.push(Program {
                section: sec.name.clone(),
                name: sym.name.clone(),
                prog_type: program_type(&sec.name),
                insns,
            });
        }
        functions.push(Function {
            name: sym.name.clone(),
            section: sec.name.clone(),
            linkage: linkage(sym),
            hidden: is_hidden(sym),
            entry,
            offset: sym.value,
            insns,
        });
    }

    let classes = crate::show::maps::extern_classes(obj);
    // One pass over the code's relocations: which functions use each
    // extern, and whether any use is a call. Functions are found by
    // binary search over their sorted ranges.
    let mut funcs: HashMap<SectionId, Vec<(u64, u64, &str)>> = HashMap::new();
    for f in obj.symbols.iter().filter(|s| s.kind == SymbolKind::Func) {
        if let SymbolPlace::Section(id) = f.place {
            funcs.entry(id).or_default().push((
                f.value,
                f.value.saturating_add(f.size.max(1)),
                f.name.as_str(),
            ));
        }
    }
    for list in funcs.values_mut() {
        list.sort();
    }
    let mut uses: HashMap<SymbolId, (Vec<String>, bool)> = HashMap::new();
    let mut seen: std::collections::HashSet<(SymbolId, String)> = Default::default();
    for sec in obj.sections.iter().filter(|s| s.is_program()) {
        let list = funcs.get(&sec.id).map(Vec::as_slice).unwrap_or(&[]);
        for r in &sec.relocs {
            let Some(sym) = obj.symbol(r.symbol) else {
                continue;
            };
            if !sym.is_extern() {
                continue;
            }
            let i = list.partition_point(|f| f.0 <= r.offset);
            let user = i
                .checked_sub(1)
                .and_then(|i| list.get(i))
                .filter(|f| r.offset < f.1)
                .map(|f| f.2.to_string())
                // Code outside any function: named by its section, once.
                .unwrap_or_else(|| sec.name.clone());
            let entry = uses.entry(r.symbol).or_default();
            entry.1 |= r.kind == RelocKind::Bpf64_32;
            if seen.insert((r.symbol, user.clone())) {
                entry.0.push(user);
            }
        }
    }
    let mut externs: Vec<Extern> = Vec::new();
    for sym in obj.symbols.iter().filter(|s| s.is_extern()) {
        let (used_by, called) = uses.remove(&sym.id).unwrap_or_default();
        let kind = classes.get(sym.name.as_str()).copied().unwrap_or(
            if called || sym.kind == SymbolKind::Func {
                "function"
            } else {
                "variable"
            },
        );
        externs.push(Extern {
            name: sym.name.clone(),
            kind,
            weak: sym.binding == Binding::Weak,
            used_by,
        });
    }

    let mut data = Vec::new();
    for sec in &obj.sections {
        let kind = match sec.kind {
            SectionKind::Data => "data",
            SectionKind::Rodata => "rodata",
            SectionKind::Bss => "bss",
            _ => continue,
        };
        let mut variables: Vec<Variable> = obj
            .symbols
            .iter()
            .filter(|s| s.place == SymbolPlace::Section(sec.id) && s.kind == SymbolKind::Object)
            .map(|s| Variable {
                name: s.name.clone(),
                offset: s.value,
                size: s.size,
                linkage: linkage(s),
                hidden: is_hidden(s),
            })
            .collect();
        variables.sort_by_key(|v| v.offset);
        data.push(DataSection {
            name: sec.name.clone(),
            kind,
            size: sec.sh_size,
            variables,
        });
    }

    let license = obj.section_by_name("license").map(|s| {
        let end = s.data.iter().position(|&b| b == 0).unwrap_or(s.data.len());
        String::from_utf8_lossy(&s.data[..end]).into_owned()
    });
    let kernel_version = obj
        .section_by_name("version")
        .and_then(|s| s.data.get(..4))
        .map(|b| obj.endian.read_u32([b[0], b[1], b[2], b[3]]));

    let btf = obj.btf.as_ref().map(|btf| BtfSummary {
        types: crate::show::maps::type_count(btf),
        func_info: obj.sections.iter().map(|s| s.func_info.len()).sum(),
        line_info: obj.sections.iter().map(|s| s.line_info.len()).sum(),
        core_relos: obj.sections.iter().map(|s| s.core_relos.len()).sum(),
    });

    Ok(Summary {
        endian: obj.endian,
        programs,
        functions,
        externs,
        maps: crate::model::map_def::map_defs(obj)?,
        data,
        license,
        kernel_version,
        btf,
        link_map: crate::link::LinkReport::from_object(obj),
    })
}

/// The text form ([`render_text`]'s, without the file name).
impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = render_text("", self);
        f.write_str(text.strip_prefix(": ").unwrap_or(&text))
    }
}

/// The text form of a summary.
pub fn render_text(file: &str, s: &Summary) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let endian = match s.endian {
        Endian::Little => "little-endian",
        Endian::Big => "big-endian",
    };
    let _ = writeln!(out, "{file}: BPF relocatable object, {endian}");
    if let Some(l) = &s.license {
        let _ = writeln!(out, "license: {l}");
    }
    if let Some(v) = s.kernel_version {
        let _ = writeln!(out, "kernel version: {v:#x}");
    }
    let _ = writeln!(out, "\nprograms ({}):", s.programs.len());
    for p in &s.programs {
        let _ = writeln!(
            out,
            "  {:<24} {:<20} {:<16} {} insns",
            p.section,
            p.name,
            p.prog_type.unwrap_or("?"),
            p.insns
        );
    }
    let _ = writeln!(out, "\nfunctions ({}):", s.functions.len());
    for f in &s.functions {
        let mut attrs = vec![f.linkage];
        if f.hidden {
            attrs.push("hidden");
        }
        attrs.push(if f.entry { "entry" } else { "subprog" });
        let _ = writeln!(
            out,
            "  {:<24} {:<20} {:<24} {} insns at {}",
            f.name,
            f.section,
            attrs.join(","),
            f.insns,
            f.offset / 8
        );
    }
    let _ = writeln!(out, "\nexterns ({}):", s.externs.len());
    for x in &s.externs {
        let weak = if x.weak { " (weak)" } else { "" };
        let users = if x.used_by.is_empty() {
            String::new()
        } else {
            format!(" used by {}", x.used_by.join(", "))
        };
        let _ = writeln!(out, "  {:<24} {}{weak}{users}", x.name, x.kind);
    }
    let _ = writeln!(out, "\nmaps ({}):", s.maps.len());
    for m in &s.maps {
        let _ = writeln!(out, "  {}", crate::show::maps::describe(m));
    }
    let _ = writeln!(out, "\ndata sections ({}):", s.data.len());
    for d in &s.data {
        let _ = writeln!(out, "  {:<24} {:<7} {} bytes", d.name, d.kind, d.size);
        for v in &d.variables {
            let hidden = if v.hidden { ",hidden" } else { "" };
            let _ = writeln!(
                out,
                "    {:<22} +{:<6} {} bytes {}{hidden}",
                v.name, v.offset, v.size, v.linkage
            );
        }
    }
    if let Some(m) = &s.link_map {
        let _ = writeln!(out, "\nlink map:");
        for line in m.to_string().lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    if let Some(b) = &s.btf {
        let _ = writeln!(
            out,
            "\nBTF: {} types; BTF.ext: {} func_info, {} line_info, {} CO-RE relocations",
            b.types, b.func_info, b.line_info, b.core_relos
        );
    }
    out
}
