//! The `bpfld` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use args::{BtfCommand, Cli, Command, ImageCommand, XdpCommand};
use parse::{parse_component, parse_resolves};

use bpfld::{Error, Result};

mod args;
mod dedup;
mod docs;
mod image;
mod input;
mod parse;
mod reports;
mod run;
mod verify;
mod xdp;

fn main() -> ExitCode {
    // A panic is a bug; if a dependency panics we still print one line,
    // not a backtrace (the caller turns it into an error where it can).
    std::panic::set_hook(Box::new(|info| {
        eprintln!("bpfld: internal error: {info}");
    }));
    if let Some(result) = quick_btf_dump(std::env::args_os().skip(1)) {
        return finish(result);
    }
    finish(run(Cli::parse()))
}

fn finish(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bpfld: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `btf dump FILE [--json]` without building the whole command grammar:
/// the dump of a small object takes less time than clap's set-up of every
/// subcommand, and the listing should cost no more than bpftool's. Any
/// other spelling (options first, `--`, `--help`, a second file) is left
/// to clap, so the two paths accept the same command lines and give the
/// same results.
fn quick_btf_dump(args: impl Iterator<Item = std::ffi::OsString>) -> Option<Result<()>> {
    let args: Vec<std::ffi::OsString> = args.take(5).collect();
    let (file, json) = match args.as_slice() {
        [btf, dump, file] if btf == "btf" && dump == "dump" => (file, false),
        [btf, dump, file, json] if btf == "btf" && dump == "dump" && json == "--json" => {
            (file, true)
        }
        _ => return None,
    };
    // Anything that looks like an option is clap's to interpret.
    if file.as_encoded_bytes().first().is_none_or(|&b| b == b'-') {
        return None;
    }
    Some(dump_btf(Path::new(file), json))
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Inspect { file, json } => {
            let (name, obj) = read_object(&file)?;
            let summary = bpfld::show::inspect::summarize(&obj).map_err(|e| e.in_file(&name))?;
            if json {
                print_json(&summary)?;
            } else {
                emit(&bpfld::show::inspect::render_text(&name, &summary))?;
            }
        }
        Command::Disasm { file, json } => {
            if input::is_image_arg(&file.to_string_lossy()) {
                // An image's object is in memory already: list it whole.
                let (name, obj) = read_object(&file)?;
                if json {
                    print_json(&bpfld::show::disasm::disasm_json(&obj))?;
                } else {
                    let mut text = bpfld::show::disasm::file_header(&name);
                    text.push_str(&bpfld::show::disasm::disasm(&obj));
                    emit(&text)?;
                }
            } else {
                // Reads headers, symbols, code and relocations only, then
                // writes section by section.
                bpfld::show::disasm::with_file(&file, |listing| {
                    stream(|out| {
                        use std::io::Write;
                        if json {
                            listing.write_json(out)?;
                            out.write_all(b"\n")
                        } else {
                            let header =
                                bpfld::show::disasm::file_header(&file.display().to_string());
                            out.write_all(header.as_bytes())?;
                            listing.write_text(out)
                        }
                    })
                })??;
            }
        }
        Command::Run {
            file,
            prog,
            data,
            pcap,
            data_out,
            repeat,
            json,
            maps,
            all,
            sets,
            map_updates,
        } => run::run(&run::Args {
            file: &file,
            prog: prog.as_deref(),
            data: data.as_deref(),
            pcap: pcap.as_deref(),
            data_out: data_out.as_deref(),
            repeat,
            json,
            maps: &maps,
            all,
            sets: &sets,
            map_updates: &map_updates
                .chunks(2)
                .map(|c| (c[0].clone(), c.get(1).cloned().unwrap_or_default()))
                .collect::<Vec<_>>(),
        })?,
        Command::Verify {
            file,
            prog,
            sets,
            json,
            csv,
        } => verify::verify(&verify::Args {
            file: &file,
            prog: prog.as_deref(),
            sets: &sets,
            json,
            csv,
        })?,
        Command::Link {
            output,
            inputs,
            relocatable,
            resolves,
            shared_maps,
            print_map,
            no_inline,
            json,
            no_optimize,
        } => {
            parse::refuse_output_among_inputs(
                &output,
                inputs
                    .iter()
                    .map(PathBuf::as_path)
                    .chain(resolves.iter().filter_map(|r| parse::resolve_file(r))),
            )?;
            let (components, resolves) = parse_resolves(&resolves)?;
            let opts = bpfld::link::LinkOptions {
                relocatable,
                resolves,
                shared_maps,
                no_inline,
                no_optimize,
            };
            // The inputs are read as the link goes, one at a time.
            let report = bpfld::link::link_files_to(&inputs, &components, &opts, &output)?;
            if json {
                // The output as written, for its programs' sizes.
                let linked = bpfld::Object::read_file(&output)?;
                print_json(&reports::LinkJson::new(
                    &output,
                    relocatable,
                    &inputs,
                    &report,
                    &linked,
                ))?;
            } else if print_map {
                emit(&report.to_string())?;
            }
        }
        Command::Xdp {
            command:
                XdpCommand::Compose {
                    output,
                    components,
                    shared_maps,
                    print_map,
                    no_inline,
                    no_optimize,
                    bpfman_manifest,
                    bpfman_url,
                    node_selector,
                    pin_path,
                    json,
                },
        } => {
            let specs = components
                .iter()
                .map(|c| parse_component(c))
                .collect::<Result<Vec<_>>>()?;
            parse::refuse_output_among_inputs(&output, specs.iter().map(|s| Path::new(&s.file)))?;
            let composed = bpfld::compose::compose(
                &specs,
                &bpfld::compose::ComposeOptions::default()
                    .share_all(&shared_maps)
                    .inline(!no_inline)
                    .optimize(!no_optimize),
            )?;
            let bytes = composed
                .object
                .to_bytes()
                .map_err(|e| e.context(format!("writing {}", output.display())))?;
            // Checked before the output is written: an incompatible pin
            // leaves no output behind.
            let pins = match &pin_path {
                Some(dir) => Some(
                    bpfld_kernel::xdp::pins_of(&bytes, dir)
                        .map_err(|e| Error::new(format!("--pin-path {}: {e}", dir.display())))?,
                ),
                None => None,
            };
            bpfld::write_atomic(&output, &bytes)?;
            if let Some(yaml) = &bpfman_manifest {
                let stem = output.file_stem().unwrap_or_default().to_string_lossy();
                let args = image::YamlArgs {
                    url: bpfman_url.unwrap_or_else(|| format!("localhost/{stem}:latest")),
                    name: None,
                    node_selector,
                    interfaces: Vec::new(),
                    priority: None,
                    proceed_on: None,
                    source: output.display().to_string(),
                };
                image::write_bpfman_yaml(yaml, &composed.object, &args)
                    .map_err(|e| e.context(format!("writing {}", yaml.display())))?;
            }
            // A warning, so on standard error (standard output may be JSON).
            for u in &composed.unreachable {
                warn(&reports::left_out_warning(u));
            }
            if json {
                return print_json(&reports::ComposeJson::new(
                    &output,
                    &composed,
                    pins.as_deref(),
                    bpfman_manifest.as_deref(),
                ));
            }
            let mut text = String::new();
            for p in &composed.order {
                text.push_str(&format!("{p}\n"));
            }
            text.extend(composed.frags_note());
            text.extend(composed.insns_note());
            if let (Some(dir), Some(pins)) = (&pin_path, &pins) {
                if pins.is_empty() {
                    text.push_str(&format!(
                        "--pin-path {}: the composition pins no map by name\n",
                        dir.display()
                    ));
                }
                for p in pins {
                    text.push_str(&if p.created {
                        format!(
                            "pinned by name: {} will be pinned at {}\n",
                            p.name,
                            p.path.display()
                        )
                    } else {
                        format!(
                            "pinned by name: {} will use the compatible map pinned at {}\n",
                            p.name,
                            p.path.display()
                        )
                    });
                }
            }
            if print_map {
                text.push_str(&composed.report.to_string());
            }
            emit(&text)?;
        }
        Command::Xdp {
            command:
                XdpCommand::Attach {
                    dev,
                    mode,
                    components,
                    shared_maps,
                    force,
                    fresh,
                    no_inline,
                    pin_path,
                    link,
                    json,
                },
        } => emit(&xdp::attach(
            &dev,
            mode,
            &components,
            &shared_maps,
            force,
            fresh,
            no_inline,
            &pin_path,
            link,
            json,
        )?)?,
        Command::Xdp {
            command: XdpCommand::Status { dev, json },
        } => emit(&xdp::status(dev.as_deref(), json)?)?,
        Command::Xdp {
            command: XdpCommand::Detach { dev, force, json },
        } => emit(&xdp::detach(&dev, force, json)?)?,
        Command::Btf {
            command: BtfCommand::Dump { file, json },
        } => {
            dump_btf(&file, json)?;
        }
        Command::Btf {
            command:
                BtfCommand::Dedup {
                    output,
                    inputs,
                    stats,
                    json,
                },
        } => {
            parse::refuse_output_among_inputs(&output, inputs.iter().map(PathBuf::as_path))?;
            let (before, after) = dedup::run(&output, &inputs)?;
            if stats {
                eprintln!("types: {before} in, {after} out");
            }
            if json {
                print_json(&serde_json::json!({
                    "output": output.display().to_string(),
                    "inputs": inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                    "types_in": before,
                    "types_out": after,
                }))?;
            }
        }
        Command::Btf {
            command:
                BtfCommand::Check {
                    file,
                    verbose,
                    json,
                },
        } => {
            let data = std::fs::read(&file)
                .map_err(|e| Error::new(format!("cannot read: {e}")).in_file(file.display()))?;
            let btf = bpfld::Object::parse(&data)
                .and_then(|obj| obj.kernel_btf())
                .map_err(|e| e.in_file(file.display()))?;
            let mut text = String::new();
            if verbose {
                for r in &btf.rewrites {
                    text.push_str(&format!("rewritten as libbpf does: {r}\n"));
                }
            }
            bpfld_kernel::btf_load::load_btf(&btf.bytes)
                .map_err(|e| Error::new(e.to_string()).in_file(file.display()))?;
            if json {
                return print_json(&serde_json::json!({
                    "file": file.display().to_string(),
                    "accepted": true,
                    "types": btf.types,
                    "rewrites": btf.rewrites.iter().map(ToString::to_string).collect::<Vec<_>>(),
                }));
            }
            text.push_str(&format!(
                "{}: BTF accepted by the kernel ({} types)\n",
                file.display(),
                btf.types
            ));
            emit(&text)?;
        }
        Command::Image {
            command:
                ImageCommand::Build {
                    output,
                    tag,
                    both_endian,
                    inputs,
                    json,
                },
        } => emit(&image::build(
            &output,
            tag.as_deref(),
            both_endian,
            &inputs,
            json,
        )?)?,
        Command::Image {
            command: ImageCommand::Inspect { image, json },
        } => emit(&image::inspect(&image, json)?)?,
        Command::Image {
            command:
                ImageCommand::BpfmanYaml {
                    output,
                    url,
                    name,
                    node_selector,
                    interfaces,
                    priority,
                    proceed_on,
                    source,
                },
        } => image::bpfman_yaml(
            &output,
            &image::YamlArgs {
                url,
                name,
                node_selector,
                interfaces,
                priority,
                proceed_on,
                source,
            },
        )?,
        Command::Completions { shell } => {
            stream(|out| std::io::Write::write_all(out, &docs::completions(shell)))?
        }
        Command::Man { command } => {
            let page = docs::man(&command)?;
            stream(|out| std::io::Write::write_all(out, &page))?
        }
    }
    Ok(())
}

