//! The storm's report: per run, goodput per class, the Apple class against its floor, Jain's
//! fairness index over the phones, the interactive round trips idle and under the storm, and
//! the phones the classifier saw; then the storm's goals, each met or missed. Printed as text,
//! and as a marked section of BENCHMARKS.md that `cargo xtask bench` carries over.

use std::{fmt::Write as _, time::Duration};

use super::{Outcome, Setup, Spec, probe};
use crate::marked_section::Marked;

/// TCP payload per full frame on the wire (MSS 1448 with timestamps, 1514-byte frames): the
/// shaper counts frames, downloads count payload.
pub const GOODPUT_PER_WIRE: f64 = 1448.0 / 1514.0;

/// The section of BENCHMARKS.md that `cargo xtask storm --write-benchmarks` writes and `cargo
/// xtask bench` keeps as it is.
pub const SECTION: Marked = Marked {
    begin: "<!-- storm: begin. Written by `cargo xtask storm --write-benchmarks`; `cargo xtask \
            bench` keeps it as it is. -->",
    end: "<!-- storm: end -->",
};

/// One run's figures.
pub struct Figures {
    pub apple_mbit: f64,
    pub normal_mbit: f64,
    pub phones_mbit: Vec<f64>,
    pub heavy_mean: f64,
    pub light_mean: f64,
    pub jain: f64,
}

impl Figures {
    pub fn of(outcome: &Outcome) -> Self {
        let mbit = |bytes: u64| bytes as f64 * 8.0 / outcome.window_seconds / 1e6;
        let phones_mbit: Vec<f64> = outcome.phones.iter().map(|p| mbit(p.bytes)).collect();
        let mean_of = |heavy: bool| {
            let chosen: Vec<f64> = outcome
                .phones
                .iter()
                .zip(&phones_mbit)
                .filter(|(p, _)| (p.connections > 1) == heavy)
                .map(|(_, m)| *m)
                .collect();
            chosen.iter().sum::<f64>() / chosen.len().max(1) as f64
        };
        Self {
            apple_mbit: phones_mbit.iter().sum(),
            normal_mbit: mbit(outcome.normal_bytes),
            heavy_mean: mean_of(true),
            light_mean: mean_of(false),
            jain: jain(&phones_mbit),
            phones_mbit,
        }
    }

    pub fn normal_share(&self) -> f64 {
        self.normal_mbit / (self.apple_mbit + self.normal_mbit).max(f64::MIN_POSITIVE)
    }

    pub fn best(&self) -> f64 {
        self.phones_mbit.iter().copied().fold(0.0, f64::max)
    }

    pub fn worst(&self) -> f64 {
        self.phones_mbit
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
    }
}

/// Jain's fairness index: (Σx)² / (n Σx²), 1 when all are equal, 1/n when one takes all.
pub fn jain(values: &[f64]) -> f64 {
    let sum: f64 = values.iter().sum();
    let squares: f64 = values.iter().map(|v| v * v).sum();
    if squares == 0.0 {
        return 0.0;
    }
    sum * sum / (values.len() as f64 * squares)
}

/// The `p`-th percentile (nearest rank) of the round trips, a lost one counting as
/// `probe::LOST_AFTER`; None without any.
pub fn percentile(trips: &[Option<Duration>], p: f64) -> Option<Duration> {
    let mut values: Vec<Duration> = trips
        .iter()
        .map(|t| t.unwrap_or(probe::LOST_AFTER))
        .collect();
    if values.is_empty() {
        return None;
    }
    values.sort();
    let rank = ((p / 100.0) * values.len() as f64).ceil().max(1.0) as usize;
    Some(values[rank.min(values.len()) - 1])
}

fn ms(value: Option<Duration>) -> String {
    value.map_or("-".to_owned(), |d| format!("{:.1}", d.as_secs_f64() * 1e3))
}

fn lost(trips: &[Option<Duration>]) -> usize {
    trips.iter().filter(|t| t.is_none()).count()
}

/// One goal of the storm for one run.
pub struct Goal {
    pub what: String,
    pub measured: String,
    pub met: bool,
}

