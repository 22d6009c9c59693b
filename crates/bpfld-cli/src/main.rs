//! The `bpfld` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use bpfld::read;
use bpfld::{Error, Result};

mod dedup;
mod run;
mod xdp;

#[derive(Parser)]
#[command(
    name = "bpfld",
    version,
    about = "Static linker, XDP composer and inspector for eBPF object files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Summarise an object: programs, functions, externs, maps, data, license.
    Inspect {
        file: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Disassemble every code section in llvm-objdump's BPF syntax.
    Disasm {
        file: PathBuf,
        /// Print JSON (one entry per section, instructions with relocations).
        #[arg(long)]
        json: bool,
    },
    /// Load an object into the kernel and run one program with
    /// BPF_PROG_TEST_RUN: verdict, time per run, output packet, every map.
    Run {
        file: PathBuf,
        /// The program (function name) to run; needed when there are several.
        #[arg(long)]
        prog: Option<String>,
        /// Input packet bytes (default: a 64-byte zero Ethernet frame).
        #[arg(long, value_name = "PACKET_FILE")]
        data: Option<PathBuf>,
        /// How many times the kernel runs the program (duration is the average).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        repeat: u32,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Link objects into one, with libbpf's rules (`bpftool gen object`).
    Link {
        /// The output object; written atomically.
        #[arg(short = 'o', long = "output", value_name = "OUT.o")]
        output: PathBuf,
        /// Input objects, in link order.
        #[arg(required = true, value_name = "INPUT.o")]
        inputs: Vec<PathBuf>,
        /// Allow unresolved externs (the output can be linked again).
        #[arg(long)]
        relocatable: bool,
        /// Fill EXTERN with FUNCTION of FILE (an entry program or a .text
        /// function), pulling in only what it needs. FILE#TAG makes a
        /// separate instance of FILE (its own maps and globals); without a
        /// tag, every mention of FILE is one instance.
        #[arg(long = "resolve", value_name = "EXTERN=FILE[#TAG]:FUNCTION")]
        resolves: Vec<String>,
        /// Share the map NAME between components and the main inputs
        /// instead of giving each component its own.
        #[arg(long = "share", value_name = "MAP")]
        shared_maps: Vec<String>,
        /// Print the link report: what each extern resolved to and what
        /// was pulled in under which name.
        #[arg(long)]
        print_map: bool,
        /// Keep calls to resolved functions as calls (by default their
        /// bodies are inlined into the callers where that is safe; the link
        /// report says where and, otherwise, why not).
        #[arg(long)]
        no_inline: bool,
    },
    /// XDP: compose several programs into one (no freplace needed).
    Xdp {
        #[command(subcommand)]
        command: XdpCommand,
    },
    /// BTF tools.
    Btf {
        #[command(subcommand)]
        command: BtfCommand,
    },
}

#[derive(Subcommand)]
enum XdpCommand {
    /// Compose XDP programs into one object with program `xdp_dispatcher`:
    /// run in priority order, each continuing the chain only on the verdicts
    /// in its chain-call set (libxdp's semantics and metadata).
    Compose {
        /// The output object; written atomically.
        #[arg(short = 'o', long = "output", value_name = "OUT.o")]
        output: PathBuf,
        /// FILE.o[:PROGRAM][,priority=N][,chain=ACTION+ACTION|none]: the
        /// object's XDP program (or the named one); priority and chain-call
        /// actions override the object's XDP_RUN_CONFIG metadata (defaults:
        /// priority 50, chain on XDP_PASS). Actions: XDP_ABORTED, XDP_DROP,
        /// XDP_PASS, XDP_TX, XDP_REDIRECT (the XDP_ prefix may be left out).
        #[arg(required = true, value_name = "COMPONENT")]
        components: Vec<String>,
        /// Share the map NAME between all components.
        #[arg(long = "share", value_name = "MAP")]
        shared_maps: Vec<String>,
        /// Print the link report as well as the order.
        #[arg(long)]
        print_map: bool,
        /// Call each component instead of inlining it into the dispatcher.
        #[arg(long)]
        no_inline: bool,
    },
    /// Compose and attach to an interface (through netlink: it stays after
    /// bpfld exits); a bpfld composition already there is replaced
    /// atomically. Components that stay (same file and program) keep their
    /// maps and the map of their global variables: the new program uses
    /// the same kernel maps (when the definition is unchanged), so nothing
    /// is copied and no update is lost.
    Attach {
        #[arg(long, value_name = "IFACE")]
        dev: String,
        /// skb (generic) or native (driver); default: the current
        /// attachment's, else the kernel's choice.
        #[arg(long, value_parser = xdp::parse_mode)]
        mode: Option<bpfld_kernel::xdp::Mode>,
        /// As for `compose`.
        #[arg(required = true, value_name = "COMPONENT")]
        components: Vec<String>,
        #[arg(long = "share", value_name = "MAP")]
        shared_maps: Vec<String>,
        /// Replace a program bpfld did not attach.
        #[arg(long)]
        force: bool,
        /// Start every component's maps and globals fresh.
        #[arg(long)]
        fresh: bool,
        /// Call each component instead of inlining it into the dispatcher.
        #[arg(long)]
        no_inline: bool,
    },
    /// Interfaces with an XDP program: mode, program id, and the
    /// components of bpfld compositions (read from the kernel).
    Status {
        #[arg(long, value_name = "IFACE")]
        dev: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove the XDP program of an interface.
    Detach {
        #[arg(long, value_name = "IFACE")]
        dev: String,
        /// Detach a program bpfld did not attach.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum BtfCommand {
    /// Dump the BTF of an ELF object or a raw BTF file in bpftool's raw format.
    Dump {
        file: PathBuf,
        /// Print JSON instead of bpftool's text.
        #[arg(long)]
        json: bool,
    },
    /// Merge the BTF of all inputs (ELF objects or raw BTF files) and write
    /// it deduplicated as raw BTF.
    Dedup {
        /// The output raw BTF file; written atomically.
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: PathBuf,
        /// ELF objects (their `.BTF`) or raw BTF files, in order.
        #[arg(required = true, value_name = "FILE")]
        inputs: Vec<PathBuf>,
        /// Print the type counts before and after on standard error.
        #[arg(long)]
        stats: bool,
    },
}

fn main() -> ExitCode {
    // A panic is a bug; if a dependency panics we still print one line,
    // not a backtrace (the caller turns it into an error where it can).
    std::panic::set_hook(Box::new(|info| {
        eprintln!("bpfld: internal error: {info}");
    }));
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bpfld: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Inspect { file, json } => {
            let obj = read::elf::read_file(&file)?;
            let summary =
                bpfld::show::inspect::summarize(&obj).map_err(|e| e.in_file(file.display()))?;
            if json {
                print_json(&summary)?;
            } else {
                emit(&bpfld::show::inspect::render_text(
                    &file.display().to_string(),
                    &summary,
                ))?;
            }
        }
        Command::Disasm { file, json } => {
            // Reads headers, symbols, code and relocations only, then
            // writes section by section.
            bpfld::show::disasm::with_file(&file, |listing| {
                stream(|out| {
                    use std::io::Write;
                    if json {
                        listing.write_json(out)?;
                        out.write_all(b"\n")
                    } else {
                        let header = bpfld::show::disasm::file_header(&file.display().to_string());
                        out.write_all(header.as_bytes())?;
                        listing.write_text(out)
                    }
                })
            })??;
        }
        Command::Run {
            file,
            prog,
            data,
            repeat,
            json,
        } => run::run(&run::Args {
            file: &file,
            prog: prog.as_deref(),
            data: data.as_deref(),
            repeat,
            json,
        })?,
        Command::Link {
            output,
            inputs,
            relocatable,
            resolves,
            shared_maps,
            print_map,
            no_inline,
        } => {
            let (components, resolves) = parse_resolves(&resolves)?;
            let opts = bpfld::link::LinkOptions {
                relocatable,
                resolves,
                shared_maps,
                no_inline,
            };
            // The inputs are read as the link goes, one at a time.
            let report = bpfld::link::link_files_to(&inputs, &components, &opts, &output)?;
            if print_map {
                emit(&report.render())?;
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
                },
        } => {
            let specs = components
                .iter()
                .map(|c| parse_component(c))
                .collect::<Result<Vec<_>>>()?;
            let composed = bpfld::compose::compose_with(&specs, &shared_maps, no_inline)?;
            let bytes = bpfld::write::elf::to_bytes(&composed.object)
                .map_err(|e| e.context(format!("writing {}", output.display())))?;
            bpfld::write::elf::write_atomic(&output, &bytes)?;
            let mut text = String::new();
            for p in &composed.order {
                text.push_str(&format!("{p}\n"));
            }
            for u in &composed.unreachable {
                text.push_str(&format!(
                    "left out: {u} (an earlier component never continues the chain)\n"
                ));
            }
            if print_map {
                text.push_str(&composed.report.render());
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
                },
        } => emit(&xdp::attach(
            &dev,
            mode,
            &components,
            &shared_maps,
            force,
            fresh,
            no_inline,
        )?)?,
        Command::Xdp {
            command: XdpCommand::Status { dev, json },
        } => emit(&xdp::status(dev.as_deref(), json)?)?,
        Command::Xdp {
            command: XdpCommand::Detach { dev, force },
        } => emit(&xdp::detach(&dev, force)?)?,
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
                },
        } => {
            let (before, after) = dedup::run(&output, &inputs)?;
            if stats {
                eprintln!("types: {before} in, {after} out");
            }
        }
    }
    Ok(())
}

