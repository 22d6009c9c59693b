//! Instruction slots to section bytes: the exact inverse of
//! [`crate::read::insn::decode`].

use crate::model::insn::{Insn, INSN_SIZE};
use crate::model::Endian;

/// Encodes one slot. Register fields keep only their low nibble.
pub fn encode_slot(insn: &Insn, endian: Endian) -> [u8; INSN_SIZE] {
    let (dst, src) = (insn.dst & 0xf, insn.src & 0xf);
    let regs = match endian {
        Endian::Little => src << 4 | dst,
        Endian::Big => dst << 4 | src,
    };
    let off = endian.u16_bytes(insn.off as u16);
    let imm = endian.u32_bytes(insn.imm as u32);
    [
        insn.code, regs, off[0], off[1], imm[0], imm[1], imm[2], imm[3],
    ]
}

/// Encodes slots into section bytes.
pub fn encode(insns: &[Insn], endian: Endian) -> Vec<u8> {
    let mut out = Vec::with_capacity(insns.len() * INSN_SIZE);
    for insn in insns {
        out.extend_from_slice(&encode_slot(insn, endian));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_endian_puts_dst_high() {
        let i = Insn::new(0xbf, 3, 4, 8, 0x0102_0304);
        assert_eq!(
            encode_slot(&i, Endian::Big),
            [0xbf, 0x34, 0x00, 0x08, 0x01, 0x02, 0x03, 0x04]
        );
        assert_eq!(
            encode_slot(&i, Endian::Little),
            [0xbf, 0x43, 0x08, 0x00, 0x04, 0x03, 0x02, 0x01]
        );
    }
}
