//! Timing the kernel program with BPF_PROG_TEST_RUN, always beside the baseline program (only
//! XDP_PASS) in the same run, rounds interleaved so that a noisy moment hits both.

use std::time::Duration;

use anyhow::Result;
use classifier::{Classifier, load::Private};
use classifier_lab::{Baseline, TimeRun as _};

use crate::table::median;

/// Repeats per BPF_PROG_TEST_RUN call, and rounds of single shots (the median is reported).
pub const REPEAT: u32 = 1_000_000;
pub const ROUNDS: usize = 5;
/// Rounds of the steady state, each running every case in turn: a noisy stretch of a shared
/// machine (seconds long, while a table of cases takes about five) then falls on a round or
/// two of every case, which the median leaves out, instead of on every round of a few cases.
pub const STEADY_ROUNDS: usize = 11;

/// The two programs under comparison: the classifier with private maps, or pinned ones.
pub struct Programs<Where = Private> {
    pub classifier: Classifier<Where>,
    pub baseline: Baseline,
}

/// Median nanoseconds per packet of each program.
#[derive(Clone, Copy)]
pub struct Cost {
    pub classifier: f64,
    pub baseline: f64,
}

impl Cost {
    /// What the classifier adds to a program that does nothing.
    pub fn overhead(self) -> f64 {
        self.classifier - self.baseline
    }
}

impl Programs {
    pub fn load() -> Result<Self> {
        Ok(Self {
            classifier: Classifier::load()?,
            baseline: Baseline::load()?,
        })
    }
}

impl<Where> Programs<Where> {
    /// The same packet `REPEAT` times in the kernel's loop, `STEADY_ROUNDS` times: the steady
    /// state (after the first iteration, the flow is established in the flow table).
    pub fn repeated(&self, packet: &[u8]) -> Result<Cost> {
        Ok(self.repeated_each(&[packet])?[0])
    }

    /// `repeated` for several packets, the rounds taken in turn: round 1 of every packet,
    /// then round 2, and so on.
    pub fn repeated_each(&self, packets: &[&[u8]]) -> Result<Vec<Cost>> {
        repeated_each(
            packets,
            |packet, repeat| Ok(self.classifier.time_run(packet, repeat)?),
            |packet, repeat| Ok(self.baseline.time_run(packet, repeat)?),
        )
    }

    /// Each packet run once (repeat 1), from a fresh copy: for first packets of distinct
    /// flows (the LPM path and a flow-table insert), and for a rewrite on every run (with
    /// `REPEAT`, the second iteration would see the DSCP already rewritten). The median over
    /// all runs; the kernel's clock reads around one run are in both programs' figures and
    /// cancel in the overhead.
    pub fn single_shots<'a>(
        &self,
        packets: impl ExactSizeIterator<Item = &'a [u8]>,
    ) -> Result<Cost> {
        let mut classifier = Vec::with_capacity(packets.len());
        let mut baseline = Vec::with_capacity(packets.len());
        for packet in packets {
            baseline.push(self.baseline.time_run(packet, 1)?.as_nanos() as f64);
            classifier.push(self.classifier.time_run(packet, 1)?.as_nanos() as f64);
        }
        Ok(Cost {
            classifier: median(&mut classifier),
            baseline: median(&mut baseline),
        })
    }
}

/// `Programs::repeated_each` for any program and its baseline, each given as what times it
/// over a packet with a repeat count.
pub fn repeated_each(
    packets: &[&[u8]],
    classifier: impl Fn(&[u8], u32) -> Result<Duration>,
    baseline: impl Fn(&[u8], u32) -> Result<Duration>,
) -> Result<Vec<Cost>> {
    // Warm up: the flow entries exist and the caches are hot before the first round.
    for packet in packets {
        classifier(packet, 1000)?;
        baseline(packet, 1000)?;
    }
    let mut classifier_ns = vec![Vec::new(); packets.len()];
    let mut baseline_ns = vec![Vec::new(); packets.len()];
    for _ in 0..STEADY_ROUNDS {
        for (case, packet) in packets.iter().enumerate() {
            baseline_ns[case].push(baseline(packet, REPEAT)?.as_nanos() as f64);
            classifier_ns[case].push(classifier(packet, REPEAT)?.as_nanos() as f64);
        }
    }
    Ok(classifier_ns
        .iter_mut()
        .zip(&mut baseline_ns)
        .map(|(classifier, baseline)| Cost {
            classifier: median(classifier),
            baseline: median(baseline),
        })
        .collect())
}
