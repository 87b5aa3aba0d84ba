//! `classifier flows`: the flow table, biggest first.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use classifier_common::{
    FlowEntry, FlowKey, MptcpSubtype,
    config::ACTION_KEEP,
    flow::{ACTION_NONE, FLOW_INITIATOR_IS_B, MptcpState},
    mptcp::MPTCP_VERSION_NONE,
    protocol::IPPROTO_TCP,
};
use serde::Serialize;

use crate::load::{ListNames, dscp_name};

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FlowView {
    /// The endpoint that sent the flow's first packet seen, as address:port.
    pub client: String,
    pub server: String,
    /// "tcp" or "udp".
    pub protocol: &'static str,
    /// "no", "attempted" (a SYN offered MPTCP, no answer yet), "fallback" (the answer came
    /// without it) or "yes" (docs/design.md, 'MPTCP state of a flow').
    pub mptcp: &'static str,
    pub mptcp_subtypes: Vec<&'static str>,
    /// MP_CAPABLE version seen (0: RFC 6824, 1: RFC 8684).
    pub mptcp_version: Option<u8>,
    pub lists: Vec<String>,
    /// The policy's action for this flow: a DSCP name, "keep", or null when no rule matches.
    pub dscp: Option<String>,
    pub packets: u64,
    pub bytes: u64,
    /// Seconds since the flow's latest packet.
    pub idle_seconds: f64,
    /// Seconds from its first packet to its latest.
    pub duration_seconds: f64,
}

fn endpoint(addr: &[u8; 16], port: [u8; 2], ip_version: u8) -> String {
    let port = u16::from_be_bytes(port);
    match ip_version {
        4 => format!(
            "{}:{port}",
            Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])
        ),
        _ => format!("[{}]:{port}", Ipv6Addr::from(*addr)),
    }
}

/// The address of endpoint A or B of a flow key.
pub fn address(addr: &[u8; 16], ip_version: u8) -> IpAddr {
    match ip_version {
        4 => IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])),
        _ => IpAddr::V6(Ipv6Addr::from(*addr)),
    }
}

/// CLOCK_MONOTONIC_COARSE now, in nanoseconds: the kernel stamps flows with
/// bpf_ktime_get_coarse_ns, which reads that clock.
pub fn monotonic_coarse_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

pub fn view(key: &FlowKey, entry: &FlowEntry, lists: &ListNames, now_ns: u64) -> FlowView {
    let a = endpoint(&key.addr_a, key.port_a, key.ip_version);
    let b = endpoint(&key.addr_b, key.port_b, key.ip_version);
    let (client, server) = if entry.flags & FLOW_INITIATOR_IS_B != 0 {
        (b, a)
    } else {
        (a, b)
    };
    FlowView {
        client,
        server,
        protocol: if key.protocol == IPPROTO_TCP {
            "tcp"
        } else {
            "udp"
        },
        mptcp: MptcpState::from_flags(entry.flags).name(),
        mptcp_subtypes: MptcpSubtype::ALL
            .iter()
            .filter(|s| entry.mptcp_subtypes & (1 << **s as u8) != 0)
            .map(|s| s.name())
            .collect(),
        mptcp_version: (entry.mptcp_version != MPTCP_VERSION_NONE).then_some(entry.mptcp_version),
        lists: lists.names_in(entry.lists),
        dscp: match entry.action {
            ACTION_NONE => None,
            ACTION_KEEP => Some("keep".to_owned()),
            dscp => Some(dscp_name(dscp)),
        },
        packets: entry.packets,
        bytes: entry.bytes,
        idle_seconds: now_ns.saturating_sub(entry.last_seen_ns) as f64 / 1e9,
        duration_seconds: entry.last_seen_ns.saturating_sub(entry.first_seen_ns) as f64 / 1e9,
    }
}

/// Flows sorted by bytes, biggest first; only those with an MPTCP state (attempted,
/// fallback or yes) if asked; at most `top`.
pub fn views(
    flows: &[(FlowKey, FlowEntry)],
    lists: &ListNames,
    mptcp_only: bool,
    top: Option<usize>,
) -> Vec<FlowView> {
    let now = monotonic_coarse_ns();
    let mut views: Vec<FlowView> = flows
        .iter()
        .filter(|(_, entry)| !mptcp_only || MptcpState::from_flags(entry.flags) != MptcpState::No)
        .map(|(key, entry)| view(key, entry, lists, now))
        .collect();
    views.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(b.packets.cmp(&a.packets)));
    if let Some(top) = top {
        views.truncate(top);
    }
    views
}

/// What `classifier flows` shows: the chosen flows, and how many the table holds.
pub struct FlowTable {
    pub views: Vec<FlowView>,
    pub total: usize,
}

/// The flows of the state in `pin_dir`, as `views` picks them.
pub fn flow_table(
    pin_dir: &crate::PinDir,
    mptcp_only: bool,
    top: Option<usize>,
) -> Result<FlowTable, crate::Error> {
    let maps = crate::ClassifierMaps::open_pinned(pin_dir)?;
    let names = ListNames::read(&maps)?;
    let entries = maps.flows()?;
    Ok(FlowTable {
        views: views(&entries, &names, mptcp_only, top),
        total: entries.len(),
    })
}
