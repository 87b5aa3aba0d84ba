//! Printing: JSON for scripts, aligned tables for people.

use serde::Serialize;

pub fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
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