/// `EXTERN=FILE[#TAG]:FUNCTION` arguments into component objects (one per
/// distinct FILE#TAG, read once) and resolves naming them.
fn parse_resolves(args: &[String]) -> Result<(Vec<bpfld::link::Input>, Vec<bpfld::link::Resolve>)> {
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
                let object = read::elf::read_file(Path::new(path))
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

/// `FILE.o[:PROGRAM][,priority=N][,chain=A+B|none]`.
fn parse_component(arg: &str) -> Result<bpfld::compose::ComponentSpec> {
    let mut parts = arg.split(',');
    let head = parts.next().unwrap_or_default();
    // A ':' after the last '/' separates the program name.
    let (file, program) = match head.rsplit_once(':') {
        Some((f, p)) if !p.contains('/') && !f.is_empty() => (f, Some(p.to_string())),
        _ => (head, None),
    };
    let object = read::elf::read_file(Path::new(file))?;
    let mut spec = bpfld::compose::ComponentSpec {
        file: file.to_string(),
        object,
        program,
        priority: None,
        chain: None,
    };
    for opt in parts {
        match opt.split_once('=') {
            Some(("priority", v)) => {
                spec.priority =
                    Some(v.parse().map_err(|_| {
                        Error::new(format!("{arg}: priority '{v}' is not a number"))
                    })?)
            }
            Some(("chain", v)) => {
                let mut chain = 0u32;
                if v != "none" {
                    for a in v.split('+') {
                        let bit = bpfld::compose::run_config::action_value(a).ok_or_else(|| {
                            Error::new(format!(
                                "{arg}: '{a}' is not an XDP action (XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT)"
                            ))
                        })?;
                        chain |= 1 << bit;
                    }
                }
                spec.chain = Some(chain);
            }
            _ => {
                return Err(Error::new(format!(
                    "{arg}: unknown option '{opt}' (expected priority=N or chain=ACTION+ACTION)"
                )))
            }
        }
    }
    Ok(spec)
}

/// `btf dump`: views the BTF of an ELF object (reading only its headers
/// and its `.BTF` section) or of a raw BTF file, checks all of it, then
/// writes the listing type by type.
fn dump_btf(path: &Path, json: bool) -> Result<()> {
    read::btf_view::with_file(path, |view| {
        stream(|out| {
            if json {
                bpfld::show::btf_dump::dump_json_to(view, out)?;
                std::io::Write::write_all(out, b"\n")
            } else {
                bpfld::show::btf_dump::dump_raw_to(view, out)
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

/// The BTF of an ELF object (its `.BTF` section) or of a raw BTF file.
fn read_btf(path: &Path) -> Result<bpfld::model::btf::Btf> {
    let data = std::fs::read(path)
        .map_err(|e| Error::new(format!("cannot read: {e}")).in_file(path.display()))?;
    if read::elf::is_elf(&data) {
        let obj = read::elf::parse(&data).map_err(|e| e.in_file(path.display()))?;
        obj.btf
            .ok_or_else(|| Error::new("object has no .BTF section").in_file(path.display()))
    } else {
        read::btf::parse(&data).map_err(|e| e.in_file(path.display()))
    }
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::new(format!("cannot encode JSON: {e}")))?;
    emit(&(text + "\n"))
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
