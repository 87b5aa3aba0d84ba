//! Counting the DNS answers that taught nothing because they were refused.
//!
//! Where the counts live: in the kernel's pinned `COUNTERS` array, in slots of their own
//! (`Counter::DnsRefused*`) that the XDP program never writes, in interface block 0, on CPU
//! 0's copy. So `classifier stats` and the metrics, run by any process, read them with every
//! other counter and sum them the same way; they survive a restart of `run` (it adds to what
//! is there) and go when the state is removed, as the kernel's counters do. A map of their own
//! would have meant a kernel map for user-space numbers, and a file would have needed its own
//! reader. `run` is the only writer of these slots.

use classifier_common::{Counter, CounterValue};

use crate::{ClassifierMaps, Error};

/// Why an answer was refused. Its name is the key in `stats --json` (`dns.refused.NAME`) and
/// the `reason` label of `classifier_dns_refused_answers`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It answered no query the classifier saw (forged, replayed, or late), and did not come
    /// from a trusted resolver on its interface.
    Unmatched,
    /// A list it would teach holds as many learned addresses as it may.
    OverCap,
    /// Not a DNS response with exactly one question.
    Malformed,
}

impl Refusal {
    pub const ALL: [Refusal; 3] = [Self::Unmatched, Self::OverCap, Self::Malformed];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Unmatched => "unmatched",
            Self::OverCap => "over_cap",
            Self::Malformed => "malformed",
        }
    }

    pub const fn counter(self) -> Counter {
        match self {
            Self::Unmatched => Counter::DnsRefusedUnmatched,
            Self::OverCap => Counter::DnsRefusedOverCap,
            Self::Malformed => Counter::DnsRefusedMalformed,
        }
    }
}

/// Adds one refused answer of `bytes` (its DNS message) to the counts.
pub fn count_refused(maps: &mut ClassifierMaps, why: Refusal, bytes: usize) -> Result<(), Error> {
    // A read-modify-write of the pinned counters: `run` holds the writer lock around
    // `observe`, which calls this.
    let refused = CounterValue {
        packets: 1,
        bytes: bytes as u64,
    };
    maps.add_to_counter(why.counter().index(), refused)
}

/// The refused answers so far, by reason.
pub fn refused(maps: &ClassifierMaps) -> Result<Vec<(Refusal, CounterValue)>, Error> {
    let counters = maps.counters_of_slot(0)?;
    Ok(Refusal::ALL
        .iter()
        .map(|why| (*why, counters.get(why.counter().index())))
        .collect())
}
