//! `.BTF.ext` writer. Sub-sections are laid out func_info, line_info,
//! CO-RE relocations right after the header, as LLVM does; a model read from
//! bytes that used another layout keeps them (see `BtfExt::raw_layout`).

use crate::bail;
use crate::error::Result;
use crate::model::btf::{Btf, BTF_MAGIC};
use crate::model::btf_ext::{BtfExt, ExtSection};
use crate::model::object::{Object, Section};
use crate::model::Endian;

/// Encodes the model: into its original placement when it has one that
/// still fits (see `BtfExt::raw_layout`), else in the standard layout
/// ([`BtfExt::standard_bytes`]).
pub fn to_bytes(ext: &BtfExt) -> Vec<u8> {
    into_raw_layout(ext).unwrap_or_else(|| ext.standard_bytes())
}

/// Re-encodes the records into the original placement, leaving bytes the
/// model does not know (record tails, gaps) as found. `None` when there is
/// no raw layout or a sub-section changed size.
fn into_raw_layout(ext: &BtfExt) -> Option<Vec<u8>> {
    let l = ext.raw_layout.as_ref()?;
    let e = ext.endian;
    let mut data = l.data.clone();
    fill(
        &mut data,
        e,
        l.func_info,
        ext.func_info_rec_size,
        &ext.func_info,
        |r| vec![r.insn.0.wrapping_mul(8), r.type_id],
    )?;
    fill(
        &mut data,
        e,
        l.line_info,
        ext.line_info_rec_size,
        &ext.line_info,
        |r| {
            vec![
                r.insn.0.wrapping_mul(8),
                r.file_name_off,
                r.line_off,
                r.line_col,
            ]
        },
    )?;
    fill(
        &mut data,
        e,
        l.core_relos,
        ext.core_relo_rec_size,
        &ext.core_relos,
        |r| {
            vec![
                r.insn.0.wrapping_mul(8),
                r.type_id,
                r.access_str_off,
                r.kind,
            ]
        },
    )?;
    let mut out = l.hdr.clone();
    out.extend_from_slice(&data);
    Some(out)
}

fn fill<T>(
    data: &mut [u8],
    e: Endian,
    (off, len): (u32, u32),
    rec_size: u32,
    sets: &[ExtSection<T>],
    words: impl Fn(&T) -> Vec<u32>,
) -> Option<()> {
    let body: usize = sets
        .iter()
        .map(|s| 8 + s.records.len() * rec_size as usize)
        .sum();
    let expected = if sets.is_empty() && rec_size == 0 {
        0
    } else {
        4 + body
    };
    if expected != len as usize {
        return None;
    }
    let dst = data.get_mut(off as usize..(off as usize).checked_add(len as usize)?)?;
    if len == 0 {
        return Some(());
    }
    let mut put = |at: usize, v: u32| -> Option<()> {
        dst.get_mut(at..at + 4)?.copy_from_slice(&e.u32_bytes(v));
        Some(())
    };
    put(0, rec_size)?;
    let mut pos = 4;
    for s in sets {
        put(pos, s.sec_name_off)?;
        put(pos + 4, s.records.len() as u32)?;
        pos += 8;
        for r in &s.records {
            for (k, v) in words(r).into_iter().enumerate() {
                put(pos + 4 * k, v)?;
            }
            pos += rec_size as usize;
        }
    }
    Some(())
}

/// `.BTF.ext` for an object from the records attached to its program
/// sections. When the records are those of the object's original
/// `.BTF.ext`, its bytes are returned unchanged; otherwise sets are ordered
/// by section-name offset (as LLVM does) with standard record sizes.
pub fn from_sections(obj: &Object, btf: &Btf) -> Result<Vec<u8>> {
    let progs: Vec<&Section> = obj.sections.iter().filter(|s| s.is_program()).collect();
    if let Some(raw) = &obj.btf_ext_raw {
        if let Ok(ext) = crate::read::btf_ext::parse(raw, btf) {
            let same = progs.iter().all(|s| {
                collect(&ext.func_info, &s.name) == s.func_info
                    && collect(&ext.line_info, &s.name) == s.line_info
                    && collect(&ext.core_relos, &s.name) == s.core_relos
            }) && ext
                .func_info
                .iter()
                .map(|x| &x.sec_name)
                .chain(ext.line_info.iter().map(|x| &x.sec_name))
                .chain(ext.core_relos.iter().map(|x| &x.sec_name))
                .all(|n| progs.iter().any(|s| &s.name == n));
            if same {
                return Ok(raw.clone());
            }
        }
    }
    let mut named = Vec::with_capacity(progs.len());
    for s in &progs {
        let Some(off) = btf.find_string(&s.name) else {
            if s.func_info.is_empty() && s.line_info.is_empty() && s.core_relos.is_empty() {
                continue;
            }
            bail!(
                "section name '{}' is not in the BTF string table; cannot write its .BTF.ext records",
                s.name
            );
        };
        named.push((off, *s));
    }
    named.sort_by_key(|(off, _)| *off);
    fn sets<T: Clone>(
        named: &[(u32, &Section)],
        pick: impl Fn(&Section) -> &Vec<T>,
    ) -> Vec<ExtSection<T>> {
        named
            .iter()
            .filter(|(_, s)| !pick(s).is_empty())
            .map(|(off, s)| ExtSection {
                sec_name_off: *off,
                sec_name: s.name.clone(),
                records: pick(s).clone(),
            })
            .collect()
    }
    let ext = BtfExt {
        endian: obj.endian,
        version: 1,
        flags: 0,
        hdr_len: 32,
        func_info_rec_size: 8,
        line_info_rec_size: 16,
        core_relo_rec_size: 0,
        func_info: sets(&named, |s| &s.func_info),
        line_info: sets(&named, |s| &s.line_info),
        core_relos: sets(&named, |s| &s.core_relos),
        raw_layout: None,
    };
    Ok(to_bytes(&ext))
}

