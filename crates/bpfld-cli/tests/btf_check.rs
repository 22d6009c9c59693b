//! `bpfld btf check`: an object's `.BTF`, rewritten only the way libbpf
//! rewrites it at load time (`.kconfig`/`.ksyms` externs), handed to the
//! kernel's BTF verifier.
//!
//! Kernel loads need the bpf() syscall; without it those checks print
//! `SKIP ...` and pass.

mod common;
use common::*;

use bpfld::model::btf::{Btf, TypeData, BTF_FUNC_GLOBAL, BTF_VAR_GLOBAL_ALLOCATED};

/// The object's BTF as `btf check` hands it to the kernel.
fn kernel_btf(object: &[u8]) -> bpfld::Result<bpfld::model::btf::KernelBtf> {
    bpfld::Object::parse(object)?.kernel_btf()
}

fn linked(tag: &str, input: &str) -> std::path::PathBuf {
    let out = tmpdir(tag).join("x1.o");
    ok(&[
        "link",
        "-o",
        out.to_str().unwrap(),
        fixture(input).to_str().unwrap(),
    ]);
    out
}

/// A linked object's BTF goes to the kernel as it is and is accepted.
#[test]
fn linked_output_is_accepted() {
    let test = "linked_output_is_accepted";
    let out = linked("btf-check-ok", "globals.o");
    let k = kernel_btf(&std::fs::read(&out).unwrap()).unwrap();
    assert!(k.rewrites.is_empty(), "{:?}", k.rewrites);
    if !bpf_allowed(test) {
        return;
    }
    let text = ok(&["btf", "check", out.to_str().unwrap()]);
    assert_eq!(
        text,
        format!(
            "{}: BTF accepted by the kernel ({} types)\n",
            out.display(),
            k.types
        )
    );
    bpfld_kernel::btf_check::check_object_btf(&std::fs::read(&out).unwrap()).unwrap();
}

/// clang leaves DATASEC sizes 0 (libbpf fills them in from the ELF before
/// loading; a linker must write them): that is not one of the allowed
/// rewrites, so the kernel's rejection is reported with its log line.
#[test]
fn compiler_output_with_unsized_datasec_is_rejected() {
    let test = "compiler_output_with_unsized_datasec_is_rejected";
    if !bpf_allowed(test) {
        return;
    }
    let f = fixture("calls.o");
    let o = run(&["btf", "check", f.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!("bpfld: error: {}: ", f.display())),
        "{err}"
    );
    assert!(err.contains("the kernel rejected the BTF"), "{err}");
    assert!(
        err.contains("DATASEC .bss size=0 vlen=2 size == 0"),
        "{err}"
    );
    let e = bpfld_kernel::btf_check::check_object_btf(&std::fs::read(&f).unwrap()).unwrap_err();
    assert_eq!(e.kind(), bpfld_kernel::ErrorKind::Verifier);
}

