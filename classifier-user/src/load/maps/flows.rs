//! The flow tables: one entry per flow (LRU hashes), the decision filed under a generation.
//! Four tables (`FlowTable`), read and written here as one: IPv4 keys are widened to
//! `FlowKey` on the way out and narrowed on the way in. Each entry is read with what the
//! CPUs' flow caches counted for it and have not added yet (docs/design.md, 'The flow
//! cache').

use std::os::fd::AsFd as _;

use aya::maps::IterableMap as _;

use classifier_common::{
    FlowEntry, FlowKey, FlowKeyV4,
    flow::{FlowCacheSlot, FlowTable},
    limits::FLOW_CACHE_SLOTS,
};

use super::{ClassifierMaps, batch, found};
use crate::{
    Error,
    load::names::{
        MAP_FLOW_CACHE, MAP_FLOWS_TCP_V4, MAP_FLOWS_TCP_V6, MAP_FLOWS_UDP_V4, MAP_FLOWS_UDP_V6,
    },
};

const fn map_name(table: FlowTable) -> &'static str {
    match table {
        FlowTable::TcpV4 => MAP_FLOWS_TCP_V4,
        FlowTable::TcpV6 => MAP_FLOWS_TCP_V6,
        FlowTable::UdpV4 => MAP_FLOWS_UDP_V4,
        FlowTable::UdpV6 => MAP_FLOWS_UDP_V6,
    }
}

fn table_of(key: &FlowKey) -> FlowTable {
    FlowTable::of(key.ip_version, key.protocol)
}

/// `entry` with what `slots` (one slot, every CPU's value) counted for `key` added.
fn with_cached(key: &FlowKey, mut entry: FlowEntry, slots: &[FlowCacheSlot]) -> FlowEntry {
    for slot in slots
        .iter()
        .filter(|slot| slot.valid != 0 && slot.key == *key)
    {
        entry.packets = entry.packets.wrapping_add(slot.packets);
        entry.bytes = entry.bytes.wrapping_add(slot.bytes);
        entry.last_seen_ns = entry.last_seen_ns.max(slot.last_seen_ns);
    }
    entry
}

impl ClassifierMaps {
    pub fn flow(&self, key: &FlowKey) -> Result<Option<FlowEntry>, Error> {
        let table = table_of(key);
        let short = FlowKeyV4::narrow(key);
        let entry = match table {
            FlowTable::TcpV4 => self.flows_tcp_v4.get(&short, 0),
            FlowTable::UdpV4 => self.flows_udp_v4.get(&short, 0),
            FlowTable::TcpV6 => self.flows_tcp_v6.get(key, 0),
            FlowTable::UdpV6 => self.flows_udp_v6.get(key, 0),
        };
        let Some(entry) = found(entry).map_err(Error::map(map_name(table)))? else {
            return Ok(None);
        };
        let slots = self.cache_slot(FlowCacheSlot::index_of(key))?;
        Ok(Some(with_cached(key, entry, &slots)))
    }

    /// One slot of the flow cache, every CPU's value.
    fn cache_slot(&self, index: u32) -> Result<Vec<FlowCacheSlot>, Error> {
        self.flow_cache
            .get(&index, 0)
            .map(|values| values.to_vec())
            .map_err(Error::map(MAP_FLOW_CACHE))
    }

