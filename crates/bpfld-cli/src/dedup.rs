//! `bpfld btf dedup`: merge the BTF of several inputs and deduplicate it.

use std::path::{Path, PathBuf};

use bpfld::{Error, Result};

/// Reads every input's BTF (ELF `.BTF` section or raw BTF), deduplicates
/// their concatenation and writes raw BTF to `output` atomically. Returns
/// `(input types, output types)`, void excluded.
pub fn run(output: &Path, inputs: &[PathBuf]) -> Result<(usize, usize)> {
    let btfs = read_all(inputs)?;
    let before: usize = btfs.iter().map(|b| b.type_count() - 1).sum();
    let d = bpfld::dedup::dedup_many(btfs).map_err(|e| e.context("deduplicating BTF"))?;
    // The inputs were validated when read: only the vlen limit is left
    // to check (see `Dedup::to_bytes`).
    let bytes = d.to_bytes()?;
    bpfld::write_atomic(output, &bytes)?;
    Ok((before, d.btf.type_count() - 1))
}

/// Reads the inputs' BTF, several at a time when the machine has the
/// cores (reading and validating is a third of the whole run), in input
/// order; the first failure (in input order) is the error.
fn read_all(inputs: &[PathBuf]) -> Result<Vec<bpfld::model::btf::Btf>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(inputs.len())
        .max(1);
    let per = inputs.len().div_ceil(threads);
    let chunks: Vec<Result<Vec<_>>> = std::thread::scope(|s| {
        let handles: Vec<_> = inputs
            .chunks(per.max(1))
            .map(|chunk| s.spawn(move || chunk.iter().map(|p| crate::read_btf(p)).collect()))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::new("a reader thread panicked")))
            })
            .collect()
    });
    let mut out = Vec::with_capacity(inputs.len());
    for c in chunks {
        out.extend(c?);
    }
    Ok(out)
}
