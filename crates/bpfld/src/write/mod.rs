//! Writers: model in, bytes out.

pub mod btf;
pub mod btf_ext;
pub mod insn;
