//! CO-RE relocations applied by bpfld, on the copy of an object aya is
//! handed: aya 0.14 knows only part of libbpf's rules (no TYPE_MATCHES,
//! no target type ids, no flexible arrays...). Every record of `.BTF.ext`
//! is resolved against the running kernel's BTF the way libbpf resolves
//! it, its instruction patched, and the records removed, so aya has
//! nothing left to relocate.
//!
//! The rules (libbpf's `relo_core.c`): candidates are the target's types of
//! the same kind and essential name (`task_struct___mine` is
//! `task_struct`); each is matched against the local access
//! (spec.rs, compat.rs); every matching candidate must give the same
//! value, else the relocation is ambiguous; with no match, the existence
//! kinds give 0 and the others poison their instruction (a call of
//! helper 0xbad2310, refused by the verifier only if reached). Candidates
//! that do not match are dropped for the following relocations of the same
//! local type, as libbpf does.

mod calc;
mod compat;
mod spec;
mod target;

use std::collections::HashMap;

use bpfld::model::btf::{Btf, TypeId};
use bpfld::model::btf_ext::CoreRelo;
use bpfld::model::object::{Object, SectionId, SectionKind};
use bpfld::model::Endian;

pub(crate) use target::Targets;

use calc::Outcome;
use spec::RelKind;
use target::Cand;

use crate::error::{Error, ErrorKind, Result};

/// Errors inside the engine: a sentence the caller puts in context.
type R<T> = std::result::Result<T, String>;

/// What [`apply`] did.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// Whether the object had CO-RE records (now removed).
    pub(crate) any: bool,
    /// Relocations that failed in sections that are not loaded unless asked
    /// for (libbpf's `?` prefix): the section, the instruction and the
    /// error. libbpf does not relocate a program it will not load, so such
    /// a failure refuses only that program; its instruction is poisoned.
    pub(crate) deferred: Vec<(SectionId, usize, String)>,
}

/// Applies every CO-RE relocation of `obj` against `targets` and removes
/// the records.
pub(crate) fn apply(obj: &mut Object, targets: &mut Targets) -> Result<Applied> {
    let mut applied = Applied::default();
    if obj.sections.iter().all(|s| s.core_relos.is_empty()) {
        return Ok(applied);
    }
    applied.any = true;
    let big_endian = obj.endian == Endian::Big;
    let Object { btf, sections, .. } = obj;
    let Some(btf) = btf.as_ref() else {
        return Err(Error::new(
            ErrorKind::Object,
            "the object has CO-RE relocations but no BTF",
        ));
    };
    let mut cache: HashMap<TypeId, Vec<Cand>> = HashMap::new();
    for s in sections.iter_mut() {
        let relos = std::mem::take(&mut s.core_relos);
        for r in &relos {
            let at = r.insn.0 as usize;
            let fail = |msg: String| {
                Error::new(
                    ErrorKind::Object,
                    format!(
                        "section '{}', instruction #{at}: CO-RE relocation {}: {msg}",
                        s.name,
                        describe(btf, r)
                    ),
                )
            };
            let done = resolve(btf, r, targets, &mut cache, big_endian)
                .and_then(|o| calc::patch(&mut s.insns, at, &o));
            match done {
                Ok(()) => {}
                Err(msg) if s.name.starts_with('?') => {
                    let poison = Outcome {
                        poison: true,
                        ..Outcome::default()
                    };
                    // Only an instruction past the end cannot be poisoned,
                    // and nothing runs it.
                    let _ = calc::patch(&mut s.insns, at, &poison);
                    applied
                        .deferred
                        .push((s.id, at, fail(msg).message().to_string()));
                }
                Err(msg) => return Err(fail(msg)),
            }
        }
    }
    // `.BTF.ext` is written again without the CO-RE records, shorter:
    // relocations into it (a linker's, of record offsets; loaders ignore
    // them) would point past its end.
    for s in sections
        .iter_mut()
        .filter(|s| s.kind == SectionKind::BtfExt)
    {
        s.relocs.clear();
    }
    Ok(applied)
}

/// `<byte_off> [5] STRUCT 'task_struct' access "0:1"`, for messages.
fn describe(btf: &Btf, r: &CoreRelo) -> String {
    let kind = RelKind::from_raw(r.kind)
        .map(|k| k.name().to_string())
        .unwrap_or_else(|| format!("kind {}", r.kind));
    let access = btf.name(r.access_str_off).unwrap_or("(invalid)");
    format!(
        "<{kind}> of {} access \"{access}\"",
        btf.describe(TypeId(r.type_id))
    )
}

/// The outcome of one relocation.
fn resolve(
    btf: &Btf,
    r: &CoreRelo,
    targets: &mut Targets,
    cache: &mut HashMap<TypeId, Vec<Cand>>,
    big_endian: bool,
) -> R<Outcome> {
    let kind = RelKind::from_raw(r.kind)
        .ok_or_else(|| format!("unknown relocation kind {} (libbpf knows 0 to 12)", r.kind))?;
    let root = TypeId(r.type_id);
    let access = btf
        .name(r.access_str_off)
        .map_err(|e| format!("access string: {e}"))?;
    let local = spec::parse_local(btf, root, kind, access)
        .map_err(|e| format!("invalid access string: {e}"))?;
    if kind == RelKind::TypeIdLocal {
        // The id may change when objects are linked: not checked.
        return Ok(Outcome {
            orig: u64::from(root.0),
            new: u64::from(root.0),
            ..Outcome::default()
        });
    }
    let cands = match cache.remove(&root) {
        Some(c) => c,
        None => targets.candidates(btf, root)?,
    };
    let mut kept: Vec<Cand> = Vec::new();
    let mut chosen: Option<(Outcome, u64, String)> = None;
    let result = (|| {
        for c in &cands {
            let tb = targets.get(c.btf);
            let Some(ts) = spec::match_target(&local, kind, &tb.btf, c.id)
                .map_err(|e| format!("matching {} of {}: {e}", tb.btf.describe(c.id), tb.name))?
            else {
                continue;
            };
            let o = calc::outcome(kind, &local, Some(&ts), big_endian)?;
            let here = format!("{} of {}{}", tb.btf.describe(c.id), tb.name, ts.path());
            match &chosen {
                None => chosen = Some((o, ts.bit_offset, here)),
                Some((first, bits, there)) => {
                    if *bits != ts.bit_offset {
                        return Err(format!(
                            "candidates disagree on the field's bit offset: {there} is at bit \
                             {bits}, {here} at bit {}",
                            ts.bit_offset
                        ));
                    }
                    if first.poison != o.poison || first.new != o.new {
                        let v = |o: &Outcome| {
                            if o.poison {
                                "no value".to_string()
                            } else {
                                o.new.to_string()
                            }
                        };
                        return Err(format!(
                            "candidates disagree: {there} gives {}, {here} gives {}",
                            v(first),
                            v(&o)
                        ));
                    }
                }
            }
            kept.push(*c);
        }
        match chosen.take() {
            Some((o, _, _)) => Ok(o),
            None => calc::outcome(kind, &local, None, big_endian),
        }
    })();
    // Candidates that did not match are not tried again for this type;
    // with none matching, the list stays as it was.
    let next = if kept.is_empty() { cands } else { kept };
    cache.insert(root, next);
    result
}

#[cfg(test)]
mod tests;
