//! `cargo xtask bench`: what the classifier costs, measured against a baseline in the same
//! run, printed as tables and written to BENCHMARKS.md with the method, the machine and the
//! date. Needs root (it loads programs and builds namespaces) and the lab's tools.

mod ablation;
mod analyze;
mod before_after;
mod cli;
mod dns_learning;
mod forwarding;
mod live_update;
mod lru_contention;
mod machine;
mod many_flows;
mod packets;
mod per_packet;
mod prefix_lists;
mod prefix_scale;
mod scrape;
mod table;
mod timing;

use std::{fmt::Write as _, path::PathBuf, time::Instant};

use anyhow::{Result, ensure};
use clap::{Parser, ValueEnum};

use table::Section;

#[derive(Parser)]
#[command(about = "Benchmarks of the classifier against a baseline, written to BENCHMARKS.md")]
struct Args {
    /// Where to write the report (Markdown). Without it, only the tables are printed.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Only these benchmarks [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Bench>,
    /// The benchmark binary of an earlier commit, built by `cargo xtask bench --before REV`:
    /// its per-packet and many-flows parts and this tree's are run alternately and compared
    /// in a 'Before and after' section.
    #[arg(long, value_name = "BINARY", requires = "before_commit")]
    before_bench: Option<PathBuf>,
    /// The commit `--before-bench` was built from, as the report names it.
    #[arg(long, value_name = "REV", requires = "before_bench")]
    before_commit: Option<String>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Bench {
    PerPacket,
    ManyFlows,
    LruContention,
    PrefixScale,
    Forwarding,
    LiveUpdate,
    Analyze,
    Scrape,
    DnsLearning,
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(
        nix_is_root(),
        "the benchmarks load BPF programs and build network namespaces: run them as root"
    );
    classifier_lab::remove_all_on_interrupt(format!("classifier-bench-{}", std::process::id()));
    classifier_lab::unless_interrupted(run(&args))
}

fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    let machine = machine::describe();
    println!("{machine}");
    let wanted = |bench| args.only.is_empty() || args.only.contains(&bench);
    let mut sections: Vec<Section> = Vec::new();
    if wanted(Bench::PerPacket) {
        sections.push(per_packet::run()?);
    }
    if wanted(Bench::ManyFlows) {
        sections.push(many_flows::run()?);
    }
    if wanted(Bench::LruContention) {
        sections.push(lru_contention::run()?);
    }
    if wanted(Bench::PrefixScale) {
        sections.push(prefix_scale::run()?);
    }
    if wanted(Bench::Forwarding) {
        sections.push(forwarding::run()?);
    }
    if wanted(Bench::LiveUpdate) {
        sections.push(live_update::run()?);
    }
    if wanted(Bench::Analyze) {
        sections.push(analyze::run()?);
    }
    if wanted(Bench::Scrape) {
        sections.push(scrape::run()?);
    }
    if wanted(Bench::DnsLearning) {
        sections.push(dns_learning::run()?);
    }
    let before_and_after = match (&args.before_bench, &args.before_commit) {
        (Some(bench), Some(commit)) => Some(before_after::run(&before_after::Before {
            bench: bench.clone(),
            commit: commit.clone(),
        })?),
        _ => None,
    };
    if let Some(out) = &args.out {
        let mut text = report(&machine, &sections, started.elapsed().as_secs());
        // The storm's section is `cargo xtask storm`'s to write, and the comparison with an
        // earlier commit `--before`'s: without a new one, each is kept as it is.
        let old = std::fs::read_to_string(out).unwrap_or_default();
        text = classifier_lab::storm::summary::SECTION.carry_over(&old, text);
        text = match &before_and_after {
            Some(section) => before_after::SECTION.put(&text, section),
            None => before_after::SECTION.carry_over(&old, text),
        };
        std::fs::write(out, text)?;
        println!("\nwritten to {}", out.display());
    }
    Ok(())
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// BENCHMARKS.md: the targets with their measured values, then each benchmark's method,
/// tables and notes.
fn report(machine: &str, sections: &[Section], seconds: u64) -> String {
    let mut text = String::from(
        "# Benchmarks\n\nWritten by `cargo xtask bench` (as root); every figure below comes \
         from one run of it, on one machine, and every comparison was measured in that run: \
         absolute times on a shared machine move from run to run, comparisons made side by \
         side much less.\n\n",
    );
    let _ = writeln!(text, "{machine}\n\nThe run took {seconds} s.\n");
    text.push_str("## Targets\n\n| target | goal | measured | |\n|---|---|---:|---|\n");
    for target in sections.iter().flat_map(|s| &s.targets) {
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} |",
            target.what,
            target.goal,
            target.measured,
            if target.met { "met" } else { "**missed**" }
        );
    }
    for section in sections {
        let _ = write!(text, "\n## {}\n\n{}\n\n", section.title, section.method);
        for table in &section.tables {
            let _ = writeln!(text, "{}", table.markdown());
        }
        if !section.notes.is_empty() {
            let _ = writeln!(text, "{}\n", section.notes.trim_end());
        }
    }
    text
}
