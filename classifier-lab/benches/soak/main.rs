//! `cargo xtask soak`: the lab under mixed load for a long while (10 minutes by default):
//! MPTCP transfers, Apple and normal downloads, DNS answers to learn from, and a flood of
//! malformed frames, through a router where `classifier run` is in charge. Every 30 s it
//! samples the daemon's memory, the counters and each load kind's rate; a kind that stalls
//! (`classifier_lab::stall`) or any load error fails the run, with evidence recorded at the
//! first sign (`evidence`). At the end it prints the figures RELIABILITY.md reports. Not
//! part of CI.

mod daemon;
mod evidence;
mod load;
mod watch;

use std::{
    path::PathBuf,
    sync::atomic::Ordering,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Result, bail, ensure};
use clap::Parser;
use classifier_lab::{
    Lab, SERVER_APPLE_V4, SERVER_OTHER_V4, stall,
    traffic::{Flow, InFlight, Link},
};
use daemon::Daemon;

#[derive(Parser)]
#[command(about = "The lab under mixed load; watches memory, counters and the kernel log")]
struct Args {
    /// How long the load runs, in minutes.
    #[arg(long, default_value_t = 10)]
    minutes: u64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 30)]
    every: u64,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    // SAFETY: geteuid has no preconditions.
    ensure!(
        unsafe { libc::geteuid() } == 0,
        "the soak builds namespaces and loads BPF programs: run it as root"
    );
    classifier_lab::remove_all_on_interrupt(format!("classifier-soak-{}", std::process::id()));
    classifier_lab::unless_interrupted(soak(&args))
}

/// The load kinds whose rates the stall detector follows, and the flow each is in.
fn kinds<'a>(
    done: &'a load::Done,
    tally: &watch::Tally,
) -> [(&'static str, u64, Option<&'a InFlight>); 9] {
    let n = |count: &std::sync::atomic::AtomicU64| count.load(Ordering::Relaxed);
    [
        (
            "MPTCP transfers",
            n(&done.mptcp_transfers),
            Some(&done.mptcp_flow),
        ),
        (
            "Apple downloads",
            n(&done.apple_downloads),
            Some(&done.apple_flow),
        ),
        (
            "normal downloads",
            n(&done.normal_downloads),
            Some(&done.normal_flow),
        ),
        ("DNS answers", n(&done.dns_answers), None),
        ("malformed frames offered", n(&done.malformed_frames), None),
        ("mptcp packets", tally.mptcp, Some(&done.mptcp_flow)),
        ("listed packets", tally.listed, Some(&done.apple_flow)),
        ("normal packets", tally.normal, Some(&done.normal_flow)),
        ("malformed packets", tally.malformed, None),
    ]
}

/// At most this many evidence directories a run.
const EVIDENCE_KEPT: usize = 3;

/// Evidence recorded so far, and where.
struct Evidence<'a> {
    lab: &'a Lab,
    classifier: evidence::Classifier<'a>,
    dirs: std::sync::Mutex<Vec<PathBuf>>,
}

impl Evidence<'_> {
    /// Records evidence about `flow` for `kind`, unless the run has enough already.
    fn record(&self, kind: &str, flow: Option<&Flow>, why: &str) {
        let ports = match kind {
            "MPTCP transfers" | "mptcp packets" => Some(load::MPTCP_PORTS),
            "Apple downloads" | "listed packets" => Some(load::APPLE_PORTS),
            "normal downloads" | "normal packets" => Some(load::NORMAL_PORTS),
            _ => None,
        };
        let dir = {
            let mut dirs = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
            if dirs.len() >= EVIDENCE_KEPT {
                return;
            }
            let dir = evidence::directory(kind, dirs.len());
            dirs.push(dir.clone());
            dir
        };
        println!("  recording evidence in {}", dir.display());
        let about = (flow, ports);
        if let Err(error) = evidence::record(self.lab, &self.classifier, about, why, &dir) {
            println!("  recording evidence failed: {error:#}");
        }
    }
}