/// `btf dump`: views the BTF of an ELF object (reading only its headers
/// and its `.BTF` section) or of a raw BTF file, checks all of it, then
/// writes the listing type by type.
fn dump_btf(path: &Path, json: bool) -> Result<()> {
    bpfld::show::btf_dump::with_file(path, |btf| {
        stream(|out| {
            if json {
                btf.write_json(out)?;
                std::io::Write::write_all(out, b"\n")
            } else {
                btf.write_raw(out)
            }
        })
    })?
}
/// Writes a listing through a buffer to stdout as it is made; a reader
/// that went away (`| head`) is not an error.
fn stream(
    write: impl FnOnce(&mut std::io::BufWriter<std::io::StdoutLock<'static>>) -> std::io::Result<()>,
) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::new(format!("cannot write to standard output: {e}"))),
    }
}

/// Reads and parses an object argument: a file or an image's object.
fn read_object(arg: &Path) -> Result<(String, bpfld::model::object::Object)> {
    let (name, data) = input::read_object_arg(&arg.to_string_lossy())?;
    let obj = bpfld::Object::parse_named(&name, &data)?;
    Ok((name, obj))
}

/// The BTF of an ELF object (its `.BTF` section) or of a raw BTF file.
fn read_btf(path: &Path) -> Result<bpfld::model::btf::Btf> {
    let data = std::fs::read(path)
        .map_err(|e| Error::new(format!("cannot read: {e}")).in_file(path.display()))?;
    if data.starts_with(b"\x7fELF") {
        let obj = bpfld::Object::parse(&data).map_err(|e| e.in_file(path.display()))?;
        obj.btf
            .ok_or_else(|| Error::new("object has no .BTF section").in_file(path.display()))
    } else {
        bpfld::Btf::parse(&data).map_err(|e| e.in_file(path.display()))
    }
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::new(format!("cannot encode JSON: {e}")))?;
    emit(&(text + "\n"))
}

/// Prints `bpfld: warning: TEXT` on standard error, never standard
/// output (which may be a `--json` report, which lists it too).
fn warn(text: &str) {
    eprintln!("bpfld: warning: {text}");
}

/// Writes a listing to stdout; a reader that went away (`| head`) is not
/// an error.
fn emit(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::new(format!("cannot write to standard output: {e}"))),
    }
}
