//! `bpfld btf dedup` end to end: the output is read by bpftool and accepted
//! by the kernel's BTF verifier (BPF_BTF_LOAD), vmlinux merged with itself
//! comes back as vmlinux, and bad inputs are errors that leave no output.
//!
//! Kernel loads need the bpf() syscall; without it those checks print
//! `SKIP ...` and pass.

mod common;
use common::*;

use std::path::{Path, PathBuf};

use bpfld::model::btf::{Btf, Kind, TypeData, TypeId, BTF_FUNC_EXTERN, BTF_FUNC_GLOBAL};
use bpfld::model::object::{Object, SymbolPlace};

fn tmp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dedup-cli");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn dedup_cli(out: &Path, inputs: &[&Path]) -> String {
    let mut args = vec![
        "btf".to_string(),
        "dedup".into(),
        "--stats".into(),
        "-o".into(),
        out.display().to_string(),
    ];
    args.extend(inputs.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let o = run(&args);
    assert!(o.status.success(), "bpfld {args:?} failed: {}", stderr(&o));
    stderr(&o)
}

fn bpftool_dump(path: &Path) -> String {
    let o = tool_output(
        "bpftool",
        &["btf", "dump", "file", &path.display().to_string()],
    );
    assert!(
        o.status.success(),
        "bpftool cannot read {}: {}",
        path.display(),
        stderr(&o)
    );
    stdout(&o)
}

#[test]
fn vmlinux_merged_with_itself_is_vmlinux_and_loads() {
    let test = "vmlinux_merged_with_itself_is_vmlinux_and_loads";
    if !have_vmlinux(test) {
        return;
    }
    let out = tmp("vmlinux2.btf");
    let v = Path::new(VMLINUX);
    let stats = dedup_cli(&out, &[v, v]);
    let n = bpfld::Btf::parse(&std::fs::read(v).unwrap())
        .unwrap()
        .type_count()
        - 1;
    assert_eq!(stats.trim(), format!("types: {} in, {n} out", 2 * n));
    // Same types in the same order with the same names: bpftool's listing
    // of the result is vmlinux's own, byte for byte.
    if have_tool("bpftool", test) {
        assert!(
            bpftool_dump(&out) == bpftool_dump(v),
            "dump differs from vmlinux's"
        );
    }
    if bpf_allowed(test) {
        bpfld_kernel::btf_load::load_btf(&std::fs::read(&out).unwrap())
            .unwrap_or_else(|e| panic!("kernel rejects deduplicated vmlinux: {e}"));
    }
}

/// The `.BTF` bytes of a fixture, when it has any.
fn btf_section(p: &Path) -> Option<Vec<u8>> {
    let obj = bpfld::Object::read_file(p).ok()?;
    obj.btf.as_ref().map(|b| b.to_bytes().unwrap())
}

#[test]
fn fixtures_merged_are_read_by_bpftool() {
    let test = "fixtures_merged_are_read_by_bpftool";
    let objs: Vec<PathBuf> = fixture_objects()
        .into_iter()
        .filter(|p| btf_section(p).is_some())
        .collect();
    assert!(objs.len() > 10, "fixtures with BTF: {}", objs.len());
    let refs: Vec<&Path> = objs.iter().map(|p| p.as_path()).collect();
    let out = tmp("fixtures.btf");
    dedup_cli(&out, &refs);
    let bytes = std::fs::read(&out).unwrap();
    let btf = bpfld::Btf::parse(&bytes).unwrap();
    // Every fixture declares `int`: once in the result.
    let ints = btf
        .iter()
        .filter(|(_, t)| {
            t.kind() == bpfld::model::btf::Kind::Int && btf.name(t.name_off).ok() == Some("int")
        })
        .count();
    assert_eq!(ints, 1);
    if have_tool("bpftool", test) {
        assert!(bpftool_dump(&out).contains("] INT 'int' size=4"));
    }
}

/// An object's BTF made loadable the way libbpf does before loading:
/// DATASEC sizes and variable offsets from the ELF sections and symbols
/// (the compiler leaves them 0), extern FUNCs made global. `None` when a
/// DATASEC has no section (`.ksyms`, `.kconfig`).
fn loadable_btf(obj: &Object) -> Option<Btf> {
    let mut btf = obj.btf.clone()?;
    for i in 1..btf.types.len() {
        let id = TypeId(i as u32);
        let name = btf.type_name(id).to_string();
        let mut new_data = btf.types[i].data.clone();
        match &mut new_data {
            TypeData::Datasec { size, vars } => {
                let sec = obj.sections.iter().find(|s| s.name == name)?;
                *size = sec.sh_size as u32;
                for v in vars.iter_mut() {
                    let var_name = btf.type_name(v.type_id);
                    let sym = obj
                        .symbols
                        .iter()
                        .find(|s| s.name == var_name && s.place == SymbolPlace::Section(sec.id))?;
                    v.offset = sym.value as u32;
                }
            }
            TypeData::Func { linkage, .. } if *linkage == BTF_FUNC_EXTERN => {
                *linkage = BTF_FUNC_GLOBAL;
            }
            _ => {}
        }
        btf.types[i].data = new_data;
    }
    Some(btf)
}

