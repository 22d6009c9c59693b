//! Arguments with a syntax of their own: `--resolve EXTERN=FILE[#TAG]:FUNCTION`
//! and XDP components `FILE[:PROGRAM][,priority=N][,chain=...]`.

use std::path::Path;

use bpfld::compose::ChainActions;
use bpfld::{Error, Result};

/// `EXTERN=FILE[#TAG]:FUNCTION` arguments into component objects (one per
/// distinct FILE#TAG, read once) and resolves naming them.
pub(crate) fn parse_resolves(
    args: &[String],
) -> Result<(Vec<bpfld::link::Input>, Vec<bpfld::link::Resolve>)> {
    let mut components: Vec<bpfld::link::Input> = Vec::new();
    let mut resolves = Vec::new();
    for arg in args {
        let bad = || {
            Error::new(format!(
                "--resolve {arg}: expected EXTERN=FILE:FUNCTION (or EXTERN=FILE#TAG:FUNCTION)"
            ))
        };
        let (ext, rest) = arg.split_once('=').ok_or_else(bad)?;
        let (file, func) = rest.rsplit_once(':').ok_or_else(bad)?;
        if ext.is_empty() || file.is_empty() || func.is_empty() {
            return Err(bad());
        }
        let path = file.split_once('#').map_or(file, |(p, _)| p);
        let index = match components.iter().position(|c| c.name == file) {
            Some(i) => i,
            None => {
                let object = bpfld::Object::read_file(Path::new(path))
                    .map_err(|e| e.context(format!("--resolve {arg}")))?;
                components.push(bpfld::link::Input {
                    name: file.to_string(),
                    object,
                });
                components.len() - 1
            }
        };
        resolves.push(bpfld::link::Resolve {
            extern_name: ext.to_string(),
            component: index,
            function: func.to_string(),
        });
    }
    Ok((components, resolves))
}

/// `FILE.o[:PROGRAM][,priority=N][,chain=A,B|none]`: actions as
/// [`ChainActions`] parses them (`XDP_PASS`, `pass`, ...), separated by
/// `,` as status prints them or by `+`.
pub(crate) fn parse_component(arg: &str) -> Result<bpfld::compose::ComponentSpec> {
    let mut parts = arg.split(',');
    let head = parts.next().unwrap_or_default();
    // A ':' after the last '/' separates the program name.
    // An image (`oci-archive:IMAGE.tar[:NAME]`, `oci:DIR[:NAME]`) is
    // taken whole: its ':' name the image, not a program.
    let (file, program) = match head.rsplit_once(':') {
        _ if crate::input::is_image_arg(head) => (head, None),
        Some((f, p)) if !p.contains('/') && !f.is_empty() => (f, Some(p.to_string())),
        _ => (head, None),
    };
    let object = crate::input::read_object(file)?;
    let mut spec = bpfld::compose::ComponentSpec {
        file: file.to_string(),
        object,
        program,
        priority: None,
        chain: None,
        running: None,
    };
    let mut in_chain = false;
    for opt in parts {
        match opt.split_once('=') {
            Some(("priority", v)) => {
                in_chain = false;
                spec.priority =
                    Some(v.parse().map_err(|_| {
                        Error::new(format!("{arg}: priority '{v}' is not a number"))
                    })?)
            }
            Some(("chain", v)) => {
                in_chain = true;
                spec.chain = Some(v.parse().map_err(|e: Error| e.context(arg))?);
            }
            // `chain=XDP_PASS,XDP_DROP` as status prints it: the words
            // after `chain=` that are not options are more actions.
            None if in_chain => {
                let more: ChainActions = opt.parse().map_err(|e: Error| e.context(arg))?;
                let chain = spec.chain.unwrap_or(ChainActions::NONE);
                if chain.is_empty() || more.is_empty() {
                    return Err(Error::new(format!(
                        "{arg}: 'none' cannot be combined with actions"
                    )));
                }
                spec.chain = Some(more.iter().fold(chain, ChainActions::with));
            }
            _ => {
                return Err(Error::new(format!(
                    "{arg}: unknown option '{opt}' (expected priority=N or chain=ACTION,ACTION)"
                )))
            }
        }
    }
    Ok(spec)
}

/// Refuses an output that is one of the inputs (the same file, however
/// spelled, hard links included), before anything is written: the output
/// would overwrite what it is made from.
pub(crate) fn refuse_output_among_inputs<'a>(
    output: &Path,
    inputs: impl IntoIterator<Item = &'a Path>,
) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    // An output that does not exist yet is no input.
    let Ok(out) = std::fs::metadata(output) else {
        return Ok(());
    };
    for input in inputs {
        if std::fs::metadata(input).is_ok_and(|i| i.dev() == out.dev() && i.ino() == out.ino()) {
            return Err(Error::new(format!(
                "-o {}: this is the input {}; writing the output would overwrite it (choose another output file)",
                output.display(),
                input.display()
            )));
        }
    }
    Ok(())
}

/// The file of a `--resolve EXTERN=FILE[#TAG]:FUNCTION` argument.
pub(crate) fn resolve_file(arg: &str) -> Option<&Path> {
    let (_, rest) = arg.split_once('=')?;
    let (file, _) = rest.rsplit_once(':')?;
    Some(Path::new(file.split_once('#').map_or(file, |(p, _)| p)))
}
