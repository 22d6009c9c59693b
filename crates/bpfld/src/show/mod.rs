//! Listings: disassembly, BTF dumps, object summaries.

pub mod btf_dump;
pub mod disasm;
pub mod inspect;
pub mod maps;
pub mod value;
