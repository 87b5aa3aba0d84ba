//! Printing: JSON for scripts, aligned tables for people.
//!
//! The JSON contract (README, "JSON output"): with `-j` every command prints exactly one
//! document, compact, or indented with `-p`; the streams (`stats --watch`, `analyze`) print
//! JSON Lines, one compact object per line, whatever `-p` says. Each document has a schema
//! in `docs/json/`, and `cli_json.rs` holds every command to it.

use serde::Serialize;

/// How a command prints: text for people, or JSON for scripts (`-j`, `-p`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json { pretty: bool },
}

impl Format {
    pub fn is_json(self) -> bool {
        matches!(self, Self::Json { .. })
    }
}

/// Prints `value` as this invocation's one JSON document.
pub fn print_json(value: &impl Serialize, format: Format) -> anyhow::Result<()> {
    let text = match format {
        Format::Json { pretty: true } => serde_json::to_string_pretty(value)?,
        _ => serde_json::to_string(value)?,
    };
    println!("{text}");
    Ok(())
}

/// Prints `value` as one line of a JSON Lines stream.
pub fn print_json_line(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

/// Prints rows as columns padded to their widest cell; the first row is the header.
pub fn print_table(rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|row| row.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| format!("{cell:<width$}", width = widths[c]))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}

/// 1234567 → "1.2M"; exact below 10,000.
pub fn si(value: f64) -> String {
    let units = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];
    if value < 10_000.0 {
        return format!("{value:.0}");
    }
    for (scale, unit) in units {
        if value >= scale {
            return format!("{:.1}{unit}", value / scale);
        }
    }
    format!("{value:.0}")
}

pub use classifier::report::units::bytes;
