//! `classifier generate man|completions DIR` (hidden): the man pages and the shell
//! completions, made from the same clap definitions as `--help` so they cannot drift from it.
//! `cargo xtask package` runs it on the release binary it packages.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use clap::{Args, CommandFactory as _, Subcommand};
use clap_complete::env::{Bash, EnvCompleter, Fish, Zsh};

use super::Cli;

#[derive(Args)]
pub struct GenerateArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// classifier.8 and one page per subcommand (classifier-attach.8, classifier-prefixes-add.8, ...).
    Man { dir: PathBuf },
    /// bash (classifier), zsh (_classifier) and fish (classifier.fish) completion scripts.
    Completions {
        dir: PathBuf,
        /// The binary the scripts call back for candidates (the package's /usr/sbin/classifier).
        #[arg(long, default_value = "classifier")]
        completer: String,
    },
}

pub fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    match args.what {
        What::Man { dir } => man_pages(&dir),
        What::Completions { dir, completer } => completions(&dir, &completer),
    }
}

fn man_pages(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    write_man_page(command, dir)
}

/// This command's page, then its subcommands' (not the hidden ones, such as this one).
fn write_man_page(command: clap::Command, dir: &Path) -> anyhow::Result<()> {
    for subcommand in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_man_page(subcommand.clone(), dir)?;
    }
    let page = clap_mangen::Man::new(command)
        .section("8")
        .source(concat!("classifier ", env!("CARGO_PKG_VERSION")))
        .manual("System Administration");
    let path = page
        .generate_to(dir)
        .with_context(|| format!("writing a man page into {}", dir.display()))?;
    eprintln!("{}", path.display());
    Ok(())
}

fn completions(dir: &Path, completer: &str) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let shells: [(&dyn EnvCompleter, &str); 3] = [
        (&Bash, "classifier"),
        (&Zsh, "_classifier"),
        (&Fish, "classifier.fish"),
    ];
    for (shell, file) in shells {
        let mut script = Vec::new();
        // The registration calls `COMPLETE=<shell> <completer> -- <words>`, which main answers.
        shell
            .write_registration(
                "COMPLETE",
                "classifier",
                "classifier",
                completer,
                &mut script,
            )
            .with_context(|| format!("writing the {} completion", shell.name()))?;
        let path = dir.join(file);
        fs::write(&path, script).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("{}", path.display());
    }
    Ok(())
}
