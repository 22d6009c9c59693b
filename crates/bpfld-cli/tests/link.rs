//! `bpfld link` against libbpf's linker (`bpftool gen object`): the same
//! inputs must give objects that libbpf loads and that compute the same
//! results when run in the kernel; plus determinism, the fixed point, the
//! dead weight bpfld drops and every error case.

mod common;
use common::*;

use std::path::Path;

fn fx(name: &str) -> String {
    fixture(name).to_str().unwrap().to_string()
}

fn bpfld_link(out: &Path, inputs: &[&str], extra: &[&str]) -> std::process::Output {
    let mut args = vec!["link", "-o", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let paths: Vec<String> = inputs.iter().map(|i| fx(i)).collect();
    args.extend(paths.iter().map(String::as_str));
    run(&args)
}

fn link_ok(out: &Path, inputs: &[&str]) {
    let o = bpfld_link(out, inputs, &[]);
    assert!(o.status.success(), "bpfld link {inputs:?}: {}", stderr(&o));
}

/// Links the same inputs with libbpf's linker; `None` when bpftool is
/// missing or libbpf refuses them.
fn bpftool_link(out: &Path, inputs: &[&str]) -> Option<()> {
    let mut args = vec![
        "gen".to_string(),
        "object".into(),
        out.to_str().unwrap().into(),
    ];
    args.extend(inputs.iter().map(|i| fx(i)));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = tool_output("bpftool", &args);
    o.status.success().then_some(())
}

/// Links `inputs` both ways, loads ours with libbpf, runs `progs` in both
/// and asserts the same verdicts (and the expected one) and maps.
fn same_as_libbpf(tag: &str, inputs: &[&str], progs: &[(&str, i64)]) {
    compare_links(tag, inputs, progs, true)
}

/// As [`same_as_libbpf`]; `aya` says whether aya 0.14 can load the
/// objects at all (whoever linked them).
fn compare_links(tag: &str, inputs: &[&str], progs: &[(&str, i64)], aya: bool) {
    let dir = tmpdir(tag);
    let ours = dir.join("bpfld.o");
    link_ok(&ours, inputs);
    if !kernel_available() {
        return;
    }
    libbpf_loads(&ours).unwrap_or_else(|e| panic!("libbpf refuses bpfld's {tag} output: {e}"));
    let theirs = dir.join("bpftool.o");
    let reference = bpftool_link(&theirs, inputs).is_some() && libbpf_loads(&theirs).is_ok();
    for &(prog, want) in progs {
        let by_libbpf = run_libbpf(&ours, prog);
        assert_eq!(
            by_libbpf, want,
            "{tag}: {prog} loaded by libbpf returned {by_libbpf}"
        );
        if reference {
            assert_eq!(
                run_libbpf(&theirs, prog),
                want,
                "{tag}: {prog} in libbpf's link"
            );
        }
        if !aya {
            continue;
        }
        let (ret, maps) = run_prog(&ours, prog);
        assert_eq!(ret, want, "{tag}: {prog} returned {ret}, expected {want}");
        if reference {
            let (ret2, maps2) = run_prog(&theirs, prog);
            assert_eq!(
                ret, ret2,
                "{tag}: {prog}: bpfld's link returns {ret}, libbpf's {ret2}"
            );
            assert_eq!(maps, maps2, "{tag}: {prog}: maps differ from libbpf's link");
        } else {
            eprintln!("note: {tag}: libbpf cannot link or load {inputs:?}; compared with the expected value only");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn extern_functions_both_ways() {
    same_as_libbpf(
        "fn",
        &["lnk_fn_a.o", "lnk_fn_b.o"],
        &[("lnk_fn_a_prog", 15), ("lnk_fn_b_prog", 41)],
    );
}

#[test]
fn extern_variables_in_data_rodata_bss_with_mixed_alignment() {
    same_as_libbpf(
        "vars",
        &["lnk_vars_def.o", "lnk_vars_use.o"],
        &[("lnk_vars_prog", 1299)],
    );
    same_as_libbpf(
        "vars-rev",
        &["lnk_vars_use.o", "lnk_vars_def.o"],
        &[("lnk_vars_prog", 1299)],
    );
}

#[test]
fn extern_and_weak_maps() {
    same_as_libbpf(
        "maps",
        &["lnk_maps_def.o", "lnk_maps_use.o"],
        &[("lnk_maps_def_prog", 2), ("lnk_maps_use_prog", 2)],
    );
    // The extern first: libbpf 1.1's linker then describes the map at the
    // wrong offset and libbpf cannot open its own output; bpfld's works.
    same_as_libbpf(
        "maps-rev",
        &["lnk_maps_use.o", "lnk_maps_def.o"],
        &[("lnk_maps_def_prog", 2), ("lnk_maps_use_prog", 2)],
    );
}

#[test]
fn weak_functions_hidden_symbols_and_same_named_statics() {
    // libbpf 1.1 links link_a before link_b into an object it cannot load
    // (the losing weak map leaves a hole); bpfld handles both orders.
    // aya 0.14 cannot load objects with `.kconfig` externs, whoever linked
    // them (it wants the DATASEC's size from an ELF section that does not
    // exist), so these run through libbpf only.
    compare_links(
        "ab",
        &["link_a.o", "link_b.o"],
        &[("link_main", 1137)],
        false,
    );
    compare_links(
        "ba",
        &["link_b.o", "link_a.o"],
        &[("link_main", 1137)],
        false,
    );
}

#[test]
fn losing_weak_bodies_are_dropped() {
    let dir = tmpdir("weak");
    let out = dir.join("out.o");
    link_ok(&out, &["link_a.o", "link_b.o"]);
    let text = ok(&["disasm", out.to_str().unwrap()]);
    let bodies = text.matches("<weak_policy>:").count();
    assert_eq!(bodies, 1, "one weak_policy body expected:\n{text}");
    let json = ok(&["inspect", "--json", out.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let maps: Vec<&str> = v["maps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        maps.iter().filter(|m| **m == "shared_map").count(),
        1,
        "{maps:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn output_is_deterministic_and_a_fixed_point() {
    let dir = tmpdir("fixed");
    for (n, inputs) in [
        vec!["lnk_fn_a.o", "lnk_fn_b.o"],
        vec!["lnk_vars_def.o", "lnk_vars_use.o"],
        vec!["lnk_maps_def.o", "lnk_maps_use.o"],
        vec!["link_a.o", "link_b.o"],
        vec!["lnk_static_a.o", "lnk_static_b.o"],
        vec!["lnk_lic_upper.o", "lnk_fn_a.o", "lnk_fn_b.o"],
        vec!["calls.o"],
        vec!["globals.o"],
        vec!["maps.o"],
        vec!["core.o"],
        vec!["btf_kinds.o"],
    ]
    .into_iter()
    .enumerate()
    {
        let a = dir.join(format!("{n}-a.o"));
        let b = dir.join(format!("{n}-b.o"));
        link_ok(&a, &inputs);
        link_ok(&b, &inputs);
        assert_eq!(
            std::fs::read(&a).unwrap(),
            std::fs::read(&b).unwrap(),
            "{inputs:?}: two links differ"
        );
        let c = dir.join(format!("{n}-c.o"));
        let d = dir.join(format!("{n}-d.o"));
        let ok1 = run(&["link", "-o", c.to_str().unwrap(), a.to_str().unwrap()]);
        assert!(ok1.status.success(), "{}", stderr(&ok1));
        let ok2 = run(&["link", "-o", d.to_str().unwrap(), c.to_str().unwrap()]);
        assert!(ok2.status.success(), "{}", stderr(&ok2));
        assert_eq!(
            std::fs::read(&c).unwrap(),
            std::fs::read(&d).unwrap(),
            "{inputs:?}: link(link(x)) != link(link(link(x)))"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn link_err(inputs: &[&str], extra: &[&str]) -> String {
    let dir = tmpdir("err");
    let out = dir.join("out.o");
    std::fs::write(&out, b"previous").unwrap();
    let o = bpfld_link(&out, inputs, extra);
    assert_eq!(o.status.code(), Some(1), "link {inputs:?} should fail");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        b"previous",
        "a failed link must leave the existing output untouched"
    );
    let stray: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(stray.len(), 1, "a failed link left files: {stray:?}");
    std::fs::remove_dir_all(&dir).unwrap();
    stderr(&o)
}

#[test]
fn two_strong_definitions_name_both_files() {
    let e = link_err(&["lnk_fn_b.o", "lnk_dup_twice.o"], &[]);
    assert!(
        e.contains("'twice'") && e.contains("lnk_fn_b.o") && e.contains("lnk_dup_twice.o"),
        "{e}"
    );
}

#[test]
fn different_licenses_are_an_error() {
    let e = link_err(&["lnk_fn_a.o", "lnk_fn_b.o", "lnk_bad_license.o"], &[]);
    assert!(
        e.contains("license") && e.contains("GPL") && e.contains("Dual MIT/GPL"),
        "{e}"
    );
}

#[test]
fn unresolved_externs_are_listed_unless_relocatable() {
    let e = link_err(&["link_a.o"], &[]);
    assert!(
        e.contains("link_shared_add") && e.contains("link_b_counter") && e.contains("link_a.o"),
        "{e}"
    );
    let dir = tmpdir("partial");
    let out = dir.join("partial.o");
    let o = bpfld_link(&out, &["link_a.o"], &["--relocatable"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The partial output links again with the rest.
    let full = dir.join("full.o");
    let o = run(&[
        "link",
        "-o",
        full.to_str().unwrap(),
        out.to_str().unwrap(),
        &fx("link_b.o"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mismatched_prototypes_show_both() {
    let e = link_err(&["lnk_fn_a.o", "lnk_fn_b.o", "lnk_bad_proto.o"], &[]);
    assert!(
        e.contains("inc") && e.contains("int inc(int x)") && e.contains("long"),
        "{e}"
    );
}

#[test]
fn mixed_byte_orders_are_an_error() {
    let e = link_err(&["xdp_pass.o", "xdp_counter.bpfeb.o"], &[]);
    assert!(
        e.contains("byte order") && e.contains("xdp_counter.bpfeb.o"),
        "{e}"
    );
}

#[test]
fn same_named_statics_stay_apart() {
    // Each object's static `scale` and `bias`: 129 + 194.
    same_as_libbpf(
        "static",
        &["lnk_static_a.o", "lnk_static_b.o"],
        &[("lnk_static_prog", 323)],
    );
}

#[test]
fn hidden_stays_hidden_and_loader_externs_stay_externs() {
    let dir = tmpdir("hidden");
    let out = dir.join("out.o");
    link_ok(&out, &["link_a.o", "link_b.o"]);
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", "--json", out.to_str().unwrap()])).unwrap();
    let f = v["functions"].as_array().unwrap();
    for name in ["hidden_helper", "link_b_private"] {
        let func = f.iter().find(|x| x["name"] == name).unwrap();
        assert_eq!(func["hidden"], true, "{name}");
    }
    let x = v["externs"].as_array().unwrap();
    let names: Vec<&str> = x.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert!(
        names.contains(&"LINUX_KERNEL_VERSION") && names.contains(&"CONFIG_HZ"),
        "{names:?}"
    );
    assert!(
        !names.contains(&"link_shared_add"),
        "resolved extern still listed: {names:?}"
    );
    assert!(x.iter().all(|e| e["kind"] == "kconfig"), "{x:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every fixture libbpf loads on its own still loads after going through
/// `bpfld link` alone, and the XDP ones compute the same in the kernel.
#[test]
fn single_object_links_load_and_run_like_the_original() {
    if !kernel_available() {
        return;
    }
    let dir = tmpdir("single");
    let mut checked = 0;
    for obj in fixture_objects() {
        let name = obj.file_name().unwrap().to_str().unwrap().to_string();
        if libbpf_loads(&obj).is_err() {
            continue;
        }
        let out = dir.join(&name);
        link_ok(&out, &[&name]);
        libbpf_loads(&out)
            .unwrap_or_else(|e| panic!("{name}: libbpf loads the original, not bpfld's link: {e}"));
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} fixtures checked");
    for (name, prog) in [
        ("xdp_pass.o", "xdp_pass_prog"),
        ("xdp_counter.o", "xdp_counter_prog"),
        ("xdp_compute.o", "xdp_compute_prog"),
        ("calls.o", "calls_main"),
        ("globals.o", "globals_main"),
        ("insn_alu.o", "insn_alu_prog"),
        ("insn_jmp.o", "insn_jmp_prog"),
        ("run_counter.o", "run_counter_prog"),
    ] {
        let linked = dir.join(name);
        let prog = program_of(&fixture(name), prog);
        let (r1, m1) = run_prog(&fixture(name), &prog);
        let (r2, m2) = run_prog(&linked, &prog);
        assert_eq!((r1, &m1), (r2, &m2), "{name}: {prog} differs after linking");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The fixture's single program (the guess in the table may be stale).
fn program_of(obj: &Path, guess: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", "--json", obj.to_str().unwrap()])).unwrap();
    let progs: Vec<String> = v["programs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    if progs.iter().any(|p| p == guess) {
        guess.to_string()
    } else {
        progs.first().cloned().expect("a program")
    }
}

#[test]
fn empty_executable_sections_link_and_load() {
    // Each input has `.empty_section` holding a naked empty function and a
    // func_info record for its (missing) instruction 0, which libbpf
    // accepts: so does the reader, without a word.
    let o = run(&["inspect", &fx("lnk_empty_a.o")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
    let text = stdout(&o);
    assert!(text.contains("programs (1):\n  xdp "), "{text}");
    assert!(text.contains("BTF.ext: 2 func_info"), "{text}");
    assert!(
        text.contains(
            "empty_function_a         .empty_section       global,subprog           0 insns"
        ),
        "{text}"
    );

    same_as_libbpf(
        "empty",
        &["lnk_empty_a.o", "lnk_empty_b.o"],
        &[("lnk_empty_a_prog", 2), ("lnk_empty_b_prog", 1)],
    );
    let dir = tmpdir("empty-fixed");
    let (x1, x2) = (dir.join("x1.o"), dir.join("x2.o"));
    link_ok(&x1, &["lnk_empty_a.o", "lnk_empty_b.o"]);
    ok(&["link", "-o", x2.to_str().unwrap(), x1.to_str().unwrap()]);
    assert!(
        std::fs::read(&x1).unwrap() == std::fs::read(&x2).unwrap(),
        "relinking is not a fixed point"
    );
    if bpf_allowed("empty_executable_sections_link_and_load") {
        let obj = bpfld::Object::read_file(&x1).unwrap();
        let bytes = obj.btf.as_ref().unwrap().to_bytes().unwrap();
        bpfld_kernel::btf_load::load_btf(&bytes).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Asserts that the kernel accepts the `.BTF` of `obj` (after only the
/// rewrites libbpf makes at load, as `bpfld btf check` applies them).
fn assert_kernel_accepts_btf(obj: &Path, what: &str) {
    if !bpf_allowed("kernel BTF check") {
        return;
    }
    bpfld_kernel::btf_check::check_object_btf(&std::fs::read(obj).unwrap())
        .unwrap_or_else(|e| panic!("{what}: the kernel refuses the output's BTF: {e}"));
}

/// `bpftool btf dump` lines of one DATASEC of `obj`: its entries.
fn datasec_entries(obj: &Path, sec: &str) -> Vec<(String, u32, u32)> {
    use bpfld::model::btf::TypeData;
    let object = bpfld::Object::read_file(obj).unwrap();
    let btf = object.btf.unwrap();
    let id = btf
        .find_datasec(sec)
        .unwrap_or_else(|| panic!("no DATASEC '{sec}'"));
    let TypeData::Datasec { vars, .. } = &btf.get(id).unwrap().data else {
        unreachable!()
    };
    vars.iter()
        .map(|v| (btf.type_name(v.type_id).to_string(), v.type_id.0, v.offset))
        .collect()
}

fn relink_is_fixed_point(out: &Path, what: &str) {
    let again = out.with_extension("relinked.o");
    let o = run(&["link", "-o", again.to_str().unwrap(), out.to_str().unwrap()]);
    assert!(o.status.success(), "{what}: relink: {}", stderr(&o));
    assert!(
        std::fs::read(out).unwrap() == std::fs::read(&again).unwrap(),
        "{what}: link(link(x)) != link(x)"
    );
}

/// `LICENSE` in one input, `_license` in the others, all "GPL": the
/// section is kept once with the first input's symbol and VAR only (as
/// libbpf keeps it), `version` too, and the kernel accepts the BTF (two
/// VARs at offset 0 of DATASEC `license` made it fail with "Invalid
/// offset", and libbpf then loaded the programs without BTF).
#[test]
fn license_kept_once_with_one_variable() {
    let inputs = ["lnk_lic_upper.o", "lnk_fn_a.o", "lnk_fn_b.o"];
    let dir = tmpdir("lic");
    let out = dir.join("out.o");
    link_ok(&out, &inputs);
    let license = datasec_entries(&out, "license");
    assert_eq!(license.len(), 1, "{license:?}");
    assert_eq!(license[0].0, "LICENSE");
    assert_eq!(datasec_entries(&out, "version").len(), 1);
    let object = bpfld::Object::read_file(&out).unwrap();
    let in_license: Vec<&str> = object
        .symbols
        .iter()
        .filter(|s| {
            matches!(s.place, bpfld::model::object::SymbolPlace::Section(id)
                if object.section(id).is_some_and(|x| x.name == "license"))
        })
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(in_license, ["LICENSE"]);
    let btf_types = |p: &Path| {
        let o = bpfld::Object::read_file(p).unwrap();
        let b = o.btf.unwrap();
        b.iter()
            .filter(|(_, t)| matches!(t.data, bpfld::model::btf::TypeData::Var { .. }))
            .map(|(id, _)| b.type_name(id).to_string())
            .collect::<Vec<_>>()
    };
    assert!(
        !btf_types(&out).contains(&"_license".to_string()),
        "the dropped copy's VAR is still there: {:?}",
        btf_types(&out)
    );
    assert_kernel_accepts_btf(&out, "license");
    relink_is_fixed_point(&out, "license");
    std::fs::remove_dir_all(&dir).unwrap();
    same_as_libbpf(
        "lic",
        &inputs,
        &[("lnk_lic_prog", 7), ("lnk_fn_a_prog", 15)],
    );
}

#[test]
fn license_and_version_copies_must_agree() {
    let e = link_err(&["lnk_lic_upper.o", "lnk_lic_version.o"], &[]);
    assert!(
        e.contains("'version'") && e.contains("lnk_lic_upper.o") && e.contains("lnk_lic_version.o"),
        "{e}"
    );
    // Same contents, other flags (read-only).
    let e = link_err(&["lnk_fn_a.o", "lnk_fn_b.o", "lnk_lic_flags.o"], &[]);
    assert!(
        e.contains("'license'")
            && e.contains("flags 0x3")
            && e.contains("flags 0x2")
            && e.contains("lnk_fn_a.o")
            && e.contains("lnk_lic_flags.o"),
        "{e}"
    );
}

/// Each object's static `bias` is its own variable: its own VAR and its
/// own DATASEC entry (libbpf keeps them so); one VAR for both lost an
/// entry when the output was linked again.
#[test]
fn same_named_statics_are_separate_variables() {
    let dir = tmpdir("statics");
    let out = dir.join("out.o");
    link_ok(&out, &["lnk_static_a.o", "lnk_static_b.o"]);
    let data = datasec_entries(&out, ".data");
    let bias: Vec<_> = data.iter().filter(|e| e.0 == "bias").collect();
    assert_eq!(bias.len(), 2, "{data:?}");
    assert_ne!(bias[0].1, bias[1].1, "one VAR for two variables: {data:?}");
    assert_ne!(bias[0].2, bias[1].2, "{data:?}");
    relink_is_fixed_point(&out, "statics");
    assert_kernel_accepts_btf(&out, "statics");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A weak and a strong declaration of one extern give a strong undefined
/// symbol in a partial link, whichever input comes first (libbpf's rule);
/// weak declarations alone stay weak.
#[test]
fn weak_and_strong_extern_declarations_give_a_strong_extern() {
    use bpfld::model::object::{Binding, SymbolPlace};
    let dir = tmpdir("weakext");
    for (inputs, want) in [
        (&["lnk_ext_weak.o", "lnk_ext_strong.o"][..], Binding::Global),
        (&["lnk_ext_strong.o", "lnk_ext_weak.o"][..], Binding::Global),
        (&["lnk_ext_weak.o"][..], Binding::Weak),
    ] {
        let out = dir.join("out.o");
        let o = bpfld_link(&out, inputs, &["--relocatable"]);
        assert!(o.status.success(), "{inputs:?}: {}", stderr(&o));
        let object = bpfld::Object::read_file(&out).unwrap();
        let s = object
            .symbols
            .iter()
            .find(|s| s.name == "lnk_ext_var")
            .unwrap();
        assert_eq!(s.place, SymbolPlace::Undefined, "{inputs:?}");
        assert_eq!(s.binding, want, "{inputs:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An extern variable declared with two sizes, a kfunc declared with two
/// prototypes: each input's code was compiled for its own declaration, so
/// the link is refused, naming both files and both declarations in C.
#[test]
fn extern_declarations_that_differ_are_refused() {
    let e = link_err(&["lnk_ext_strong.o", "lnk_ext_size.o"], &["--relocatable"]);
    assert!(
        e.contains("'lnk_ext_size'")
            && e.contains("declaration")
            && e.contains("lnk_ext_strong.o: int lnk_ext_size")
            && e.contains("lnk_ext_size.o: long lnk_ext_size"),
        "{e}"
    );
    let e = link_err(&["kfunc_ksym.o", "lnk_ext_size.o"], &["--relocatable"]);
    assert!(
        e.contains("'bpf_rcu_read_lock'")
            && e.contains("kfunc_ksym.o: void bpf_rcu_read_lock(void)")
            && e.contains("lnk_ext_size.o: void bpf_rcu_read_lock(int)"),
        "{e}"
    );
}

/// The compiled BPF selftests (Linux 6.12, clang-19), when present.
fn selftests_dir() -> Option<std::path::PathBuf> {
    let cache = Path::new("/var/cache/bpfld-corpus");
    let dir = std::fs::read_dir(cache)
        .ok()?
        .flatten()
        .map(|e| e.path().join("obj"))
        .find(|p| {
            p.parent()
                .and_then(|d| d.file_name())
                .is_some_and(|n| n.to_string_lossy().starts_with("selftests-"))
                && p.is_dir()
        });
    if dir.is_none() {
        eprintln!("SKIP selftests pairs: no /var/cache/bpfld-corpus/selftests-*/obj (scripts/corpus.sh builds it)");
    }
    dir
}

/// Whether `bpftool prog loadall` loads `obj`, and libbpf's log.
fn loadall(obj: &Path) -> (bool, String) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pin = format!("/sys/fs/bpf/bpfld-selftests-{}-{n}", std::process::id());
    let _ = std::fs::remove_dir_all(&pin);
    let o = tool_output("bpftool", &["prog", "loadall", obj.to_str().unwrap(), &pin]);
    let _ = std::fs::remove_dir_all(&pin);
    unpin_by_name(obj);
    (o.status.success(), format!("{}{}", stdout(&o), stderr(&o)))
}

/// The kernel's multi-object selftests linked by bpfld: a fixed point,
/// BTF the kernel accepts (libbpf used to drop it: two `_license` VARs at
/// offset 0, one VAR for two statics), and libbpf loads what it loads
/// from its own link of the same inputs, with the BTF.
#[test]
fn selftests_pairs_link_to_a_fixed_point_and_load() {
    let Some(dir) = selftests_dir() else {
        return;
    };
    let work = tmpdir("selftests");
    let kernel = kernel_available() && bpf_allowed("selftests pairs");
    for pair in [
        "linked_funcs",
        "linked_vars",
        "linked_maps",
        "test_static_linked",
    ] {
        let inputs: Vec<String> = ["1", "2"]
            .iter()
            .map(|n| {
                dir.join(format!("{pair}{n}.bpf.o"))
                    .to_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        let out = work.join(format!("{pair}.o"));
        let mut args = vec!["link", "-o", out.to_str().unwrap()];
        args.extend(inputs.iter().map(String::as_str));
        let o = run(&args);
        assert!(o.status.success(), "{pair}: {}", stderr(&o));
        relink_is_fixed_point(&out, pair);
        assert_kernel_accepts_btf(&out, pair);
        if !kernel {
            continue;
        }
        let theirs = work.join(format!("{pair}.libbpf.o"));
        let mut args = vec!["gen", "object", theirs.to_str().unwrap()];
        args.extend(inputs.iter().map(String::as_str));
        let reference = tool_output("bpftool", &args).status.success();
        let (ours_load, log) = loadall(&out);
        assert!(
            !log.contains("Error loading .BTF"),
            "{pair}: libbpf drops bpfld's BTF:\n{log}"
        );
        if reference {
            // What libbpf loads from its own link, it loads from bpfld's
            // (linked_maps: libbpf's own link does not load here, bpfld's
            // does; linked_funcs: programs marked `?` load with neither).
            let (theirs_load, their_log) = loadall(&theirs);
            assert!(
                ours_load || !theirs_load,
                "{pair}: libbpf loads its own link, not bpfld's:\n{log}\n{their_log}"
            );
        } else {
            assert!(ours_load, "{pair}:\n{log}");
        }
    }
    std::fs::remove_dir_all(&work).unwrap();
}

#[test]
fn kernel_limits_are_checked_before_anything_is_written() {
    // 65 maps used by one program: one more than MAX_USED_MAPS.
    let e = link_err(&["lim_maps65.o"], &[]);
    assert!(
        e.contains("program 'xdp_maps65' uses 65 maps, more than the 64 one program may use (MAX_USED_MAPS)")
            && e.contains("(m0, m1, m2"),
        "{e}"
    );
    // 320 + 320 bytes of stack along a call chain the object already
    // had: frames measured from code are upper bounds, so the kernel
    // judges (it refuses this one, below); a chain through a component is
    // refused by compose (tests/compose.rs).
    link_ok(&tmpdir("limits-stack").join("out.o"), &["lim_stack.o"]);
    // Within every limit, a program with 33 maps links.
    let out = tmpdir("limits-ok").join("out.o");
    link_ok(&out, &["lim_maps33.o"]);
    // The kernel agrees: it refuses both objects as clang wrote them, and
    // loads the one within the limits.
    if !bpf_allowed("kernel_limits_are_checked_before_anything_is_written") {
        return;
    }
    for (f, why) in [
        ("lim_maps65.o", "maps per program"),
        ("lim_stack.o", "combined stack size"),
    ] {
        let o = run(&["run", &fx(f)]);
        assert!(!o.status.success(), "the kernel loaded {f}");
        assert!(stderr(&o).contains(why), "{f}: {}", stderr(&o));
    }
    ok(&["run", out.to_str().unwrap()]);
}
