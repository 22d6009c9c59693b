//! Writing an object in the other byte order, for `--both-endian`.
//!
//! Instructions, relocations, symbols, BTF and BTF.ext are re-encoded by
//! the writer from the model. Section contents are raw bytes, so global
//! data is swapped here variable by variable, by the C type its BTF gives
//! (integers, enums, floats, pointers, arrays and structs of them); legacy
//! map definitions are all 32-bit fields. What cannot be swapped for sure
//! (non-zero bitfields or unions, data without BTF, bytes outside any
//! variable) is refused rather than written wrong.

use crate::error::{Error, Result};
use crate::model::btf::{Btf, TypeData, TypeId};
use std::collections::HashMap;

use crate::model::object::{Section, SectionKind, SymbolPlace};
use crate::model::Endian;

/// The object in the other byte order, and that order.
pub fn swapped(bytes: &[u8]) -> Result<(Vec<u8>, Endian)> {
    let mut obj = crate::read::elf::parse(bytes)?;
    let other = match obj.endian {
        Endian::Little => Endian::Big,
        Endian::Big => Endian::Little,
    };
    // Where each variable lies: its symbol's value (the BTF DATASEC
    // offsets of an object file may still be zero; loaders fill them in
    // from the symbols).
    let mut places: HashMap<(u32, String), u64> = HashMap::new();
    for sym in &obj.symbols {
        if let SymbolPlace::Section(id) = sym.place {
            places.insert((id.0, sym.name.clone()), sym.value);
        }
    }
    for s in &mut obj.sections {
        let id = s.id.0;
        let at = |name: &str| places.get(&(id, name.to_string())).copied();
        swap_section(obj.btf.as_ref(), s, &at).map_err(|e| e.in_section(&s.name))?;
    }
    obj.endian = other;
    if let Some(btf) = &mut obj.btf {
        btf.endian = other;
    }
    Ok((crate::write::elf::to_bytes(&obj)?, other))
}

fn all_zero(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}

/// Where a variable of the section starts, by name.
type Places<'a> = dyn Fn(&str) -> Option<u64> + 'a;

fn swap_section(btf: Option<&Btf>, s: &mut Section, at: &Places<'_>) -> Result<()> {
    match s.kind {
        SectionKind::Null
        | SectionKind::Program
        | SectionKind::Bss
        | SectionKind::License
        | SectionKind::Btf
        | SectionKind::BtfExt
        | SectionKind::SymTab
        | SectionKind::StrTab
        | SectionKind::Rel => Ok(()),
        SectionKind::Version => {
            s.data.reverse();
            Ok(())
        }
        // `struct bpf_map_def` and its extensions: unsigned ints only.
        SectionKind::LegacyMaps if s.data.len() % 4 == 0 => {
            s.data.chunks_mut(4).for_each(<[u8]>::reverse);
            Ok(())
        }
        // String literals are bytes; the address-significance table is
        // ULEB128 symbol indices.
        _ if s.name.starts_with(".rodata.str") || s.name == ".llvm_addrsig" => Ok(()),
        _ if all_zero(&s.data) => Ok(()),
        SectionKind::Data | SectionKind::Rodata => {
            let btf = btf.ok_or_else(|| refuse("initialised data and no BTF to type it"))?;
            swap_datasec(btf, &s.name, &mut s.data, at)
        }
        _ => Err(refuse("contents of no known type")),
    }
}

fn refuse(why: &str) -> Error {
    Error::new(format!(
        "cannot write it in the other byte order ({why}): build that object with \
         clang -target bpfeb/bpfel and pass both"
    ))
}

fn swap_datasec(btf: &Btf, name: &str, data: &mut [u8], at: &Places<'_>) -> Result<()> {
    let sec = btf
        .find_datasec(name)
        .ok_or_else(|| refuse("no BTF DATASEC describes its data"))?;
    let mut covered = vec![false; data.len()];
    for v in btf.datasec_vars(sec)? {
        let start = at(v.name).unwrap_or(u64::from(v.offset));
        let start = usize::try_from(start).unwrap_or(usize::MAX);
        let size = usize::try_from(btf.size_of(v.type_id)?).unwrap_or(usize::MAX);
        let end = start
            .checked_add(size)
            .filter(|&e| e <= data.len())
            .ok_or_else(|| Error::new(format!("variable '{}' lies outside the section", v.name)))?;
        swap_value(btf, v.type_id, &mut data[start..end], 0)
            .map_err(|e| e.context(format!("variable '{}'", v.name)))?;
        covered[start..end].iter_mut().for_each(|c| *c = true);
    }
    if data.iter().zip(&covered).any(|(&b, &c)| b != 0 && !c) {
        return Err(refuse("non-zero bytes outside every variable"));
    }
    Ok(())
}

