//! Extern symbols an object leaves to its loader, resolved in aya's copy of
//! the object (aya 0.14 resolves none of them):
//!
//! - `.kconfig` externs (`LINUX_KERNEL_VERSION`, `CONFIG_*` from the
//!   running kernel's configuration) become a read-only data section,
//!   `.rodata.kconfig`, that aya turns into a frozen map as it does any
//!   `.rodata.*` section, so the verifier prunes branches on the values;
//! - `.ksyms` externs are resolved against the kernel's BTF
//!   (/sys/kernel/btf/vmlinux): kfunc calls get the kfunc's BTF id, typed
//!   kernel variables become `ld_imm64` of the variable's BTF id, typeless
//!   ones the symbol's address from /proc/kallsyms.
//!
//! The rules are libbpf's: a weak extern that cannot be resolved is zero
//! (a call to a missing weak kfunc becomes a call to an invalid helper,
//! which only fails verification where it can run), a strong one is an
//! error naming it. The BTF is rewritten so that the kernel accepts it
//! (extern variables and functions in a DATASEC are not loadable BTF).

use std::collections::HashMap;

use bpfld::model::btf::{
    int_encoding, Btf, BtfType, Kind, TypeData, TypeId, VarSecinfo, BTF_FUNC_GLOBAL, BTF_INT_BOOL,
    BTF_INT_SIGNED, BTF_VAR_GLOBAL_ALLOCATED,
};
use bpfld::model::insn::{BPF_PSEUDO_BTF_ID, BPF_PSEUDO_KFUNC_CALL, CALL, LD_IMM64};
use bpfld::model::object::{
    Binding, Object, RelocKind, Section, SectionId, SectionKind, SymbolId, SymbolKind, SymbolPlace,
};

use crate::error::{Error, ErrorKind, Result};

/// The section the `.kconfig` values are placed in, in aya's copy.
pub(crate) const KCONFIG_SECTION: &str = ".rodata.kconfig";

/// libbpf's mark for a call to a weak kfunc the kernel lacks: an invalid
/// helper id the verifier names if the call can run.
const POISON_KFUNC_BASE: i32 = 2_002_000_000;

const SHT_PROGBITS: u32 = 1;
const SHF_ALLOC: u64 = 2;

/// What the kernel provides for resolution, read on first need.
pub(crate) trait KernelInfo {
    /// `/proc/config.gz` (or `/boot/config-$(uname -r)`) as text.
    fn kconfig(&mut self) -> Result<&str>;
    /// `uname -r`.
    fn release(&mut self) -> Result<String>;
    /// BTF id of a FUNC (`want_func`) or VAR named `name` in vmlinux BTF.
    fn btf_id(&mut self, name: &str, want_func: bool) -> Result<Option<u32>>;
    /// Address of `name` in /proc/kallsyms.
    fn kallsym(&mut self, name: &str) -> Result<Option<u64>>;
    /// Whether kprobes can be created: the kprobe PMU, or tracefs's
    /// kprobe_events for the legacy interface.
    fn has_kprobes(&mut self) -> bool {
        true
    }
    /// Whether the object's FUNC_PROTO `proto` (in `local`) is compatible
    /// with the kernel's kfunc `name`, by libbpf's rule for kfuncs.
    fn kfunc_compatible(&mut self, _name: &str, _local: &Btf, _proto: TypeId) -> Result<bool> {
        Ok(true)
    }
}

/// libbpf's relaxed compatibility of two types (as for kfunc prototypes):
/// the same kind after typedefs and modifiers (an enum matches an enum64),
/// integers of any size (not bitfield-like ones), composites and enums by
/// kind alone, pointers and arrays by what they hold, prototypes by their
/// parameter count, each parameter and the return type.
fn types_compatible(local: &Btf, lid: TypeId, kern: &Btf, kid: TypeId, depth: u32) -> bool {
    if depth == 0 {
        return false;
    }
    let (Ok(lid), Ok(kid)) = (local.resolve(lid), kern.resolve(kid)) else {
        return false;
    };
    if lid == TypeId::VOID || kid == TypeId::VOID {
        return lid == kid;
    }
    let (Some(l), Some(k)) = (local.get(lid), kern.get(kid)) else {
        return false;
    };
    use TypeData as T;
    match (&l.data, &k.data) {
        (T::Struct { .. }, T::Struct { .. })
        | (T::Union { .. }, T::Union { .. })
        | (T::Fwd, T::Fwd)
        | (T::Enum { .. } | T::Enum64 { .. }, T::Enum { .. } | T::Enum64 { .. }) => true,
        (T::Int { data: a, .. }, T::Int { data: b, .. }) => {
            (a >> 16) & 0xff == 0 && (b >> 16) & 0xff == 0
        }
        (T::Ptr(a), T::Ptr(b)) => types_compatible(local, *a, kern, *b, depth - 1),
        (T::Array { elem: a, .. }, T::Array { elem: b, .. }) => {
            types_compatible(local, *a, kern, *b, depth - 1)
        }
        (
            T::FuncProto {
                ret: lr,
                params: lp,
            },
            T::FuncProto {
                ret: kr,
                params: kp,
            },
        ) => {
            lp.len() == kp.len()
                && lp
                    .iter()
                    .zip(kp)
                    .all(|(a, b)| types_compatible(local, a.type_id, kern, b.type_id, depth - 1))
                && types_compatible(local, *lr, kern, *kr, depth - 1)
        }
        _ => false,
    }
}

