//! `classifier devices` and the `classifier_devices` metric: the flow table aggregated by
//! device (docs/design.md, 'Devices').
//!
//! A device is the LAN-side address of its flows, and the LAN side of a flow is its client:
//! the endpoint whose packet created the flow's entry, which for TCP is the SYN's sender
//! (the CLIENT column of `classifier flows`). Phones open their downloads, so the phone is
//! the client and the CDN the server, whichever interface the router sees them on. A flow
//! whose entry was created by a server's packet (the classifier started, or the entry was
//! evicted, in the middle of a connection) counts under the server's address.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    time::{Duration, Instant},
};

use classifier_common::{
    FlowEntry, FlowKey,
    flow::{FLOW_INITIATOR_IS_B, MptcpState},
};
use serde::Serialize;

use super::flows::{address, monotonic_coarse_ns};
use crate::load::ListNames;

/// A flow is active when its latest packet is at most this old: the window of
/// `classifier_devices` and of the `active` counts.
pub const ACTIVE_WINDOW: Duration = Duration::from_secs(60);

/// The device a flow belongs to: its client's address.
pub fn device_address(key: &FlowKey, entry: &FlowEntry) -> IpAddr {
    if entry.flags & FLOW_INITIATOR_IS_B != 0 {
        address(&key.addr_b, key.ip_version)
    } else {
        address(&key.addr_a, key.ip_version)
    }
}

fn is_active(entry: &FlowEntry, now_ns: u64) -> bool {
    now_ns.saturating_sub(entry.last_seen_ns) <= ACTIVE_WINDOW.as_nanos() as u64
}

/// A device's flows by their MPTCP state (docs/design.md, 'MPTCP state of a flow'); flows
/// with no MPTCP option are in none of these.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MptcpCounts {
    pub yes: u64,
    pub attempted: u64,
    pub fallback: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceView {
    /// The LAN-side address: the client of every flow counted here.
    pub address: IpAddr,
    /// The lists any of its flows is in.
    pub lists: Vec<String>,
    pub flows: u64,
    /// Flows with a packet in the last minute (`ACTIVE_WINDOW`).
    pub active_flows: u64,
    pub packets: u64,
    pub bytes: u64,
    /// Bits per second between the two reads of the table (`rate`); 0 with one read.
    pub rate_bps: u64,
    /// Seconds since the latest packet of any of its flows.
    pub idle_seconds: f64,
    pub mptcp: MptcpCounts,
}

/// Devices with a flow in one list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ListDevices {
    pub name: String,
    pub devices: u64,
    /// Devices with a flow in the list active in the last minute: `classifier_devices`.
    pub active_devices: u64,
}

/// What `classifier devices` shows.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceTable {
    /// Biggest first (bytes), at most `--top`.
    pub devices: Vec<DeviceView>,
    /// Devices counted, before `--top`.
    pub total_devices: u64,
    /// Flows counted (those in `list` when one is given).
    pub flows: u64,
    /// The list the flows were chosen by, if any.
    pub list: Option<String>,
    /// Seconds between the two reads the rates come from; 0: one read, no rates.
    pub rate_interval_seconds: f64,
    /// Every list, whichever was chosen.
    pub lists: Vec<ListDevices>,
}

/// The flow table at one moment: each flow's bytes, and when it was read.
pub struct Reading {
    bytes: HashMap<FlowKey, u64>,
    at: Instant,
}

impl Reading {
    pub fn of(flows: &[(FlowKey, FlowEntry)], at: Instant) -> Self {
        Self {
            bytes: flows.iter().map(|(key, e)| (*key, e.bytes)).collect(),
            at,
        }
    }

    /// The bytes a flow carried since this reading: all of them for a flow absent then (new,
    /// or evicted and created again, which restarts its counts).
    fn bytes_since(&self, key: &FlowKey, entry: &FlowEntry) -> u64 {
        match self.bytes.get(key) {
            Some(&before) if before <= entry.bytes => entry.bytes - before,
            _ => entry.bytes,
        }
    }
}