/// Swaps, in place, the bytes of a value of type `id`.
fn swap_value(btf: &Btf, id: TypeId, buf: &mut [u8], depth: usize) -> Result<()> {
    if depth > 64 {
        return Err(refuse("types nested too deep"));
    }
    let id = btf.resolve(id)?;
    let scalar = |buf: &mut [u8], size: usize| -> Result<()> {
        let len = buf.len();
        let b = buf
            .get_mut(..size)
            .ok_or_else(|| Error::new(format!("a {size}-byte value in {len} bytes")))?;
        b.reverse();
        Ok(())
    };
    match &btf.ty(id)?.data {
        TypeData::Int { size, .. }
        | TypeData::Enum { size, .. }
        | TypeData::Enum64 { size, .. }
        | TypeData::Float { size } => scalar(buf, *size as usize),
        TypeData::Ptr(_) => scalar(buf, 8),
        TypeData::Array { elem, nelems, .. } => {
            let es = usize::try_from(btf.size_of(*elem)?).unwrap_or(usize::MAX);
            if es == 0 {
                return Ok(());
            }
            let n = *nelems as usize;
            if es.checked_mul(n).is_none_or(|total| total > buf.len()) {
                return Err(Error::new("an array larger than its variable"));
            }
            if es == 1 {
                return Ok(());
            }
            for chunk in buf[..es * n].chunks_mut(es) {
                swap_value(btf, *elem, chunk, depth + 1)?;
            }
            Ok(())
        }
        TypeData::Struct { .. } => {
            for m in btf.members(id)? {
                let start = (m.bit_offset / 8) as usize;
                let size = usize::try_from(btf.size_of(m.type_id)?).unwrap_or(usize::MAX);
                let end = start
                    .checked_add(size)
                    .filter(|&e| e <= buf.len())
                    .ok_or_else(|| {
                        Error::new(format!("member '{}' lies outside its struct", m.name))
                    })?;
                if m.bitfield_size != 0 || m.bit_offset % 8 != 0 {
                    if all_zero(&buf[start..end]) {
                        continue;
                    }
                    return Err(refuse(&format!("bitfield '{}' is not zero", m.name)));
                }
                swap_value(btf, m.type_id, &mut buf[start..end], depth + 1)
                    .map_err(|e| e.context(format!("member '{}'", m.name)))?;
            }
            Ok(())
        }
        _ if all_zero(buf) => Ok(()),
        _ => Err(refuse(&format!(
            "a non-zero value of type {}",
            btf.describe(id)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every fixture that can be swapped comes back the same when swapped
    /// twice: the same summary, code and section contents.
    #[test]
    fn swapping_twice_gives_the_object_back() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
        let mut swapped_any_data = false;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "o") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let Ok((once, order)) = swapped(&bytes) else {
                continue;
            };
            let (twice, back) = swapped(&once).unwrap();
            let (a, b) = (
                crate::read::elf::parse(&bytes).unwrap(),
                crate::read::elf::parse(&twice).unwrap(),
            );
            assert_ne!(order, back);
            assert_eq!(a.endian, b.endian);
            let summary =
                |o| serde_json::to_string(&crate::show::inspect::summarize(o).unwrap()).unwrap();
            assert_eq!(summary(&a), summary(&b), "{}", path.display());
            assert_eq!(
                crate::show::disasm::disasm(&a),
                crate::show::disasm::disasm(&b),
                "{}",
                path.display()
            );
            for x in &a.sections {
                if matches!(
                    x.kind,
                    SectionKind::Data | SectionKind::Rodata | SectionKind::LegacyMaps
                ) {
                    let y = b.sections.iter().find(|y| y.name == x.name).unwrap();
                    assert_eq!(x.data, y.data, "{} {}", path.display(), x.name);
                    swapped_any_data |= !all_zero(&x.data);
                }
            }
        }
        assert!(swapped_any_data, "some fixture has initialised data");
    }
}
