//! `cargo xtask dashboard-png`: the picture of the Grafana dashboard in the README. The lab
//! runs `classifier run` on its router under load that starts kind by kind (normal downloads,
//! then Apple downloads, MPTCP transfers, DNS answers to learn from, malformed frames); its
//! metrics endpoint is scraped every second, and the dashboard's panels are plotted from the
//! scrapes with the same sums, rates and ratios as deploy/grafana/classifier.json.

#[path = "../soak/daemon.rs"]
mod daemon;
#[allow(dead_code, reason = "the soak's load generators; this uses a part")]
#[path = "../soak/load.rs"]
mod load;
mod plot;
mod samples;

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    path::PathBuf,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Result, bail, ensure};
use clap::Parser;
use classifier_lab::{Lab, SERVER_APPLE_V4, SERVER_OTHER_V4};
use daemon::Daemon;
use plot::Panel;
use samples::{Scrape, gauge_by, nonzero, rate_by, ratio};

#[derive(Parser)]
#[command(about = "A lab run of classifier, scraped every second, plotted as the dashboard")]
struct Args {
    /// How long the load runs, in seconds (each kind starts a sixth of it after the last).
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// The PNG to write.
    #[arg(long)]
    out: PathBuf,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

const METRICS_PORT: u16 = 9417;

/// The body of `GET /metrics` on the router's loopback.
fn scrape(lab: &Lab) -> Result<String> {
    let response = lab.router.enter(|| -> std::io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", METRICS_PORT))?;
        stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    })??;
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    ensure!(
        body.contains("classifier_packets_total"),
        "no metrics in: {response}"
    );
    Ok(body.to_owned())
}

fn main() -> Result<()> {
    let args = Args::parse();
    // SAFETY: geteuid has no preconditions.
    ensure!(
        unsafe { libc::geteuid() } == 0,
        "the lab builds namespaces and loads BPF programs: run it as root"
    );
    classifier_lab::remove_all_on_interrupt(format!("classifier-dashboard-{}", std::process::id()));
    classifier_lab::unless_interrupted(dashboard(&args))
}

fn dashboard(args: &Args) -> Result<()> {
    let lab = Lab::new()?;
    let daemon = Daemon::start(&lab, "dashboard", Some(METRICS_PORT))?;
    let ready = Instant::now() + Duration::from_secs(10);
    while scrape(&lab).is_err() {
        if Instant::now() > ready {
            bail!("classifier run served no metrics within 10 s");
        }
        thread::sleep(Duration::from_millis(50));
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let until = load::Until::new(deadline);
    let step = Duration::from_secs(args.seconds) / 6;
    let done = load::Done::default();
    let mut scrapes = Vec::new();
    // Each kind of load starts `step` after the last, so the panels show what each adds.
    let after = |n: u32| thread::sleep(step * n);
    thread::scope(|scope| -> Result<()> {
        scope.spawn(|| {
            load::downloads(
                &lab,
                &until,
                (SERVER_OTHER_V4, 9000),
                (&done.normal_downloads, &done.normal_flow),
                &done,
            )
        });
        scope.spawn(|| {
            after(1);
            load::downloads(
                &lab,
                &until,
                (SERVER_APPLE_V4, 8000),
                (&done.apple_downloads, &done.apple_flow),
                &done,
            )
        });
        scope.spawn(|| {
            after(2);
            load::mptcp(&lab, &until, &done)
        });
        scope.spawn(|| {
            after(3);
            load::dns(&lab, &until, &done)
        });
        scope.spawn(|| {
            after(4);
            load::malformed(&lab, &until, &done)
        });
        // The scrape cadence, as Prometheus's scrape_interval: a measurement, not a wait.
        while Instant::now() < deadline + Duration::from_secs(2) {
            let body = scrape(&lab)?;
            scrapes.push(Scrape {
                seconds: started.elapsed().as_secs_f64(),
                samples: samples::parse(&body),
            });
            thread::sleep(Duration::from_secs(1));
        }
        Ok(())
    })?;
    drop(daemon);
    drop(lab);

    let packets = rate_by(&scrapes, "classifier_packets_total", "", &[], 1.0);
    let marked = rate_by(
        &scrapes,
        "classifier_actions_total",
        "",
        &[("action", "marked")],
        1.0,
    );
    let mut mptcp = nonzero(rate_by(
        &scrapes,
        "classifier_mptcp_packets_total",
        "subtype",
        &[],
        1.0,
    ));
    mptcp.extend(
        rate_by(&scrapes, "classifier_mptcp_fallbacks_total", "", &[], 1.0)
            .into_values()
            .map(|points| ("fallbacks".to_owned(), points)),
    );
    let panels = [
        Panel {
            title: "Traffic by class",
            unit: "Mbit/s",
            lines: rate_by(&scrapes, "classifier_bytes_total", "class", &[], 8e-6),
        },
        Panel {
            title: "Share marked",
            unit: "% of packets",
            lines: [("marked".to_owned(), ratio(&marked, &packets, 100.0))].into(),
        },
        Panel {
            title: "MPTCP by subtype, with fallbacks",
            unit: "packets/s",
            lines: mptcp,
        },
        Panel {
            title: "Traffic per list",
            unit: "packets/s",
            lines: rate_by(&scrapes, "classifier_list_packets_total", "list", &[], 1.0),
        },
        Panel {
            title: "Learned prefixes",
            unit: "addresses",
            lines: gauge_by(&scrapes, "classifier_learned_prefixes", "list"),
        },
        Panel {
            title: "Flow-table fill",
            unit: "% of capacity",
            lines: [(
                "fill".to_owned(),
                ratio(
                    &gauge_by(&scrapes, "classifier_flow_table_entries", ""),
                    &gauge_by(&scrapes, "classifier_flow_table_capacity", ""),
                    100.0,
                ),
            )]
            .into(),
        },
        Panel {
            title: "Parse errors by kind",
            unit: "packets/s",
            lines: nonzero(rate_by(
                &scrapes,
                "classifier_parse_errors_total",
                "kind",
                &[],
                1.0,
            )),
        },
        Panel {
            title: "Actions",
            unit: "packets/s",
            lines: nonzero(rate_by(
                &scrapes,
                "classifier_actions_total",
                "action",
                &[],
                1.0,
            )),
        },
    ];
    let sixth = args.seconds / 6;
    let title = format!(
        "classifier in the lab: one router, all its interfaces, scraped every second (policy list:apple=LE mptcp=LE)\n\
         Normal downloads from 0 s, Apple downloads from {sixth} s, MPTCP transfers from {} s, DNS answers from {} s, malformed frames from {} s",
        2 * sixth,
        3 * sixth,
        4 * sixth
    );
    plot::draw(&args.out, &title, started.elapsed().as_secs_f64(), &panels)?;
    println!(
        "{}: {} scrapes; load: {} normal and {} Apple downloads, {} MPTCP transfers, {} DNS answers, {} malformed frames, {} errors",
        args.out.display(),
        scrapes.len(),
        done.normal_downloads
            .load(std::sync::atomic::Ordering::Relaxed),
        done.apple_downloads
            .load(std::sync::atomic::Ordering::Relaxed),
        done.mptcp_transfers
            .load(std::sync::atomic::Ordering::Relaxed),
        done.dns_answers.load(std::sync::atomic::Ordering::Relaxed),
        done.malformed_frames
            .load(std::sync::atomic::Ordering::Relaxed),
        done.errors.load(std::sync::atomic::Ordering::Relaxed),
    );
    Ok(())
}
