//! Instruction slots from section bytes. (Interim; full model pending.)

use crate::error::Result;
use crate::model::insn::{Insn, INSN_SIZE};
use crate::model::Endian;

pub fn decode(bytes: &[u8], endian: Endian) -> Result<Vec<Insn>> {
    if bytes.len() % INSN_SIZE != 0 {
        crate::bail!(
            "code size {:#x} is not a multiple of 8 (truncated instruction at offset {:#x})",
            bytes.len(),
            bytes.len() / INSN_SIZE * INSN_SIZE
        );
    }
    Ok(bytes
        .chunks_exact(INSN_SIZE)
        .map(|c| {
            let (dst, src) = match endian {
                Endian::Little => (c[1] & 0xf, c[1] >> 4),
                Endian::Big => (c[1] >> 4, c[1] & 0xf),
            };
            Insn {
                code: c[0],
                dst,
                src,
                off: endian.read_u16([c[2], c[3]]) as i16,
                imm: endian.read_u32([c[4], c[5], c[6], c[7]]) as i32,
            }
        })
        .collect())
}