/// The storm's goals for the runs with the classifier, against the run without when there is
/// one.
pub fn goals(spec: &Spec, runs: &[Outcome]) -> Vec<Goal> {
    let without = runs.iter().find(|r| r.setup == Setup::NoClassifier);
    let capacity = spec.rate_mbit as f64 * GOODPUT_PER_WIRE;
    let floor_wire = spec.rate_mbit as f64 * f64::from(spec.bulk_floor) / 100.0;
    let mut goals = Vec::new();
    for run in runs.iter().filter(|r| r.setup != Setup::NoClassifier) {
        let name = run.setup.name();
        let figures = Figures::of(run);
        for (probe, idle, storm, before) in [
            (
                "TCP",
                &run.idle_tcp,
                &run.storm_tcp,
                without.map(|w| &w.storm_tcp),
            ),
            (
                "ICMP",
                &run.idle_icmp,
                &run.storm_icmp,
                without.map(|w| &w.storm_icmp),
            ),
        ] {
            let (idle, p99) = (percentile(idle, 50.0), percentile(storm, 99.0));
            if let (Some(idle), Some(p99)) = (idle, p99) {
                goals.push(Goal {
                    what: format!("{name}: {probe} p99 ≤ idle + 20 ms"),
                    measured: format!("{} ms vs {} ms", ms(Some(p99)), ms(Some(idle + ms20()))),
                    met: p99 <= idle + ms20(),
                });
                if let Some(before) = before.and_then(|b| percentile(b, 99.0)) {
                    let ratio = before.as_secs_f64() / p99.as_secs_f64().max(1e-9);
                    goals.push(Goal {
                        what: format!("{name}: {probe} p99 ≥ 10× lower than without"),
                        measured: format!("{ratio:.1}×"),
                        met: ratio >= 10.0,
                    });
                }
            }
        }
        let left = (capacity - figures.apple_mbit).max(0.0);
        goals.push(Goal {
            what: format!("{name}: normal bulk ≥ 80 % of what Apple leaves"),
            measured: format!(
                "{:.1} of {left:.1} Mbit/s ({:.0} %)",
                figures.normal_mbit,
                figures.normal_mbit / left.max(f64::MIN_POSITIVE) * 100.0
            ),
            met: figures.normal_mbit >= 0.8 * left,
        });
        // The floor is a wire rate: held if the bulk class sent it (5 % for the window's
        // edges, as lab_shaping.rs allows), whatever TCP made of it.
        let bulk_wire = run.wire_bytes.1 as f64 * 8.0 / run.window_seconds / 1e6;
        goals.push(Goal {
            what: format!("{name}: Apple holds its floor (bulk class on the wire)"),
            measured: format!(
                "{bulk_wire:.1} vs {:.1} Mbit/s (goodput {:.1})",
                floor_wire, figures.apple_mbit
            ),
            met: bulk_wire >= 0.95 * floor_wire,
        });
        if let Setup::PerDevice(_) = run.setup {
            goals.push(Goal {
                what: format!("{name}: Jain's index over phones ≥ 0.9"),
                measured: format!("{:.3}", figures.jain),
                met: figures.jain >= 0.9,
            });
        }
    }
    goals
}

fn ms20() -> Duration {
    Duration::from_millis(20)
}

