//! What learning costs under a DNS flood (docs/design.md, 'DNS learning'): a newly learned
//! address moves the generation (at most once per `MOVE_INTERVAL`), and every established
//! flow's next packet then decides again. Measured here: that packet's cost against the
//! steady one, and how many moves, and how much of `run`'s time, a flood of answers that
//! each teach a new address takes in batches of one answer (the worst case: an answer per
//! wake-up) and of 64.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant},
};

use anyhow::Result;
use classifier::{
    control::learning::Learning,
    dns::{Answer, DomainLists, Learned, Learner, LearnerSettings, Question, Source},
};
use classifier_lab::TimeRun as _;

use crate::{
    packets,
    per_packet::default_programs,
    table::{Section, Table, count, median, ns},
    timing::Programs,
};

/// Established flows that all decide again after a move.
const FLOWS: u32 = 10_000;
/// Passes over the flows: each a steady pass, then a move and a pass.
const ROUNDS: usize = 5;
/// Answers in the flood, each teaching one new address: one list's default cap.
const ANSWERS: u32 = 4_096;

/// Each flow's packet once through each program; the medians.
fn pass(programs: &Programs, flows: &[Vec<u8>]) -> Result<(f64, f64)> {
    let mut classifier = Vec::with_capacity(flows.len());
    let mut baseline = Vec::with_capacity(flows.len());
    for packet in flows {
        baseline.push(programs.baseline.time_run(packet, 1)?.as_nanos() as f64);
        classifier.push(programs.classifier.time_run(packet, 1)?.as_nanos() as f64);
    }
    Ok((median(&mut classifier), median(&mut baseline)))
}

/// An answer teaching `addr` into list bit `list`.
fn answer(addr: IpAddr, list: u32) -> Answer {
    Answer {
        id: 1,
        rcode: 0,
        question: Question {
            name: "updates.cdn-apple.com".to_owned(),
            qtype: 1,
            qclass: 1,
        },
        learned: vec![Learned {
            addr,
            lists: 1 << list,
            name: "updates.cdn-apple.com".to_owned(),
            ttl: 300,
        }],
        off_chain: 0,
    }
}

/// `ANSWERS` answers, each teaching a new address into list `salt` (a list of its own, so
/// each flood starts below the cap), taught in batches of `batch` with one
/// `reclassify_if_new` per batch, as `run` does per wake-up: the generation moves and the
/// time taken.
fn flood(programs: &mut Programs, batch: u32, salt: u8) -> Result<(u32, Duration)> {
    let mut maps = Learning::new(programs.classifier.writer());
    let maps = &mut maps;
    let mut learner = Learner::new(
        DomainLists::default(),
        LearnerSettings::new(Duration::from_secs(60)),
    );
    let source = Source::Answer(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 53)));
    let before = maps.generation()?;
    let started = Instant::now();
    for n in 0..ANSWERS {
        let addr = Ipv4Addr::new(203, salt, (n >> 8) as u8, n as u8);
        learner.teach(maps, &answer(addr.into(), u32::from(salt)), source, 1_000);
        if (n + 1) % batch == 0 {
            learner.reclassify_if_new(maps, Instant::now());
        }
    }
    let took = started.elapsed();
    Ok((maps.generation()?.wrapping_sub(before), took))
}

pub fn run() -> Result<Section> {
    let mut section = Section::new(
        "DNS learning under a flood",
        format!(
            "A newly learned address moves the generation, at most once a second, so a flow \
             whose first packet raced the answer is decided again. On the default \
             programs, {} established flows (the plain IPv4 TCP packet of distinct clients), \
             {ROUNDS} rounds of: each flow's packet once (a single shot, beside `baseline`), \
             then a generation move and each flow's packet once more. The median over the \
             rounds' medians; overhead over `baseline`. Then {} answers from a named resolver, \
             each teaching one new address into a list of its own (`Learner::teach`, the map writes \
             included), with one `reclassify_if_new` per batch of answers, as `run` makes one \
             per wake-up: batches of 1 (every answer its own wake-up, the worst case) and of \
             64; it moves the generation at most once a second, so the moves count the \
             flood's seconds, not its answers. A move costs each active flow one slow packet: \
             the difference of the two first rows, times the flows.",
            count(u64::from(FLOWS)),
            count(u64::from(ANSWERS)),
        ),
    );
    let mut programs = default_programs()?;
    let flows: Vec<Vec<u8>> = (0..FLOWS).map(packets::flow_packet).collect();
    for packet in &flows {
        programs.classifier.time_run(packet, 1)?;
        programs.baseline.time_run(packet, 1)?;
    }
    let (mut steady, mut moved) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (classifier, baseline) = pass(&programs, &flows)?;
        steady.push(classifier - baseline);
        programs.classifier.writer().bump_generation()?;
        let (classifier, baseline) = pass(&programs, &flows)?;
        moved.push(classifier - baseline);
    }
    let (steady, moved) = (median(&mut steady), median(&mut moved));
    let mut table = Table::new(
        "The data path after a move",
        &["packet", "overhead (median)"],
    );
    table.row(vec!["established, steady".to_owned(), ns(steady)]);
    table.row(vec!["the next one after a move".to_owned(), ns(moved)]);
    table.row(vec![
        format!("one move, all {} flows", count(u64::from(FLOWS))),
        format!(
            "{:.2} ms",
            (moved - steady).max(0.0) * f64::from(FLOWS) / 1e6
        ),
    ]);
    section.table(table);
    let mut table = Table::new(
        "A flood of answers that each teach a new address",
        &[
            "batch",
            "answers",
            "generation moves",
            "run's time",
            "per answer",
        ],
    );
    for (salt, batch) in [(1u8, 1u32), (2, 64)] {
        let (moves, took) = flood(&mut programs, batch, salt)?;
        table.row(vec![
            count(u64::from(batch)),
            count(u64::from(ANSWERS)),
            count(u64::from(moves)),
            format!("{:.1} ms", took.as_secs_f64() * 1e3),
            format!("{:.1} µs", took.as_secs_f64() * 1e6 / f64::from(ANSWERS)),
        ]);
    }
    section.table(table);
    section.notes = "A renewal moves nothing, and only a named resolver's answers (or the \
        router's own lookups) teach, within each list's cap: a flood of forged or replayed \
        answers moves the generation not at all."
        .to_owned();
    Ok(section)
}
