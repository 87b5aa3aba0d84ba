//! What a benchmark section reports: tables printed as they complete, and the same tables,
//! the method and the targets written into BENCHMARKS.md.

use std::fmt::Write as _;

/// A table of measured values; every cell is already formatted.
pub struct Table {
    pub title: String,
    pub headers: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(title: impl Into<String>, headers: &[&'static str]) -> Self {
        Self {
            title: title.into(),
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Aligned for a terminal: the first column left, numbers right.
    pub fn print(&self) {
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|column| {
                self.rows
                    .iter()
                    .map(|row| row[column].chars().count())
                    .chain([self.headers[column].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        println!("\n{}", self.title);
        let line = |cells: &[String]| {
            let mut text = String::new();
            for (column, cell) in cells.iter().enumerate() {
                let pad = widths[column] - cell.chars().count();
                if column == 0 {
                    let _ = write!(text, "{cell}{}", " ".repeat(pad));
                } else {
                    let _ = write!(text, "  {}{cell}", " ".repeat(pad));
                }
            }
            println!("  {}", text.trim_end());
        };
        line(
            &self
                .headers
                .iter()
                .map(|h| h.to_string())
                .collect::<Vec<_>>(),
        );
        for row in &self.rows {
            line(row);
        }
    }

    pub fn markdown(&self) -> String {
        let mut text = format!("**{}**\n\n| {} |\n|", self.title, self.headers.join(" | "));
        for column in 0..self.headers.len() {
            text.push_str(if column == 0 { "---|" } else { "---:|" });
        }
        text.push('\n');
        for row in &self.rows {
            let _ = writeln!(text, "| {} |", row.join(" | "));
        }
        text
    }
}

/// A target from the issue, with what this run measured.
pub struct Target {
    pub what: &'static str,
    pub goal: &'static str,
    pub measured: String,
    pub met: bool,
}

/// One benchmark's results: how it was measured, its tables, and the targets it checks.
pub struct Section {
    pub title: &'static str,
    /// Markdown: the method, and what the numbers mean.
    pub method: String,
    pub tables: Vec<Table>,
    pub targets: Vec<Target>,
    /// Markdown written after the tables: what explains a result.
    pub notes: String,
}

impl Section {
    pub fn new(title: &'static str, method: impl Into<String>) -> Self {
        Self {
            title,
            method: method.into(),
            tables: Vec::new(),
            targets: Vec::new(),
            notes: String::new(),
        }
    }

    /// Prints `table` now and keeps it for the report.
    pub fn table(&mut self, table: Table) {
        table.print();
        self.tables.push(table);
    }

    pub fn target(&mut self, target: Target) {
        println!(
            "  target: {}: {} (goal {}) {}",
            target.what,
            target.measured,
            target.goal,
            if target.met { "met" } else { "MISSED" }
        );
        self.targets.push(target);
    }
}

/// The median of `values` (sorted in place); the mean of the middle two for an even count.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.is_empty() {
        f64::NAN
    } else if !values.len().is_multiple_of(2) {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

pub fn ns(value: f64) -> String {
    format!("{value:.1}")
}

/// Formats with thousands separators: 1234567 → "1,234,567".
pub fn count(value: u64) -> String {
    let digits = value.to_string();
    let mut text = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}
