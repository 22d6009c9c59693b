//! Tests that check one layer alone: the byte-level readers and writers
//! against bpftool and llvm-objdump, hostile and round-tripped BTF, BTF
//! deduplication case by case, the inliner on any function, the read
//! workarounds, and the replay of the fuzz findings through the fuzz
//! targets' own code. They live inside the crate because those layers are
//! not public; they name items as a user would (`bpfld::...`, see
//! `extern crate self` in lib.rs).

#[allow(dead_code)] // each test file uses some of the helpers
mod btf_common;

mod btf_hostile;
mod btf_roundtrip;
mod btf_view;
mod dedup_cases;
// Its counting allocator implements `GlobalAlloc`, which is unsafe.
#[allow(unsafe_code)]
mod fuzz_regressions;
mod inline_any;
mod insn_parity;
mod workarounds;
