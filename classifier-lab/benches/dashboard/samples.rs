//! Scrapes of `classifier run`'s metrics endpoint, and the series the dashboard's panels
//! compute from them (deploy/grafana/classifier.json: the same sums, rates and ratios).

use std::collections::BTreeMap;

/// One sample line: `name{a="x",b="y"} value`.
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A scrape at `seconds` since the load started.
pub struct Scrape {
    pub seconds: f64,
    pub samples: Vec<Sample>,
}

pub fn parse(body: &str) -> Vec<Sample> {
    body.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
                .collect();
            Some(Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().ok()?,
            })
        })
        .collect()
}

impl Scrape {
    /// `sum by (label) (name{filter})`: one value per value of `label` ("" for no label).
    pub fn sum_by(
        &self,
        name: &str,
        label: &str,
        filter: &[(&str, &str)],
    ) -> BTreeMap<String, f64> {
        let mut sums = BTreeMap::new();
        for sample in self.samples.iter().filter(|s| s.name == name) {
            if filter
                .iter()
                .all(|(k, v)| sample.labels.get(*k).map(String::as_str) == Some(*v))
            {
                let key = sample.labels.get(label).cloned().unwrap_or_default();
                *sums.entry(key).or_insert(0.0) += sample.value;
            }
        }
        sums
    }
}

/// A panel's lines: name → (seconds, value) points.
pub type Lines = BTreeMap<String, Vec<(f64, f64)>>;

/// `sum by (label) (rate(name{filter}))` between consecutive scrapes, times `scale`.
pub fn rate_by(
    scrapes: &[Scrape],
    name: &str,
    label: &str,
    filter: &[(&str, &str)],
    scale: f64,
) -> Lines {
    let mut lines = Lines::new();
    for pair in scrapes.windows(2) {
        let (before, after) = (
            pair[0].sum_by(name, label, filter),
            pair[1].sum_by(name, label, filter),
        );
        let seconds = pair[1].seconds - pair[0].seconds;
        for (key, value) in after {
            let rate = (value - before.get(&key).copied().unwrap_or(0.0)).max(0.0) / seconds;
            lines
                .entry(key)
                .or_default()
                .push((pair[1].seconds, rate * scale));
        }
    }
    lines
}

/// `sum by (label) (name)` of a gauge at every scrape.
pub fn gauge_by(scrapes: &[Scrape], name: &str, label: &str) -> Lines {
    let mut lines = Lines::new();
    for scrape in scrapes {
        for (key, value) in scrape.sum_by(name, label, &[]) {
            lines.entry(key).or_default().push((scrape.seconds, value));
        }
    }
    lines
}

/// `a / b` point by point (both single lines), times `scale`.
pub fn ratio(a: &Lines, b: &Lines, scale: f64) -> Vec<(f64, f64)> {
    let (Some(a), Some(b)) = (a.values().next(), b.values().next()) else {
        return Vec::new();
    };
    a.iter()
        .zip(b)
        .map(|(&(t, x), &(_, y))| (t, if y > 0.0 { x / y * scale } else { 0.0 }))
        .collect()
}

/// Lines that are zero all along are left out, as Grafana's `> 0` does.
pub fn nonzero(lines: Lines) -> Lines {
    lines
        .into_iter()
        .filter(|(_, points)| points.iter().any(|(_, v)| *v > 0.0))
        .collect()
}
