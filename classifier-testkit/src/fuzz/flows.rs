//! The flow table the kernel must hold during a fuzz run, built from the model's predictions
//! packet by packet: one entry per TCP or UDP flow (both directions share it), with its
//! packets and bytes, the lists and decision it caches, and what it saw of MPTCP (its valid
//! subtypes, the last MP_CAPABLE version, and its state: docs/design.md, 'MPTCP state of a
//! flow'). Compared
//! with the kernel's FLOWS map field by field; only the timestamps and the generation, which
//! the model has no clock or counter for, are left out.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use classifier_common::{
    FlowEntry, FlowKey,
    config::ACTION_KEEP,
    flow::{ACTION_NONE, FLOW_INITIATOR_IS_B, NO_RULE},
    mptcp::MPTCP_VERSION_NONE,
};

use super::reference::{Action, Arrival, Prediction, Transport};

#[derive(Default)]
pub struct FlowModel {
    flows: HashMap<FlowKey, FlowEntry>,
}

impl FlowModel {
    #[expect(
        clippy::len_without_is_empty,
        reason = "the fuzzer compares how many flows the model and the kernel hold, never asks for none"
    )]
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn clear(&mut self) {
        self.flows.clear();
    }

    /// Counts a packet of `length` bytes (the whole frame, as the kernel counts it).
    pub fn update(&mut self, length: usize, prediction: &Prediction) {
        let Some(ip) = &prediction.ip else {
            return;
        };
        let (protocol, src_port, dst_port) = match ip.transport {
            Transport::Tcp {
                src_port, dst_port, ..
            } => (6, src_port, dst_port),
            Transport::Udp { src_port, dst_port } => (17, src_port, dst_port),
            Transport::Other => return,
        };
        let (key, source_is_b) = canonical_key(protocol, (ip.src, src_port), (ip.dst, dst_port));
        let view = &prediction.view;
        let entry = self.flows.entry(key).or_insert_with(|| FlowEntry {
            flags: if source_is_b { FLOW_INITIATOR_IS_B } else { 0 },
            mptcp_version: MPTCP_VERSION_NONE,
            ..FlowEntry::default()
        });
        entry.packets += 1;
        entry.bytes += length as u64;
        // What the packet was classified with is what the entry caches.
        entry.lists = view.lists;
        entry.rule = view.rule.unwrap_or(NO_RULE);
        entry.action = match prediction.action {
            Some(Action::Dscp(dscp)) => dscp,
            Some(Action::Keep) => ACTION_KEEP,
            None => ACTION_NONE,
        };
        let opens = matches!(
            ip.transport,
            Transport::Tcp { segment, .. } if segment.syn && !segment.ack
        );
        if opens {
            // A new connection: what the flow showed of MPTCP before goes.
            entry.mptcp_subtypes = view.mptcp_subtypes;
            entry.mptcp_version = view.mptcp_version.unwrap_or(MPTCP_VERSION_NONE);
        } else {
            entry.mptcp_subtypes |= view.mptcp_subtypes;
            if let Some(version) = view.mptcp_version {
                entry.mptcp_version = version;
            }
        }
        // The model's flow state after the packet: the initiator (the first packet's sender,
        // or the latest SYN's), and the MPTCP attempt, fallback and MPTCP bits.
        entry.flags = view.flow_flags;
        entry.mptcp_side = Arrival::recorded(prediction.evidence);
    }

    /// Where the kernel's flow table differs from the model's; empty when they agree.
    pub fn differences(&self, kernel: &[(FlowKey, FlowEntry)]) -> Vec<String> {
        let kernel: HashMap<FlowKey, FlowEntry> = kernel.iter().copied().collect();
        let mut problems = Vec::new();
        for (key, expected) in &self.flows {
            match kernel.get(key) {
                None => problems.push(format!("{}: not in the kernel's table", name(key))),
                Some(entry) => {
                    let fields = differing_fields(expected, entry);
                    if !fields.is_empty() {
                        problems.push(format!("{}: {}", name(key), fields.join(", ")));
                    }
                }
            }
        }
        problems.extend(
            kernel
                .keys()
                .filter(|key| !self.flows.contains_key(key))
                .map(|key| format!("{}: in the kernel's table only", name(key))),
        );
        problems
    }
}

fn differing_fields(expected: &FlowEntry, kernel: &FlowEntry) -> Vec<String> {
    let fields: [(&str, u64, u64); 9] = [
        ("packets", expected.packets, kernel.packets),
        ("bytes", expected.bytes, kernel.bytes),
        ("lists", expected.lists.into(), kernel.lists.into()),
        (
            "mptcp_subtypes",
            expected.mptcp_subtypes.into(),
            kernel.mptcp_subtypes.into(),
        ),
        ("flags", expected.flags.into(), kernel.flags.into()),
        (
            "mptcp_version",
            expected.mptcp_version.into(),
            kernel.mptcp_version.into(),
        ),
        ("action", expected.action.into(), kernel.action.into()),
        ("rule", expected.rule.into(), kernel.rule.into()),
        (
            "mptcp_side",
            expected.mptcp_side.into(),
            kernel.mptcp_side.into(),
        ),
    ];
    fields
        .into_iter()
        .filter(|(_, expected, kernel)| expected != kernel)
        .map(|(field, expected, kernel)| format!("{field} {kernel:#x}, model {expected:#x}"))
        .collect()
}

/// The kernel's key for a packet from `source` to `destination`: endpoint A is the lesser
/// (address bytes, port), IPv4 addresses in the first 4 bytes. Also whether the source is B.
fn canonical_key(
    protocol: u8,
    source: (IpAddr, u16),
    destination: (IpAddr, u16),
) -> (FlowKey, bool) {
    let bytes = |addr: IpAddr| match addr {
        IpAddr::V4(v4) => {
            let mut bytes = [0; 16];
            bytes[..4].copy_from_slice(&v4.octets());
            bytes
        }
        IpAddr::V6(v6) => v6.octets(),
    };
    let source_end = (bytes(source.0), source.1);
    let destination_end = (bytes(destination.0), destination.1);
    let source_is_b = source_end > destination_end;
    let (a, b) = if source_is_b {
        (destination_end, source_end)
    } else {
        (source_end, destination_end)
    };
    let key = FlowKey {
        addr_a: a.0,
        addr_b: b.0,
        port_a: a.1.to_be_bytes(),
        port_b: b.1.to_be_bytes(),
        protocol,
        ip_version: if source.0.is_ipv4() { 4 } else { 6 },
        _pad: [0; 2],
    };
    (key, source_is_b)
}

/// `tcp 17.1.2.3:443 ↔ 10.0.0.1:50000`, for the failure message.
fn name(key: &FlowKey) -> String {
    let addr = |bytes: [u8; 16]| -> IpAddr {
        if key.ip_version == 4 {
            Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).into()
        } else {
            Ipv6Addr::from(bytes).into()
        }
    };
    let protocol = match key.protocol {
        6 => "tcp".to_owned(),
        17 => "udp".to_owned(),
        other => format!("protocol {other}"),
    };
    format!(
        "{protocol} {}:{} ↔ {}:{}",
        addr(key.addr_a),
        u16::from_be_bytes(key.port_a),
        addr(key.addr_b),
        u16::from_be_bytes(key.port_b)
    )
}