/// The fixtures whose BTF the kernel accepts (after libbpf's load-time
/// fixes) must still be accepted once merged and deduplicated.
#[test]
fn loadable_fixtures_stay_loadable_merged() {
    let test = "loadable_fixtures_stay_loadable_merged";
    if !bpf_allowed(test) {
        return;
    }
    let btfs: Vec<(PathBuf, Btf)> = fixture_objects()
        .into_iter()
        .filter_map(|p| {
            let obj = bpfld::Object::read_file(&p).ok()?;
            let btf = loadable_btf(&obj)?;
            let bytes = btf.to_bytes().unwrap();
            bpfld_kernel::btf_load::load_btf(&bytes).ok()?;
            Some((p, btf))
        })
        .collect();
    assert!(
        btfs.len() > 10,
        "fixtures with loadable BTF: {}",
        btfs.len()
    );
    let merged = bpfld::dedup::concat(btfs.iter().map(|(_, b)| b.clone()).collect()).unwrap();
    let d = bpfld::dedup::dedup(&merged).unwrap();
    assert!(d.btf.type_count() < merged.type_count() / 2);
    bpfld::dedup::verify(&merged, &d).unwrap();
    let bytes = d.btf.to_bytes().unwrap();
    let names: Vec<_> = btfs.iter().map(|(p, _)| p.display().to_string()).collect();
    bpfld_kernel::btf_load::load_btf(&bytes)
        .unwrap_or_else(|e| panic!("kernel rejects deduplicated fixtures {names:?}: {e}"));
}

#[test]
fn bad_input_is_an_error_and_leaves_no_output() {
    let out = tmp("never.btf");
    let _ = std::fs::remove_file(&out);
    let junk = tmp("junk.bin");
    std::fs::write(&junk, b"not BTF at all").unwrap();
    for input in [junk.display().to_string(), "/nonexistent/x.o".to_string()] {
        let o = run(&["btf", "dedup", "-o", &out.display().to_string(), &input]);
        assert!(!o.status.success());
        let err = stderr(&o);
        assert!(err.starts_with("bpfld: error: "), "{err}");
        assert!(err.contains(&input), "error names the input: {err}");
        assert!(!out.exists(), "output written despite the error");
    }
    // No inputs at all is a usage error.
    let o = run(&["btf", "dedup", "-o", &out.display().to_string()]);
    assert!(!o.status.success());
}