/// The running kernel.
#[derive(Default)]
pub(crate) struct RunningKernel {
    config: Option<String>,
    btf: Option<HashMap<(String, bool), u32>>,
    kallsyms: Option<HashMap<String, u64>>,
    vmlinux: Option<Btf>,
}

fn kernel_error(msg: String) -> Error {
    Error::new(ErrorKind::Kernel, msg)
}

impl KernelInfo for RunningKernel {
    fn kconfig(&mut self) -> Result<&str> {
        if self.config.is_none() {
            self.config = Some(read_kconfig(&self.release()?)?);
        }
        Ok(self.config.as_deref().unwrap_or_default())
    }

    fn release(&mut self) -> Result<String> {
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .map_err(|e| kernel_error(format!("cannot read the kernel's release: {e}")))
    }

    fn btf_id(&mut self, name: &str, want_func: bool) -> Result<Option<u32>> {
        if self.btf.is_none() {
            const PATH: &str = "/sys/kernel/btf/vmlinux";
            let bytes = std::fs::read(PATH).map_err(|e| {
                kernel_error(format!(
                    "cannot read the kernel's BTF ({PATH}) to resolve .ksyms externs: {e}"
                ))
            })?;
            let btf =
                bpfld::Btf::parse(&bytes).map_err(|e| kernel_error(format!("{PATH}: {e}")))?;
            let mut index = HashMap::new();
            for (id, t) in btf.iter() {
                let func = match t.kind() {
                    Kind::Func => true,
                    Kind::Var => false,
                    _ => continue,
                };
                if let Ok(n) = btf.name(t.name_off) {
                    index.entry((n.to_string(), func)).or_insert(id.0);
                }
            }
            self.btf = Some(index);
            self.vmlinux = Some(btf);
        }
        Ok(self
            .btf
            .as_ref()
            .and_then(|b| b.get(&(name.to_string(), want_func)).copied()))
    }

    fn kallsym(&mut self, name: &str) -> Result<Option<u64>> {
        if self.kallsyms.is_none() {
            let text = std::fs::read_to_string("/proc/kallsyms")
                .map_err(|e| kernel_error(format!("cannot read /proc/kallsyms: {e}")))?;
            let mut map = HashMap::new();
            for line in text.lines() {
                let mut f = line.split_whitespace();
                let (Some(addr), Some(_), Some(sym)) = (f.next(), f.next(), f.next()) else {
                    continue;
                };
                if let Ok(a) = u64::from_str_radix(addr, 16) {
                    map.entry(sym.to_string()).or_insert(a);
                }
            }
            self.kallsyms = Some(map);
        }
        Ok(self.kallsyms.as_ref().and_then(|m| m.get(name).copied()))
    }

    fn kfunc_compatible(&mut self, name: &str, local: &Btf, proto: TypeId) -> Result<bool> {
        let Some(id) = self.btf_id(name, true)? else {
            return Ok(false);
        };
        let Some(kern) = self.vmlinux.as_ref() else {
            return Ok(false);
        };
        let Some(TypeData::Func { proto: kproto, .. }) = kern.get(TypeId(id)).map(|t| &t.data)
        else {
            return Ok(false);
        };
        Ok(types_compatible(local, proto, kern, *kproto, 32))
    }

    fn has_kprobes(&mut self) -> bool {
        [
            "/sys/bus/event_source/devices/kprobe/type",
            "/sys/kernel/tracing/kprobe_events",
            "/sys/kernel/debug/tracing/kprobe_events",
        ]
        .iter()
        .any(|p| std::path::Path::new(p).exists())
    }
}

/// The architecture's prefix of syscall wrapper symbols (`__x64_sys_bpf`).
fn syscall_prefix() -> Option<&'static str> {
    Some(match std::env::consts::ARCH {
        "x86_64" => "x64",
        "x86" => "ia32",
        "aarch64" => "arm64",
        "arm" => "arm",
        "s390x" => "s390x",
        "riscv64" => "riscv",
        "powerpc64" => "powerpc64",
        "powerpc" => "powerpc",
        "loongarch64" => "loongarch",
        "mips" | "mips64" => "mips",
        _ => return None,
    })
}

fn read_kconfig(release: &str) -> Result<String> {
    use std::io::Read;
    match std::fs::read("/proc/config.gz") {
        Ok(gz) => {
            let mut text = String::new();
            flate2::read::GzDecoder::new(gz.as_slice())
                .read_to_string(&mut text)
                .map_err(|e| kernel_error(format!("/proc/config.gz: {e}")))?;
            Ok(text)
        }
        Err(first) => {
            let path = format!("/boot/config-{release}");
            std::fs::read_to_string(&path).map_err(|e| {
                kernel_error(format!(
                    "cannot read the kernel's configuration for .kconfig externs: \
                     /proc/config.gz: {first}; {path}: {e}"
                ))
            })
        }
    }
}

/// `KERNEL_VERSION(a, b, c)` of a release such as "6.12.3-foo".
fn kernel_version(release: &str) -> Option<u32> {
    let mut nums = release.split(|c: char| !c.is_ascii_digit());
    let a: u32 = nums.next()?.parse().ok()?;
    let b: u32 = nums.next()?.parse().ok()?;
    let c: u32 = nums.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    Some((a << 16) + (b << 8) + c.min(255))
}

/// How a `.kconfig` value is stored (libbpf's categories).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KcfgType {
    Bool,
    Char,
    Int { signed: bool },
    Tristate,
    CharArray,
}

