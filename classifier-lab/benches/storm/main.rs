//! `cargo xtask storm`: the update storm in the lab, run three ways on the same
//! shaped link (no classifier, per-flow, per-device) and reported side by side with the
//! issue's goals. Not part of CI: `classifier-user/tests/lab_storm.rs` is its small form.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{Result, ensure};
use clap::{Parser, ValueEnum};
use classifier::Hook;
use classifier_lab::storm::{self, Setup, Spec, summary};

#[derive(Parser)]
#[command(
    about = "The update storm: phones, CDN servers learned from DNS, a bulk download \
                   and an interactive probe on a shaped link"
)]
struct Args {
    /// The shaped rate of the link towards the phones, in Mbit/s.
    #[arg(long, default_value_t = 50)]
    rate: u64,
    /// The bulk class's floor, percent of the rate.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(1..=99))]
    bulk_floor: u8,
    /// How many phones.
    #[arg(long, default_value_t = 200)]
    phones: usize,
    /// How many of them download over --heavy-connections connections.
    #[arg(long, default_value_t = 5)]
    heavy_phones: usize,
    #[arg(long, default_value_t = 8)]
    heavy_connections: usize,
    /// Seconds of probes on the idle link before each storm.
    #[arg(long, default_value_t = 3)]
    idle: u64,
    /// Seconds of storm before measuring (connections opening, slow start).
    #[arg(long, default_value_t = 3)]
    ramp: u64,
    /// Seconds of storm measured.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Which runs, in order (comma-separated).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "none,per-flow,per-device"
    )]
    runs: Vec<Run>,
    /// The hook `classifier run` attaches at (`classifier run --hook`); without it, run's
    /// default: native XDP on the lab's veths.
    #[arg(long, value_enum)]
    hook: Option<HookArg>,
    /// The leaves of per-device fairness (`classifier shape --fair K`).
    #[arg(long, default_value_t = 256)]
    fair_leaves: u32,
    /// Write the report into this BENCHMARKS.md, as its storm section.
    #[arg(long, value_name = "FILE")]
    write_benchmarks: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum HookArg {
    Xdp,
    Tc,
}

#[derive(Clone, Copy, ValueEnum)]
enum Run {
    None,
    PerFlow,
    PerDevice,
}

/// How the figures are measured, for BENCHMARKS.md.
const METHOD: &str = "Written by `cargo xtask storm --write-benchmarks` (as root; `cargo xtask \
storm` prints the same without writing). Each run builds the lab anew (client, router and \
server namespaces), adds the phones as addresses on the client's one interface and the servers \
as addresses on the server's, and shapes the router's interface towards the phones with \
`classifier shape` (HTB; this kernel has no fq_codel, so a class without leaves queues in \
one pfifo of up to 1,000 packets). Without the classifier the link is one such FIFO \
(`--flows off`, nothing marked); with it the normal class is shared between flows in 256 HTB \
leaves of a 64-packet pfifo each (`--flows 256`). With the classifier, `classifier run` is attached to the \
router's three interfaces with the policy `list:apple=LE` and learns the CDN servers from the \
phones' own lookups, which the router sees; the storm starts once `classifier prefixes list` \
shows them learned. Goodput is what the receivers read inside the measured window (after the \
ramp-up); the shaper counts frames, so the floor is compared with goodput × 1514/1448. Jain's \
index is over the phones' goodput (a phone with 8 connections is one phone). The probe's round \
trips are timed by the client from send to full response; one not answered within 2 s counts \
as lost, and as 2 s in the percentiles. \"Phones the classifier saw\" is the length of \
`classifier devices --list apple --json`'s `devices`. The CNAME-only servers' packets are \
counted by nftables in the client, by DSCP, independently of the classifier's counters.";

fn main() -> Result<ExitCode> {
    let args = Args::parse();
    // SAFETY: geteuid has no preconditions.
    ensure!(
        unsafe { libc::geteuid() } == 0,
        "the storm builds namespaces and loads BPF programs: run it as root"
    );
    let prefix = format!("classifier-storm-{}", std::process::id());
    classifier_lab::remove_all_on_interrupt(prefix.clone());
    classifier_lab::unless_interrupted(storm(&args, &prefix))
}

fn storm(args: &Args, prefix: &str) -> Result<ExitCode> {
    let binary = classifier_lab::classifier_binary()?;
    let spec = Spec {
        rate_mbit: args.rate,
        bulk_floor: args.bulk_floor,
        phones: args.phones,
        heavy_phones: args.heavy_phones.min(args.phones),
        heavy_connections: args.heavy_connections.max(1),
        idle: Duration::from_secs(args.idle),
        ramp: Duration::from_secs(args.ramp),
        measure: Duration::from_secs(args.seconds.max(1)),
        hook: args.hook.map(|hook| match hook {
            HookArg::Xdp => Hook::Xdp,
            HookArg::Tc => Hook::Tc,
        }),
    };
    // The 1-minute load average, as the kernel gives it: the storm's figures depend on it.
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("storm: {}\n", summary::describe(&spec));
    let mut runs = Vec::new();
    for run in &args.runs {
        let setup = match run {
            Run::None => Setup::NoClassifier,
            Run::PerFlow => Setup::PerFlow,
            Run::PerDevice => Setup::PerDevice(args.fair_leaves),
        };
        println!("run: {} ...", setup.name());
        let outcome = storm::run(&binary, &spec, setup, prefix);
        if let Err(error) = &outcome {
            eprintln!("run {} failed: {error}", setup.name());
        }
        runs.push((setup, outcome.map_err(|e| e.to_string())));
    }
    println!("\n{}", summary::text(&spec, &runs));
    if let Some(path) = &args.write_benchmarks {
        let method = format!(
            "{METHOD} Other work on the machine moves these figures: the load average when \
             this run started was {load}."
        );
        summary::SECTION.write(path, &summary::markdown(&spec, &runs, &method))?;
        println!("written to {} (its storm section)", path.display());
    }
    if runs.iter().any(|(_, outcome)| outcome.is_err()) {
        eprintln!("storm: a run failed (above); its column says `not run`");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