    /// Every flow of the four tables, with its key as a `FlowKey`, read in batches (`batch`):
    /// a reader of the whole table, such as a metrics scrape, takes a few dozen calls, not two
    /// per flow.
    pub fn flows(&self) -> Result<Vec<(FlowKey, FlowEntry)>, Error> {
        let widen = |(key, entry): (FlowKeyV4, FlowEntry)| (key.widen(), entry);
        let mut flows = Vec::new();
        for table in FlowTable::ALL {
            let read = match table {
                FlowTable::TcpV4 => batch::entries(self.flows_tcp_v4.map().fd().as_fd())
                    .map(|flows| flows.into_iter().map(widen).collect()),
                FlowTable::UdpV4 => batch::entries(self.flows_udp_v4.map().fd().as_fd())
                    .map(|flows| flows.into_iter().map(widen).collect()),
                FlowTable::TcpV6 => batch::entries(self.flows_tcp_v6.map().fd().as_fd()),
                FlowTable::UdpV6 => batch::entries(self.flows_udp_v6.map().fd().as_fd()),
            };
            flows.extend(read.map_err(Error::map(map_name(table)))?);
        }
        // The table first, the caches after: a packet counted in between is in neither, or
        // in the entry only if a slot was flushed meanwhile (docs/design.md, 'The flow
        // cache').
        let mut cached: std::collections::HashMap<FlowKey, Vec<FlowCacheSlot>> =
            std::collections::HashMap::new();
        for index in 0..FLOW_CACHE_SLOTS {
            for slot in self.cache_slot(index)? {
                if slot.valid != 0 {
                    cached.entry(slot.key).or_default().push(slot);
                }
            }
        }
        Ok(flows
            .into_iter()
            .map(|(key, entry)| {
                let slots = cached.get(&key).map_or(&[][..], Vec::as_slice);
                (key, with_cached(&key, entry, slots))
            })
            .collect())
    }

    /// How many entries the tables hold now (a table that cannot be read counts none).
    pub fn flow_count(&self) -> usize {
        let v4 = |fd| batch::entries::<FlowKeyV4, FlowEntry>(fd).map_or(0, |e| e.len());
        let v6 = |fd| batch::entries::<FlowKey, FlowEntry>(fd).map_or(0, |e| e.len());
        v4(self.flows_tcp_v4.map().fd().as_fd())
            + v4(self.flows_udp_v4.map().fd().as_fd())
            + v6(self.flows_tcp_v6.map().fd().as_fd())
            + v6(self.flows_udp_v6.map().fd().as_fd())
    }
}

/// Forgetting one flow: only the fuzzer does, between runs (the `bench` feature).
#[cfg(feature = "bench")]
mod forget {
    use aya::maps::PerCpuValues;
    use classifier_common::{
        FlowKey, FlowKeyV4,
        flow::{FlowCacheSlot, FlowTable},
    };

    use super::{map_name, table_of};
    use crate::{
        Error,
        load::{
            maps::{MapWriter, removed},
            names::MAP_FLOW_CACHE,
        },
    };

    impl MapWriter<'_> {
        /// Forgets one flow; false when it was not there (an LRU entry may be gone already).
        /// The CPUs' cache slots that hold it are emptied first: a read-modify-write of per-CPU
        /// values, exact while no packet of the flow is in flight (tests, between runs).
        pub fn remove_flow(&mut self, key: &FlowKey) -> Result<bool, Error> {
            let index = FlowCacheSlot::index_of(key);
            let mut slots = self.maps.cache_slot(index)?;
            if slots.iter().any(|slot| slot.valid != 0 && slot.key == *key) {
                for slot in slots.iter_mut().filter(|slot| slot.key == *key) {
                    *slot = FlowCacheSlot::default();
                }
                let values = PerCpuValues::try_from(slots)
                    .map_err(Error::io("building flow cache values"))?;
                self.maps
                    .flow_cache
                    .set(index, values, 0)
                    .map_err(Error::map(MAP_FLOW_CACHE))?;
            }
            let table = table_of(key);
            let short = FlowKeyV4::narrow(key);
            let result = match table {
                FlowTable::TcpV4 => self.maps.flows_tcp_v4.remove(&short),
                FlowTable::UdpV4 => self.maps.flows_udp_v4.remove(&short),
                FlowTable::TcpV6 => self.maps.flows_tcp_v6.remove(key),
                FlowTable::UdpV6 => self.maps.flows_udp_v6.remove(key),
            };
            removed(result).map_err(Error::map(map_name(table)))
        }
    }
}
