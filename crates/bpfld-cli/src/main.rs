//! The `bpfld` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use bpfld::read;
use bpfld::{Error, Result};

mod dedup;
mod run;

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
    },
    /// BTF tools.
    Btf {
        #[command(subcommand)]
        command: BtfCommand,
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
        #[arg(required = true, value_name = "FILE")]
        inputs: Vec<PathBuf>,
        /// Print the type counts before and after on standard error.
        #[arg(long)]
        stats: bool,
    },
}

fn main() -> ExitCode {
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
            let obj = read::elf::read_file(&file)?;
            if json {
                print_json(&bpfld::show::disasm::disasm_json(&obj))?;
            } else {
                let mut text = bpfld::show::disasm::file_header(&file.display().to_string());
                text.push_str(&bpfld::show::disasm::disasm(&obj));
                emit(&text)?;
            }
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
        } => {
            let mut objects = Vec::with_capacity(inputs.len());
            for path in &inputs {
                objects.push(bpfld::link::Input {
                    name: path.display().to_string(),
                    object: read::elf::read_file(path)?,
                });
            }
            let opts = bpfld::link::LinkOptions { relocatable };
            let linked = bpfld::link::link(&objects, &opts)?;
            let bytes = bpfld::write::elf::to_bytes(&linked)
                .map_err(|e| e.context(format!("writing {}", output.display())))?;
            bpfld::write::elf::write_atomic(&output, &bytes)?;
        }
        Command::Btf {
            command: BtfCommand::Dump { file, json },
        } => {
            let btf = read_btf(&file)?;
            if json {
                print_json(&bpfld::show::btf_dump::dump_json(&btf))?;
            } else {
                emit(&bpfld::show::btf_dump::dump_raw(&btf))?;
            }
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