fn kcfg_type(btf: &Btf, id: TypeId) -> Option<KcfgType> {
    let id = btf.resolve(id).ok()?;
    let t = btf.get(id)?;
    match &t.data {
        TypeData::Int { size, data } => {
            let enc = int_encoding(*data);
            if enc & BTF_INT_BOOL != 0 {
                return (*size == 1).then_some(KcfgType::Bool);
            }
            if *size == 1 {
                return Some(KcfgType::Char);
            }
            (size.is_power_of_two() && *size <= 8).then_some(KcfgType::Int {
                signed: enc & BTF_INT_SIGNED != 0,
            })
        }
        TypeData::Enum { .. } | TypeData::Enum64 { .. } => {
            (btf.name(t.name_off).ok() == Some("libbpf_tristate")).then_some(KcfgType::Tristate)
        }
        TypeData::Array { elem, nelems, .. } if *nelems > 0 => {
            (kcfg_type(btf, *elem)? == KcfgType::Char).then_some(KcfgType::CharArray)
        }
        _ => None,
    }
}

fn align_of(btf: &Btf, id: TypeId) -> u64 {
    let Ok(id) = btf.resolve(id) else {
        return 1;
    };
    match btf.get(id).map(|t| &t.data) {
        Some(TypeData::Array { elem, .. }) => align_of(btf, *elem),
        _ => btf.size_of(id).unwrap_or(1).clamp(1, 8),
    }
}

struct Kcfg {
    sym: SymbolId,
    name: String,
    weak: bool,
    ty: KcfgType,
    size: u64,
    align: u64,
    offset: u64,
}

/// One `CONFIG_X=value` applied to `out` (the extern's bytes).
fn kcfg_value(e: &Kcfg, value: &str, out: &mut [u8]) -> std::result::Result<(), String> {
    let name = &e.name;
    match value.as_bytes().first() {
        Some(b'y' | b'n' | b'm') if value.len() == 1 => {
            let v = value.as_bytes()[0];
            match e.ty {
                KcfgType::Bool if v == b'm' => {
                    return Err(format!(
                        "the kernel's value 'm' for {name} needs a tristate or char type"
                    ))
                }
                KcfgType::Bool => out[0] = u8::from(v == b'y'),
                KcfgType::Char => out[0] = v,
                KcfgType::Tristate => {
                    let n: u32 = match v {
                        b'y' => 1,
                        b'm' => 2,
                        _ => 0,
                    };
                    out[..4].copy_from_slice(&n.to_le_bytes());
                }
                _ => {
                    return Err(format!(
                    "the kernel's value '{value}' for {name} needs a bool, tristate or char type"
                ))
                }
            }
        }
        Some(b'"') => {
            if e.ty != KcfgType::CharArray {
                return Err(format!(
                    "the kernel's value {value} for {name} needs a char array"
                ));
            }
            let Some(s) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
                return Err(format!("invalid string value {value} for {name}"));
            };
            // Truncated to fit, always NUL-terminated (as libbpf does).
            let n = s.len().min(out.len() - 1);
            out[..n].copy_from_slice(&s.as_bytes()[..n]);
            out[n] = 0;
        }
        _ => {
            let parsed = if let Some(h) = value
                .strip_prefix("0x")
                .or_else(|| value.strip_prefix("0X"))
            {
                u64::from_str_radix(h, 16).ok()
            } else if let Some(neg) = value.strip_prefix('-') {
                neg.parse::<u64>().ok().map(|v| v.wrapping_neg())
            } else {
                value.parse::<u64>().ok()
            };
            let Some(v) = parsed else {
                return Err(format!(
                    "the kernel's value '{value}' for {name} is not a number"
                ));
            };
            set_num(e, v, out)?;
        }
    }
    Ok(())
}

fn set_num(e: &Kcfg, v: u64, out: &mut [u8]) -> std::result::Result<(), String> {
    let name = &e.name;
    let signed = match e.ty {
        KcfgType::Int { signed } => signed,
        KcfgType::Char => false,
        KcfgType::Bool if v <= 1 => false,
        _ => {
            return Err(format!(
                "the value {v} of {name} does not fit its type (an integer is needed)"
            ))
        }
    };
    let bits = e.size * 8;
    let fits = bits >= 64
        || if signed {
            v.wrapping_add(1 << (bits - 1)) < (1 << bits)
        } else {
            v >> bits == 0
        };
    if !fits {
        return Err(format!(
            "the value {v} of {name} does not fit in its {} bytes",
            e.size
        ));
    }
    let n = e.size as usize;
    out[..n].copy_from_slice(&v.to_le_bytes()[..n]);
    Ok(())
}

/// libbpf's `LINUX_*` values bpfld knows; `None` for an unknown name.
fn linux_value(name: &str, kernel: &mut dyn KernelInfo) -> Result<Option<u64>> {
    Ok(match name {
        "LINUX_KERNEL_VERSION" => {
            let r = kernel.release()?;
            Some(u64::from(kernel_version(&r).ok_or_else(|| {
                kernel_error(format!(
                    "extern LINUX_KERNEL_VERSION: cannot read a version in the release '{r}'"
                ))
            })?))
        }
        // Every kernel with BPF_PROG_TEST_RUN and BTF this loader needs
        // has it (5.15+).
        "LINUX_HAS_BPF_COOKIE" => Some(1),
        // libbpf's probe: a kprobe on the wrapper of bpf() can be created.
        // Where kprobes cannot be made at all it says 0, and BPF_KSYSCALL
        // programs then read their arguments straight from the context;
        // the same value gives the same program libbpf loads.
        "LINUX_HAS_SYSCALL_WRAPPER" => {
            let wrapped = match syscall_prefix() {
                Some(p) => kernel.kallsym(&format!("__{p}_sys_bpf"))?.is_some(),
                None => false,
            };
            Some(u64::from(wrapped && kernel.has_kprobes()))
        }
        _ => None,
    })
}

