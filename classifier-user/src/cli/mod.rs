//! The command-line interface: global options, the subcommands, and what they share.

mod analyze;
mod attach;
mod completion;
mod devices;
mod failure;
mod flows;
mod generate;
pub mod output;
mod policy;
mod prefixes;
mod run;
mod shape;
mod state;
mod stats;
mod status;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use classifier::{
    PinDir,
    config_file::{ConfigFile, DEFAULT_CONFIG_FILE},
    control::netns,
    load::DEFAULT_PIN_DIR,
};
pub use failure::{Failure, json_requested};
use output::Format;

/// Classify and deprioritize Apple/CDN and Multipath TCP traffic on a Linux router, in the
/// kernel's fast path (XDP).
///
/// `classifier attach` loads the program and pins it with its maps under the pin directory;
/// every other command works on that pinned state from any shell, so no daemon is needed and
/// nothing is lost when the CLI exits.
#[derive(Parser)]
#[command(name = "classifier", version, propagate_version = true)]
#[command(after_help = "Examples:
  classifier attach eth1 eth2                  # classify what enters eth1 and eth2
  classifier prefixes add 198.51.100.0/24      # add a prefix to the apple list
  classifier policy set list:apple=LE mptcp=CS1
  classifier stats --watch 2                   # counters and rates every 2 s
  classifier flows --mptcp --top 10
  classifier devices --list apple --top 20     # the devices pulling from the apple list
  classifier shape eth0 --rate 950mbit         # deprioritize LE/CS1 on eth0's egress
  classifier analyze update.pcap               # what would the classifier do with a capture
  classifier detach --all")]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct Global {
    /// bpffs directory holding the pinned state [default: /sys/fs/bpf/classifier, or the
    /// config file's pin_dir]. bpffs is mounted on /sys/fs/bpf if it is not.
    #[arg(long, global = true, env = "CLASSIFIER_PIN_DIR", value_name = "DIR")]
    pin_dir: Option<PathBuf>,
    /// Act on the interfaces of network namespace NAME (/run/netns/NAME); the state stays pinned
    /// in the host's bpffs. Running under `nsenter --net=...` works too.
    #[arg(long, global = true, value_name = "NAME")]
    netns: Option<String>,
    /// Configuration file (TOML: pin_dir, policy, lists and their files) [default:
    /// /etc/classifier/config.toml, if it exists]. Flags override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// JSON output, as bpftool: one document per command (the streams, `stats --watch` and
    /// `analyze`, print one object per line), and an error as {"error": {"kind", "message",
    /// "exit_code"}} on stdout. Schemas: docs/json/.
    #[arg(short = 'j', long, global = true)]
    json: bool,
    /// Indented JSON (implies --json; streams stay one object per line).
    #[arg(short = 'p', long, global = true)]
    pretty: bool,
}

#[derive(Subcommand)]
enum Command {
    Attach(attach::AttachArgs),
    Detach(attach::DetachArgs),
    Status(status::StatusArgs),
    Prefixes(prefixes::PrefixesArgs),
    Policy(policy::PolicyArgs),
    State(state::StateArgs),
    Stats(stats::StatsArgs),
    Flows(flows::FlowsArgs),
    Devices(devices::DevicesArgs),
    Shape(shape::ShapeArgs),
    Analyze(analyze::AnalyzeArgs),
    Run(run::RunArgs),
    /// Write the man pages or the shell completions into a directory (for packaging).
    #[command(hide = true)]
    Generate(generate::GenerateArgs),
}

/// What every subcommand gets: the pin directory, the configuration file and the output
/// format.
pub struct Context {
    pub pin_dir: PinDir,
    pub config: ConfigFile,
    pub format: Format,
}

impl Cli {
    /// Whether a closed pipe may kill this command (SIGPIPE's default action): not `run`,
    /// whose metrics sockets a scraper may close, nor `shape`, which feeds `tc -batch` and
    /// undoes what it did when `tc` stops reading.
    pub fn may_die_of_a_closed_pipe(&self) -> bool {
        !matches!(self.command, Command::Run(_) | Command::Shape(_))
    }

    pub fn format(&self) -> Format {
        if self.global.json || self.global.pretty {
            Format::Json {
                pretty: self.global.pretty,
            }
        } else {
            Format::Text
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    // Needs neither the state nor the config file: it runs at package build time.
    if let Command::Generate(args) = cli.command {
        return generate::generate(args);
    }
    let config = match &cli.global.config {
        Some(path) => ConfigFile::read(path, true)?,
        None => ConfigFile::read(DEFAULT_CONFIG_FILE.as_ref(), false)?,
    };
    let pin_dir = cli
        .global
        .pin_dir
        .clone()
        .or_else(|| config.pin_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PIN_DIR));
    if let Some(name) = &cli.global.netns {
        netns::enter(name).with_context(|| format!("--netns {name}"))?;
    }
    let context = Context {
        pin_dir: PinDir::new(pin_dir),
        config,
        format: cli.format(),
    };
    match cli.command {
        Command::Attach(args) => attach::attach(&context, args),
        Command::Detach(args) => attach::detach(&context, args),
        Command::Status(args) => status::status(&context, args),
        Command::Prefixes(args) => prefixes::prefixes(&context, args),
        Command::Policy(args) => policy::policy(&context, args),
        Command::State(args) => state::state(&context, args),
        Command::Stats(args) => stats::stats(&context, args),
        Command::Flows(args) => flows::flows(&context, args),
        Command::Devices(args) => devices::devices(&context, args),
        Command::Shape(args) => shape::shape(&context, args),
        Command::Analyze(args) => analyze::analyze(&context, args),
        Command::Run(args) => run::run(&context, args),
        Command::Generate(_) => unreachable!("generate runs before the config file is read"),
    }
}
