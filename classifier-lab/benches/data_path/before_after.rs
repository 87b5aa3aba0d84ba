//! Before and after, measured in one run: the benchmark binary of an earlier commit (built by
//! `cargo xtask bench --before REV` from a worktree of it, with that commit's own kernel
//! object, which this tree's loader could not drive: the maps differ) and this one, run
//! alternately on the same machine, each on the per-packet and many-flows parts. Each writes
//! its own report; the overheads are read back from those tables, matched by case, and the
//! median of the rounds is compared.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, ensure};
use classifier_lab::marked_section::Marked;

use crate::{
    machine,
    table::{Table, median, ns},
};

/// BENCHMARKS.md's section: written by `cargo xtask bench --before REV`, carried over by a
/// full run without it.
pub const SECTION: Marked = Marked {
    begin: "<!-- before-and-after: begin. Written by `cargo xtask bench --before REV`; a run \
            without --before keeps it as it is. -->",
    end: "<!-- before-and-after: end -->",
};

/// Rounds of (before, after); the order alternates so that a drift of the machine's speed
/// during the run falls on both sides alike.
const ROUNDS: usize = 3;

/// The parts compared, as both binaries name them in `--only`.
const PARTS: &str = "per-packet,many-flows";

/// The tables compared: their titles in both reports.
const TABLES: [&str; 2] = [
    "ns per packet (median)",
    "ns per packet, single shots (mean without the slowest 1 %)",
];

/// The earlier commit's benchmark binary, and how the report names that commit.
pub struct Before {
    pub bench: PathBuf,
    pub commit: String,
}

/// Runs both binaries alternately and returns the section, markers included.
pub fn run(before: &Before) -> Result<String> {
    let after = std::env::current_exe().context("finding this benchmark's binary")?;
    let scratch =
        std::env::temp_dir().join(format!("classifier-before-after-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let mut before_runs = Vec::new();
    let mut after_runs = Vec::new();
    for round in 0..ROUNDS {
        let mut sides = vec![
            (&before.bench, "before", &mut before_runs),
            (&after, "after", &mut after_runs),
        ];
        if round % 2 == 1 {
            sides.reverse();
        }
        for (binary, side, runs) in sides {
            println!(
                "\nbefore and after, round {} of {ROUNDS}: {side}",
                round + 1
            );
            let report = scratch.join(format!("{side}-{round}.md"));
            runs.push(overheads(&measure(binary, &report)?)?);
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let table = compare(&before.commit, &before_runs, &after_runs);
    table.print();
    Ok(format!(
        "{}\n## Before and after\n\nMeasured on {} by `cargo xtask bench --before {commit}`: \
         the benchmark of commit {commit}, built from an export of its tree (`git archive`; its own kernel \
         object and loader), and this tree's, run alternately on this machine (this tree at {}), {ROUNDS} rounds, \
         each side's `--only {PARTS}` in turn (the order swapped every round); each figure is \
         the median over the rounds of that side's overhead over its own baseline program, \
         from its report's tables, each measured by its own benchmark's method (this tree's \
         as 'Per-packet cost' and 'Many flows' say; an earlier one's steady state may take \
         fewer rounds). Cases are matched by name; a case \
         one side does not measure is left out.\n\n{}\n{}",
        SECTION.begin,
        machine::date(),
        machine::commit(),
        table.markdown(),
        SECTION.end,
        commit = before.commit,
    ))
}

/// Runs `binary` on the compared parts, writing its report to `report`; returns the report.
fn measure(binary: &Path, report: &Path) -> Result<String> {
    let status = Command::new(binary)
        .args(["--only", PARTS, "--out"])
        .arg(report)
        .status()
        .with_context(|| format!("running {}", binary.display()))?;
    ensure!(status.success(), "{} failed: {status}", binary.display());
    std::fs::read_to_string(report).with_context(|| format!("reading {}", report.display()))
}

/// One measured case: which compared table (index into `TABLES`), its first two cells (the
/// case and its path, or the flows and their order), and its overhead in ns.
struct Case {
    table: usize,
    name: String,
    path: String,
    overhead: f64,
}

/// The overhead column of the compared tables of a report, case by case in the report's order.
fn overheads(report: &str) -> Result<Vec<Case>> {
    let mut found = Vec::new();
    for (table, title) in TABLES.iter().enumerate() {
        let rows = markdown_table(report, title)
            .with_context(|| format!("no table '{title}' in the report"))?;
        let (header, body) = rows.split_first().context("an empty table")?;
        let column = header
            .iter()
            .position(|cell| cell == "overhead")
            .with_context(|| format!("no overhead column in '{title}'"))?;
        for row in body {
            let cell = row.get(column).context("a short row")?;
            let overhead = cell
                .parse()
                .with_context(|| format!("'{cell}' in '{title}' is not a number"))?;
            found.push(Case {
                table,
                name: row[0].clone(),
                path: row[1].clone(),
                overhead,
            });
        }
    }
    Ok(found)
}

/// The rows (header first, cells trimmed) of the Markdown table under `**title**`.
fn markdown_table(report: &str, title: &str) -> Option<Vec<Vec<String>>> {
    let start = report.find(&format!("**{title}**"))?;
    let rows = report[start..]
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .filter(|line| !line.starts_with("|---"))
        .map(|line| {
            line.trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().to_owned())
                .collect()
        })
        .collect();
    Some(rows)
}

/// The table of medians, in the after side's order of cases.
fn compare(commit: &str, before: &[Vec<Case>], after: &[Vec<Case>]) -> Table {
    let mut table = Table::new(
        format!(
            "overhead over the baseline, ns per packet, median of {ROUNDS} rounds: before = \
             {commit}, after = this tree"
        ),
        &["case", "path or order", "before", "after", "change"],
    );
    let median_of = |runs: &[Vec<Case>], like: &Case| -> Option<f64> {
        let mut values: Vec<f64> = runs
            .iter()
            .filter_map(|run| {
                run.iter()
                    .find(|case| {
                        case.table == like.table && case.name == like.name && case.path == like.path
                    })
                    .map(|case| case.overhead)
            })
            .collect();
        (values.len() == runs.len()).then(|| median(&mut values))
    };
    for case in after.first().into_iter().flatten() {
        let (Some(old), Some(new)) = (median_of(before, case), median_of(after, case)) else {
            continue;
        };
        let name = if case.table == 1 {
            format!(
                "{} flow{}",
                case.name,
                if case.name == "1" { "" } else { "s" }
            )
        } else {
            case.name.clone()
        };
        table.row(vec![
            name,
            case.path.clone(),
            ns(old),
            ns(new),
            format!("{:+.0} %", (new / old - 1.0) * 100.0),
        ]);
    }
    table
}