/// The rows of the report: a label, then one cell per run.
fn rows(spec: &Spec, runs: &[(Setup, Result<Outcome, String>)]) -> Vec<Vec<String>> {
    let floor = spec.rate_mbit as f64 * f64::from(spec.bulk_floor) / 100.0;
    let mut header = vec![String::new()];
    header.extend(runs.iter().map(|(setup, _)| setup.name()));
    let mut rows = vec![header];
    type Cell = Box<dyn Fn(&Outcome, &Figures) -> String>;
    let lines: Vec<(String, Cell)> = vec![
        (
            "Apple (phones) goodput, Mbit/s".to_owned(),
            Box::new(|_, f| format!("{:.1}", f.apple_mbit)),
        ),
        (
            "normal bulk goodput, Mbit/s".to_owned(),
            Box::new(|_, f| format!("{:.1}", f.normal_mbit)),
        ),
        (
            "normal class's share".to_owned(),
            Box::new(|_, f| format!("{:.0} %", f.normal_share() * 100.0)),
        ),
        (
            format!("Apple vs its floor ({floor:.1} Mbit/s on the wire)"),
            Box::new(move |_, f| {
                format!("{:.0} %", f.apple_mbit / (floor * GOODPUT_PER_WIRE) * 100.0)
            }),
        ),
        (
            "on the wire (tc): normal / bulk class, Mbit/s".to_owned(),
            Box::new(|o, _| {
                let mbit = |bytes: u64| bytes as f64 * 8.0 / o.window_seconds / 1e6;
                format!("{:.1} / {:.1}", mbit(o.wire_bytes.0), mbit(o.wire_bytes.1))
            }),
        ),
        (
            "Jain's index over phones".to_owned(),
            Box::new(|_, f| format!("{:.3}", f.jain)),
        ),
        (
            "best / worst phone, Mbit/s".to_owned(),
            Box::new(|_, f| format!("{:.2} / {:.2}", f.best(), f.worst())),
        ),
        (
            "8-connection phones / others, mean Mbit/s".to_owned(),
            Box::new(|_, f| format!("{:.2} / {:.2}", f.heavy_mean, f.light_mean)),
        ),
        (
            "phones with nothing / failed connections".to_owned(),
            Box::new(|o, _| {
                format!(
                    "{} / {}",
                    o.phones.iter().filter(|p| p.bytes == 0).count(),
                    o.phones.iter().map(|p| p.failed).sum::<usize>()
                )
            }),
        ),
        (
            "TCP probe idle p50, ms".to_owned(),
            Box::new(|o, _| ms(percentile(&o.idle_tcp, 50.0))),
        ),
        (
            "TCP probe storm p50 / p99, ms".to_owned(),
            Box::new(|o, _| {
                format!(
                    "{} / {}",
                    ms(percentile(&o.storm_tcp, 50.0)),
                    ms(percentile(&o.storm_tcp, 99.0))
                )
            }),
        ),
        (
            "ICMP echo idle p50, ms".to_owned(),
            Box::new(|o, _| ms(percentile(&o.idle_icmp, 50.0))),
        ),
        (
            "ICMP echo storm p50 / p99, ms".to_owned(),
            Box::new(|o, _| {
                format!(
                    "{} / {}",
                    ms(percentile(&o.storm_icmp, 50.0)),
                    ms(percentile(&o.storm_icmp, 99.0))
                )
            }),
        ),
        (
            "probes under the storm (lost after 2 s): TCP, ICMP".to_owned(),
            Box::new(|o, _| {
                format!(
                    "{} ({} lost), {} ({} lost)",
                    o.storm_tcp.len(),
                    lost(&o.storm_tcp),
                    o.storm_icmp.len(),
                    lost(&o.storm_icmp)
                )
            }),
        ),
        (
            "phones the classifier saw (devices --list apple)".to_owned(),
            Box::new(|o, _| match o.phones_seen {
                Some(n) => n.to_string(),
                None => "n/a (no classifier)".to_owned(),
            }),
        ),
        (
            "CNAME-only servers: packets marked LE".to_owned(),
            Box::new(|o, _| {
                let (packets, le) = o
                    .learned_servers
                    .iter()
                    .fold((0, 0), |(p, l), m| (p + m.packets, l + m.le));
                format!("{le} of {packets}")
            }),
        ),
    ];
    for (label, cell) in lines {
        let mut row = vec![label];
        for (_, outcome) in runs {
            row.push(match outcome {
                Ok(outcome) => cell(outcome, &Figures::of(outcome)),
                Err(_) => "not run".to_owned(),
            });
        }
        rows.push(row);
    }
    rows
}