/// The devices of `flows` (only those in list bit `list`, when given), biggest first. With
/// an `earlier` reading, each device's rate is the bytes its flows carried since, over the
/// time between the readings.
pub fn devices(
    flows: &[(FlowKey, FlowEntry)],
    earlier: Option<&Reading>,
    now: Instant,
    names: &ListNames,
    list: Option<u32>,
    now_ns: u64,
) -> Vec<DeviceView> {
    struct Sum {
        lists: u32,
        view: DeviceView,
        rate_bytes: u64,
        last_seen_ns: u64,
    }
    let mut by_address: HashMap<IpAddr, Sum> = HashMap::new();
    for (key, entry) in flows {
        if list.is_some_and(|bit| entry.lists & (1 << bit) == 0) {
            continue;
        }
        let address = device_address(key, entry);
        let sum = by_address.entry(address).or_insert_with(|| Sum {
            lists: 0,
            view: DeviceView {
                address,
                lists: Vec::new(),
                flows: 0,
                active_flows: 0,
                packets: 0,
                bytes: 0,
                rate_bps: 0,
                idle_seconds: 0.0,
                mptcp: MptcpCounts::default(),
            },
            rate_bytes: 0,
            last_seen_ns: 0,
        });
        sum.lists |= entry.lists;
        sum.last_seen_ns = sum.last_seen_ns.max(entry.last_seen_ns);
        let view = &mut sum.view;
        view.flows += 1;
        view.active_flows += u64::from(is_active(entry, now_ns));
        view.packets += entry.packets;
        view.bytes += entry.bytes;
        match MptcpState::from_flags(entry.flags) {
            MptcpState::Yes => view.mptcp.yes += 1,
            MptcpState::Attempted => view.mptcp.attempted += 1,
            MptcpState::Fallback => view.mptcp.fallback += 1,
            MptcpState::No => {}
        }
        if let Some(earlier) = earlier {
            sum.rate_bytes += earlier.bytes_since(key, entry);
        }
    }
    let seconds = earlier.map_or(0.0, |e| now.duration_since(e.at).as_secs_f64());
    let mut views: Vec<DeviceView> = by_address
        .into_values()
        .map(|sum| DeviceView {
            lists: names.names_in(sum.lists),
            rate_bps: if seconds > 0.0 {
                (sum.rate_bytes as f64 * 8.0 / seconds).round() as u64
            } else {
                0
            },
            idle_seconds: now_ns.saturating_sub(sum.last_seen_ns) as f64 / 1e9,
            ..sum.view
        })
        .collect();
    views.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then(b.rate_bps.cmp(&a.rate_bps))
            .then(a.address.cmp(&b.address))
    });
    views
}

/// For every list: its devices, and those with a flow in it active in the last minute.
pub fn devices_per_list(
    flows: &[(FlowKey, FlowEntry)],
    names: &ListNames,
    now_ns: u64,
) -> Vec<ListDevices> {
    // Per list, each device: whether one of its flows in the list is active.
    let mut seen: BTreeMap<u32, HashMap<IpAddr, bool>> = BTreeMap::new();
    for (key, entry) in flows {
        if entry.lists == 0 {
            continue;
        }
        let address = device_address(key, entry);
        let active = is_active(entry, now_ns);
        for (bit, _) in names
            .iter()
            .filter(|(bit, _)| entry.lists & (1 << bit) != 0)
        {
            *seen.entry(bit).or_default().entry(address).or_default() |= active;
        }
    }
    names
        .iter()
        .map(|(bit, name)| {
            let devices = seen.get(&bit);
            ListDevices {
                name: name.to_owned(),
                devices: devices.map_or(0, |d| d.len() as u64),
                active_devices: devices.map_or(0, |d| d.values().filter(|a| **a).count() as u64),
            }
        })
        .collect()
}

/// What `classifier devices` is asked for.
pub struct DeviceQuery {
    /// Only the flows in this list.
    pub list: Option<String>,
    pub top: Option<usize>,
    /// The time between the two reads that give the rates; zero: one read, no rates.
    pub rate_interval: Duration,
}

/// The devices of the state in `pin_dir`: the table read twice `rate_interval` apart (once
/// when it is zero), aggregated from the second read.
pub fn device_table(
    pin_dir: &crate::PinDir,
    query: &DeviceQuery,
) -> Result<DeviceTable, crate::Error> {
    let maps = crate::ClassifierMaps::open_pinned(pin_dir)?;
    let names = ListNames::read(&maps)?;
    // A list that does not exist is an error before any wait.
    let list = query
        .list
        .as_deref()
        .map(|name| names.require(name))
        .transpose()?;
    let earlier = if query.rate_interval.is_zero() {
        None
    } else {
        let reading = Reading::of(&maps.flows()?, Instant::now());
        std::thread::sleep(query.rate_interval);
        Some(reading)
    };
    let flows = maps.flows()?;
    let now = Instant::now();
    let now_ns = monotonic_coarse_ns();
    let mut devices = devices(&flows, earlier.as_ref(), now, &names, list, now_ns);
    let total_devices = devices.len() as u64;
    let counted = devices.iter().map(|d| d.flows).sum();
    if let Some(top) = query.top {
        devices.truncate(top);
    }
    Ok(DeviceTable {
        devices,
        total_devices,
        flows: counted,
        list: query.list.clone(),
        rate_interval_seconds: earlier.map_or(0.0, |e| now.duration_since(e.at).as_secs_f64()),
        lists: devices_per_list(&flows, &names, now_ns),
    })
}
