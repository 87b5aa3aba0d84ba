//! The soak's stall detector: each load kind's rate (transfers completed, packets per class),
//! sampled at a fixed interval, is compared with the median of its own earlier samples. A
//! kind below `fraction` of that median is a sign of a stall; below it for more than one
//! sample in a row, a stall that fails the run (RELIABILITY.md, 'Soak').

use std::{collections::BTreeMap, time::Duration};

/// The fraction of a kind's own median rate below which a sample counts as slow. On this
/// 2-core machine shared with other builds, healthy 30 s samples of the soak's loads fell to
/// 57 % of their median at load averages up to 26 (RELIABILITY.md, 'Soak'); a stalled kind
/// falls to a few per cent. A quarter lies between, with a factor of two either way.
pub const FRACTION: f64 = 0.25;

/// Samples a kind needs before it is judged: its median must rest on more than one.
const HISTORY: usize = 2;

/// What one sample showed about a kind that was slow.
#[derive(Clone, Debug, PartialEq)]
pub struct Slow {
    pub kind: String,
    /// Per second, in this sample.
    pub rate: f64,
    /// Per second, the median of the kind's earlier samples.
    pub median: f64,
    /// Samples in a row, this one included, below the fraction.
    pub in_a_row: usize,
}

impl Slow {
    /// More than one slow sample in a row: the run fails.
    pub fn is_stall(&self) -> bool {
        self.in_a_row > 1
    }
}

impl std::fmt::Display for Slow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {:.1}/s, below {:.0}% of its median {:.1}/s for {} sample(s) in a row",
            self.kind,
            self.rate,
            FRACTION * 100.0,
            self.median,
            self.in_a_row
        )
    }
}

#[derive(Default)]
struct Kind {
    last: Option<u64>,
    rates: Vec<f64>,
    in_a_row: usize,
}

/// Rates per load kind, from cumulative counts read at each sample.
pub struct Detector {
    fraction: f64,
    kinds: BTreeMap<String, Kind>,
}

impl Detector {
    pub fn new(fraction: f64) -> Self {
        Self {
            fraction,
            kinds: BTreeMap::new(),
        }
    }

    /// Takes each kind's cumulative count, `elapsed` after the previous sample (the first
    /// call only sets the start), and returns the kinds that were slow in this sample.
    pub fn sample<'a>(
        &mut self,
        counts: impl IntoIterator<Item = (&'a str, u64)>,
        elapsed: Duration,
    ) -> Vec<Slow> {
        let seconds = elapsed.as_secs_f64().max(f64::EPSILON);
        let mut slow = Vec::new();
        for (name, count) in counts {
            let kind = self.kinds.entry(name.to_owned()).or_default();
            let Some(last) = kind.last.replace(count) else {
                continue;
            };
            let rate = count.saturating_sub(last) as f64 / seconds;
            if kind.rates.len() >= HISTORY {
                let median = median(&kind.rates);
                if rate < self.fraction * median {
                    kind.in_a_row += 1;
                    slow.push(Slow {
                        kind: name.to_owned(),
                        rate,
                        median,
                        in_a_row: kind.in_a_row,
                    });
                } else {
                    kind.in_a_row = 0;
                }
            }
            kind.rates.push(rate);
        }
        slow
    }

    /// The lowest sample of each kind as a share of its median over the whole run, for the
    /// report: how close a healthy run came to the fraction.
    pub fn lowest_shares(&self) -> Vec<(String, f64)> {
        self.kinds
            .iter()
            .filter(|(_, kind)| !kind.rates.is_empty())
            .map(|(name, kind)| {
                let median = median(&kind.rates);
                let lowest = kind.rates.iter().copied().fold(f64::INFINITY, f64::min);
                let share = if median > 0.0 { lowest / median } else { 1.0 };
                (name.clone(), share)
            })
            .collect()
    }
}

fn median(rates: &[f64]) -> f64 {
    let mut sorted = rates.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    /// Feeds one kind's per-second counts; returns what each sample found.
    fn feed(per_second: &[u64]) -> Vec<Vec<Slow>> {
        let mut detector = Detector::new(FRACTION);
        let mut total = 0;
        detector.sample([("kind", total)], SECOND);
        per_second
            .iter()
            .map(|n| {
                total += n;
                detector.sample([("kind", total)], SECOND)
            })
            .collect()
    }

    #[test]
    fn a_busy_machine_halving_the_rate_is_no_stall() {
        let found = feed(&[100, 90, 50, 40, 110, 45, 100, 30]);
        assert!(found.iter().all(Vec::is_empty), "{found:?}");
    }

    #[test]
    fn one_slow_sample_is_a_sign_and_two_in_a_row_a_stall() {
        let found = feed(&[100, 100, 100, 2, 100, 1, 0]);
        assert!(found[..3].iter().all(Vec::is_empty));
        assert_eq!(found[3].len(), 1);
        assert!(!found[3][0].is_stall(), "one sample is only a sign");
        assert!(found[4].is_empty(), "a recovered rate resets the run");
        assert!(!found[5][0].is_stall());
        assert!(found[6][0].is_stall(), "{:?}", found[6]);
        assert_eq!(found[6][0].median, 100.0);
    }

    #[test]
    fn rates_are_per_second_of_each_sample() {
        let mut detector = Detector::new(FRACTION);
        detector.sample([("kind", 0)], SECOND);
        detector.sample([("kind", 100)], SECOND);
        detector.sample([("kind", 200)], SECOND);
        // A sample twice as long with twice the count is the same rate.
        assert!(detector.sample([("kind", 400)], 2 * SECOND).is_empty());
        // The soak's last sample may be short: a short healthy one is no stall either.
        assert!(detector.sample([("kind", 420)], SECOND / 5).is_empty());
    }
}
