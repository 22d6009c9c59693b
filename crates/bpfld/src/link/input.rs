//! Where the linker gets its inputs: in memory, prepared components, or
//! files read when needed. Each input is asked for twice (to resolve
//! symbols, then to copy it into the output) and held one at a time.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::object::Object;

use super::resolve::{has_aliases, rename_aliases};

/// One object to link, with the name errors use for it.
#[derive(Clone, Debug)]
pub struct Input {
    /// How errors and the link report name it.
    pub name: String,
    /// The object.
    pub object: Object,
}

/// Where the linker gets an input from. It asks for each input twice (to
/// resolve symbols, then to copy it into the output) and holds one at a
/// time, so linking files needs memory for the output and one input rather
/// than for every input.
pub(super) enum Source<'a> {
    Mem(&'a Input),
    /// A component, prepared with its own names.
    Owned(Box<Input>),
    /// A main input read up front (not a regular file: a pipe cannot be
    /// read twice).
    Held(Box<Input>),
    File(&'a Path),
}

impl Source<'_> {
    /// The input, with `aliases` applied to a main input (a component is
    /// prepared with its own names), and for a file a fingerprint of its
    /// bytes: both passes must see the same file.
    pub(super) fn load(&self, aliases: &HashMap<String, String>) -> Result<(Cow<'_, Input>, u64)> {
        // Producers' quirks (GCC's BTF) are normalised as an input enters.
        Ok(normalize_loaded(match self {
            Source::Mem(input) if has_aliases(input, aliases) => {
                let mut input = (*input).clone();
                rename_aliases(&mut input, aliases);
                (Cow::Owned(input), 0)
            }
            Source::Mem(input) => (Cow::Borrowed(*input), 0),
            Source::Owned(input) => (Cow::Borrowed(&**input), 0),
            Source::Held(input) if has_aliases(input, aliases) => {
                let mut input = (**input).clone();
                rename_aliases(&mut input, aliases);
                (Cow::Owned(input), 0)
            }
            Source::Held(input) => (Cow::Borrowed(&**input), 0),
            Source::File(path) => {
                let data = std::fs::read(path)
                    .map_err(|e| Error::new(format!("cannot read: {e}")).in_file(path.display()))?;
                let fingerprint = {
                    use std::hash::Hasher;
                    let mut h = crate::dedup::fxhash::FxHasher::default();
                    h.write(&data);
                    h.write_usize(data.len());
                    h.finish()
                };
                let mut input = Input {
                    name: path.display().to_string(),
                    object: crate::read::workarounds::reading(&path.display().to_string(), || {
                        crate::read::elf::parse(&data)
                    })
                    .map_err(|e| e.in_file(path.display()))?,
                };
                drop(data);
                if has_aliases(&input, aliases) {
                    rename_aliases(&mut input, aliases);
                }
                (Cow::Owned(input), fingerprint)
            }
        }))
    }
}

/// Regular files are read when the link needs them; anything else (a
/// pipe, `<(...)`) once, up front.
pub(super) fn file_sources(paths: &[PathBuf]) -> Result<Vec<Source<'_>>> {
    paths
        .iter()
        .map(|p| {
            if std::fs::metadata(p).is_ok_and(|m| m.is_file()) {
                Ok(Source::File(p.as_path()))
            } else {
                Ok(Source::Held(Box::new(Input {
                    name: p.display().to_string(),
                    object: crate::read::elf::read_file(p)?,
                })))
            }
        })
        .collect()
}

/// The inputs' byte order: the first input's, which every other must
/// share.
#[derive(Default)]
pub(super) struct ByteOrder {
    first: Option<(crate::model::Endian, String)>,
    /// The first input of another byte order, reported once every input
    /// has been read (as before resolution).
    mixed: Option<String>,
}

impl ByteOrder {
    pub(super) fn see(&mut self, input: &Input) {
        match &self.first {
            None => self.first = Some((input.object.endian, input.name.clone())),
            Some((endian, name)) if *endian != input.object.endian && self.mixed.is_none() => {
                self.mixed = Some(format!(
                    "{}: byte order differs from {} (cannot link little- and big-endian objects)",
                    input.name, name
                ));
            }
            Some(_) => {}
        }
    }

    /// The byte order of the output.
    pub(super) fn finish(self) -> Result<crate::model::Endian> {
        let Some((endian, _)) = self.first else {
            crate::bail!("nothing to link: no input objects");
        };
        if let Some(e) = self.mixed {
            crate::bail!("{e}");
        }
        Ok(endian)
    }
}

/// An input as it enters the linker (with whatever the linker keeps
/// beside it), the quirks its producer wrote rewritten.
fn normalize_loaded<T>((input, extra): (Cow<'_, Input>, T)) -> (Cow<'_, Input>, T) {
    (normalize(input), extra)
}

/// The input with every link quirk of its object rewritten
/// ([`crate::read::workarounds`]); borrowed when it has none.
pub(super) fn normalize(input: Cow<'_, Input>) -> Cow<'_, Input> {
    if !crate::read::workarounds::needs_normalizing(&input.object) {
        return input;
    }
    let mut input = input.into_owned();
    crate::read::workarounds::normalize_object(&mut input.object);
    Cow::Owned(input)
}
