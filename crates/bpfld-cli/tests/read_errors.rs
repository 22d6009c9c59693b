//! The reader's rejections say what is wrong and where: one assertion per
//! check, on a committed damaged file or fuzz reproducer.

mod common;
use common::*;

fn rejects(path: &str, expected: &[&str]) {
    let full = root().join(path);
    let o = run(&["inspect", full.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{path} should be rejected");
    let e = stderr(&o);
    for part in expected {
        assert!(e.contains(part), "{path}: {part:?} missing from: {e}");
    }
}

#[test]
fn each_reader_check_names_what_is_wrong() {
    rejects(
        "fixtures/damaged/symtab_entsize_zero.o",
        &["section '.symtab'", "sh_entsize is 0, expected 24"],
    );
    rejects(
        "fixtures/damaged/reloc_on_non_ldimm64.o",
        &["R_BPF_64_64 on instruction 0", "which is not an ld_imm64"],
    );
    rejects(
        "fixtures/damaged/symbol_size_past_section.o",
        &["symbol 3 'packets'", "lies outside section '.maps'"],
    );
    rejects(
        "fixtures/damaged/rel_link_not_symtab.o",
        &["section '.relxdp'", "is not the symbol table"],
    );
    rejects(
        "fuzz/regressions/elf/section_addralign_not_power_of_two.o",
        &["section 'xdp'", "is not a power of two"],
    );
    rejects(
        "fuzz/regressions/link/bss_size_near_2pow64_wraps_in_link_layout.o",
        &["section '.bss'", "more than a BPF map value can hold"],
    );
    rejects(
        "fuzz/regressions/link/btf_array_of_datasec_becomes_array_of_void.o",
        &[
            "ARRAY",
            "refers to [41] DATASEC '.kconfig', a section description",
        ],
    );
}

/// The reader rejects a function symbol that does not start and end on an
/// instruction boundary. Its fuzz reproducer is a two-object link input:
/// the halves are split where the fuzz target splits them and each is
/// inspected; the damaged one must be rejected with the message.
#[test]
fn a_function_off_instruction_boundaries_is_named() {
    let data = std::fs::read(
        root().join("fuzz/regressions/link/func_symbol_not_at_instruction_boundary.o"),
    )
    .unwrap();
    let sep: &[u8] = b"\n--bpfld-fuzz-next-object--\n";
    let at = data.windows(sep.len()).position(|w| w == sep).unwrap();
    let dir = tmpdir("fnbound");
    let mut messages = Vec::new();
    for (n, half) in [&data[..at], &data[at + sep.len()..]].iter().enumerate() {
        let path = dir.join(format!("half{n}.o"));
        std::fs::write(&path, half).unwrap();
        let o = run(&["inspect", path.to_str().unwrap()]);
        if !o.status.success() {
            assert_eq!(o.status.code(), Some(1));
            messages.push(stderr(&o));
        }
    }
    assert!(
        messages.iter().any(
            |m| m.contains("does not start and end on instruction boundaries")
                && m.contains("in section '")
        ),
        "{messages:?}"
    );
}