/// Which DATASEC a BTF VAR or FUNC named `name` is in.
fn datasec_of(btf: &Btf, name: &str) -> Option<(TypeId, String, TypeId)> {
    for (sid, t) in btf.iter() {
        let TypeData::Datasec { vars, .. } = &t.data else {
            continue;
        };
        for v in vars {
            let Some(vt) = btf.get(v.type_id) else {
                continue;
            };
            if matches!(vt.data, TypeData::Var { .. } | TypeData::Func { .. })
                && btf.name(vt.name_off).ok() == Some(name)
            {
                return Some((sid, btf.name(t.name_off).ok()?.to_string(), v.type_id));
            }
        }
    }
    None
}

/// libbpf's "essential" name: a `___suffix` lets one object declare
/// several flavours of one kernel symbol.
fn essential(name: &str) -> &str {
    match name.find("___") {
        Some(i) if i > 0 => &name[..i],
        _ => name,
    }
}

/// Resolves every extern of `obj` in place (see the module documentation).
/// Returns whether anything changed.
pub(crate) fn resolve(obj: &mut Object, kernel: &mut dyn KernelInfo) -> Result<bool> {
    let externs: Vec<SymbolId> = obj
        .symbols
        .iter()
        .filter(|s| s.is_extern() && !s.name.is_empty() && s.kind != SymbolKind::Section)
        // An extern nothing refers to is dropped by the compiler from
        // BTF; only referenced ones matter.
        .map(|s| s.id)
        .collect();
    if externs.is_empty() {
        return Ok(false);
    }
    let Some(btf) = obj.btf.as_ref() else {
        let names: Vec<&str> = externs
            .iter()
            .filter_map(|id| obj.symbol(*id).map(|s| s.name.as_str()))
            .collect();
        return Err(Error::new(
            ErrorKind::Object,
            format!(
                "extern symbols {} cannot be resolved: the object has no BTF",
                names.join(", ")
            ),
        ));
    };
    let mut kcfgs: Vec<Kcfg> = Vec::new();
    let mut ksyms: Vec<(SymbolId, TypeId)> = Vec::new();
    let mut kcfg_sec = None;
    let mut ksym_sec = None;
    for id in &externs {
        let Some(sym) = obj.symbol(*id) else { continue };
        let Some((sec, sec_name, var)) = datasec_of(btf, &sym.name) else {
            // Not an extern the loader resolves (e.g. one a linker would):
            // libbpf refuses such objects, and so does bpfld, by name.
            return Err(Error::new(
                ErrorKind::Object,
                format!(
                    "extern '{}' is neither __kconfig nor __ksym (not in the .kconfig or \
                     .ksyms BTF section); only a linker can resolve it",
                    sym.name
                ),
            ));
        };
        let weak = sym.binding == Binding::Weak;
        match sec_name.as_str() {
            ".kconfig" => {
                kcfg_sec = Some(sec);
                let Some(TypeData::Var { type_id, .. }) = btf.get(var).map(|t| &t.data) else {
                    return Err(Error::new(
                        ErrorKind::Object,
                        format!("extern '{}': a function cannot be __kconfig", sym.name),
                    ));
                };
                let ty = kcfg_type(btf, *type_id).ok_or_else(|| {
                    Error::new(
                        ErrorKind::Object,
                        format!(
                            "__kconfig extern '{}' has type {}, which a kernel configuration \
                             value cannot have (bool, char, integers, enum libbpf_tristate, \
                             char arrays)",
                            sym.name,
                            btf.describe(*type_id)
                        ),
                    )
                })?;
                let size = btf.size_of(*type_id).unwrap_or(0);
                kcfgs.push(Kcfg {
                    sym: *id,
                    name: sym.name.clone(),
                    weak,
                    ty,
                    size,
                    align: align_of(btf, *type_id),
                    offset: 0,
                });
            }
            ".ksyms" => {
                ksym_sec = Some(sec);
                ksyms.push((*id, var));
            }
            other => {
                return Err(Error::new(
                    ErrorKind::Object,
                    format!(
                        "extern '{}' is in section '{other}', which no loader resolves",
                        sym.name
                    ),
                ))
            }
        }
    }

    if let Some(sec) = kcfg_sec {
        resolve_kconfig(obj, sec, &mut kcfgs, kernel)?;
    }
    if let Some(sec) = ksym_sec {
        resolve_ksyms(obj, sec, &ksyms, kernel)?;
    }
    Ok(true)
}

