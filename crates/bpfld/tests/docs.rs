//! The library's documentation builds without a warning (broken or
//! ambiguous links, items without docs), as `cargo doc` users see it:
//! `RUSTDOCFLAGS="-D warnings" cargo doc -p bpfld -p bpfld-kernel --no-deps`.

use std::process::Command;

#[test]
fn docs_build_without_warnings() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // The cargo running this test, else the one on PATH.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "doc",
            "-p",
            "bpfld",
            "-p",
            "bpfld-kernel",
            "--no-deps",
            "--quiet",
        ])
        .env("RUSTDOCFLAGS", "-D warnings")
        .current_dir(&root)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo doc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
