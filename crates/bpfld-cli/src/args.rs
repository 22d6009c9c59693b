//! The command line's grammar: every subcommand and option, as clap
//! derives them (completions and man pages come from the same place).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bpfld",
    version,
    about = "Static linker, XDP composer and inspector for eBPF object files",
    after_help = "Examples:\n  \
        bpfld link -o out.o main.o lib.o\n  \
        bpfld xdp compose -o chain.o drop.o,priority=20 count.o:xdp_count,priority=10\n\n\
        `bpfld COMMAND --help` shows each command's options and examples."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Summarise an object: programs, functions, externs, maps, data, license.
    #[command(after_help = "Examples:\n  \
        bpfld inspect prog.o\n  \
        bpfld inspect --json oci-archive:prog.tar")]
    Inspect {
        file: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Disassemble every code section in llvm-objdump's BPF syntax.
    #[command(after_help = "Examples:\n  \
        bpfld disasm prog.o\n  \
        bpfld disasm --json prog.o > prog.json")]
    Disasm {
        file: PathBuf,
        /// Print JSON (one entry per section, instructions with relocations).
        #[arg(long)]
        json: bool,
    },
    /// Load an object into the kernel and run one program with
    /// BPF_PROG_TEST_RUN: verdict, time per run, output packet, every map.
    #[command(after_help = "Examples:\n  \
        bpfld run prog.o --repeat 100\n  \
        bpfld run prog.o --pcap capture.pcap --map packets --json")]
    Run {
        file: PathBuf,
        /// The program (function name) to run; needed when there are several.
        #[arg(long)]
        prog: Option<String>,
        /// Input packet bytes (default: a 64-byte zero Ethernet frame).
        #[arg(long, value_name = "PACKET_FILE")]
        data: Option<PathBuf>,
        /// Run every packet of a pcap or pcapng file (one verdict each;
        /// the maps are shown after the last).
        #[arg(long, value_name = "CAPTURE", conflicts_with = "data")]
        pcap: Option<PathBuf>,
        /// Write the packet as the program left it (with --pcap: a pcap of
        /// every packet as left).
        #[arg(long, value_name = "FILE")]
        data_out: Option<PathBuf>,
        /// How many times the kernel runs the program (duration is the average).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        repeat: u32,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Show only the map NAME (repeatable; `.data`, `.bss`, ... for
        /// global data).
        #[arg(long = "map", value_name = "NAME")]
        maps: Vec<String>,
        /// Show map entries whose value is all zero too.
        #[arg(long)]
        all: bool,
        /// Set the global variable VAR (by its BTF name, in .rodata, .data,
        /// .bss or .data.*/.rodata.*) before load: decimal or 0x-hex for
        /// integers, true/false, an enumerator name, or a string for a char
        /// array. `const volatile` values are constants to the verifier.
        #[arg(long = "set", value_name = "VAR=VALUE")]
        sets: Vec<String>,
        /// Write KEY=VALUE into map NAME before the run (repeatable):
        /// integers (decimal, 0x-hex) where the map's BTF types the key or
        /// value as one, else hex bytes in memory order; per-CPU maps get
        /// the value on every CPU.
        #[arg(long = "map-update", num_args = 2, value_names = ["NAME", "KEY=VALUE"])]
        map_updates: Vec<String>,
    },
    /// Load every program of an object with the verifier's statistics:
    /// verdict, processed instructions, states, time and stack depth
    /// (veristat's columns with --csv); a rejection shows the log's end and
    /// the failing instruction's source line. Exits non-zero when any fails.
    #[command(after_help = "Examples:\n  \
        bpfld verify prog.o --set debug=1\n  \
        bpfld verify composed.o --csv")]
    Verify {
        file: PathBuf,
        /// Only this program (function name).
        #[arg(long)]
        prog: Option<String>,
        /// Set the global variable VAR before load, as `run --set` does.
        #[arg(long = "set", value_name = "VAR=VALUE")]
        sets: Vec<String>,
        /// Print a JSON array (one object per program) instead of text.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// Print CSV with veristat's column names.
        #[arg(long)]
        csv: bool,
    },
    /// Link objects into one, with libbpf's rules (`bpftool gen object`).
    #[command(after_help = "Examples:\n  \
        bpfld link -o out.o main.o lib.o\n  \
        bpfld link -o out.o dispatcher.o --resolve slot0=count.o:xdp_count --resolve slot1=mark.o:xdp_mark --resolve slot2=count.o#2:xdp_count --print-map")]
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
        /// Print the link report as one JSON object (inputs, components,
        /// resolves, renames, inlining, warnings).
        #[arg(long)]
        json: bool,
        /// Leave inlined code unoptimised (by default checks and stores
        /// made useless by inlining are removed).
        #[arg(long)]
        no_optimize: bool,
    },
    /// XDP: compose several programs into one (no freplace needed).
    #[command(after_help = "Examples:\n  \
        bpfld xdp compose -o chain.o drop.o,priority=20 count.o:xdp_count,priority=10\n  \
        bpfld xdp attach --dev eth0 drop.o,priority=20 count.o:xdp_count,priority=10")]
    Xdp {
        #[command(subcommand)]
        command: XdpCommand,
    },
    /// BTF tools.
    #[command(after_help = "Examples:\n  \
        bpfld btf dump prog.o\n  \
        bpfld btf check prog.o")]
    Btf {
        #[command(subcommand)]
        command: BtfCommand,
    },
    /// bpfman bytecode images: objects packaged as OCI images.
    #[command(after_help = "Examples:\n  \
        bpfld image build -o prog.tar --tag xdp-prog:v1 prog.o\n  \
        bpfld image inspect oci-archive:prog.tar")]
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Print a shell completion script.
    #[command(after_help = "Examples:\n  \
        bpfld completions bash > /etc/bash_completion.d/bpfld\n  \
        bpfld completions zsh > \"${fpath[1]}/_bpfld\"")]
    Completions {
        /// The shell: bash, zsh or fish.
        shell: Shell,
    },
    /// Print the manual page (roff) of bpfld or of one of its commands.
    #[command(after_help = "Examples:\n  \
        bpfld man | man -l -\n  \
        bpfld man link > bpfld-link.1")]
    Man {
        /// A command (`link`, `xdp`, `xdp attach`, ...); bpfld itself when absent.
        command: Vec<String>,
    },
}

