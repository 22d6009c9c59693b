//! Shell completions and manual pages, generated from the same clap
//! grammar (`args.rs`) that parses the command line, so they cannot drift.

use clap::CommandFactory;

use crate::args::{Cli, Shell};
use bpfld::{Error, Result};

/// The completion script for `shell`.
pub(crate) fn completions(shell: Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "bpfld", &mut out);
    out
}

/// The roff manual page of bpfld (`path` empty) or of the command `path`
/// names (`["xdp", "attach"]` is `bpfld-xdp-attach(1)`).
pub(crate) fn man(path: &[String]) -> Result<Vec<u8>> {
    let mut cmd = Cli::command();
    // Gives subcommands their full names (bpfld-xdp-attach).
    cmd.build();
    for (depth, name) in path.iter().enumerate() {
        let Some(sub) = cmd.find_subcommand(name).cloned() else {
            let known: Vec<&str> = cmd
                .get_subcommands()
                .map(|c| c.get_name())
                .filter(|n| *n != "help")
                .collect();
            let under = if depth == 0 {
                "bpfld".to_string()
            } else {
                format!("bpfld {}", path[..depth].join(" "))
            };
            return Err(Error::new(format!(
                "man: '{under}' has no command '{name}' (it has: {})",
                known.join(", ")
            )));
        };
        cmd = sub;
    }
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .map_err(|e| Error::new(format!("man: cannot render the page: {e}")))?;
    Ok(out)
}
