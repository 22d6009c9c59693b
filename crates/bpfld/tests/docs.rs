//! The library's documentation builds without a warning (broken or
//! ambiguous links, items without docs), as `cargo doc` users see it:
//! `RUSTDOCFLAGS="-D warnings" cargo doc -p bpfld -p bpfld-kernel --no-deps`,
//! and the public modules are the deliberate ones: the byte-level readers
//! and writers and the inliner are not among them.

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

    // The pages just written (no features: what a user of the crate sees).
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), Into::into);
    let page = |rel: &str| {
        let newest = std::fs::read_dir(&target)
            .expect("target dir")
            .flatten()
            .map(|e| e.path().join("doc"))
            .chain([target.join("doc")])
            .map(|d| d.join(rel))
            .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
            .max();
        let (_, path) = newest.unwrap_or_else(|| panic!("no doc/{rel} under {target:?}"));
        std::fs::read_to_string(path).unwrap()
    };
    assert_eq!(
        module_links(&page("bpfld/index.html")),
        ["compose", "dedup", "error", "image", "link", "model", "pcap", "show"],
        "the crate's public modules"
    );
    assert_eq!(
        module_links(&page("bpfld/link/index.html")),
        ["limits"],
        "bpfld::link's public modules"
    );
}

/// The `href`s of the module links on a rustdoc page (`<a class="mod"
/// href="NAME/index.html"`), in order.
fn module_links(page: &str) -> Vec<String> {
    page.split("class=\"mod\" href=\"")
        .skip(1)
        .filter_map(|rest| rest.split_once("/index.html\"").map(|(m, _)| m.to_string()))
        .collect()
}