/// The first sign of a stalled transfer, before its deadline ends it: a flow in flight that
/// moved no byte for `Link::LAB.silence`. Checked every second while the load runs.
fn watch_silence(until: &load::Until, done: &load::Done, evidence: &Evidence<'_>) {
    let loads = [
        ("MPTCP transfers", &done.mptcp_flow),
        ("Apple downloads", &done.apple_flow),
        ("normal downloads", &done.normal_flow),
    ];
    let mut seen: Vec<(Option<Flow>, u64, Instant)> =
        loads.iter().map(|_| (None, 0, Instant::now())).collect();
    let mut recorded: Vec<Flow> = Vec::new();
    while until.going() {
        // A polling period, not a synchronisation.
        thread::sleep(Duration::from_secs(1));
        for ((kind, in_flight), (flow, moved, since)) in loads.iter().zip(&mut seen) {
            let (now_flow, now_moved) = (in_flight.flow(), in_flight.moved());
            if now_flow != *flow || now_moved != *moved {
                (*flow, *moved, *since) = (now_flow, now_moved, Instant::now());
                continue;
            }
            let Some(stuck) = flow.as_ref() else { continue };
            if since.elapsed() >= Link::LAB.silence && !recorded.contains(stuck) {
                recorded.push(stuck.clone());
                let why = format!(
                    "{kind}: {stuck} moved no byte for {} s ({moved} bytes so far)",
                    since.elapsed().as_secs()
                );
                println!("  sign of a stall: {why}");
                evidence.record(kind, Some(stuck), &why);
            }
        }
    }
}

