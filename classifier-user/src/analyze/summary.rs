//! analyze's summary: what the classifier made of a whole capture.

use std::fmt;

use classifier_common::{
    Counter, CounterValue, MptcpSubtype, ParseError,
    flow::{FLOW_MPTCP, MptcpState},
};
use serde::Serialize;

use crate::{
    ClassifierMaps, Error,
    load::ListNames,
    report::flows::{FlowView, views},
};

/// How many of the top flows the summary shows.
const TOP_FLOWS: usize = 10;

/// Records that never reached the program, for one reason.
#[derive(Clone, Debug, Serialize)]
pub struct NotRun {
    /// The JSON `error` of these records.
    pub reason: &'static str,
    pub records: u64,
    /// The first such record: its index and what was found there.
    pub first_index: u64,
    pub first: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Records run through the program.
    pub total: CounterValue,
    /// Records that could not be (unsupported link type, truncated, too big for XDP...).
    pub not_run: Vec<NotRun>,
    pub classes: Vec<(&'static str, CounterValue)>,
    pub lists: Vec<(String, CounterValue)>,
    /// MPTCP connections (flows that carried MP_CAPABLE), subflows that joined one (MP_JOIN),
    /// and all flows seen as MPTCP.
    pub mptcp_connections: usize,
    pub mptcp_joins: usize,
    pub mptcp_flows: usize,
    /// Flows whose SYN offered MPTCP with no answer seen, and those whose SYN/ACK came back
    /// without it (docs/design.md, 'MPTCP state of a flow').
    pub mptcp_attempted: usize,
    pub mptcp_fallbacks: usize,
    /// Packets carrying each MPTCP subtype, and MP_CAPABLE by version.
    pub mptcp_subtypes: Vec<(&'static str, u64)>,
    pub mptcp_v0: u64,
    pub mptcp_v1: u64,
    pub errors: Vec<(&'static str, u64)>,
    pub top_flows: Vec<FlowView>,
    /// Bytes the policy gives a DSCP to (rewritten, or already carrying it).
    pub marked: CounterValue,
    /// `marked.bytes` over `total.bytes`.
    pub marked_share: f64,
    /// Addresses learned from the capture's DNS answers (per list).
    pub learned: usize,
}

impl Summary {
    pub fn collect(
        maps: &ClassifierMaps,
        names: &ListNames,
        not_run: Vec<NotRun>,
        learned: usize,
    ) -> Result<Self, Error> {
        let counters = maps.counters()?;
        let flows = maps.flows()?;
        let amount = |counter: Counter| counters.get(counter.index());
        let total = amount(Counter::Packets);
        let marked = amount(Counter::Marked).add(amount(Counter::AlreadyMarked));
        let mptcp_flows: Vec<_> = flows
            .iter()
            .filter(|(_, entry)| entry.flags & FLOW_MPTCP != 0)
            .collect();
        Ok(Self {
            not_run,
            classes: [
                ("mptcp", Counter::ClassMptcp),
                ("listed", Counter::ClassListed),
                ("normal", Counter::ClassNormal),
                ("non_ip", Counter::ClassNonIp),
                ("malformed", Counter::ClassMalformed),
            ]
            .into_iter()
            .map(|(name, counter)| (name, amount(counter)))
            .collect(),
            lists: names
                .iter()
                .map(|(bit, name)| (name.to_owned(), counters.get(Counter::for_list(bit))))
                .collect(),
            mptcp_connections: mptcp_flows
                .iter()
                .filter(|(_, entry)| entry.mptcp_subtypes & 1 != 0)
                .count(),
            mptcp_joins: mptcp_flows
                .iter()
                .filter(|(_, entry)| entry.mptcp_subtypes & 2 != 0)
                .count(),
            mptcp_flows: mptcp_flows.len(),
            mptcp_attempted: flows
                .iter()
                .filter(|(_, e)| MptcpState::from_flags(e.flags) == MptcpState::Attempted)
                .count(),
            mptcp_fallbacks: flows
                .iter()
                .filter(|(_, e)| MptcpState::from_flags(e.flags) == MptcpState::Fallback)
                .count(),
            mptcp_subtypes: MptcpSubtype::ALL
                .iter()
                .map(|s| {
                    (
                        s.name(),
                        counters.get(Counter::for_mptcp_subtype(*s as u8)).packets,
                    )
                })
                .filter(|(_, packets)| *packets > 0)
                .collect(),
            mptcp_v0: counters.get(Counter::MpCapableV0.index()).packets,
            mptcp_v1: counters.get(Counter::MpCapableV1.index()).packets,
            errors: ParseError::ALL
                .iter()
                .map(|e| (e.name(), counters.get(Counter::for_parse_error(*e)).packets))
                .filter(|(_, packets)| *packets > 0)
                .collect(),
            top_flows: views(&flows, names, false, Some(TOP_FLOWS)),
            marked_share: if total.bytes == 0 {
                0.0
            } else {
                marked.bytes as f64 / total.bytes as f64
            },
            marked,
            total,
            learned,
        })
    }
}

fn mib(amount: u64) -> String {
    crate::report::units::bytes(amount)
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} packets, {} through the classifier",
            self.total.packets,
            mib(self.total.bytes)
        )?;
        for not_run in &self.not_run {
            writeln!(
                f,
                "  {} records not run: {} (the first, packet {}: {})",
                not_run.records, not_run.reason, not_run.first_index, not_run.first
            )?;
        }
        writeln!(f, "\nclasses (each packet in one)")?;
        for (name, amount) in &self.classes {
            writeln!(
                f,
                "  {name:<10} {:>10} packets  {:>12}",
                amount.packets,
                mib(amount.bytes)
            )?;
        }
        for (name, amount) in &self.lists {
            writeln!(
                f,
                "  list {name:<5} {:>10} packets  {:>12}",
                amount.packets,
                mib(amount.bytes)
            )?;
        }
        writeln!(
            f,
            "\nMPTCP: {} connections (MP_CAPABLE), {} joined subflows (MP_JOIN), {} flows in all; \
             {} offered on a SYN with no answer seen, {} fell back to TCP",
            self.mptcp_connections,
            self.mptcp_joins,
            self.mptcp_flows,
            self.mptcp_attempted,
            self.mptcp_fallbacks
        )?;
        if !self.mptcp_subtypes.is_empty() {
            let seen: Vec<String> = self
                .mptcp_subtypes
                .iter()
                .map(|(name, packets)| format!("{name} {packets}"))
                .collect();
            writeln!(f, "  subtypes seen (packets): {}", seen.join(", "))?;
            writeln!(
                f,
                "  MP_CAPABLE versions: v0 (RFC 6824, iOS) {}, v1 (RFC 8684) {}",
                self.mptcp_v0, self.mptcp_v1
            )?;
        }
        if !self.errors.is_empty() {
            let errors: Vec<String> = self
                .errors
                .iter()
                .map(|(name, n)| format!("{name} {n}"))
                .collect();
            writeln!(
                f,
                "\nparse errors (packets passed untouched): {}",
                errors.join(", ")
            )?;
        }
        if self.learned > 0 {
            writeln!(
                f,
                "\nDNS: {} addresses learned from the capture's answers",
                self.learned
            )?;
        }
        writeln!(f, "\ntop flows by bytes")?;
        for flow in &self.top_flows {
            let mut classes = flow.lists.clone();
            if flow.mptcp == "yes" {
                classes.insert(0, "mptcp".to_owned());
            }
            writeln!(
                f,
                "  {:<24} → {:<24} {} {:>8} packets {:>11}  {}  DSCP {}",
                flow.client,
                flow.server,
                flow.protocol,
                flow.packets,
                mib(flow.bytes),
                if classes.is_empty() {
                    "-".to_owned()
                } else {
                    classes.join(",")
                },
                flow.dscp.as_deref().unwrap_or("-")
            )?;
        }
        writeln!(
            f,
            "\nwould be marked: {} of {} ({:.1} % of the bytes)",
            mib(self.marked.bytes),
            mib(self.total.bytes),
            self.marked_share * 100.0
        )
    }
}
