//! The flow tables: one entry per flow (LRU hashes), the decision filed under a generation.
//! Four tables (`FlowTable`), read and written here as one: IPv4 keys are widened to
//! `FlowKey` on the way out and narrowed on the way in.

use classifier_common::{FlowEntry, FlowKey, FlowKeyV4, flow::FlowTable};

use super::{ClassifierMaps, entries, found, removed};
use crate::{
    Error,
    load::names::{MAP_FLOWS_TCP_V4, MAP_FLOWS_TCP_V6, MAP_FLOWS_UDP_V4, MAP_FLOWS_UDP_V6},
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
        found(entry).map_err(Error::map(map_name(table)))
    }

    /// Every flow of the four tables, with its key as a `FlowKey`.
    pub fn flows(&self) -> Result<Vec<(FlowKey, FlowEntry)>, Error> {
        let widen = |(key, entry): (FlowKeyV4, FlowEntry)| (key.widen(), entry);
        let mut flows = Vec::new();
        for table in FlowTable::ALL {
            let read = match table {
                FlowTable::TcpV4 => entries(self.flows_tcp_v4.iter())
                    .map(|flows| flows.into_iter().map(widen).collect()),
                FlowTable::UdpV4 => entries(self.flows_udp_v4.iter())
                    .map(|flows| flows.into_iter().map(widen).collect()),
                FlowTable::TcpV6 => entries(self.flows_tcp_v6.iter()),
                FlowTable::UdpV6 => entries(self.flows_udp_v6.iter()),
            };
            flows.extend(read.map_err(Error::map(map_name(table)))?);
        }
        Ok(flows)
    }

    /// How many entries the tables hold now.
    pub fn flow_count(&self) -> usize {
        self.flows_tcp_v4.keys().filter(Result::is_ok).count()
            + self.flows_udp_v4.keys().filter(Result::is_ok).count()
            + self.flows_tcp_v6.keys().filter(Result::is_ok).count()
            + self.flows_udp_v6.keys().filter(Result::is_ok).count()
    }

    /// Forgets one flow; false when it was not there (an LRU entry may be gone already).
    pub fn remove_flow(&mut self, key: &FlowKey) -> Result<bool, Error> {
        let table = table_of(key);
        let short = FlowKeyV4::narrow(key);
        let result = match table {
            FlowTable::TcpV4 => self.flows_tcp_v4.remove(&short),
            FlowTable::UdpV4 => self.flows_udp_v4.remove(&short),
            FlowTable::TcpV6 => self.flows_tcp_v6.remove(key),
            FlowTable::UdpV6 => self.flows_udp_v6.remove(key),
        };
        removed(result).map_err(Error::map(map_name(table)))
    }
}
