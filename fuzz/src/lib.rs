//! The fuzz targets' bodies, shared with the regression test.
//!
//! Each function takes the raw fuzz input and drives one library entry
//! point the way bpfld's commands do. Errors are fine; panics (including
//! the round-trip assertions below), hangs and runaway allocations are the
//! bugs. `crates/bpfld/tests/fuzz_regressions.rs` includes this file with
//! `#[path]`, so a committed crash input replays through exactly this code
//! in a normal `cargo test`.

use bpfld::model::insn::Insn;
use bpfld::model::Endian;

/// ELF reader, then every listing an `inspect` or `disasm` command prints.
pub fn elf(data: &[u8]) {
    let Ok(obj) = bpfld::read::elf::parse(data) else {
        return;
    };
    let _ = bpfld::show::disasm::disasm(&obj);
    let _ = bpfld::show::disasm::disasm_json(&obj);
    if let Ok(summary) = bpfld::show::inspect::summarize(&obj) {
        let _ = bpfld::show::inspect::render_text("fuzz.o", &summary);
    }
    let _ = bpfld::show::maps::map_defs(&obj);
    if let Some(btf) = &obj.btf {
        let _ = bpfld::show::btf_dump::dump_raw(btf);
    }
}

/// Instruction decoder in both byte orders, the slot listing and the
/// instruction helpers; bytes and slots must survive encode/decode.
pub fn insn(data: &[u8]) {
    for endian in [Endian::Little, Endian::Big] {
        let decoded = bpfld::read::insn::decode(data, endian);
        // Every byte pattern decodes; only a length that is not a multiple
        // of 8 is an error.
        assert_eq!(decoded.is_ok(), data.len() % 8 == 0, "{decoded:?}");
        let Ok(insns) = decoded else {
            continue;
        };
        let bytes = bpfld::write::insn::encode(&insns, endian);
        assert_eq!(bytes, data, "encode(decode(bytes)) != bytes ({endian:?})");
        let again = bpfld::read::insn::decode(&bytes, endian).expect("re-decode");
        assert_eq!(again, insns, "decode(encode(insns)) != insns ({endian:?})");

        let _ = bpfld::show::disasm::listing(&insns);
        let _ = bpfld::model::insn::check_ld_imm64(&insns);
        let _ = bpfld::model::insn::second_halves(&insns);
        for (i, slot) in insns.iter().enumerate() {
            let at = bpfld::model::insn::InsnIndex(i as u32);
            let _ = slot.jump_target(at);
            let _ = slot.call_target(at);
            let _ = bpfld::model::insn::get_imm64(&insns, at);
        }
        for l in bpfld::model::insn::logical(&insns) {
            let _ = l.imm64();
        }
        // A jump retargeted to where it already points keeps its fields.
        for (i, slot) in insns.iter().enumerate() {
            let at = bpfld::model::insn::InsnIndex(i as u32);
            if let Some(t) = slot.jump_target(at) {
                if let Ok(t) = u32::try_from(t) {
                    let mut copy: Insn = *slot;
                    if copy
                        .set_jump_target(at, bpfld::model::insn::InsnIndex(t))
                        .is_ok()
                    {
                        assert_eq!(copy, *slot, "set_jump_target to own target");
                    }
                }
            }
        }
    }
}

/// BTF reader (raw BTF, as in /sys/kernel/btf/vmlinux or a `.BTF`
/// section), the raw dump and the JSON dump.
pub fn btf(data: &[u8]) {
    let Ok(btf) = bpfld::read::btf::parse(data) else {
        return;
    };
    let _ = bpfld::show::btf_dump::dump_raw(&btf);
    let _ = bpfld::show::btf_dump::dump_json(&btf);
}

/// The `.BTF` of `fixtures/core.o` (func_info, line_info and CO-RE
/// relocations): a fixed, valid type graph for the `.BTF.ext` reader.
const BTF_EXT_BASE_OBJECT: &[u8] = include_bytes!("../../fixtures/core.o");

/// `.BTF.ext` reader against a fixed valid BTF.
pub fn btf_ext(data: &[u8]) {
    let _ = bpfld::read::btf_ext::parse(data, btf_ext_base());
}

/// The BTF that `btf_ext` parses against, parsed once.
pub fn btf_ext_base() -> &'static bpfld::model::btf::Btf {
    static BASE: std::sync::OnceLock<bpfld::model::btf::Btf> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let obj = bpfld::read::elf::parse(BTF_EXT_BASE_OBJECT).expect("fixtures/core.o parses");
        obj.btf.expect("fixtures/core.o has .BTF")
    })
}