/// `.ksyms` externs (kfuncs, typed and untyped ksyms): the kernel refuses
/// the BTF as written and accepts it after libbpf's rewrites, which change
/// those externs and nothing else.
#[test]
fn ksyms_object_passes_after_the_allowed_rewrites_only() {
    let test = "ksyms_object_passes_after_the_allowed_rewrites_only";
    let out = linked("btf-check-ksyms", "kfunc_ksym.o");
    let bytes = std::fs::read(&out).unwrap();
    let k = kernel_btf(&bytes).unwrap();
    let before = bpfld::Object::parse(&bytes).unwrap().btf.unwrap();
    let after = bpfld::Btf::parse(&k.bytes).unwrap();
    // One type added (the stand-in VAR), the rest changed only where an
    // extern is.
    assert_eq!(after.type_count(), before.type_count() + 1);
    let name = |b: &Btf, i: usize| b.name(b.types[i].name_off).unwrap().to_string();
    let sec = before.find_datasec(".ksyms").unwrap().0 as usize;
    let mut changed = Vec::new();
    for i in 1..before.type_count() {
        assert_eq!(name(&before, i), name(&after, i));
        if before.types[i].data != after.types[i].data {
            changed.push(i);
        }
    }
    let externs: Vec<usize> = match &before.types[sec].data {
        TypeData::Datasec { vars, .. } => vars.iter().map(|v| v.type_id.0 as usize).collect(),
        _ => unreachable!(),
    };
    for &i in &changed {
        let proto_of_extern = externs.iter().any(|&e| {
            matches!(before.types[e].data, TypeData::Func { proto, .. } if proto.0 as usize == i)
        });
        assert!(
            i == sec || externs.contains(&i) || proto_of_extern,
            "type [{i}] {} changed but is no `.ksyms` extern",
            name(&before, i)
        );
    }
    let TypeData::Datasec { size, vars } = &after.types[sec].data else {
        unreachable!()
    };
    assert_eq!(*size, 4 * vars.len() as u32);
    let dummy = after.type_count() as u32 - 1;
    for (i, v) in vars.iter().enumerate() {
        assert_eq!((v.offset, v.size), (4 * i as u32, 4));
        let e = externs[i];
        match &after.types[e].data {
            TypeData::Func { linkage, .. } => {
                assert_eq!(*linkage, BTF_FUNC_GLOBAL);
                assert_eq!(v.type_id.0, dummy);
            }
            TypeData::Var { linkage, .. } => {
                assert_eq!(*linkage, BTF_VAR_GLOBAL_ALLOCATED);
                assert_eq!(v.type_id.0 as usize, e);
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        k.rewrites.iter().any(|r| r.contains("made global")),
        "{:?}",
        k.rewrites
    );
    if !bpf_allowed(test) {
        return;
    }
    // As written, the extern declarations are refused.
    let raw = before.to_bytes().unwrap();
    let e = bpfld_kernel::btf_load::load_btf(&raw).unwrap_err();
    assert_eq!(e.kind(), bpfld_kernel::ErrorKind::Verifier);
    let text = ok(&["btf", "check", "-v", out.to_str().unwrap()]);
    assert!(
        text.contains("rewritten as libbpf does: `.ksyms` FUNC"),
        "{text}"
    );
    assert!(
        text.ends_with(&format!("({} types)\n", after.type_count() - 1)),
        "{text}"
    );
    // --json: the same, field by field.
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["btf", "check", "--json", out.to_str().unwrap()])).unwrap();
    assert_eq!(v["file"], out.to_str().unwrap());
    assert_eq!(v["accepted"], true);
    assert_eq!(v["types"], after.type_count() - 1);
    let rewrites = v["rewrites"].as_array().unwrap();
    assert!(
        rewrites
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("`.ksyms` FUNC")),
        "{rewrites:?}"
    );
}

