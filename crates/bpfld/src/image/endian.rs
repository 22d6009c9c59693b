//! Writing an object in the other byte order, for `--both-endian`.
//!
//! Instructions, relocations, symbols, BTF and BTF.ext are re-encoded by
//! the writer from the model; section contents that are raw bytes are
//! not, so an object whose data holds non-zero values (whose meaning
//! depends on their C types) is refused rather than written wrong.

use crate::error::{Error, Result};
use crate::model::object::SectionKind;
use crate::model::Endian;

/// The object in the other byte order, and that order.
pub fn swapped(bytes: &[u8]) -> Result<(Vec<u8>, Endian)> {
    let mut obj = crate::read::elf::parse(bytes)?;
    let other = match obj.endian {
        Endian::Little => Endian::Big,
        Endian::Big => Endian::Little,
    };
    for s in &mut obj.sections {
        match s.kind {
            SectionKind::Null
            | SectionKind::Program
            | SectionKind::Bss
            | SectionKind::License
            | SectionKind::Btf
            | SectionKind::BtfExt
            | SectionKind::SymTab
            | SectionKind::StrTab
            | SectionKind::Rel => {}
            SectionKind::Version => s.data.reverse(),
            // String literals are bytes; the address-significance table
            // is ULEB128 symbol indices.
            _ if s.name.starts_with(".rodata.str") || s.name == ".llvm_addrsig" => {}
            _ if s.data.iter().all(|&b| b == 0) => {}
            _ => {
                return Err(Error::new(format!(
                    "section '{}' holds initialised data; writing it in the other byte order \
                     needs its C types, which --both-endian does not apply: build the \
                     {}-endian object with clang (-target bpfeb/bpfel) and pass both",
                    s.name,
                    super::order(other)
                )))
            }
        }
    }
    obj.endian = other;
    if let Some(btf) = &mut obj.btf {
        btf.endian = other;
    }
    Ok((crate::write::elf::to_bytes(&obj)?, other))
}
