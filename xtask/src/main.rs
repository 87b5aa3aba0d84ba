//! Developer and CI tasks. `cargo xtask setup` makes a fresh machine ready; `cargo xtask test`
//! runs every check CI runs.

mod bench;
mod demo;
mod fuzz;
mod release_binary;
mod run;
mod setup;
mod soak;
mod test;

use clap::{Parser, Subcommand};

/// Tasks for developing the classifier. Run from anywhere in the workspace.
#[derive(Parser)]
#[command(about)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what building and testing need: nightly's rust-src, bpf-linker built against
    /// nightly's own LLVM, and the Debian packages the tests use. Idempotent: seconds when
    /// everything is there already.
    Setup,
    /// Run the lab: three network namespaces (client, router, server), the classifier on the
    /// router, real MPTCP and Apple traffic, a shaped link; prints a report and removes
    /// everything. Needs root.
    Demo,
    /// Run the benchmarks (root): per-packet cost against a baseline program, many flows, prefix scale,
    /// forwarding against nftables, live update under load, analyze throughput. Prints tables
    /// and, for a full run, writes BENCHMARKS.md. Takes about five minutes.
    Bench {
        /// Only these: per-packet, many-flows, prefix-scale, forwarding, live-update, analyze
        /// (comma-separated). BENCHMARKS.md is left as it is.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// The soak (root): the lab under mixed load (MPTCP, Apple and normal downloads, DNS
    /// answers, malformed frames) with `classifier run` on the router; samples its memory,
    /// the counters and the kernel log. Not part of CI.
    Soak {
        /// How long the load runs, in minutes.
        #[arg(long, default_value_t = 10)]
        minutes: u64,
    },
    /// Run setup, then `cargo fmt --check`, clippy (-D warnings) on the host crates and the eBPF
    /// crate, and every test. Needs root: the tests load programs into this kernel.
    Test {
        /// Arguments passed on to `cargo test` (e.g. a test name filter).
        #[arg(trailing_var_arg = true)]
        cargo_test_args: Vec<String>,
    },
    /// Differential fuzzing: random and corrupted packets through the kernel program, each
    /// compared with a reference model on the host; prints the totals and every disagreement.
    /// Release build. Needs root.
    Fuzz {
        /// How many packets.
        #[arg(long, default_value_t = 1_000_000)]
        packets: u64,
        /// The seed (decimal or 0x hex) of a run to repeat; a new one by default.
        #[arg(long, value_parser = fuzz::parse_seed)]
        seed: Option<u64>,
        /// The program to fuzz: XDP's, tc's, or both in turn.
        #[arg(long, value_enum, default_value_t = fuzz::FuzzHook::Both)]
        hook: fuzz::FuzzHook,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Setup => setup::setup(),
        Task::Demo => demo::demo(),
        Task::Bench { only } => bench::bench(&only),
        Task::Soak { minutes } => soak::soak(minutes),
        Task::Test { cargo_test_args } => test::test(&cargo_test_args),
        Task::Fuzz {
            packets,
            seed,
            hook,
        } => fuzz::fuzz(packets, seed, hook),
    }
}