/// `.kconfig` externs are laid out as libbpf lays out its `.kconfig` map
/// and accepted.
#[test]
fn kconfig_object_passes() {
    let test = "kconfig_object_passes";
    let out = tmpdir("btf-check-kconfig").join("ab.o");
    ok(&[
        "link",
        "-o",
        out.to_str().unwrap(),
        fixture("link_a.o").to_str().unwrap(),
        fixture("link_b.o").to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&out).unwrap();
    let k = kernel_btf(&bytes).unwrap();
    let after = bpfld::Btf::parse(&k.bytes).unwrap();
    let sec = after
        .find_datasec(".kconfig")
        .expect("link_a.o has .kconfig externs");
    let vars = after.datasec_vars(sec).unwrap();
    assert!(!vars.is_empty());
    // libbpf's order: alignment 4 first (by size, then name), then 1.
    let names: Vec<(&str, u32)> = vars.iter().map(|v| (v.name, v.offset)).collect();
    assert_eq!(
        names,
        [
            ("CONFIG_HZ", 0),
            ("LINUX_KERNEL_VERSION", 4),
            ("CONFIG_BPF_SYSCALL", 8),
            ("CONFIG_DEFAULT_HOSTNAME", 9)
        ]
    );
    let TypeData::Datasec { size, .. } = after.types[sec.0 as usize].data else {
        unreachable!()
    };
    assert_eq!(size, 25);
    if !bpf_allowed(test) {
        return;
    }
    ok(&["btf", "check", out.to_str().unwrap()]);
}

/// What libbpf would refuse to load is an error naming the extern, before
/// the kernel is asked.
#[test]
fn unresolved_extern_function_is_an_error() {
    let f = fixture("link_a.o");
    let o = run(&["btf", "check", f.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("extern 'link_shared_add'"), "{err}");
    assert!(err.contains("`.kconfig` and `.ksyms`"), "{err}");
}

/// A big-endian object's BTF goes to the kernel in the host's byte order,
/// as libbpf converts it: the same bytes as the little-endian build's.
#[test]
fn big_endian_output_is_converted_to_host_order() {
    let test = "big_endian_output_is_converted_to_host_order";
    let be = linked("btf-check-be", "btf_kinds.bpfeb.o");
    let le = linked("btf-check-le", "btf_kinds.o");
    let kb = kernel_btf(&std::fs::read(&be).unwrap()).unwrap();
    let kl = kernel_btf(&std::fs::read(&le).unwrap()).unwrap();
    assert_eq!(kb.rewrites, ["byte order changed to the host's"]);
    assert!(kl.rewrites.is_empty());
    assert_eq!(kb.bytes, kl.bytes);
    if !bpf_allowed(test) {
        return;
    }
    ok(&["btf", "check", be.to_str().unwrap()]);
}

/// Every output bpfld writes must pass the kernel's BTF check: every
/// fixture linked alone and composed alone (where bpfld writes an output),
/// and the fixtures that are parts of one program linked together.
#[test]
fn every_fixture_output_passes_the_kernel_btf_check() {
    let test = "every_fixture_output_passes_the_kernel_btf_check";
    if !bpf_allowed(test) {
        return;
    }
    let dir = tmpdir("btf-check-all");
    let mut outputs = Vec::new();
    for obj in fixture_objects() {
        let name = obj.file_stem().unwrap().to_str().unwrap().to_string();
        // A weak extern variable no input defines links (libbpf's linker
        // allows it too) but is no program libbpf loads: it is one part
        // of a partial link, checked by the `--relocatable` tests.
        if name == "lnk_ext_weak" {
            continue;
        }
        let linked = dir.join(format!("{name}.linked.o"));
        let o = run(&[
            "link",
            "-o",
            linked.to_str().unwrap(),
            obj.to_str().unwrap(),
        ]);
        if o.status.success() {
            outputs.push(linked);
        }
        let composed = dir.join(format!("{name}.composed.o"));
        let o = run(&[
            "xdp",
            "compose",
            "-o",
            composed.to_str().unwrap(),
            obj.to_str().unwrap(),
        ]);
        if o.status.success() {
            outputs.push(composed);
        }
    }
    for (a, b) in [
        ("link_a", "link_b"),
        ("lnk_fn_a", "lnk_fn_b"),
        ("lnk_static_a", "lnk_static_b"),
        ("lnk_vars_use", "lnk_vars_def"),
        ("lnk_maps_use", "lnk_maps_def"),
    ] {
        let out = dir.join(format!("{a}+{b}.o"));
        ok(&[
            "link",
            "-o",
            out.to_str().unwrap(),
            fixture(&format!("{a}.o")).to_str().unwrap(),
            fixture(&format!("{b}.o")).to_str().unwrap(),
        ]);
        outputs.push(out);
    }
    assert!(outputs.len() > 60, "only {} outputs written", outputs.len());
    let rejected: Vec<String> = outputs
        .iter()
        .filter_map(|p| {
            let e = bpfld_kernel::btf_check::check_object_btf(&std::fs::read(p).unwrap()).err()?;
            Some(format!("{}: {e}", p.display()))
        })
        .collect();
    assert!(rejected.is_empty(), "{}", rejected.join("\n\n"));
}
