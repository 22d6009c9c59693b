//! The committed test objects in `fixtures/` must be what `fixtures/build.sh`
//! makes from `fixtures/src/`, so that a change to a fixture source cannot
//! silently leave a stale object behind. Rebuilding needs clang-19 and
//! llvm-strip-19; without them the comparison is skipped loudly.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// File names in `dir` ending in `suffix`, sorted.
fn names_with_suffix(dir: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").file_name())
        .filter_map(|name| name.into_string().ok())
        .filter(|name| name.ends_with(suffix))
        .collect();
    names.sort();
    names
}

fn tool_works(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .map(|out| out.status.success())
        .unwrap_or(false)
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!("bpfld-{tag}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn every_fixture_source_has_a_committed_object() {
    let dir = fixtures_dir();
    let sources = names_with_suffix(&dir.join("src"), ".c");
    assert!(!sources.is_empty(), "no fixture sources in fixtures/src");
    for source in sources {
        let object = source.trim_end_matches(".c").to_string() + ".o";
        assert!(
            dir.join(&object).is_file(),
            "fixtures/src/{source} has no committed fixtures/{object}: run fixtures/build.sh"
        );
    }
}

#[test]
fn committed_objects_equal_a_fresh_build() {
    if !tool_works("clang-19") || !tool_works("llvm-strip-19") {
        // Written to the stderr handle itself, not with eprintln!, which the
        // test harness captures and hides for passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIP committed_objects_equal_a_fresh_build: clang-19 or llvm-strip-19 \
             is not installed, so the committed fixtures/*.o were NOT checked against \
             their sources ***\n"
        );
        return;
    }
    let fixtures = fixtures_dir();
    // Build from a copy in another directory: this also proves the objects do
    // not depend on the checkout's path.
    let tmp = TempDir::new("fixtures");
    let copy = tmp.0.join("fixtures");
    copy_dir(&fixtures.join("src"), &copy.join("src"));
    copy_dir(&fixtures.join("include"), &copy.join("include"));
    fs::copy(fixtures.join("build.sh"), copy.join("build.sh")).unwrap();
    let out = tmp.0.join("out");

    let status = Command::new("sh")
        .arg(copy.join("build.sh"))
        .arg(&out)
        .status()
        .expect("run fixtures/build.sh");
    assert!(status.success(), "fixtures/build.sh failed: {status}");

    let fresh = names_with_suffix(&out, ".o");
    let committed = names_with_suffix(&fixtures, ".o");
    assert_eq!(
        committed, fresh,
        "the committed fixtures/*.o are not the set build.sh makes: run fixtures/build.sh \
         and commit the result (and delete objects whose source is gone)"
    );
    for name in &fresh {
        let want = fs::read(out.join(name)).unwrap();
        let have = fs::read(fixtures.join(name)).unwrap();
        assert!(
            want == have,
            "fixtures/{name} is stale (differs from a fresh build of its source): \
             run fixtures/build.sh and commit the result"
        );
    }

    // The GCC-built objects, when bpf-gcc is there to rebuild them.
    if !tool_works("bpf-gcc") {
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIP committed_objects_equal_a_fresh_build: bpf-gcc (package gcc-bpf) \
             is not installed, so the committed fixtures/gcc/*.o were NOT checked ***\n"
        );
        return;
    }
    let fresh = names_with_suffix(&out.join("gcc"), ".o");
    let committed = names_with_suffix(&fixtures.join("gcc"), ".o");
    assert!(
        !committed.is_empty(),
        "no GCC-built fixtures in fixtures/gcc"
    );
    assert_eq!(
        committed, fresh,
        "the committed fixtures/gcc/*.o are not the set build.sh makes: run fixtures/build.sh \
         and commit the result"
    );
    for name in &fresh {
        let want = fs::read(out.join("gcc").join(name)).unwrap();
        let have = fs::read(fixtures.join("gcc").join(name)).unwrap();
        assert!(
            want == have,
            "fixtures/gcc/{name} is stale (differs from a fresh bpf-gcc build of its source): \
             run fixtures/build.sh and commit the result"
        );
    }
}
