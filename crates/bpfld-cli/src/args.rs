//! The command line's grammar: every subcommand and option, as clap
//! derives them (completions and man pages come from the same place).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bpfld",
    version,
    about = "Static linker, XDP composer and inspector for eBPF object files"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
pub(crate) enum XdpCommand {
    /// Compose XDP programs into one object with program `bpfld_xdp`:
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
        #[arg(long, value_parser = crate::xdp::parse_mode)]
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
        /// Where maps pinned by name (LIBBPF_PIN_BY_NAME) are pinned: a
        /// compatible map pinned there already is used.
        #[arg(long, value_name = "DIR", default_value = "/sys/fs/bpf")]
        pin_path: PathBuf,
        /// Attach through a bpf_link (BPF_LINK_CREATE) pinned under
        /// --pin-path; a replacement updates that link (BPF_LINK_UPDATE),
        /// detach removes it.
        #[arg(long)]
        link: bool,
        /// Report what was done as JSON.
        #[arg(long)]
        json: bool,
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
pub(crate) enum BtfCommand {
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
    /// Load an ELF object's `.BTF` into the kernel (BPF_BTF_LOAD) after
    /// only the rewrites libbpf makes at load time (`.kconfig`/`.ksyms`
    /// externs); print the kernel's log on a rejection.
    Check {
        file: PathBuf,
        /// Also list the rewrites made before loading.
        #[arg(long, short = 'v')]
        verbose: bool,
    },
}
