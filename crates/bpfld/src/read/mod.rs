//! Readers: bytes in, model out. Every reader checks counts, sizes and
//! offsets against the input before using them and never panics.

pub mod btf;
pub mod btf_ext;
pub mod btf_view;
pub mod elf;
pub mod elf_view;
pub mod insn;
