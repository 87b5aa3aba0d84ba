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
    /// Not from a named resolver, or from one on an interface its answers do not arrive on:
    /// a LAN host's own resolver, a forgery from the LAN.
    Untrusted,
    /// From a named resolver that requires a query, to which no query was seen (forged from
    /// the internet, replayed, or late).
    Unmatched,
    /// A list it would teach holds as many learned addresses as it may.
    OverCap,
    /// Not a DNS response with exactly one question.
    Malformed,
    /// It carried an address record off the CNAME chain that starts at the question.
    OffChain,
    /// It named an address that is never learned (docs/design.md, 'DNS learning').
    Forbidden,
    /// An address did not fit the learned-address table or a prefix trie, or a query to a
    /// named resolver did not fit the pending-query table (a flood of queries).
    TableFull,
    /// One of `run`'s own lookups got no usable answer.
    LookupFailed,
}

impl Refusal {
    pub const ALL: [Refusal; 8] = [
        Self::Untrusted,
        Self::Unmatched,
        Self::OverCap,
        Self::Malformed,
        Self::OffChain,
        Self::Forbidden,
        Self::TableFull,
        Self::LookupFailed,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Untrusted => "untrusted",
            Self::Unmatched => "unmatched",
            Self::OverCap => "over_cap",
            Self::Malformed => "malformed",
            Self::OffChain => "off_chain",
            Self::Forbidden => "forbidden",
            Self::TableFull => "table_full",
            Self::LookupFailed => "lookup_failed",
        }
    }

    pub const fn counter(self) -> Counter {
        match self {
            Self::Untrusted => Counter::DnsRefusedUntrusted,
            Self::Unmatched => Counter::DnsRefusedUnmatched,
            Self::OverCap => Counter::DnsRefusedOverCap,
            Self::Malformed => Counter::DnsRefusedMalformed,
            Self::OffChain => Counter::DnsRefusedOffChain,
            Self::Forbidden => Counter::DnsRefusedForbidden,
            Self::TableFull => Counter::DnsRefusedTableFull,
            Self::LookupFailed => Counter::DnsLookupFailed,
        }
    }
}

/// The refused answers so far, by reason.
pub fn refused(maps: &ClassifierMaps) -> Result<Vec<(Refusal, CounterValue)>, Error> {
    let counters = maps.counters_of_slot(0)?;
    Ok(Refusal::ALL
        .iter()
        .map(|why| (*why, counters.get(why.counter().index())))
        .collect())
}
