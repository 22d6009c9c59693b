//! Writers: model in, bytes out.

mod api;
pub mod btf;
pub mod btf_ext;
pub mod elf;
pub mod insn;
pub mod kernel_btf;
