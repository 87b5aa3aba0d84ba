//! What a PromQL expression reads: its metric names and the label names it matches or groups
//! by. Enough of PromQL for the dashboard and the rules (deploy/): selectors, functions,
//! aggregations with `by`/`without`, binary operators with `on`/`ignoring`, `offset`, ranges,
//! and Grafana's `$variables` and `label_values(SELECTOR, LABEL)`.

use std::collections::BTreeSet;

/// Metric and label names one expression uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reads {
    pub metrics: BTreeSet<String>,
    pub labels: BTreeSet<String>,
}

const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
];
/// Aggregation operators: `sum by (x) (...)` puts a grouping between the name and `(`.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
/// Keywords followed by a list of label names in parentheses.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The names `expr` reads. Grafana's `label_values(SELECTOR, LABEL)` counts SELECTOR's names
/// and LABEL.
pub fn reads(expr: &str) -> Reads {
    let expr = expr.trim();
    if let Some(inner) = expr
        .strip_prefix("label_values(")
        .and_then(|rest| rest.strip_suffix(')'))
    {
        let (selector, label) = inner.rsplit_once(',').unwrap_or((inner, ""));
        let mut reads = reads(selector);
        if !label.trim().is_empty() {
            reads.labels.insert(label.trim().to_owned());
        }
        return reads;
    }
    let chars: Vec<char> = expr.chars().collect();
    let mut reads = Reads::default();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            i = matchers(&chars, i + 1, &mut reads.labels);
        } else if c == '[' {
            i = skip_past(&chars, i, ']');
        } else if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
        } else if c == '$' || c.is_ascii_digit() || c == '.' {
            // A variable, a number or a duration (`1h`, `0.9`, `$__rate_interval`).
            i += 1;
            while i < chars.len() && (is_name(chars[i]) || chars[i] == '.') {
                i += 1;
            }
        } else if is_name_start(c) {
            let start = i;
            while i < chars.len() && is_name(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if LABEL_LISTS.contains(&word.as_str()) && next == Some(&'(') {
                let open = i + chars[i..].iter().position(|c| *c == '(').unwrap();
                let close = skip_past(&chars, open, ')');
                let list: String = chars[open + 1..close - 1].iter().collect();
                reads.labels.extend(
                    list.split(',')
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned),
                );
                i = close;
            } else if next == Some(&'(')
                || KEYWORDS.contains(&word.to_lowercase().as_str())
                || AGGREGATIONS.contains(&word.as_str())
            {
                // A function, an aggregation or a keyword.
            } else {
                reads.metrics.insert(word);
            }
        } else {
            i += 1;
        }
    }
    reads
}

/// Label matchers `{a="x", b=~"y"}` from just after `{`; returns the index after `}`.
fn matchers(chars: &[char], mut i: usize, labels: &mut BTreeSet<String>) -> usize {
    while i < chars.len() && chars[i] != '}' {
        if chars[i] == '"' || chars[i] == '\'' || chars[i] == '`' {
            i = skip_string(chars, i);
        } else if is_name_start(chars[i]) {
            let start = i;
            while i < chars.len() && is_name(chars[i]) {
                i += 1;
            }
            labels.insert(chars[start..i].iter().collect());
        } else {
            i += 1;
        }
    }
    i + 1
}

fn skip_string(chars: &[char], open: usize) -> usize {
    let quote = chars[open];
    let mut i = open + 1;
    while i < chars.len() && chars[i] != quote {
        i += if chars[i] == '\\' { 2 } else { 1 };
    }
    i + 1
}

/// The index after the `close` matching the opener at `open` (nesting counted for parens).
fn skip_past(chars: &[char], open: usize, close: char) -> usize {
    let opener = chars[open];
    let mut depth = 0;
    let mut i = open;
    while i < chars.len() {
        if chars[i] == opener {
            depth += 1;
        } else if chars[i] == close {
            depth -= 1;
            if depth == 0 {
                return i + 1;
            }
        }
        i += 1;
    }
    i
}

/// Sample names and the label names seen on them, from an OpenMetrics or Prometheus text
/// exposition.
pub fn exposed(body: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut metrics = BTreeSet::new();
    let mut labels = BTreeSet::new();
    for line in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        metrics.insert(line[..name_end].to_owned());
        if line[name_end..].starts_with('{') {
            let chars: Vec<char> = line[name_end..].chars().collect();
            matchers(&chars, 1, &mut labels);
        }
    }
    (metrics, labels)
}