fn soak(args: &Args) -> Result<()> {
    let warnings_before = watch::kernel_warnings()?.len();
    let load_before = watch::load_average();
    let lab = Lab::new()?;
    let daemon = Daemon::start(&lab, "soak", None)?;
    let started = Instant::now();
    let until = load::Until::new(started + Duration::from_secs(args.minutes * 60));
    let done = load::Done::default();
    let evidence = Evidence {
        lab: &lab,
        classifier: evidence::Classifier {
            binary: &daemon.binary,
            pin_dir: &daemon.pin_dir,
        },
        dirs: std::sync::Mutex::new(Vec::new()),
    };
    println!(
        "soak: {} min of mixed load; a sample every {} s; a load kind below {:.0}% of its \
         median rate for more than one sample fails the run, and so does any load error",
        args.minutes,
        args.every,
        stall::FRACTION * 100.0
    );
    println!(
        "  {:>6}  {:>9}  {:>12}  {:>12}  {:>10}  {:>10}  {:>5}  {:>5}",
        "time", "RSS KiB", "packets", "classes-total", "MPTCP", "malformed", "xfers", "load"
    );
    let mut rss = Vec::new();
    let mut worst_gap = 0i64;
    let mut detector = stall::Detector::new(stall::FRACTION);
    let mut failure: Option<String> = None;
    thread::scope(|scope| -> Result<()> {
        scope.spawn(|| load::mptcp(&lab, &until, &done));
        scope.spawn(|| {
            load::downloads(
                &lab,
                &until,
                (SERVER_APPLE_V4, load::APPLE_PORTS.0),
                (&done.apple_downloads, &done.apple_flow),
                &done,
            )
        });
        scope.spawn(|| {
            load::downloads(
                &lab,
                &until,
                (SERVER_OTHER_V4, load::NORMAL_PORTS.0),
                (&done.normal_downloads, &done.normal_flow),
                &done,
            )
        });
        scope.spawn(|| load::dns(&lab, &until, &done));
        scope.spawn(|| load::malformed(&lab, &until, &done));
        scope.spawn(|| watch_silence(&until, &done, &evidence));
        let result = (|| -> Result<()> {
            let mut last = Instant::now();
            let start = watch::tally(&daemon.stats()?)?;
            detector.sample(
                kinds(&done, &start).map(|(kind, count, _)| (kind, count)),
                Duration::ZERO,
            );
            while until.going() {
                // The sampling period: rates are counted over it.
                thread::sleep(
                    Duration::from_secs(args.every)
                        .min(until.deadline.saturating_duration_since(Instant::now())),
                );
                let kib = watch::rss_kib(daemon.child.id())?;
                let tally = watch::tally(&daemon.stats()?)?;
                let elapsed = last.elapsed();
                last = Instant::now();
                // Read while packets are counted: a packet may be in the total and not yet in
                // its class. The exact check is made once the load has stopped.
                let gap = tally.classes as i64 - tally.total as i64;
                worst_gap = worst_gap.max(gap.abs());
                let kinds = kinds(&done, &tally);
                println!(
                    "  {:>5}s  {kib:>9}  {:>12}  {gap:>13}  {:>10}  {:>10}  {:>5}  {:>5}",
                    started.elapsed().as_secs(),
                    tally.total,
                    tally.mptcp,
                    tally.malformed,
                    kinds[0].1,
                    watch::load_average().split(' ').next().unwrap_or("?"),
                );
                rss.push(kib);
                for slow in detector.sample(kinds.iter().map(|(k, n, _)| (*k, *n)), elapsed) {
                    println!("  slow: {slow}");
                    let flow = kinds
                        .iter()
                        .find(|(kind, _, _)| *kind == slow.kind)
                        .and_then(|(_, _, in_flight)| in_flight.and_then(|f| f.flow()));
                    if slow.in_a_row == 1 {
                        evidence.record(&slow.kind, flow.as_ref(), &format!("slow: {slow}"));
                    }
                    if slow.is_stall() && failure.is_none() {
                        failure = Some(format!("stalled: {slow}"));
                    }
                }
                let blackholes = lab.client.nstat_counter("MPTcpExtBlackhole")?;
                if blackholes > 0 && failure.is_none() {
                    failure = Some(format!(
                        "the client's kernel turned active MPTCP off ({blackholes} blackhole(s))"
                    ));
                }
                let errors = done.errors.load(Ordering::Relaxed);
                if errors > 0 && failure.is_none() {
                    let first = done
                        .first_errors
                        .lock()
                        .map_or(String::new(), |e| e.join("; "));
                    evidence.record("load error", None, &first);
                    failure = Some(format!("{errors} load error(s): {first}"));
                }
                if failure.is_some() {
                    until.stop();
                }
            }
            Ok(())
        })();
        until.stop();
        result
    })?;
    // Counters settle once the last packets are through.
    thread::sleep(Duration::from_secs(1));
    let end = watch::tally(&daemon.stats()?)?;
    let warnings = watch::kernel_warnings()?;
    let new_warnings = &warnings[warnings_before.min(warnings.len())..];
    let alive = daemon_alive(&daemon);
    let counters = lab.client.nstat(&[
        "MPTcpExtMPCapable",
        "MPTcpExtBlackhole",
        "TcpExtTCPSynRetrans",
    ])?;
    let dirs = evidence
        .dirs
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    drop(daemon);
    drop(lab);

    let (first, last) = (rss[0], *rss.last().expect("samples"));
    let max = *rss.iter().max().expect("samples");
    println!("\nsoak result after {} s", started.elapsed().as_secs());
    println!(
        "  load: {} MPTCP transfers of 4 MiB ({} fell back to TCP), {} Apple and {} normal \
         downloads of 2 s, {} DNS answers ({} datagrams lost), {} malformed frames offered, \
         {} load errors",
        done.mptcp_transfers.load(Ordering::Relaxed),
        done.mptcp_fallbacks.load(Ordering::Relaxed),
        done.apple_downloads.load(Ordering::Relaxed),
        done.normal_downloads.load(Ordering::Relaxed),
        done.dns_answers.load(Ordering::Relaxed),
        done.dns_lost.load(Ordering::Relaxed),
        done.malformed_frames.load(Ordering::Relaxed),
        done.errors.load(Ordering::Relaxed)
    );
    println!(
        "  packets classified: {} (MPTCP {}, listed {}, malformed {})",
        end.total, end.mptcp, end.listed, end.malformed
    );
    println!(
        "  classes add up to the total at the end: {} ({} vs {}); largest gap while \
         counting: {worst_gap}",
        end.classes == end.total,
        end.classes,
        end.total
    );
    println!(
        "  classifier run RSS: first sample {first} KiB, last {last} KiB, max {max} KiB ({:+} KiB)",
        last as i64 - first as i64
    );
    println!("  classifier run still running at the end: {alive}");
    println!("  new kernel warnings: {}", new_warnings.len());
    for line in new_warnings {
        println!("    {line}");
    }
    println!(
        "  lowest sample of each load kind, as a share of its median: {}",
        detector
            .lowest_shares()
            .iter()
            .map(|(kind, share)| format!("{kind} {:.0}%", share * 100.0))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  client kernel: {}",
        counters
            .iter()
            .filter(|(_, value)| *value > 0)
            .map(|(name, value)| format!("{name} {value}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  load average: {load_before} before, {} at the end",
        watch::load_average()
    );
    for dir in &dirs {
        println!("  evidence: {}", dir.display());
    }
    if let Some(failure) = failure {
        bail!("the soak failed: {failure}");
    }
    ensure!(
        end.classes == end.total,
        "the classes do not add up to the total"
    );
    println!("  soak passed");
    Ok(())
}

fn daemon_alive(daemon: &Daemon) -> bool {
    std::path::Path::new(&format!("/proc/{}", daemon.child.id())).exists()
}
