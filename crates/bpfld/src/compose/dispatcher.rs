//! The XDP dispatcher, synthesised: a program `bpfld_xdp` that calls
//! one extern slot per component in order and, after each, goes on only
//! when the verdict is in that component's chain-call set, returning the
//! verdict otherwise and XDP_PASS when every component went on (libxdp's
//! semantics). Its BTF, func_info and line_info are built here too, so no
//! compiler is needed; the line_info "source" describes each call, which is
//! what `bpftool prog dump xlated` shows.

use crate::model::btf::{Btf, BtfType, Member, Param, StringTable, TypeData, VarSecinfo};
use crate::model::btf_ext::{FuncInfo, LineInfo};
use crate::model::insn::{self, Insn, InsnIndex};
use crate::model::object::{
    Binding, Object, Reloc, RelocKind, Section, SectionId, SectionKind, Symbol, SymbolId,
    SymbolKind, SymbolPlace, Visibility,
};
use crate::model::Endian;

use super::run_config::{chain_names, ACTIONS, XDP_PASS};

/// The dispatcher program's name: bpfld's own, since libxdp takes a
/// program named `xdp_dispatcher` for its dispatcher and reads it as one
/// (xdp-loader would then complain about every bpfld composition).
pub const DISPATCHER: &str = "bpfld_xdp";

/// One call the dispatcher makes.
#[derive(Clone, Debug)]
pub struct Slot {
    /// The extern the component's function fills.
    pub extern_name: String,
    /// Shown in the dispatcher's line info and manifest.
    pub description: String,
    pub chain: u32,
}

const R0: u8 = 0;
const R1: u8 = 1;
const R10: u8 = 10;
/// Where the dispatcher keeps the context: `r10 - 8`.
const CTX_SLOT: i16 = -8;

fn section(id: u32, name: &str, kind: SectionKind, flags: u64, align: u64) -> Section {
    let sh_type = if kind == SectionKind::Null { 0 } else { 1 };
    Section {
        sh_flags: flags,
        sh_addralign: align,
        ..Section::empty(SectionId(id), name, kind, sh_type)
    }
}

fn symbol(
    id: u32,
    name: &str,
    binding: Binding,
    kind: SymbolKind,
    place: SymbolPlace,
    size: u64,
) -> Symbol {
    Symbol {
        id: SymbolId(id),
        name: name.into(),
        binding,
        visibility: Visibility::Default,
        kind,
        place,
        value: 0,
        size,
        st_other: 0,
    }
}

