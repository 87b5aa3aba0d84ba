//! `classifier`: the command-line entry point. The subcommands arrive with the CLI issue; for
//! now the binary loads the program into the kernel to prove it passes the verifier.

use anyhow::Context as _;
use clap::Parser;

/// An XDP traffic classifier and deprioritizer for Linux routers.
#[derive(Parser)]
#[command(version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    let classifier = classifier::Classifier::load().context("loading the classifier")?;
    let info = classifier.xdp()?.info().context("reading program info")?;
    println!("classifier program loaded: id {}", info.id());
    Ok(())
}
