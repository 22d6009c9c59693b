//! Code already final waits in a temporary file while the link goes on,
//! so the largest part of the output is not in memory while the BTF is
//! merged; it comes back at the end, or goes from the file straight to
//! the output file.

use crate::error::{Error, Result};
use crate::model::insn::Insn;
use crate::model::object::Section;

use super::sections::OutSec;

/// Code already final (an input's instructions, once the input is in)
/// waits in a temporary file until the link is done, so that the largest
/// part of the output is not in memory while the BTF is merged.
pub(super) struct Spill {
    file: std::fs::File,
    /// (output section, instructions, file offset), in file order.
    chunks: Vec<(usize, usize, u64)>,
    /// Bytes written.
    len: u64,
}

impl crate::write::elf::SpilledCode for Spill {
    fn write_code(
        &mut self,
        index: usize,
        endian: crate::model::Endian,
        out: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        use std::io::{Read, Seek};
        // Object section `index` is output section `index - 1`.
        let Some(o) = index.checked_sub(1) else {
            return Ok(());
        };
        let mut buf = Vec::new();
        let mut encoded = Vec::new();
        for &(co, n, off) in &self.chunks {
            if co != o {
                continue;
            }
            self.file
                .seek(std::io::SeekFrom::Start(off))
                .map_err(Spill::io)?;
            buf.resize(n * SPILLED_INSN, 0);
            self.file.read_exact(&mut buf).map_err(Spill::io)?;
            encoded.clear();
            for b in buf.chunks_exact(SPILLED_INSN) {
                encoded
                    .extend_from_slice(&crate::write::insn::encode_slot(&Spill::decode(b), endian));
            }
            out(&encoded)?;
        }
        Ok(())
    }
}

/// Instructions kept in memory per output section before they are spilled.
pub(super) const SPILL_AT: usize = 4096;

/// Bytes of one spilled instruction: code, dst, src, off, imm.
pub(super) const SPILLED_INSN: usize = 9;

impl Spill {
    pub(super) fn new() -> Result<Spill> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let err = |e: std::io::Error| {
            Error::new(format!(
                "cannot use a temporary file for the output's code: {e}"
            ))
        };
        let path = std::env::temp_dir().join(format!(
            ".bpfld-link-{}-{}.code",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(err)?;
        // Unlinked at once: the file goes away with the handle, whatever
        // happens to the link.
        std::fs::remove_file(&path).map_err(err)?;
        Ok(Spill {
            file,
            chunks: Vec::new(),
            len: 0,
        })
    }

    fn decode(b: &[u8]) -> Insn {
        let at = |k: usize| b.get(k).copied().unwrap_or(0);
        Insn {
            code: at(0),
            dst: at(1),
            src: at(2),
            off: i16::from_le_bytes([at(3), at(4)]),
            imm: i32::from_le_bytes([at(5), at(6), at(7), at(8)]),
        }
    }

    fn io(e: std::io::Error) -> Error {
        Error::new(format!("temporary file of the output's code: {e}"))
    }

    /// Moves the in-memory instructions of the code sections that hold
    /// enough of them to the file.
    pub(super) fn spill(&mut self, outs: &mut [OutSec], all: bool) -> Result<()> {
        use std::io::Write;
        for (o, out) in outs.iter_mut().enumerate() {
            let n = out.sec.insns.len();
            if n == 0 || (!all && n < SPILL_AT) {
                continue;
            }
            let mut buf = Vec::with_capacity(n * SPILLED_INSN);
            for insn in &out.sec.insns {
                buf.push(insn.code);
                buf.push(insn.dst);
                buf.push(insn.src);
                buf.extend_from_slice(&insn.off.to_le_bytes());
                buf.extend_from_slice(&insn.imm.to_le_bytes());
            }
            self.file.write_all(&buf).map_err(Spill::io)?;
            self.chunks.push((o, n, self.len));
            self.len += buf.len() as u64;
            out.spilled += n;
            out.sec.insns.clear();
        }
        Ok(())
    }

    /// Puts every spilled instruction back in front of the ones in memory;
    /// `sections[o]` is output section `o`.
    pub(super) fn restore(mut self, sections: &mut [&mut Section]) -> Result<()> {
        use std::io::{Read, Seek};
        let mut totals = vec![0usize; sections.len()];
        for &(o, n, _) in &self.chunks {
            if let Some(t) = totals.get_mut(o) {
                *t += n;
            }
        }
        let mut tails = Vec::with_capacity(sections.len());
        for (s, &t) in sections.iter_mut().zip(&totals) {
            let tail = std::mem::take(&mut s.insns);
            s.insns = Vec::with_capacity(t + tail.len());
            tails.push(tail);
        }
        self.file
            .seek(std::io::SeekFrom::Start(0))
            .map_err(Spill::io)?;
        let mut buf = Vec::new();
        for &(o, n, _) in &self.chunks {
            buf.resize(n * SPILLED_INSN, 0);
            self.file.read_exact(&mut buf).map_err(Spill::io)?;
            let Some(s) = sections.get_mut(o) else {
                crate::bail!("spilled code of output section {o}, which does not exist");
            };
            s.insns
                .extend(buf.chunks_exact(SPILLED_INSN).map(Spill::decode));
        }
        for (s, tail) in sections.iter_mut().zip(tails) {
            s.insns.extend(tail);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::object::{SectionId, SectionKind};

    #[test]
    fn spilled_code_is_written_back_in_order() {
        // More code than one spill chunk holds, in two code sections, read
        // back into memory and streamed to a file: the same instructions.
        let mut spill = Spill::new().unwrap();
        let insn = |k: usize| Insn {
            code: (k % 251) as u8,
            dst: (k % 11) as u8,
            src: (k % 7) as u8,
            off: k as i16,
            imm: -(k as i32),
        };
        let mut outs: Vec<OutSec> = (0..2)
            .map(|n| OutSec {
                sec: Section::empty(SectionId(n), "x", SectionKind::Program, 1),
                size: 0,
                spilled: 0,
            })
            .collect();
        let total = SPILL_AT * 3 + 5;
        for k in 0..total {
            outs[k % 2].sec.insns.push(insn(k));
            if k % 1000 == 999 {
                spill.spill(&mut outs, false).unwrap();
            }
        }
        assert!(outs.iter().all(|o| o.spilled > 0), "nothing was spilled");
        let want: Vec<Vec<Insn>> = (0..2)
            .map(|n| (0..total).filter(|k| k % 2 == n).map(insn).collect())
            .collect();
        let mut streamed = Vec::new();
        crate::write::elf::SpilledCode::write_code(
            &mut spill,
            1,
            crate::model::Endian::Little,
            &mut |b| {
                streamed.extend_from_slice(b);
                Ok(())
            },
        )
        .unwrap();
        let head = &want[0][..outs[0].spilled];
        assert_eq!(
            streamed,
            crate::write::insn::encode(head, crate::model::Endian::Little)
        );
        let mut secs: Vec<Section> = outs.into_iter().map(|o| o.sec).collect();
        let mut refs: Vec<&mut Section> = secs.iter_mut().collect();
        spill.restore(&mut refs).unwrap();
        for (s, w) in secs.iter().zip(&want) {
            assert_eq!(&s.insns, w);
        }
    }
}