/// An object whose BTF holds every type twice, deduplicated with
/// `dedup_object`, still loads and runs in the kernel (func_info and
/// line_info remapped, maps' BTF intact).
#[test]
fn deduplicated_object_loads_and_runs() {
    let test = "deduplicated_object_loads_and_runs";
    if !bpf_allowed(test) {
        return;
    }
    for name in ["xdp_counter.o", "run_counter.o"] {
        let mut obj = bpfld::Object::read_file(fixture(name)).unwrap();
        let old = obj.btf.clone().unwrap();
        let n = old.types.len() as u32 - 1;
        let slen = old.strings.len() as u32;
        obj.btf = Some(bpfld::dedup::concat(vec![old.clone(), old.clone()]).unwrap());
        for s in &mut obj.sections {
            s.func_info.iter_mut().for_each(|f| f.type_id += n);
            s.line_info.iter_mut().for_each(|l| {
                l.file_name_off += slen;
                l.line_off += slen;
            });
        }
        bpfld::dedup::dedup_object(&mut obj).unwrap();
        // Both copies collapse to what the object's own BTF dedups to.
        let alone = bpfld::dedup::dedup(&old).unwrap().btf.type_count();
        assert_eq!(obj.btf.as_ref().unwrap().type_count(), alone);
        let bytes = obj.to_bytes().unwrap();
        let r = bpfld_kernel::run(&bytes, &bpfld_kernel::RunOptions::default());
        r.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// Identical VARs of two objects merge, so two DATASECs can list the same
/// VAR id: the kernel accepts that.
#[test]
fn merged_vars_shared_by_two_datasecs_load() {
    let test = "merged_vars_shared_by_two_datasecs_load";
    if !bpf_allowed(test) {
        return;
    }
    let cu = |sec: &str| {
        let mut b = Btf::new(bpfld::model::Endian::Little);
        let int_name = b.add_string("int");
        let int = b.add_type(bpfld::model::btf::BtfType::new(
            int_name,
            false,
            TypeData::Int {
                size: 4,
                data: (1 << 24) | 32,
            },
        ));
        let x = b.add_string("x");
        let var = b.add_type(bpfld::model::btf::BtfType::new(
            x,
            false,
            TypeData::Var {
                type_id: int,
                linkage: 0,
            },
        ));
        let sec = b.add_string(sec);
        b.add_type(bpfld::model::btf::BtfType::new(
            sec,
            false,
            TypeData::Datasec {
                size: 4,
                vars: vec![bpfld::model::btf::VarSecinfo {
                    type_id: var,
                    offset: 0,
                    size: 4,
                }],
            },
        ));
        b
    };
    let merged = bpfld::dedup::concat(vec![cu(".data"), cu(".bss")]).unwrap();
    let d = bpfld::dedup::dedup(&merged).unwrap();
    // int, one VAR, two DATASECs.
    assert_eq!(d.btf.type_count(), 1 + 4);
    let bytes = d.btf.to_bytes().unwrap();
    bpfld_kernel::btf_load::load_btf(&bytes).unwrap_or_else(|e| panic!("{e}"));
}

/// The same types compiled for both byte orders are the same types; the
/// output takes the first input's byte order.
#[test]
fn byte_orders_merge() {
    let out = tmp("mixed.btf");
    let be = fixture("btf_kinds.bpfeb.o");
    let le = fixture("btf_kinds.o");
    let alone = dedup_cli(&out, &[&le]);
    let mixed = dedup_cli(&out, &[&be, &le]);
    let n_out = |s: &str| s.trim().rsplit(", ").next().unwrap().to_string();
    assert_eq!(n_out(&mixed), n_out(&alone), "{mixed} vs {alone}");
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(&bytes[..2], &[0xeb, 0x9f], "big-endian magic");
    let btf = bpfld::Btf::parse(&bytes).unwrap();
    assert_eq!(btf.endian, bpfld::model::Endian::Big);
}

/// The linker's output is already deduplicated (the linker's dedup changes
/// nothing more), has one `int` however many inputs declared it, and every
/// program of it, deduplicated again by `dedup_object`, still loads and
/// runs (`lnk_static_*` define same-named statics: the linker keeps their
/// VARs apart, `dedup_object` merges them, and both load).
#[test]
fn linked_objects_deduplicated_run() {
    let test = "linked_objects_deduplicated_run";
    let allowed = bpf_allowed(test);
    for (a, b, progs) in [
        (
            "lnk_fn_a.o",
            "lnk_fn_b.o",
            &["lnk_fn_a_prog", "lnk_fn_b_prog"][..],
        ),
        (
            "lnk_maps_def.o",
            "lnk_maps_use.o",
            &["lnk_maps_def_prog", "lnk_maps_use_prog"][..],
        ),
        ("lnk_vars_def.o", "lnk_vars_use.o", &["lnk_vars_prog"][..]),
        ("lnk_static_a.o", "lnk_static_b.o", &["lnk_static_prog"][..]),
    ] {
        let inputs: Vec<bpfld::link::Input> = [a, b]
            .iter()
            .map(|n| bpfld::link::Input {
                name: n.to_string(),
                object: bpfld::Object::read_file(fixture(n)).unwrap(),
            })
            .collect();
        let mut obj = bpfld::link::link(&inputs, &Default::default()).unwrap();
        let linked = obj.btf.clone().unwrap();
        let before = linked.type_count();
        assert_eq!(
            bpfld::dedup::dedup_linked(linked).unwrap().btf.type_count(),
            before,
            "{a} + {b}: link left duplicates"
        );
        bpfld::dedup::dedup_object(&mut obj).unwrap();
        let after = obj.btf.as_ref().unwrap();
        // One `int`, however many inputs declared it.
        let ints = after
            .iter()
            .filter(|(_, t)| t.kind() == Kind::Int && after.name(t.name_off).ok() == Some("int"))
            .count();
        assert_eq!(ints, 1, "{a} + {b}");
        let bytes = obj.to_bytes().unwrap();
        if !allowed {
            continue;
        }
        for prog in progs {
            let opts = bpfld_kernel::RunOptions {
                prog: Some(prog),
                ..Default::default()
            };
            bpfld_kernel::run(&bytes, &opts).unwrap_or_else(|e| panic!("{a} + {b}: {prog}: {e}"));
        }
    }
}

#[test]
fn dedup_json_reports_the_type_counts() {
    let out = tmp("json.btf");
    let (a, b) = (fixture("link_a.o"), fixture("link_b.o"));
    let o = run(&[
        "btf",
        "dedup",
        "--json",
        "--stats",
        "-o",
        out.to_str().unwrap(),
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["output"], out.to_str().unwrap());
    assert_eq!(
        v["inputs"],
        serde_json::json!([a.to_str().unwrap(), b.to_str().unwrap()])
    );
    // The counts --stats prints on stderr, and the output's own count.
    let (inn, outn) = (
        v["types_in"].as_u64().unwrap(),
        v["types_out"].as_u64().unwrap(),
    );
    assert_eq!(stderr(&o), format!("types: {inn} in, {outn} out\n"));
    assert!(outn < inn, "{v}");
    let written = bpfld::Btf::parse(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(written.type_count() as u64 - 1, outn);
}
