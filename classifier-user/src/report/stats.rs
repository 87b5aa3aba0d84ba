//! `classifier stats`: the counters, grouped the way an operator reads them.
//!
//! The JSON keys are stable (documented in the README): every leaf is
//! `{"packets": N, "bytes": N}`, plus `packets_per_second`/`bits_per_second` in watch mode and
//! `per_cpu` with `--per-cpu`. Marked packets are at `actions.marked.packets`.

use std::collections::BTreeMap;

use classifier_common::{Counter, CounterValue, MptcpSubtype, ParseError, counter::COUNTER_SLOTS};
use serde::Serialize;

use crate::{dns::Refusal, load::ListNames};

/// One counter as reported: its packets and bytes, with rates and per-CPU values when asked.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Count {
    #[serde(flatten)]
    pub value: CounterValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packets_per_second: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bits_per_second: Option<f64>,
    /// Index = CPU number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_cpu: Option<Vec<CounterValue>>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Stats {
    pub total: Count,
    /// Every packet is in exactly one class; they add up to `total`.
    pub classes: BTreeMap<&'static str, Count>,
    pub network: BTreeMap<&'static str, Count>,
    /// `tcp`, `udp` and `other` add up to the IP packets; `unreachable` (transport header out
    /// of the program's reach, classified by address) is part of `other`.
    pub transport: BTreeMap<&'static str, Count>,
    pub fragments: BTreeMap<&'static str, Count>,
    pub mptcp: Mptcp,
    pub actions: BTreeMap<&'static str, Count>,
    pub flows: BTreeMap<&'static str, Count>,
    /// Parse errors by kind (all kinds, zeros included).
    pub errors: BTreeMap<&'static str, Count>,
    /// Packets matching each list (a packet may match several).
    pub lists: BTreeMap<String, Count>,
    pub dns: Dns,
}

/// DNS learning: datagrams handed to user space, and answers `classifier run` refused
/// (bytes: their DNS messages').
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Dns {
    /// Queries and answers handed over.
    pub forwarded: Count,
    /// Queries and answers lost (ring buffer full).
    pub lost: Count,
    /// Answers refused in whole or in part, and failed own lookups, by reason (`Refusal`).
    pub refused: BTreeMap<&'static str, Count>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Mptcp {
    /// Packets carrying at least one MPTCP option.
    pub option: Count,
    /// Connections that fell back to plain TCP: the SYN/ACK answering an MPTCP SYN came back
    /// without MPTCP (counted on that SYN/ACK).
    pub fallback: Count,
    /// Packets carrying each subtype.
    pub subtypes: BTreeMap<&'static str, Count>,
    /// MP_CAPABLE options by version: v0 (RFC 6824, iOS), v1 (RFC 8684, Linux).
    pub mp_capable_versions: BTreeMap<&'static str, Count>,
}

/// Counter snapshots in, `Stats` out: `per_cpu[slot][cpu]`.
pub struct Snapshot<'a> {
    pub per_cpu: &'a [Vec<CounterValue>],
    /// The previous snapshot and the seconds since it, for rates.
    pub previous: Option<(&'a [Vec<CounterValue>], f64)>,
    pub show_per_cpu: bool,
}

impl Snapshot<'_> {
    fn count(&self, slot: u32) -> Count {
        let empty = Vec::new();
        let values = self.per_cpu.get(slot as usize).unwrap_or(&empty);
        let now = CounterValue::sum(values);
        let mut count = Count {
            value: now,
            ..Count::default()
        };
        if let Some((previous, seconds)) = self.previous
            && seconds > 0.0
        {
            let then = CounterValue::sum(previous.get(slot as usize).unwrap_or(&empty));
            count.packets_per_second =
                Some(now.packets.saturating_sub(then.packets) as f64 / seconds);
            count.bits_per_second =
                Some(now.bytes.saturating_sub(then.bytes) as f64 * 8.0 / seconds);
        }
        if self.show_per_cpu {
            count.per_cpu = Some(values.clone());
        }
        count
    }

    pub fn stats(&self, lists: &ListNames) -> Stats {
        let fixed = |pairs: &[(&'static str, Counter)]| {
            pairs
                .iter()
                .map(|(name, counter)| (*name, self.count(counter.index())))
                .collect::<BTreeMap<_, _>>()
        };
        Stats {
            total: self.count(Counter::Packets.index()),
            classes: fixed(&Counter::CLASSES),
            network: fixed(&[("ipv4", Counter::Ipv4), ("ipv6", Counter::Ipv6)]),
            transport: fixed(&[
                ("tcp", Counter::Tcp),
                ("udp", Counter::Udp),
                ("other", Counter::OtherTransport),
                ("unreachable", Counter::TransportUnreachable),
            ]),
            fragments: fixed(&[
                ("ipv4", Counter::Ipv4Fragment),
                ("ipv6", Counter::Ipv6Fragment),
            ]),
            mptcp: Mptcp {
                option: self.count(Counter::MptcpOption.index()),
                fallback: self.count(Counter::MptcpFallback.index()),
                subtypes: MptcpSubtype::ALL
                    .iter()
                    .map(|s| (s.name(), self.count(Counter::for_mptcp_subtype(*s as u8))))
                    .collect(),
                mp_capable_versions: fixed(&[
                    ("v0", Counter::MpCapableV0),
                    ("v1", Counter::MpCapableV1),
                    ("other", Counter::MpCapableOtherVersion),
                ]),
            },
            actions: fixed(&[
                ("marked", Counter::Marked),
                ("already_marked", Counter::AlreadyMarked),
                ("dry_run_would_mark", Counter::DryRunWouldMark),
                ("kept_by_rule", Counter::KeptByRule),
            ]),
            flows: fixed(&[
                ("created", Counter::FlowCreated),
                ("insert_failed", Counter::FlowInsertFailed),
            ]),
            errors: ParseError::ALL
                .iter()
                .map(|e| (e.name(), self.count(Counter::for_parse_error(*e))))
                .collect(),
            lists: lists
                .iter()
                .map(|(bit, name)| (name.to_owned(), self.count(Counter::for_list(bit))))
                .collect(),
            dns: Dns {
                forwarded: self.count(Counter::DnsForwarded.index()),
                lost: self.count(Counter::DnsLost.index()),
                refused: Refusal::ALL
                    .iter()
                    .map(|why| (why.name(), self.count(why.counter().index())))
                    .collect(),
            },
        }
    }
}

const _: () = assert!(Counter::TransportUnreachable.index() < COUNTER_SLOTS);