/// What was run, in one paragraph.
pub fn describe(spec: &Spec) -> String {
    let hook = spec
        .hook
        .map(|hook| format!(" The classifier runs at the {hook} hook (`--hook {hook}`)."))
        .unwrap_or_default();
    format!(
        "{} phones ({} of them over {} connections) download from 5 servers, 3 in Apple's \
         17.0.0.0/8 and 2 known only through the lab's resolver, which answers their names \
         with CNAME chains into Apple's CDN domains (`classifier run` learns them); beside \
         them one non-Apple bulk download and an interactive user (a 64-byte TCP request and \
         512-byte response, and an ICMP echo, every 100 ms). The router's r0 (towards the \
         phones) is shaped to {} Mbit/s with a bulk floor of {} %. Per run: {} s of probes on \
         the idle link, then the storm: {} s of ramp-up, {} s measured.{hook}",
        spec.phones,
        spec.heavy_phones,
        spec.heavy_connections,
        spec.rate_mbit,
        spec.bulk_floor,
        spec.idle.as_secs(),
        spec.ramp.as_secs(),
        spec.measure.as_secs()
    )
}

/// The report as text for the terminal.
pub fn text(spec: &Spec, runs: &[(Setup, Result<Outcome, String>)]) -> String {
    let rows = rows(spec, runs);
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut text = format!("storm: {}\n\n", describe(spec));
    for row in &rows {
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c == 0 {
                let _ = write!(text, "  {cell}{}", " ".repeat(pad));
            } else {
                let _ = write!(text, "  {}{cell}", " ".repeat(pad));
            }
        }
        text.push('\n');
    }
    append_shaping_and_failures(&mut text, runs, "");
    let outcomes: Vec<Outcome> = runs.iter().filter_map(|(_, o)| o.clone().ok()).collect();
    text.push_str("\ngoals:\n");
    for goal in goals(spec, &outcomes) {
        let _ = writeln!(
            text,
            "  {:<7} {}: {}",
            if goal.met { "met" } else { "MISSED" },
            goal.what,
            goal.measured
        );
    }
    text
}

fn append_shaping_and_failures(
    text: &mut String,
    runs: &[(Setup, Result<Outcome, String>)],
    bullet: &str,
) {
    text.push('\n');
    for (setup, outcome) in runs {
        let _ = match outcome {
            Ok(o) => writeln!(text, "{bullet}{}: {}", setup.name(), o.shaped_with),
            Err(why) => writeln!(text, "{bullet}{}: not run: {why}", setup.name()),
        };
    }
}

/// The report as BENCHMARKS.md's storm section, markers included.
pub fn markdown(spec: &Spec, runs: &[(Setup, Result<Outcome, String>)], method: &str) -> String {
    let rows = rows(spec, runs);
    let mut text = format!(
        "{}\n## Update storm\n\n{method}\n\n{}\n\n",
        SECTION.begin,
        describe(spec)
    );
    for (n, row) in rows.iter().enumerate() {
        let _ = writeln!(text, "| {} |", row.join(" | "));
        if n == 0 {
            let _ = writeln!(text, "|---|{}", "---:|".repeat(row.len() - 1));
        }
    }
    append_shaping_and_failures(&mut text, runs, "- ");
    let outcomes: Vec<Outcome> = runs.iter().filter_map(|(_, o)| o.clone().ok()).collect();
    text.push_str("\n| goal | measured | |\n|---|---:|---|\n");
    for goal in goals(spec, &outcomes) {
        let _ = writeln!(
            text,
            "| {} | {} | {} |",
            goal.what,
            goal.measured,
            if goal.met { "met" } else { "**missed**" }
        );
    }
    text.push('\n');
    text.push_str(SECTION.end);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jain_is_one_for_equals_and_one_over_n_for_one_taker() {
        assert!((jain(&[2.0, 2.0, 2.0, 2.0]) - 1.0).abs() < 1e-12);
        assert!((jain(&[8.0, 0.0, 0.0, 0.0]) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn a_lost_probe_counts_as_the_loss_deadline() {
        let trips = [Some(Duration::from_millis(1)), None];
        assert_eq!(percentile(&trips, 99.0), Some(probe::LOST_AFTER));
        assert_eq!(percentile(&trips, 50.0), Some(Duration::from_millis(1)));
    }
}
