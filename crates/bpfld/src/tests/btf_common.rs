//! Shared helpers for the BTF tests: fixture paths, section extraction with
//! the `object` crate, bpftool and clang-19 invocations.

use std::path::{Path, PathBuf};
use std::process::Command;

use object::{Object, ObjectSection};

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// Every committed fixture object (not the damaged corpus).
pub fn fixture_objects() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no fixtures found");
    v
}

/// The contents of section `name`, if the ELF parses and has it.
pub fn section(data: &[u8], name: &str) -> Option<Vec<u8>> {
    let file = object::File::parse(data).ok()?;
    let s = file.section_by_name(name)?;
    s.data().ok().map(|d| d.to_vec())
}

/// `bpftool btf dump file PATH` output, or None (with a loud message)
/// when bpftool is missing.
pub fn bpftool_dump(path: &Path) -> Option<String> {
    match Command::new("bpftool")
        .args(["btf", "dump", "file"])
        .arg(path)
        .output()
    {
        Ok(o) => {
            assert!(
                o.status.success(),
                "bpftool failed on {path:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            Some(String::from_utf8(o.stdout).unwrap())
        }
        Err(_) => {
            eprintln!("!!!!! SKIPPED: bpftool not found; BTF dump parity not checked !!!!!");
            None
        }
    }
}

/// Compiles C `src` for `target` (bpfel/bpfeb) into a temp dir with
/// clang-19; None (with a loud message) when clang-19 is missing.
pub fn compile(src: &str, name: &str, target: &str) -> Option<PathBuf> {
    let dir = std::env::temp_dir().join(format!("bpfld-btf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c = dir.join(format!("{name}.c"));
    let o = dir.join(format!("{name}.{target}.o"));
    std::fs::write(&c, src).unwrap();
    let out = Command::new("clang-19")
        .args(["-O2", "-g", "-target", target, "-c"])
        .arg(&c)
        .arg("-o")
        .arg(&o)
        .output();
    match out {
        Ok(out) => {
            assert!(
                out.status.success(),
                "clang-19 failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(o)
        }
        Err(_) => {
            eprintln!("!!!!! SKIPPED: clang-19 not found; compiled-object BTF tests not run !!!!!");
            None
        }
    }
}

/// Compact diff report: the first differing lines.
pub fn first_diff(ours: &str, theirs: &str) -> String {
    for (i, (a, b)) in ours.lines().zip(theirs.lines()).enumerate() {
        if a != b {
            return format!("line {}: ours {a:?} bpftool {b:?}", i + 1);
        }
    }
    format!(
        "line counts differ: ours {} bpftool {}",
        ours.lines().count(),
        theirs.lines().count()
    )
}

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// `bpftool -j btf dump file PATH` parsed, or None when bpftool is missing.
pub fn bpftool_json(path: &Path) -> Option<serde_json::Value> {
    let o = Command::new("bpftool")
        .args(["-j", "btf", "dump", "file"])
        .arg(path)
        .output()
        .ok()?;
    assert!(o.status.success(), "bpftool -j failed on {path:?}");
    Some(serde_json::from_slice(&o.stdout).unwrap())
}
