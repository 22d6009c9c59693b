//! Instruction slots from section bytes.
//!
//! Little-endian objects (`bpfel`) keep `dst` in the low nibble of the
//! register byte; big-endian ones (`bpfeb`) keep it in the high nibble, and
//! store `off` and `imm` big-endian. Every byte pattern decodes: only the
//! length is checked, so [`crate::write::insn::encode`] gives the same
//! bytes back.

use crate::error::Result;
use crate::model::insn::{Insn, INSN_SIZE};
use crate::model::Endian;

/// Decodes one 8-byte slot.
pub fn decode_slot(b: [u8; INSN_SIZE], endian: Endian) -> Insn {
    let (dst, src) = match endian {
        Endian::Little => (b[1] & 0xf, b[1] >> 4),
        Endian::Big => (b[1] >> 4, b[1] & 0xf),
    };
    Insn {
        code: b[0],
        dst,
        src,
        off: endian.read_u16([b[2], b[3]]) as i16,
        imm: endian.read_u32([b[4], b[5], b[6], b[7]]) as i32,
    }
}

/// Code of `size` bytes is whole instruction slots (what [`decode`]
/// requires; the listings' reader checks it without reading the code).
pub(crate) fn check_len(size: u64) -> Result<()> {
    let slot = INSN_SIZE as u64;
    if size % slot != 0 {
        let at = size / slot * slot;
        crate::bail!(
            "offset {at:#x}: truncated instruction ({} trailing bytes; code size {size:#x} is not a multiple of 8)",
            size - at
        );
    }
    Ok(())
}

/// Decodes a code section into its slots.
pub fn decode(bytes: &[u8], endian: Endian) -> Result<Vec<Insn>> {
    check_len(bytes.len() as u64)?;
    Ok(bytes
        .chunks_exact(INSN_SIZE)
        .map(|c| {
            let mut slot = [0u8; INSN_SIZE];
            slot.copy_from_slice(c);
            decode_slot(slot, endian)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_nibbles_follow_endianness() {
        // r1 = *(u32 *)(r2 + 4): code 0x61, dst 1, src 2.
        let le = [0x61, 0x21, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00];
        let be = [0x61, 0x12, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00];
        let want = Insn::new(0x61, 1, 2, 4, 0);
        assert_eq!(decode(&le, Endian::Little).unwrap(), [want]);
        assert_eq!(decode(&be, Endian::Big).unwrap(), [want]);
        let imm = [0xb7, 0x01, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff];
        assert_eq!(
            decode(&imm, Endian::Little).unwrap(),
            [Insn::new(0xb7, 1, 0, -1, -2)]
        );
    }

    #[test]
    fn truncated_input_is_an_error_naming_the_offset() {
        for len in [1usize, 7, 9, 15, 17] {
            let bytes = vec![0x95u8; len];
            let err = decode(&bytes, Endian::Little).unwrap_err();
            let at = len / 8 * 8;
            assert!(
                err.to_string().contains(&format!("offset {at:#x}")),
                "{len}: {err}"
            );
        }
        assert_eq!(decode(&[], Endian::Big).unwrap(), []);
    }
}