/// [`from_sections`] written in pieces to `out`, without a copy of the
/// records or of the encoded section: the bytes are the same.
pub fn write_from_sections(
    obj: &Object,
    btf: &Btf,
    out: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    if obj.btf_ext_raw.is_some() {
        // The original bytes may be the answer.
        return out(&from_sections(obj, btf)?);
    }
    let mut named: Vec<(u32, &Section)> = Vec::new();
    for s in obj.sections.iter().filter(|s| s.is_program()) {
        let Some(off) = btf.find_string(&s.name) else {
            if s.func_info.is_empty() && s.line_info.is_empty() && s.core_relos.is_empty() {
                continue;
            }
            bail!(
                "section name '{}' is not in the BTF string table; cannot write its .BTF.ext records",
                s.name
            );
        };
        named.push((off, s));
    }
    named.sort_by_key(|(off, _)| *off);
    let e = obj.endian;
    // Sub-section lengths: a record size, then per section its name, count
    // and records; nothing at all without records.
    let len = |count: fn(&Section) -> usize, rec: u32| -> u32 {
        let sets = named.iter().filter(|(_, s)| count(s) > 0);
        let n: usize = sets.clone().map(|(_, s)| 8 + count(s) * rec as usize).sum();
        if sets.count() == 0 {
            0
        } else {
            (4 + n) as u32
        }
    };
    let fl = len(|s| s.func_info.len(), 8);
    let ll = len(|s| s.line_info.len(), 16);
    let cl = len(|s| s.core_relos.len(), 16);
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let put = |buf: &mut Vec<u8>, v: u32| buf.extend_from_slice(&e.u32_bytes(v));
    buf.extend_from_slice(&e.u16_bytes(BTF_MAGIC));
    buf.push(1); // version
    buf.push(0); // flags
    for v in [32, 0, fl, fl, ll, fl + ll, cl] {
        put(&mut buf, v);
    }
    let mut flush = |buf: &mut Vec<u8>, force: bool| -> Result<()> {
        if force || buf.len() >= 8192 - 64 {
            out(buf)?;
            buf.clear();
        }
        Ok(())
    };
    // One sub-section: its record size, then per section with records
    // its name, count and the records' words (the instruction in bytes
    // first), visited in place.
    type Visit<'a> = &'a dyn Fn(&Section, &mut dyn FnMut([u32; 4]) -> Result<()>) -> Result<()>;
    let mut subsection = |buf: &mut Vec<u8>,
                          rec_size: u32,
                          count: fn(&Section) -> usize,
                          visit: Visit,
                          words: usize|
     -> Result<()> {
        put(buf, rec_size);
        for (off, s) in named.iter().filter(|(_, s)| count(s) > 0) {
            put(buf, *off);
            put(buf, count(s) as u32);
            visit(s, &mut |r| {
                for v in &r[..words] {
                    put(buf, *v);
                }
                flush(buf, false)
            })?;
        }
        Ok(())
    };
    if fl > 0 {
        subsection(
            &mut buf,
            8,
            |s| s.func_info.len(),
            &|s, f| {
                s.func_info
                    .iter()
                    .try_for_each(|r| f([r.insn.0.wrapping_mul(8), r.type_id, 0, 0]))
            },
            2,
        )?;
    }
    if ll > 0 {
        subsection(
            &mut buf,
            16,
            |s| s.line_info.len(),
            &|s, f| {
                s.line_info.iter().try_for_each(|r| {
                    f([
                        r.insn.0.wrapping_mul(8),
                        r.file_name_off,
                        r.line_off,
                        r.line_col,
                    ])
                })
            },
            4,
        )?;
    }
    if cl > 0 {
        subsection(
            &mut buf,
            16,
            |s| s.core_relos.len(),
            &|s, f| {
                s.core_relos.iter().try_for_each(|r| {
                    f([
                        r.insn.0.wrapping_mul(8),
                        r.type_id,
                        r.access_str_off,
                        r.kind,
                    ])
                })
            },
            4,
        )?;
    }
    flush(&mut buf, true)
}

/// All records of the sets for section `name`, in order.
fn collect<T: Clone>(sets: &[ExtSection<T>], name: &str) -> Vec<T> {
    sets.iter()
        .filter(|s| s.sec_name == name)
        .flat_map(|s| s.records.iter().cloned())
        .collect()
}
