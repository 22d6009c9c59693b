//! BTF deduplication compared with libbpf's `btf__dedup` on the fixtures and
//! on the running kernel's vmlinux, through the project's reference harness
//! `tools/libbpf-dedup` (built here with gcc against libbpf-dev; without
//! them the comparison is skipped loudly).
//!
//! The expected relation: the same number of types of every kind, except
//! that bpfld also merges identical VARs and DATASECs (and so the DECL_TAGs
//! on them), where it may only have fewer. Every result is also checked for
//! equivalence with its input (`bpfld::dedup::verify`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use bpfld::model::btf::{Btf, Kind};

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tmp_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dedup-libbpf");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The harness binary, built once; `None` (said loudly) without gcc or
/// libbpf-dev.
fn harness(test: &str) -> Option<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let r = BUILT.get_or_init(|| {
        let src = root().join("tools/libbpf-dedup/libbpf-dedup.c");
        let out = tmp_dir().join("libbpf-dedup");
        let o = Command::new("gcc")
            .args(["-O2", "-Wall", "-o"])
            .arg(&out)
            .arg(&src)
            .arg("-lbpf")
            .output()
            .map_err(|e| format!("gcc: {e}"))?;
        if !o.status.success() {
            return Err(format!(
                "cannot build the libbpf harness (apt-get install libbpf-dev): {}",
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        Ok(out)
    });
    match r {
        Ok(p) => Some(p.clone()),
        Err(why) => {
            eprintln!("SKIP {test}: {why}");
            None
        }
    }
}

/// libbpf's deduplication of `inputs`, parsed back.
fn libbpf_dedup(harness: &Path, inputs: &[PathBuf], tag: &str) -> Btf {
    let out = tmp_dir().join(format!("{tag}.btf"));
    let o = Command::new(harness)
        .arg(&out)
        .args(inputs)
        .output()
        .expect("harness runs");
    assert!(
        o.status.success(),
        "libbpf harness failed on {inputs:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let btf = Btf::parse(&std::fs::read(&out).unwrap()).unwrap();
    let printed: usize = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    assert_eq!(printed, btf.type_count(), "harness count vs its output");
    btf
}

fn read_btf(p: &Path) -> Btf {
    let data = std::fs::read(p).unwrap();
    if data.starts_with(b"\x7fELF") {
        bpfld::Object::parse(&data).unwrap().btf.unwrap()
    } else {
        Btf::parse(&data).unwrap()
    }
}

fn kind_counts(btf: &Btf) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for (_, t) in btf.iter() {
        *m.entry(t.kind().name()).or_insert(0) += 1;
    }
    m
}

/// bpfld's dedup of `inputs`, checked for equivalence and against libbpf.
/// Returns (bpfld, libbpf) type counts.
fn compare(harness: &Path, inputs: &[PathBuf], tag: &str) -> (usize, usize) {
    let merged = bpfld::dedup::concat(inputs.iter().map(|p| read_btf(p)).collect()).unwrap();
    let ours = bpfld::dedup::dedup(&merged).unwrap();
    bpfld::dedup::verify(&merged, &ours).unwrap_or_else(|e| panic!("{tag}: {e}"));
    // What we write reads back as valid BTF.
    let bytes = ours.btf.to_bytes().unwrap();
    assert_eq!(Btf::parse(&bytes).unwrap(), ours.btf);
    check_strings(&ours.btf, tag);
    // Deduplicating again changes nothing.
    let again = bpfld::dedup::dedup(&ours.btf).unwrap();
    assert_eq!(again.btf.types, ours.btf.types, "{tag}: not a fixed point");
    assert!(again.map.iter().enumerate().all(|(i, t)| t.0 as usize == i));
    let theirs = libbpf_dedup(harness, inputs, tag);
    let (a, b) = (kind_counts(&ours.btf), kind_counts(&theirs));
    for kind in a.keys().chain(b.keys()) {
        let (x, y) = (
            a.get(kind).copied().unwrap_or(0),
            b.get(kind).copied().unwrap_or(0),
        );
        if [Kind::Var, Kind::Datasec, Kind::DeclTag]
            .iter()
            .any(|k| k.name() == *kind)
        {
            assert!(x <= y, "{tag}: {kind}: bpfld {x} > libbpf {y}");
        } else {
            assert_eq!(x, y, "{tag}: {kind}: bpfld {x}, libbpf {y}");
        }
    }
    (ours.btf.type_count(), theirs.type_count())
}

/// The string table holds each string once, and only referenced ones.
fn check_strings(btf: &Btf, tag: &str) {
    let mut offsets = std::collections::HashMap::new();
    let mut off = 0u32;
    let body = &btf.strings[..btf.strings.len() - 1];
    for s in body.split(|&b| b == 0) {
        assert!(
            offsets.insert(s, off).is_none(),
            "{tag}: string {s:?} twice"
        );
        off += s.len() as u32 + 1;
    }
    let mut used = std::collections::HashSet::new();
    for (_, t) in btf.iter() {
        let mut t = t.clone();
        t.map_strings(|o| {
            used.insert(o);
            o
        });
    }
    for (s, o) in offsets {
        assert!(
            used.contains(&o),
            "{tag}: string {:?} unreferenced",
            String::from_utf8_lossy(s)
        );
    }
}

fn fixtures_with_btf() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("fixtures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "o"))
        .filter(|p| {
            let data = std::fs::read(p).unwrap();
            bpfld::Object::parse(&data).is_ok_and(|o| o.btf.is_some())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn each_fixture_matches_libbpf() {
    let Some(h) = harness("each_fixture_matches_libbpf") else {
        return;
    };
    let fx = fixtures_with_btf();
    assert!(fx.len() > 20, "fixtures with BTF: {}", fx.len());
    for p in &fx {
        let tag = p.file_name().unwrap().to_string_lossy().into_owned();
        let (ours, theirs) = compare(&h, std::slice::from_ref(p), &tag);
        // A single object has nothing to merge but its own duplicates:
        // both end at the same count.
        assert_eq!(ours, theirs, "{tag}");
    }
}

#[test]
fn all_fixtures_merged_match_libbpf() {
    let Some(h) = harness("all_fixtures_merged_match_libbpf") else {
        return;
    };
    let fx = fixtures_with_btf();
    let (ours, theirs) = compare(&h, &fx, "all-fixtures");
    // Every object has its own `license` VAR and DATASEC, identical
    // across objects: bpfld keeps one, libbpf one per object.
    assert!(
        ours + fx.len() / 2 < theirs,
        "bpfld {ours}, libbpf {theirs}"
    );
}

#[test]
fn vmlinux_twice_is_vmlinux_and_beats_libbpf() {
    let test = "vmlinux_twice_is_vmlinux_and_beats_libbpf";
    if !Path::new(VMLINUX).exists() {
        eprintln!("SKIP {test}: no {VMLINUX}");
        return;
    }
    let Some(h) = harness(test) else {
        return;
    };
    let v = PathBuf::from(VMLINUX);
    let own = read_btf(&v);
    let (ours, theirs) = compare(&h, &[v.clone(), v], "vmlinux2");
    assert_eq!(
        ours,
        own.type_count(),
        "vmlinux x2 gives vmlinux's own count"
    );
    // libbpf keeps the second copy of every VAR and DATASEC.
    let vars_secs = own
        .iter()
        .filter(|(_, t)| matches!(t.kind(), Kind::Var | Kind::Datasec))
        .count();
    assert!(vars_secs > 0);
    assert_eq!(theirs, ours + vars_secs);
}

/// Real compiler output at kernel scale: three units including the
/// running kernel's `vmlinux.h` (from bpftool), each seeing a different
/// part of the type graph in full and the rest as forward declarations.
#[test]
fn vmlinux_h_units_match_libbpf() {
    let test = "vmlinux_h_units_match_libbpf";
    if !Path::new(VMLINUX).exists() {
        eprintln!("SKIP {test}: no {VMLINUX}");
        return;
    }
    let Some(h) = harness(test) else {
        return;
    };
    let dir = tmp_dir().join("vmlinux-h");
    std::fs::create_dir_all(&dir).unwrap();
    let header = Command::new("bpftool")
        .args(["btf", "dump", "file", VMLINUX, "format", "c"])
        .output();
    let Ok(header) = header.and_then(|o| {
        if o.status.success() {
            Ok(o.stdout)
        } else {
            Err(std::io::Error::other("bpftool failed"))
        }
    }) else {
        eprintln!("SKIP {test}: bpftool cannot write vmlinux.h");
        return;
    };
    std::fs::write(dir.join("vmlinux.h"), header).unwrap();
    let units = [
        ("a", "struct task_struct ta; struct sk_buff sa;"),
        (
            "b",
            "struct file fb; struct sk_buff sb; struct task_struct *pt;",
        ),
        ("c", "struct inode ic; struct net_device nd;"),
    ];
    let mut objs = Vec::new();
    for (name, body) in units {
        let c = dir.join(format!("{name}.c"));
        let o = dir.join(format!("{name}.o"));
        std::fs::write(&c, format!("#include \"vmlinux.h\"\n{body}\n")).unwrap();
        let out = match Command::new("clang-19")
            .args(["-g", "-O2", "-target", "bpf", "-c", "-o"])
            .arg(&o)
            .arg(&c)
            .output()
        {
            Ok(out) => out,
            Err(e) => {
                eprintln!("SKIP {test}: clang-19: {e}");
                return;
            }
        };
        assert!(
            out.status.success(),
            "clang: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        objs.push(o);
    }
    for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
        let inputs: Vec<PathBuf> = order.iter().map(|&i| objs[i].clone()).collect();
        let (ours, theirs) = compare(&h, &inputs, "vmlinux-h");
        // No VARs shared between the units: exactly libbpf's count.
        assert_eq!(ours, theirs, "order {order:?}");
        assert!(ours > 500, "{ours} types");
    }
}