/// The shells `bpfld completions` writes for.
#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Subcommand)]
pub(crate) enum ImageCommand {
    /// Write a bpfman bytecode image as an OCI archive (push it with
    /// `skopeo copy oci-archive:IMAGE.tar docker://REGISTRY/NAME:TAG`).
    /// One object gives one image (amd64 if little-endian, s390x if
    /// big-endian); two objects, one of each byte order, give an image
    /// index with a manifest for every architecture of each order.
    #[command(after_help = "Examples:\n  \
        bpfld image build -o prog.tar --tag xdp-prog:v1 prog.o\n  \
        bpfld image build -o prog.tar --both-endian prog.o")]
    Build {
        /// The output archive; written atomically.
        #[arg(short = 'o', long = "output", value_name = "IMAGE.tar")]
        output: PathBuf,
        /// The image's reference name in the archive (`oci-archive:IMAGE.tar:NAME:TAG`).
        #[arg(long, value_name = "NAME:TAG")]
        tag: Option<String>,
        /// Also write the object in the other byte order (global data
        /// swapped by its BTF types) and package both.
        #[arg(long)]
        both_endian: bool,
        /// One object, or one little-endian and one big-endian object of
        /// the same program.
        #[arg(required = true, num_args = 1..=2, value_name = "FILE.o")]
        inputs: Vec<PathBuf>,
        /// Print what was written as JSON (digests as `image inspect
        /// --json` names them).
        #[arg(long)]
        json: bool,
    },
    /// Show an image's labels, platforms, digests and its object's summary.
    #[command(after_help = "Examples:\n  \
        bpfld image inspect prog.tar\n  \
        bpfld image inspect --json oci:layout-dir")]
    Inspect {
        /// `IMAGE.tar`, `oci-archive:IMAGE.tar[:NAME]` or `oci:DIR[:NAME]`.
        image: String,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write the bpfman ClusterBpfApplication that deploys the XDP
    /// programs of an object (a composition's `bpfld_xdp` included),
    /// pushed as the image URL, to the selected nodes; priority and
    /// proceed-on actions come from the object.
    #[command(after_help = "Examples:\n  \
        bpfld image bpfman-yaml -o app.yaml --url quay.io/me/xdp-prog:v1 --interface eth0 prog.o\n  \
        bpfld image bpfman-yaml -o app.yaml --url quay.io/me/xdp-prog:v1 --node-selector kubernetes.io/hostname=edge1 oci-archive:prog.tar")]
    BpfmanYaml {
        /// The output YAML; written atomically.
        #[arg(short = 'o', long = "output", value_name = "OUT.yaml")]
        output: PathBuf,
        /// The image reference the nodes pull (where it was pushed).
        #[arg(long, value_name = "REGISTRY/NAME:TAG")]
        url: String,
        /// The resource's name (default: from the image name).
        #[arg(long)]
        name: Option<String>,
        /// Deploy to nodes with this label (repeatable; default: all nodes).
        #[arg(long = "node-selector", value_name = "KEY=VALUE")]
        node_selector: Vec<String>,
        /// Attach to this interface (repeatable; default: the primary one).
        #[arg(long = "interface", value_name = "IFNAME")]
        interfaces: Vec<String>,
        /// bpfman priority (0-1000) instead of the object's.
        #[arg(long)]
        priority: Option<u32>,
        /// Proceed-on actions instead of the object's: ACTION+ACTION or none.
        #[arg(long, value_name = "ACTIONS")]
        proceed_on: Option<String>,
        /// The object: `FILE.o`, `oci-archive:IMAGE.tar[:NAME]` or `oci:DIR[:NAME]`.
        source: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum XdpCommand {
    /// Compose XDP programs into one object with program `bpfld_xdp`:
    /// run in priority order, each continuing the chain only on the verdicts
    /// in its chain-call set (libxdp's semantics and metadata).
    #[command(after_help = "Examples:\n  \
        bpfld xdp compose -o chain.o drop.o,priority=20 count.o:xdp_count,priority=10\n  \
        bpfld xdp compose -o chain.o pass.o,chain=XDP_PASS+XDP_TX count.o:xdp_count --json")]
    Compose {
        /// The output object; written atomically.
        #[arg(short = 'o', long = "output", value_name = "OUT.o")]
        output: PathBuf,
        /// `FILE.o[:PROGRAM][,priority=N][,chain=ACTION,ACTION|none]`: the
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
        /// Leave the inlined components unoptimised (by default checks and
        /// stores made useless by inlining are removed).
        #[arg(long)]
        no_optimize: bool,
        /// Also write the bpfman custom resource (a ClusterBpfApplication)
        /// that deploys the composition, once pushed as an image (`bpfld
        /// image build`), with its priority and proceed-on actions.
        #[arg(long, value_name = "OUT.yaml")]
        bpfman_manifest: Option<PathBuf>,
        /// With --bpfman-manifest: the image nodes pull (default:
        /// localhost/NAME:latest, NAME the output file's stem).
        #[arg(long, value_name = "REGISTRY/NAME:TAG", requires = "bpfman_manifest")]
        bpfman_url: Option<String>,
        /// With --bpfman-manifest: deploy to nodes with this label
        /// (repeatable; default: every node).
        #[arg(
            long = "node-selector",
            value_name = "KEY=VALUE",
            requires = "bpfman_manifest"
        )]
        node_selector: Vec<String>,
        /// Check the composition's maps pinned by name against the maps
        /// pinned in DIR (xdp-loader's option): a compatible one will be
        /// used, an incompatible one is an error naming both definitions,
        /// the others will be pinned there. Nothing is pinned: composing
        /// writes a file only (`xdp attach --pin-path` loads and pins).
        #[arg(long, value_name = "DIR")]
        pin_path: Option<PathBuf>,
        /// Print the composition as one JSON object (run order, left-out
        /// components, frags, pins, the link report, warnings).
        #[arg(long)]
        json: bool,
    },
    /// Compose and attach to an interface (through netlink: it stays after
    /// bpfld exits); a bpfld composition already there is replaced
    /// atomically. Components that stay (same file and program) keep their
    /// maps and the map of their global variables: the new program uses
    /// the same kernel maps (when the definition is unchanged), so nothing
    /// is copied and no update is lost.
    #[command(after_help = "Examples:\n  \
        bpfld xdp attach --dev eth0 --mode native drop.o,priority=20 count.o:xdp_count,priority=10\n  \
        bpfld xdp attach --dev eth0 --link --json count.o:xdp_count")]
    Attach {
        /// The interface (by name).
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
    #[command(after_help = "Examples:\n  \
        bpfld xdp status\n  \
        bpfld xdp status --dev eth0 --json")]
    Status {
        /// Only this interface (default: every interface with an XDP
        /// program).
        #[arg(long, value_name = "IFACE")]
        dev: Option<String>,
        /// Print JSON: one entry per interface.
        #[arg(long)]
        json: bool,
    },
    /// Remove the XDP program of an interface.
    #[command(after_help = "Examples:\n  \
        bpfld xdp detach --dev eth0\n  \
        bpfld xdp detach --dev eth0 --force --json")]
    Detach {
        /// The interface (by name).
        #[arg(long, value_name = "IFACE")]
        dev: String,
        /// Detach a program bpfld did not attach.
        #[arg(long)]
        force: bool,
        /// Report what was done as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum BtfCommand {
    /// Dump the BTF of an ELF object or a raw BTF file in bpftool's raw format.
    #[command(after_help = "Examples:\n  \
        bpfld btf dump prog.o\n  \
        bpfld btf dump --json /sys/kernel/btf/vmlinux")]
    Dump {
        file: PathBuf,
        /// Print JSON instead of bpftool's text.
        #[arg(long)]
        json: bool,
    },
    /// Merge the BTF of all inputs (ELF objects or raw BTF files) and write
    /// it deduplicated as raw BTF.
    #[command(after_help = "Examples:\n  \
        bpfld btf dedup -o merged.btf main.o lib.o --stats\n  \
        bpfld btf dedup -o vmlinux.btf /sys/kernel/btf/vmlinux")]
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
        /// Print what was written as JSON (with the type counts).
        #[arg(long)]
        json: bool,
    },
    /// Load an ELF object's `.BTF` into the kernel (BPF_BTF_LOAD) after
    /// only the rewrites libbpf makes at load time (`.kconfig`/`.ksyms`
    /// externs); print the kernel's log on a rejection.
    #[command(after_help = "Examples:\n  \
        bpfld btf check prog.o\n  \
        bpfld btf check -v prog.o")]
    Check {
        file: PathBuf,
        /// Also list the rewrites made before loading.
        #[arg(long, short = 'v')]
        verbose: bool,
        /// Print the result as JSON (type count and rewrites).
        #[arg(long)]
        json: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every command and subcommand, by its full name (`xdp attach`).
    fn walk(cmd: &mut clap::Command, path: &str, out: &mut Vec<(String, String)>) {
        let name = if path.is_empty() {
            cmd.get_name().to_string()
        } else {
            format!("{path} {}", cmd.get_name())
        };
        out.push((name.clone(), cmd.render_long_help().to_string()));
        for sub in cmd.get_subcommands_mut() {
            if sub.get_name() != "help" {
                walk(sub, &name, out);
            }
        }
    }

    #[test]
    fn every_command_s_help_ends_with_examples() {
        let mut all = Vec::new();
        walk(&mut Cli::command(), "", &mut all);
        // bpfld itself, 10 commands, and the commands of xdp, btf, image.
        assert!(
            all.len() >= 20,
            "{:?}",
            all.iter().map(|a| &a.0).collect::<Vec<_>>()
        );
        for (name, help) in &all {
            let (_, examples) = help
                .split_once("\nExamples:\n")
                .unwrap_or_else(|| panic!("`{name} --help` has no Examples section:\n{help}"));
            // One or two (a note may follow them), each a whole bpfld
            // command line of this command.
            let lines: Vec<&str> = examples
                .lines()
                .take_while(|l| !l.is_empty())
                .map(str::trim)
                .collect();
            assert!((1..=2).contains(&lines.len()), "`{name} --help`: {lines:?}");
            for l in lines {
                assert!(
                    l == name || l.starts_with(&format!("{name} ")),
                    "`{name} --help`: {l}"
                );
            }
        }
    }
}
