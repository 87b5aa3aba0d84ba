//! `cargo xtask soak`: the lab under mixed load for a long while (10 minutes by default):
//! MPTCP transfers, Apple and normal downloads, DNS answers to learn from, and a flood of
//! malformed frames, through a router where `classifier run` is in charge. Every 30 s it
//! samples the daemon's memory, the counters and the kernel log; at the end it prints the
//! figures RELIABILITY.md reports. Not part of CI.

mod load;
#[allow(
    dead_code,
    reason = "the test suite's packet builders; the soak uses a part"
)]
#[path = "../../../classifier-user/tests/support/packet.rs"]
mod packet;
mod watch;

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::atomic::Ordering,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use clap::Parser;
use classifier_lab::{Lab, ROUTER_INGRESS, SERVER_APPLE_V4, SERVER_OTHER_V4};

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

/// `classifier run` in the router, with its own pin directory; stopped and purged on drop.
struct Daemon {
    /// The `classifier` binary (`CLASSIFIER_BIN`).
    binary: PathBuf,
    child: Child,
    pin_dir: String,
    config: PathBuf,
}

impl Daemon {
    fn start(lab: &Lab) -> Result<Self> {
        let pin_dir = format!("/sys/fs/bpf/classifier-soak-{}", std::process::id());
        let config =
            std::env::temp_dir().join(format!("classifier-soak-{}.toml", std::process::id()));
        std::fs::write(&config, "policy = [\"list:apple=LE\", \"mptcp=LE\"]\n")?;
        let binary = classifier_lab::classifier_binary()?;
        let child = Command::new(&binary)
            .env("CLASSIFIER_PIN_DIR", &pin_dir)
            .env("RUST_LOG", "warn")
            .arg("--config")
            .arg(&config)
            .args(["--netns", lab.router.name(), "run", "--metrics", "off"])
            .args(ROUTER_INGRESS)
            .stdout(Stdio::null())
            .spawn()
            .context("starting classifier run")?;
        let daemon = Self {
            binary,
            child,
            pin_dir,
            config,
        };
        for _ in 0..100 {
            if daemon.stats().is_ok() {
                return Ok(daemon);
            }
            thread::sleep(Duration::from_millis(100));
        }
        bail!("classifier run did not attach within 10 s")
    }

    fn stats(&self) -> Result<serde_json::Value> {
        let output = Command::new(&self.binary)
            .env("CLASSIFIER_PIN_DIR", &self.pin_dir)
            .args(["--config", "/dev/null", "stats", "--json"])
            .output()?;
        ensure!(output.status.success(), "classifier stats failed");
        Ok(serde_json::from_slice(&output.stdout)?)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        let _ = Command::new(&self.binary)
            .env("CLASSIFIER_PIN_DIR", &self.pin_dir)
            .args(["--config", "/dev/null", "detach", "--all", "--purge"])
            .output();
        let _ = std::fs::remove_dir_all(&self.pin_dir);
        let _ = std::fs::remove_file(&self.config);
    }
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

fn soak(args: &Args) -> Result<()> {
    let warnings_before = watch::kernel_warnings()?.len();
    let lab = Lab::new()?;
    let daemon = Daemon::start(&lab)?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.minutes * 60);
    let done = load::Done::default();
    println!(
        "soak: {} min of mixed load; a sample every {} s",
        args.minutes, args.every
    );
    println!(
        "  {:>6}  {:>9}  {:>12}  {:>12}  {:>10}  {:>10}",
        "time", "RSS KiB", "packets", "classes-total", "MPTCP", "malformed"
    );
    let mut rss = Vec::new();
    let mut worst_gap = 0i64;
    thread::scope(|scope| -> Result<()> {
        scope.spawn(|| load::mptcp(&lab, deadline, &done));
        scope.spawn(|| {
            load::downloads(
                &lab,
                deadline,
                SERVER_APPLE_V4,
                8000,
                &done.apple_downloads,
                &done,
            )
        });
        scope.spawn(|| {
            load::downloads(
                &lab,
                deadline,
                SERVER_OTHER_V4,
                9000,
                &done.normal_downloads,
                &done,
            )
        });
        scope.spawn(|| load::dns(&lab, deadline, &done));
        scope.spawn(|| load::malformed(&lab, deadline, &done));
        while Instant::now() < deadline {
            thread::sleep(
                Duration::from_secs(args.every)
                    .min(deadline.saturating_duration_since(Instant::now())),
            );
            let kib = watch::rss_kib(daemon.child.id())?;
            let tally = watch::tally(&daemon.stats()?)?;
            // Read while packets are counted: a packet may be in the total and not yet in its
            // class. The exact check is made once the load has stopped.
            let gap = tally.classes as i64 - tally.total as i64;
            worst_gap = worst_gap.max(gap.abs());
            println!(
                "  {:>5}s  {kib:>9}  {:>12}  {gap:>13}  {:>10}  {:>10}",
                started.elapsed().as_secs(),
                tally.total,
                tally.mptcp,
                tally.malformed
            );
            rss.push(kib);
        }
        Ok(())
    })?;
    thread::sleep(Duration::from_secs(1));
    let end = watch::tally(&daemon.stats()?)?;
    let warnings = watch::kernel_warnings()?;
    let new_warnings = &warnings[warnings_before.min(warnings.len())..];
    let alive = daemon_alive(&daemon);
    drop(daemon);
    drop(lab);

    let (first, last) = (rss[0], *rss.last().expect("samples"));
    let max = *rss.iter().max().expect("samples");
    println!("\nsoak result after {} s", started.elapsed().as_secs());
    println!(
        "  load: {} MPTCP transfers of 4 MiB, {} Apple and {} normal downloads of 2 s, {} DNS \
         answers, {} malformed frames offered, {} load errors",
        done.mptcp_transfers.load(Ordering::Relaxed),
        done.apple_downloads.load(Ordering::Relaxed),
        done.normal_downloads.load(Ordering::Relaxed),
        done.dns_answers.load(Ordering::Relaxed),
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
    ensure!(
        end.classes == end.total,
        "the classes do not add up to the total"
    );
    Ok(())
}

fn daemon_alive(daemon: &Daemon) -> bool {
    std::path::Path::new(&format!("/proc/{}", daemon.child.id())).exists()
}