/// Builds the dispatcher object. `manifest` lines are stored as names of
/// empty DATASECs in its BTF, which the kernel keeps with the program.
///
/// `ctx_reg` is a callee-saved register (r6–r9) that no component writes,
/// where the dispatcher keeps the context across inlined components; with
/// `None` it waits on the stack.
pub fn build(
    section_name: &str,
    slots: &[Slot],
    manifest: &[String],
    ctx_reg: Option<u8>,
    endian: Endian,
) -> Object {
    // The context waits on the stack, not in r6: a component inlined here
    // may use every register, and its frame goes below this slot.
    let (keep, fetch) = match ctx_reg {
        Some(r) => (Insn::mov64_reg(r, R1), Insn::mov64_reg(R1, r)),
        None => (
            Insn::store_reg(insn::BPF_DW, R10, CTX_SLOT, R1),
            Insn::load(insn::BPF_DW, R1, R10, CTX_SLOT),
        ),
    };
    let mut insns: Vec<Insn> = vec![keep];
    let mut relocs = Vec::new();
    let mut lines: Vec<(u32, String)> = vec![(
        0,
        format!(
            "{DISPATCHER}: {} component(s), libxdp chain-call semantics",
            slots.len()
        ),
    )];
    for (i, slot) in slots.iter().enumerate() {
        lines.push((
            insns.len() as u32,
            format!("call {}: {}", slot.extern_name, slot.description),
        ));
        insns.push(fetch);
        relocs.push(Reloc {
            offset: insns.len() as u64 * 8,
            kind: RelocKind::Bpf64_32,
            symbol: SymbolId(4 + i as u32),
        });
        insns.push(Insn::call_pseudo(-1));
        let actions: Vec<u32> = ACTIONS
            .iter()
            .map(|(_, v)| *v)
            .filter(|v| slot.chain & (1 << v) != 0)
            .collect();
        lines.push((
            insns.len() as u32,
            format!(
                "continue after {} on {}",
                slot.extern_name,
                chain_names(slot.chain)
            ),
        ));
        // if r0 == action goto next; ... exit
        let n = actions.len();
        for (k, a) in actions.iter().enumerate() {
            let skip = (n - k - 1) as i16 + 1;
            insns.push(Insn::jmp_imm(insn::BPF_JEQ, R0, *a as i32, skip));
        }
        insns.push(Insn::exit());
        if n == 0 {
            // Nothing continues past this component: later ones would be
            // unreachable code, which the verifier rejects.
            break;
        }
    }
    if slots.iter().all(|s| s.chain != 0) {
        lines.push((
            insns.len() as u32,
            "every component continued: XDP_PASS".into(),
        ));
        insns.push(Insn::mov64_imm(R0, XDP_PASS as i32));
        insns.push(Insn::exit());
    }

    // BTF: int, __u32, struct xdp_md, the prototype, the program's FUNC,
    // one extern FUNC per slot, the license variable and the manifest.
    let mut btf = Btf::new(endian);
    let mut strings = StringTable::from_btf(&btf);
    let mut s = |x: &str| strings.add(x.as_bytes());
    let int = btf.add_type(BtfType::new(
        s("int"),
        false,
        TypeData::Int {
            size: 4,
            data: (1 << 24) | 32,
        },
    ));
    let uint = btf.add_type(BtfType::new(
        s("unsigned int"),
        false,
        TypeData::Int { size: 4, data: 32 },
    ));
    let u32_t = btf.add_type(BtfType::new(s("__u32"), false, TypeData::Typedef(uint)));
    let fields = [
        "data",
        "data_end",
        "data_meta",
        "ingress_ifindex",
        "rx_queue_index",
        "egress_ifindex",
    ];
    let members = fields
        .iter()
        .enumerate()
        .map(|(i, f)| Member {
            name_off: s(f),
            type_id: u32_t,
            offset: 32 * i as u32,
        })
        .collect();
    let md = btf.add_type(BtfType::new(
        s("xdp_md"),
        false,
        TypeData::Struct { size: 24, members },
    ));
    let md_ptr = btf.add_type(BtfType::new(0, false, TypeData::Ptr(md)));
    let proto = btf.add_type(BtfType::new(
        0,
        false,
        TypeData::FuncProto {
            ret: int,
            params: vec![Param {
                name_off: s("ctx"),
                type_id: md_ptr,
            }],
        },
    ));
    let func = btf.add_type(BtfType::new(
        s(DISPATCHER),
        false,
        TypeData::Func { proto, linkage: 1 },
    ));
    for slot in slots {
        btf.add_type(BtfType::new(
            s(&slot.extern_name),
            false,
            TypeData::Func { proto, linkage: 2 },
        ));
    }
    let ch = btf.add_type(BtfType::new(
        s("char"),
        false,
        TypeData::Int {
            size: 1,
            data: (1 << 24) | 8,
        },
    ));
    let idx = btf.add_type(BtfType::new(
        s("__ARRAY_SIZE_TYPE__"),
        false,
        TypeData::Int { size: 4, data: 32 },
    ));
    let arr = btf.add_type(BtfType::new(
        0,
        false,
        TypeData::Array {
            elem: ch,
            index: idx,
            nelems: 4,
        },
    ));
    let lic = btf.add_type(BtfType::new(
        s("_license"),
        false,
        TypeData::Var {
            type_id: arr,
            linkage: 1,
        },
    ));
    btf.add_type(BtfType::new(
        s("license"),
        false,
        TypeData::Datasec {
            size: 4,
            vars: vec![VarSecinfo {
                type_id: lic,
                offset: 0,
                size: 4,
            }],
        },
    ));
    for line in manifest {
        // Size 1 so loaders do not look for an ELF section of that name.
        btf.add_type(BtfType::new(
            s(line),
            false,
            TypeData::Datasec {
                size: 1,
                vars: vec![],
            },
        ));
    }
    let file = s("bpfld xdp dispatcher");
    let line_info: Vec<LineInfo> = lines
        .iter()
        .enumerate()
        .map(|(n, (at, text))| LineInfo {
            insn: InsnIndex(*at),
            file_name_off: file,
            line_off: s(text),
            line_col: ((n as u32 + 1) << 10) | 1,
        })
        .collect();
    s(section_name);
    btf.strings = strings.bytes;

    let mut code = section(1, section_name, SectionKind::Program, 0x6, 8);
    code.sh_size = insns.len() as u64 * 8;
    code.insns = insns;
    code.relocs = relocs;
    code.func_info = vec![FuncInfo {
        insn: InsnIndex(0),
        type_id: func.0,
    }];
    code.line_info = line_info;
    let mut license = section(2, "license", SectionKind::License, 0x3, 1);
    license.data = b"GPL\0".to_vec();
    license.sh_size = 4;

    let mut symbols = vec![
        symbol(
            0,
            "",
            Binding::Local,
            SymbolKind::NoType,
            SymbolPlace::Undefined,
            0,
        ),
        symbol(
            1,
            "",
            Binding::Local,
            SymbolKind::Section,
            SymbolPlace::Section(SectionId(1)),
            0,
        ),
        symbol(
            2,
            DISPATCHER,
            Binding::Global,
            SymbolKind::Func,
            SymbolPlace::Section(SectionId(1)),
            code.sh_size,
        ),
        symbol(
            3,
            "_license",
            Binding::Global,
            SymbolKind::Object,
            SymbolPlace::Section(SectionId(2)),
            4,
        ),
    ];
    for (i, slot) in slots.iter().enumerate() {
        symbols.push(symbol(
            4 + i as u32,
            &slot.extern_name,
            Binding::Global,
            SymbolKind::NoType,
            SymbolPlace::Undefined,
            0,
        ));
    }
    Object {
        endian,
        sections: vec![section(0, "", SectionKind::Null, 0, 0), code, license],
        symbols,
        btf: Some(btf),
        btf_ext_raw: None,
    }
}
