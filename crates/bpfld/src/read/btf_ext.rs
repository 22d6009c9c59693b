//! `.BTF.ext` reader: func_info, line_info and CO-RE relocation records,
//! either byte order, with or without the CO-RE part of the header.
//!
//! Section names, type ids and string offsets are checked against the BTF;
//! byte offsets become instruction slots (they must be multiples of 8).

use crate::bail;
use crate::error::{Error, Result};
use crate::model::btf::Btf;
use crate::model::btf::BTF_MAGIC;
use crate::model::btf_ext::{BtfExt, CoreRelo, ExtLayout, ExtSection, FuncInfo, LineInfo};
use crate::model::insn::InsnIndex;
use crate::model::Endian;

/// Known record sizes.
pub const FUNC_INFO_REC_SIZE: u32 = 8;
pub const LINE_INFO_REC_SIZE: u32 = 16;
pub const CORE_RELO_REC_SIZE: u32 = 16;
/// Largest `enum bpf_core_relo_kind` (BPF_CORE_TYPE_MATCHES).
pub const MAX_CORE_RELO_KIND: u32 = 12;

pub fn parse(bytes: &[u8], btf: &Btf) -> Result<BtfExt> {
    let e = match bytes {
        [a, b, ..] if u16::from_le_bytes([*a, *b]) == BTF_MAGIC => Endian::Little,
        [a, b, ..] if u16::from_be_bytes([*a, *b]) == BTF_MAGIC => Endian::Big,
        [a, b, ..] => bail!("bad BTF.ext magic 0x{:02x}{:02x}", a, b),
        _ => bail!("BTF.ext of {} bytes is too short for a header", bytes.len()),
    };
    if e != btf.endian {
        bail!(
            "BTF.ext is {:?}-endian but BTF is {:?}-endian",
            e,
            btf.endian
        );
    }
    if bytes.len() < 24 {
        bail!(
            "BTF.ext of {} bytes is shorter than its 24-byte header",
            bytes.len()
        );
    }
    let rd = |o: usize| e.read_u32([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
    let hdr_len = rd(4);
    if hdr_len < 24 || hdr_len as usize > bytes.len() {
        bail!(
            "BTF.ext header length {hdr_len} is outside 24..={} (the input size)",
            bytes.len()
        );
    }
    let has_core = hdr_len >= 32;
    let data = &bytes[hdr_len as usize..];
    let (fo, fl, lo, ll) = (rd(8), rd(12), rd(16), rd(20));
    let (co, cl) = if has_core { (rd(24), rd(28)) } else { (0, 0) };
    let sub = |what: &str, off: u32, len: u32| -> Result<&[u8]> {
        let end = off as u64 + len as u64;
        if end > data.len() as u64 {
            bail!(
                "BTF.ext {what} (offset {off}, length {len}) runs past the end of the data ({} bytes after the header)",
                data.len()
            );
        }
        Ok(&data[off as usize..end as usize])
    };
    let (func_info_rec_size, func_info) = parse_sub(
        sub("func_info", fo, fl)?,
        e,
        btf,
        "func_info",
        FUNC_INFO_REC_SIZE,
        |w, insn| {
            let type_id = w[1];
            if type_id as usize >= btf.type_count() {
                bail!(
                    "refers to BTF type {type_id} beyond the last type {}",
                    btf.last_id().0
                );
            }
            Ok(FuncInfo { insn, type_id })
        },
    )?;
    let (line_info_rec_size, line_info) = parse_sub(
        sub("line_info", lo, ll)?,
        e,
        btf,
        "line_info",
        LINE_INFO_REC_SIZE,
        |w, insn| {
            check_str(btf, "file name", w[1])?;
            check_str(btf, "line", w[2])?;
            Ok(LineInfo {
                insn,
                file_name_off: w[1],
                line_off: w[2],
                line_col: w[3],
            })
        },
    )?;
    let (core_relo_rec_size, core_relos) = parse_sub(
        sub("CO-RE relocations", co, cl)?,
        e,
        btf,
        "CO-RE relocation",
        CORE_RELO_REC_SIZE,
        |w, insn| {
            let (type_id, access_str_off, kind) = (w[1], w[2], w[3]);
            if type_id as usize >= btf.type_count() {
                bail!(
                    "refers to BTF type {type_id} beyond the last type {}",
                    btf.last_id().0
                );
            }
            if kind > MAX_CORE_RELO_KIND {
                bail!("unknown CO-RE relocation kind {kind}");
            }
            let access = btf
                .name(access_str_off)
                .map_err(|err| Error::new(format!("access string: {}", err.message())))?;
            if !is_access_string(access) {
                // Quote a hostile string only in part: the error stays one line.
                let shown: String = access.chars().take(64).collect();
                let more = if shown.len() < access.len() {
                    "..."
                } else {
                    ""
                };
                bail!("access string {shown:?}{more} is not of the form \"0:1:2\"");
            }
            Ok(CoreRelo {
                insn,
                type_id,
                access_str_off,
                kind,
            })
        },
    )?;
    let mut ext = BtfExt {
        endian: e,
        version: bytes[2],
        flags: bytes[3],
        hdr_len,
        func_info_rec_size,
        line_info_rec_size,
        core_relo_rec_size,
        func_info,
        line_info,
        core_relos,
        raw_layout: None,
    };
    // Keep the original bytes when re-encoding would not reproduce them
    // (unusual offsets, gaps, longer headers or records).
    let layout = ExtLayout {
        hdr: bytes[..hdr_len as usize].to_vec(),
        data: data.to_vec(),
        func_info: (fo, fl),
        line_info: (lo, ll),
        core_relos: (co, cl),
    };
    if ext.standard_bytes() != bytes {
        ext.raw_layout = Some(layout);
    }
    Ok(ext)
}

fn check_str(btf: &Btf, what: &str, off: u32) -> Result<()> {
    if off as usize >= btf.strings.len() {
        bail!(
            "{what} offset 0x{off:x} beyond the BTF string section of {} bytes",
            btf.strings.len()
        );
    }
    Ok(())
}

/// `N(:N)*` with decimal N, as clang emits. At most libbpf's 64 (int)
/// components (BPF_CORE_SPEC_MAX_LEN): every record naming one long string
/// would otherwise rescan it (time quadratic in the input).
fn is_access_string(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64 * 11
        && s.split(':')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

type SubResult<T> = (u32, Vec<ExtSection<T>>);

/// One sub-section: `rec_size`, then `{sec_name_off, num_info, records}`
/// sets. An empty sub-section has no `rec_size` (reported as 0).
fn parse_sub<T>(
    b: &[u8],
    e: Endian,
    btf: &Btf,
    what: &str,
    min_rec: u32,
    mut rec: impl FnMut(&[u32; 4], InsnIndex) -> Result<T>,
) -> Result<SubResult<T>> {
    if b.is_empty() {
        return Ok((0, Vec::new()));
    }
    let rd = |o: usize| -> Option<u32> {
        let s = b.get(o..o.checked_add(4)?)?;
        Some(e.read_u32([s[0], s[1], s[2], s[3]]))
    };
    let Some(rec_size) = rd(0) else {
        bail!("{what}: {} bytes, too short for the record size", b.len());
    };
    if rec_size < min_rec || rec_size % 4 != 0 || rec_size as usize > b.len() {
        bail!("{what}: record size {rec_size} is invalid (at least {min_rec}, a multiple of 4, within the {} bytes)", b.len());
    }
    let mut sets = Vec::new();
    let mut pos = 4usize;
    while pos < b.len() {
        let (Some(name_off), Some(num)) = (rd(pos), rd(pos + 4)) else {
            bail!("{what}: truncated set header at offset {pos}");
        };
        let sec_name = btf
            .name(name_off)
            .map_err(|err| Error::new(format!("{what}: section name: {}", err.message())))?;
        pos += 8;
        let need = num as u64 * rec_size as u64;
        if need > (b.len() - pos) as u64 {
            bail!("{what} for section '{sec_name}': {num} records of {rec_size} bytes run past the end ({} bytes left)", b.len() - pos);
        }
        if num == 0 {
            bail!("{what} for section '{sec_name}': empty record set");
        }
        let mut records = Vec::with_capacity(num as usize);
        for i in 0..num as usize {
            let at = pos + i * rec_size as usize;
            let mut w = [0u32; 4];
            for (k, slot) in w.iter_mut().enumerate().take(min_rec as usize / 4) {
                *slot = rd(at + 4 * k).unwrap_or(0);
            }
            if w[0] % 8 != 0 {
                bail!(
                    "{what} {i} for section '{sec_name}': instruction offset {} is not a multiple of 8",
                    w[0]
                );
            }
            let r = rec(&w, InsnIndex(w[0] / 8)).map_err(|err| {
                Error::new(format!(
                    "{what} {i} for section '{sec_name}': {}",
                    err.message()
                ))
            })?;
            records.push(r);
        }
        pos += need as usize;
        sets.push(ExtSection {
            sec_name_off: name_off,
            sec_name: sec_name.to_string(),
            records,
        });
    }
    Ok((rec_size, sets))
}
