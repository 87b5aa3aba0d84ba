//! Developer and CI tasks. `cargo xtask setup` makes a fresh machine ready; `cargo xtask test`
//! runs every check CI runs.

mod before;
mod bench;
mod dashboard_png;
mod demo;
mod fuzz;
mod inventory;
mod package;
mod release_binary;
mod run;
mod setup;
mod soak;
mod storm;
mod test;
mod test_binaries;

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
    Demo {
        /// The classifier's hook on the router: xdp (native, the default) or tc.
        #[arg(long, value_parser = ["xdp", "tc"])]
        hook: Option<String>,
    },
    /// Run the benchmarks (root): per-packet cost against a baseline program, many flows, first
    /// packets from two CPUs at once, prefix scale,
    /// forwarding against nftables, live update under load, analyze throughput, a metrics scrape
    /// with 100,000 flows. Prints tables and, for a full run, writes BENCHMARKS.md. Takes about
    /// twelve minutes on a 2-core machine.
    Bench {
        /// Only these: per-packet, many-flows, lru-contention, prefix-scale, forwarding,
        /// live-update, analyze, scrape (comma-separated). BENCHMARKS.md is left as it is.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Also build the benchmark of this earlier commit (e.g. the one before a change) and
        /// run its per-packet and many-flows parts alternately with this tree's, three rounds:
        /// a 'Before and after' section measured in one run. Adds a build of that commit and
        /// about ten minutes.
        #[arg(long, value_name = "REV")]
        before: Option<String>,
    },
    /// The soak (root): the lab under mixed load (MPTCP, Apple and normal downloads, DNS
    /// answers, malformed frames) with `classifier run` on the router; samples its memory,
    /// the counters and the kernel log. Not part of CI.
    Soak {
        /// How long the load runs, in minutes.
        #[arg(long, default_value_t = 10)]
        minutes: u64,
    },
    /// The update storm (root): 200 phones (a few over 8 connections), CDN servers learned
    /// from DNS, a non-Apple bulk download and an interactive probe on a shaped link, run
    /// without the classifier, with per-flow and with per-device fairness; prints the report
    /// and the storm's goals, met or missed. About a minute. Not part of CI.
    Storm {
        /// Also write the report into BENCHMARKS.md (its own section, which `bench` keeps).
        #[arg(long)]
        write_benchmarks: bool,
        /// The storm's own flags (`cargo xtask storm -- --help`): --rate, --phones,
        /// --heavy-phones, --idle, --ramp, --seconds, --runs, --fair-leaves, --hook.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        storm_args: Vec<String>,
    },
    /// Run setup, then `cargo fmt --check`, clippy (-D warnings) on the host crates and the eBPF
    /// crate, and every test. Needs root: the tests load programs into this kernel.
    Test {
        /// Arguments passed on to `cargo test` (e.g. a test name filter). With none, every
        /// binary in xtask/test-inventory.txt must run; with some, only what ran is checked.
        #[arg(trailing_var_arg = true)]
        cargo_test_args: Vec<String>,
    },
    /// Write xtask/test-inventory.txt, the test binaries `cargo xtask test` expects and how
    /// many tests each must pass, from `cargo test -- --list` (builds, runs no test). Adding
    /// or removing a test updates the inventory in the same commit.
    Inventory {
        /// Compare the inventory with the tests there are, and write nothing.
        #[arg(long)]
        check: bool,
    },
    /// Build the Debian package with cargo-deb from the release binary: the binary, the
    /// systemd unit (installed disabled), /etc/classifier/config.toml (a conffile), the shipped
    /// lists, man pages and bash/zsh/fish completions. Prints the .deb's path.
    Package,
    /// The dashboard's picture for the README (root): the lab under load with `classifier
    /// run` on its router, scraped every second, the dashboard's panels plotted into
    /// docs/dashboard.png. About a minute.
    DashboardPng {
        /// How long the load runs, in seconds.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
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
        Task::Demo { hook } => demo::demo(hook.as_deref()),
        Task::Bench { only, before } => bench::bench(&only, before.as_deref()),
        Task::Soak { minutes } => soak::soak(minutes),
        Task::Storm {
            write_benchmarks,
            storm_args,
        } => storm::storm(write_benchmarks, &storm_args),
        Task::Test { cargo_test_args } => test::test(&cargo_test_args),
        Task::Inventory { check } => inventory::inventory(check),
        Task::Fuzz {
            packets,
            seed,
            hook,
        } => fuzz::fuzz(packets, seed, hook),
        Task::Package => package::package().map(drop),
        Task::DashboardPng { seconds } => dashboard_png::dashboard_png(seconds),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::{Cli, Task};

    #[test]
    fn the_storm_s_own_flags_pass_through() {
        let cli = Cli::try_parse_from([
            "xtask",
            "storm",
            "--write-benchmarks",
            "--phones",
            "20",
            "--runs",
            "none,per-flow",
        ])
        .unwrap();
        let Task::Storm {
            write_benchmarks,
            storm_args,
        } = cli.task
        else {
            panic!("not the storm");
        };
        assert!(write_benchmarks);
        assert_eq!(storm_args, ["--phones", "20", "--runs", "none,per-flow"]);
    }
}
