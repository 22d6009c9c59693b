//! Link settings for the `bpfld` binary that keep the start-up of a short
//! command (a listing of a small object) as cheap as bpftool's.
//!
//! - `symbol-order.txt` (made by `scripts/symbol-order.sh`) lists the
//!   functions the listing commands run; the linker places them first and
//!   together, so the kernel maps a few 64 KiB windows of code around them
//!   instead of one window per scattered function. A name that no longer
//!   exists is skipped: a stale list costs memory, never correctness.
//! - Packed relative relocations (`DT_RELR`) shrink the table the dynamic
//!   loader walks at every start from about 100 KB to a few KB.
//!
//! Both are options of LLVM's lld, which rustc uses for this target by
//! default; with another linker configured nothing is added.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=symbol-order.txt");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let target = env::var("TARGET").unwrap_or_default();
    let other_linker = env::var_os("RUSTC_LINKER").is_some()
        || env::var("CARGO_ENCODED_RUSTFLAGS").is_ok_and(|f| f.contains("linker"));
    if target != "x86_64-unknown-linux-gnu" || other_linker {
        return;
    }
    let dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    for arg in [
        format!("-Wl,--symbol-ordering-file={dir}/symbol-order.txt"),
        "-Wl,--no-warn-symbol-ordering".to_string(),
        "-Wl,-z,pack-relative-relocs".to_string(),
    ] {
        println!("cargo:rustc-link-arg-bin=bpfld={arg}");
    }
}