fn resolve_kconfig(
    obj: &mut Object,
    sec: TypeId,
    kcfgs: &mut [Kcfg],
    kernel: &mut dyn KernelInfo,
) -> Result<()> {
    // Widest alignment first, then by size and name: little padding.
    kcfgs.sort_by(|a, b| {
        b.align
            .cmp(&a.align)
            .then(a.size.cmp(&b.size))
            .then(a.name.cmp(&b.name))
    });
    let mut off = 0u64;
    for k in kcfgs.iter_mut() {
        off = off.next_multiple_of(k.align);
        k.offset = off;
        off += k.size;
    }
    let total = off.max(1);
    let mut data = vec![0u8; total as usize];
    let needs_config = kcfgs.iter().any(|k| k.name.starts_with("CONFIG_"));
    let config: HashMap<String, String> = if needs_config {
        kernel
            .kconfig()?
            .lines()
            .filter(|l| l.starts_with("CONFIG_"))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    } else {
        HashMap::new()
    };
    for k in kcfgs.iter() {
        let out = &mut data[k.offset as usize..(k.offset + k.size) as usize];
        let bad = |m: String| Error::new(ErrorKind::Object, format!("__kconfig extern: {m}"));
        if k.name.starts_with("CONFIG_") {
            match config.get(&k.name) {
                Some(v) => kcfg_value(k, v, out).map_err(bad)?,
                None if k.weak => {}
                None => {
                    return Err(Error::new(
                        ErrorKind::Object,
                        format!(
                            "__kconfig extern '{}' is not set in the running kernel's \
                             configuration (declare it __weak to default it to zero)",
                            k.name
                        ),
                    ))
                }
            }
        } else {
            match linux_value(&k.name, kernel)? {
                Some(v) => set_num(k, v, out).map_err(bad)?,
                None if k.weak && k.name.starts_with("LINUX_") => {}
                None => {
                    return Err(Error::new(
                        ErrorKind::Object,
                        format!(
                            "__kconfig extern '{}' is unknown: only CONFIG_* values and \
                             LINUX_KERNEL_VERSION, LINUX_HAS_BPF_COOKIE, \
                             LINUX_HAS_SYSCALL_WRAPPER are provided",
                            k.name
                        ),
                    ))
                }
            }
        }
    }

    let new_id = SectionId(obj.sections.len() as u32);
    let mut s = Section::empty(new_id, KCONFIG_SECTION, SectionKind::Rodata, SHT_PROGBITS);
    s.sh_flags = SHF_ALLOC;
    s.sh_addralign = 8;
    s.sh_size = total;
    s.data = data;
    obj.sections.push(s);
    for k in kcfgs.iter() {
        if let Some(sym) = obj.symbols.get_mut(k.sym.0 as usize) {
            sym.place = SymbolPlace::Section(new_id);
            sym.value = k.offset;
            sym.size = k.size;
            sym.kind = SymbolKind::Object;
            sym.binding = Binding::Global;
        }
    }
    let Some(btf) = obj.btf.as_mut() else {
        return Ok(());
    };
    let name = match btf.find_string(KCONFIG_SECTION) {
        Some(o) => o,
        None => btf.add_string(KCONFIG_SECTION),
    };
    let offsets: HashMap<String, u64> = kcfgs.iter().map(|k| (k.name.clone(), k.offset)).collect();
    let mut var_ids = Vec::new();
    if let Some(t) = btf.get_mut(sec) {
        t.name_off = name;
        if let TypeData::Datasec { size, vars } = &mut t.data {
            *size = total as u32;
            var_ids = vars.iter().map(|v| v.type_id).collect();
        }
    }
    let mut placed = Vec::new();
    for id in var_ids {
        let vname = btf
            .get(id)
            .and_then(|t| btf.name(t.name_off).ok())
            .unwrap_or_default()
            .to_string();
        if let Some(TypeData::Var { linkage, .. }) = btf.get_mut(id).map(|t| &mut t.data) {
            *linkage = BTF_VAR_GLOBAL_ALLOCATED;
        }
        placed.push(offsets.get(&vname).copied());
    }
    if let Some(TypeData::Datasec { vars, .. }) = btf.get_mut(sec).map(|t| &mut t.data) {
        for (v, off) in vars.iter_mut().zip(placed) {
            if let Some(off) = off {
                v.offset = off as u32;
            }
        }
        vars.sort_by_key(|v| v.offset);
    }
    Ok(())
}

fn resolve_ksyms(
    obj: &mut Object,
    sec: TypeId,
    ksyms: &[(SymbolId, TypeId)],
    kernel: &mut dyn KernelInfo,
) -> Result<()> {
    let Some(btf) = obj.btf.as_ref() else {
        return Ok(());
    };
    // What each extern becomes: a kfunc's or a typed variable's vmlinux
    // BTF id, or an address (0 for an unresolved weak one).
    enum Target {
        BtfId(u32),
        Addr(u64),
        Missing,
    }
    let mut targets: HashMap<SymbolId, (Target, bool)> = HashMap::new();
    for (sid, var) in ksyms {
        let Some(sym) = obj.symbol(*sid) else {
            continue;
        };
        let weak = sym.binding == Binding::Weak;
        let name = essential(&sym.name);
        let t = btf.get(*var).map(|t| &t.data);
        let target = match t {
            Some(TypeData::Func { proto, .. }) => match kernel.btf_id(name, true)? {
                // libbpf checks the declared prototype against the kernel's:
                // a flavour (`bpf_task_acquire___two`) that does not match
                // is missing, so `bpf_ksym_exists()` can choose among them.
                Some(id) if kernel.kfunc_compatible(name, btf, *proto)? => Some(Target::BtfId(id)),
                Some(_) if !weak => {
                    return Err(Error::new(
                        ErrorKind::Object,
                        format!(
                            "__ksym extern kfunc '{}': its prototype does not match the \
                             running kernel's '{name}'",
                            sym.name
                        ),
                    ))
                }
                _ => None,
            },
            Some(TypeData::Var { type_id, .. }) => {
                let typeless = btf
                    .skip_modifiers(*type_id)
                    .map(|i| i.0 == 0)
                    .unwrap_or(false);
                if typeless {
                    kernel.kallsym(name)?.map(Target::Addr)
                } else {
                    match kernel.btf_id(name, false)? {
                        // The verifier finds the variable by its kallsyms
                        // address: without CONFIG_KALLSYMS_ALL the kernel
                        // lists no data symbols, and the load would fail.
                        Some(id) if kernel.kallsym(name)?.is_some() => Some(Target::BtfId(id)),
                        Some(_) if !weak => {
                            return Err(Error::new(
                                ErrorKind::Object,
                                format!(
                                    "__ksym extern variable '{}' is in the kernel's BTF but the \
                                     kernel does not expose its address (not in /proc/kallsyms; \
                                     CONFIG_KALLSYMS_ALL is off?), so no program can use it \
                                     (declare it __weak to let the program test for it)",
                                    sym.name
                                ),
                            ))
                        }
                        _ => None,
                    }
                }
            }
            _ => None,
        };
        let is_func = matches!(t, Some(TypeData::Func { .. }));
        let target = match target {
            Some(t) => t,
            None if weak => Target::Missing,
            None => {
                return Err(Error::new(
                    ErrorKind::Object,
                    format!(
                        "__ksym extern {} '{}' is not in the running kernel's BTF{} \
                         (declare it __weak to let the program test for it)",
                        if is_func { "kfunc" } else { "variable" },
                        sym.name,
                        if is_func { "" } else { " or /proc/kallsyms" }
                    ),
                ))
            }
        };
        targets.insert(*sid, (target, is_func));
    }

    for (idx, s) in obj.sections.iter_mut().enumerate() {
        if !s.is_program() {
            continue;
        }
        let mut keep = Vec::with_capacity(s.relocs.len());
        for r in std::mem::take(&mut s.relocs) {
            let Some((target, _)) = targets.get(&r.symbol) else {
                keep.push(r);
                continue;
            };
            let at = r.insn().0 as usize;
            let code = s.insns.get(at).map(|i| i.code);
            let bad = || {
                Error::new(
                    ErrorKind::Object,
                    format!(
                        "section '{}': relocation of {} at instruction {at} is neither a call \
                         nor an ld_imm64",
                        s.name,
                        r.kind.name()
                    ),
                )
            };
            match (r.kind, code) {
                (RelocKind::Bpf64_32, Some(CALL)) => {
                    let insn = &mut s.insns[at];
                    match target {
                        Target::BtfId(id) => {
                            insn.src = BPF_PSEUDO_KFUNC_CALL;
                            insn.imm = *id as i32;
                            insn.off = 0;
                        }
                        _ => {
                            insn.src = 0;
                            insn.dst = 0;
                            insn.off = 0;
                            insn.imm = POISON_KFUNC_BASE + idx as i32;
                        }
                    }
                }
                (RelocKind::Bpf64_64, Some(LD_IMM64)) if at + 1 < s.insns.len() => {
                    let (lo, hi, src) = match target {
                        Target::BtfId(id) => (*id as i32, 0, BPF_PSEUDO_BTF_ID),
                        Target::Addr(a) => (*a as u32 as i32, (*a >> 32) as u32 as i32, 0),
                        Target::Missing => (0, 0, 0),
                    };
                    s.insns[at].src = src;
                    s.insns[at].imm = lo;
                    s.insns[at + 1].imm = hi;
                }
                _ => return Err(bad()),
            }
        }
        s.relocs = keep;
    }

    // The kernel loads no extern VAR or FUNC in a DATASEC: each becomes a
    // 4-byte allocated variable (functions a dummy one), as libbpf does.
    let Some(btf) = obj.btf.as_mut() else {
        return Ok(());
    };
    let found = btf
        .iter()
        .find(|(_, t)| matches!(t.data, TypeData::Int { size: 4, .. }))
        .map(|(id, _)| id);
    let int = match found {
        Some(id) => id,
        None => {
            let n = btf.add_string("int");
            btf.add_type(BtfType::new(
                n,
                false,
                TypeData::Int {
                    size: 4,
                    data: (u32::from(BTF_INT_SIGNED) << 24) | 32,
                },
            ))
        }
    };
    let dummy_name = btf.add_string("dummy_ksym");
    let dummy = btf.add_type(BtfType::new(
        dummy_name,
        false,
        TypeData::Var {
            type_id: int,
            linkage: BTF_VAR_GLOBAL_ALLOCATED,
        },
    ));
    let vars: Vec<VarSecinfo> = match btf.get(sec).map(|t| &t.data) {
        Some(TypeData::Datasec { vars, .. }) => vars.clone(),
        _ => Vec::new(),
    };
    let mut new_vars = Vec::with_capacity(vars.len());
    for (i, v) in vars.iter().enumerate() {
        let mut ty = v.type_id;
        match btf.get_mut(v.type_id).map(|t| &mut t.data) {
            Some(TypeData::Func { linkage, .. }) => {
                *linkage = BTF_FUNC_GLOBAL;
                ty = dummy;
            }
            Some(TypeData::Var { type_id, linkage }) => {
                *type_id = int;
                *linkage = BTF_VAR_GLOBAL_ALLOCATED;
            }
            _ => {}
        }
        new_vars.push(VarSecinfo {
            type_id: ty,
            offset: 4 * i as u32,
            size: 4,
        });
    }
    if let Some(TypeData::Datasec { size, vars }) = btf.get_mut(sec).map(|t| &mut t.data) {
        *size = 4 * new_vars.len() as u32;
        *vars = new_vars;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions() {
        assert_eq!(
            kernel_version("6.12.3-foo"),
            Some((6 << 16) + (12 << 8) + 3)
        );
        assert_eq!(
            kernel_version("5.15.300"),
            Some((5 << 16) + (15 << 8) + 255)
        );
        assert_eq!(kernel_version("6.1"), Some((6 << 16) + (1 << 8)));
        assert_eq!(kernel_version("x"), None);
    }

    fn kcfg(ty: KcfgType, size: u64) -> Kcfg {
        Kcfg {
            sym: SymbolId(1),
            name: "CONFIG_X".into(),
            weak: false,
            ty,
            size,
            align: size,
            offset: 0,
        }
    }

    #[test]
    fn config_values() {
        let mut b = [9u8; 4];
        kcfg_value(&kcfg(KcfgType::Tristate, 4), "m", &mut b).unwrap();
        assert_eq!(b, 2u32.to_le_bytes());
        let mut b = [9u8; 1];
        kcfg_value(&kcfg(KcfgType::Bool, 1), "y", &mut b).unwrap();
        assert_eq!(b, [1]);
        let e = kcfg_value(&kcfg(KcfgType::Bool, 1), "m", &mut b).unwrap_err();
        assert!(e.contains("CONFIG_X") && e.contains("tristate"), "{e}");
        let mut b = [0u8; 4];
        kcfg_value(&kcfg(KcfgType::Int { signed: false }, 4), "0x100", &mut b).unwrap();
        assert_eq!(b, 256u32.to_le_bytes());
        let mut b = [0u8; 1];
        let e = kcfg_value(&kcfg(KcfgType::Int { signed: false }, 1), "300", &mut b).unwrap_err();
        assert!(e.contains("does not fit"), "{e}");
        let mut b = [7u8; 4];
        kcfg_value(&kcfg(KcfgType::CharArray, 4), "\"abcdef\"", &mut b).unwrap();
        assert_eq!(&b, b"abc\0");
        let mut b = [0u8; 2];
        kcfg_value(&kcfg(KcfgType::Int { signed: true }, 2), "-2", &mut b).unwrap();
        assert_eq!(b, (-2i16).to_le_bytes());
    }

    /// A kernel with the given configuration, kfuncs and symbols.
    struct FakeKernel {
        config: String,
        funcs: Vec<&'static str>,
        syms: Vec<&'static str>,
    }

    impl KernelInfo for FakeKernel {
        fn kconfig(&mut self) -> Result<&str> {
            Ok(&self.config)
        }
        fn release(&mut self) -> Result<String> {
            Ok("6.12.7-test".into())
        }
        fn btf_id(&mut self, name: &str, want_func: bool) -> Result<Option<u32>> {
            let known = if want_func {
                self.funcs.contains(&name)
            } else {
                self.syms.contains(&name)
            };
            Ok(known.then_some(1000 + name.len() as u32))
        }
        fn kallsym(&mut self, name: &str) -> Result<Option<u64>> {
            Ok(self.syms.contains(&name).then_some(0xffff_ffff_8000_0000))
        }
    }

    /// A kernel with or without kprobes.
    struct KprobeKernel(FakeKernel, bool);

    impl KernelInfo for KprobeKernel {
        fn kconfig(&mut self) -> Result<&str> {
            self.0.kconfig()
        }
        fn release(&mut self) -> Result<String> {
            self.0.release()
        }
        fn btf_id(&mut self, name: &str, want_func: bool) -> Result<Option<u32>> {
            self.0.btf_id(name, want_func)
        }
        fn kallsym(&mut self, name: &str) -> Result<Option<u64>> {
            self.0.kallsym(name)
        }
        fn has_kprobes(&mut self) -> bool {
            self.1
        }
    }

    #[test]
    fn kfunc_prototypes_compare_as_libbpf_does() {
        use bpfld::model::btf::Param;
        let mut b = Btf::new(bpfld::model::Endian::Little);
        let int = b.add_type(BtfType::new(0, false, TypeData::Int { size: 4, data: 32 }));
        let long = b.add_type(BtfType::new(0, false, TypeData::Int { size: 8, data: 64 }));
        let st = b.add_type(BtfType::new(
            0,
            false,
            TypeData::Struct {
                size: 8,
                members: vec![],
            },
        ));
        let pst = b.add_type(BtfType::new(0, false, TypeData::Ptr(st)));
        let pint = b.add_type(BtfType::new(0, false, TypeData::Ptr(int)));
        let param = |t| Param {
            name_off: 0,
            type_id: t,
        };
        let proto = |b: &mut Btf, ret, ps: Vec<TypeId>| {
            b.add_type(BtfType::new(
                0,
                false,
                TypeData::FuncProto {
                    ret,
                    params: ps.into_iter().map(param).collect(),
                },
            ))
        };
        let kern = proto(&mut b, pst, vec![pst]);
        // Integers of other sizes match; a pointer to a struct does not
        // match a pointer to an int; the parameter count must agree.
        let same = proto(&mut b, pst, vec![pst]);
        let ints = proto(&mut b, long, vec![long]);
        let kints = proto(&mut b, int, vec![int]);
        let two = proto(&mut b, pst, vec![pst, pint]);
        let other = proto(&mut b, pst, vec![pint]);
        assert!(types_compatible(&b, same, &b, kern, 32));
        assert!(types_compatible(&b, ints, &b, kints, 32));
        assert!(!types_compatible(&b, two, &b, kern, 32));
        assert!(!types_compatible(&b, other, &b, kern, 32));
    }

    #[test]
    fn syscall_wrapper_is_what_libbpfs_probe_finds() {
        let Some(p) = syscall_prefix() else {
            return;
        };
        let wrapper: &'static str = Box::leak(format!("__{p}_sys_bpf").into_boxed_str());
        let fake = |syms: Vec<&'static str>, kprobes| {
            KprobeKernel(
                FakeKernel {
                    config: String::new(),
                    funcs: vec![],
                    syms,
                },
                kprobes,
            )
        };
        let v = |k: &mut KprobeKernel| linux_value("LINUX_HAS_SYSCALL_WRAPPER", k).unwrap();
        assert_eq!(v(&mut fake(vec![wrapper], true)), Some(1));
        // No kprobes: libbpf's probe fails, and it says 0.
        assert_eq!(v(&mut fake(vec![wrapper], false)), Some(0));
        assert_eq!(v(&mut fake(vec!["sys_bpf"], true)), Some(0));
    }

    fn externs_object() -> Object {
        let p =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/run_externs.o");
        bpfld::Object::parse(&std::fs::read(p).unwrap()).unwrap()
    }

    fn kernel() -> FakeKernel {
        FakeKernel {
            config: "CONFIG_BPF_SYSCALL=y\nCONFIG_NET_CLS_BPF=m\nCONFIG_HZ=1000\n\
                     CONFIG_DEFAULT_HOSTNAME=\"box\"\n"
                .into(),
            funcs: vec!["bpf_rcu_read_lock", "bpf_rcu_read_unlock"],
            syms: vec!["schedule"],
        }
    }

    #[test]
    fn externs_resolved_against_a_kernel() {
        let mut obj = externs_object();
        assert!(resolve(&mut obj, &mut kernel()).unwrap());
        let sec = obj.section_by_name(KCONFIG_SECTION).unwrap();
        let value = |name: &str| {
            let s = obj.symbols.iter().find(|s| s.name == name).unwrap();
            assert_eq!(s.place, SymbolPlace::Section(sec.id), "{name}");
            sec.data[s.value as usize..(s.value + s.size) as usize].to_vec()
        };
        assert_eq!(
            value("LINUX_KERNEL_VERSION"),
            ((6u32 << 16) + (12 << 8) + 7).to_le_bytes()
        );
        assert_eq!(value("CONFIG_HZ"), 1000u32.to_le_bytes());
        assert_eq!(value("CONFIG_NET_CLS_BPF"), 2u32.to_le_bytes());
        assert_eq!(value("CONFIG_BPF_SYSCALL"), [1]);
        assert_eq!(value("CONFIG_BPFLD_NOT_A_CONFIG"), [0]);
        assert_eq!(value("CONFIG_DEFAULT_HOSTNAME"), b"box\0\0\0\0\0");
        // kfunc calls: src_reg 2 and the kernel's BTF id; the missing
        // weak one poisoned; no relocation left against any of them.
        let prog = obj.sections.iter().find(|s| s.name == "xdp").unwrap();
        let calls: Vec<_> = prog.insns.iter().filter(|i| i.code == CALL).collect();
        assert!(calls
            .iter()
            .any(|i| i.src == BPF_PSEUDO_KFUNC_CALL && i.imm == 1000 + 17));
        assert!(calls
            .iter()
            .any(|i| i.src == 0 && i.imm >= POISON_KFUNC_BASE));
        let names: Vec<&str> = prog
            .relocs
            .iter()
            .map(|r| obj.symbol(r.symbol).unwrap().name.as_str())
            .collect();
        assert!(
            names
                .iter()
                .all(|n| !n.starts_with("bpf_") && *n != "schedule"),
            "{names:?}"
        );
    }

    #[test]
    fn missing_strong_externs_are_named() {
        let mut k = kernel();
        k.funcs.retain(|f| *f != "bpf_rcu_read_unlock");
        let e = resolve(&mut externs_object(), &mut k).unwrap_err();
        assert!(
            e.message().contains(
                "__ksym extern kfunc 'bpf_rcu_read_unlock' is not in the running kernel's BTF"
            ),
            "{e}"
        );
        let mut k = kernel();
        k.config = k.config.replace("CONFIG_HZ=1000\n", "");
        let e = resolve(&mut externs_object(), &mut k).unwrap_err();
        assert!(e.message().contains("'CONFIG_HZ' is not set"), "{e}");
        let mut k = kernel();
        k.config = k
            .config
            .replace("CONFIG_BPF_SYSCALL=y", "CONFIG_BPF_SYSCALL=m");
        let e = resolve(&mut externs_object(), &mut k).unwrap_err();
        assert!(
            e.message()
                .contains("'m' for CONFIG_BPF_SYSCALL needs a tristate"),
            "{e}"
        );
    }

    #[test]
    fn essential_names() {
        assert_eq!(essential("bpf_obj_new_impl___v2"), "bpf_obj_new_impl");
        assert_eq!(essential("runqueues"), "runqueues");
    }
}
