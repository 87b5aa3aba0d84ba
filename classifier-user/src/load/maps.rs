//! Typed handles on the kernel program's maps.

use std::net::IpAddr;

use aya::{
    Ebpf,
    maps::{Array, HashMap, LpmTrie, Map, MapData, PerCpuArray, lpm_trie::Key},
};
use classifier_common::{
    Config, CounterValue, FlowEntry, FlowKey, PacketReport, PrefixValue, counter::COUNTER_SLOTS,
};
use ipnet::IpNet;

use super::names::{
    MAP_CONFIG, MAP_COUNTERS, MAP_FLOWS, MAP_PREFIXES_V4, MAP_PREFIXES_V6, MAP_REPORT,
};
use crate::Error;

pub struct ClassifierMaps {
    pub counters: PerCpuArray<MapData, CounterValue>,
    pub config: Array<MapData, Config>,
    pub flows: HashMap<MapData, FlowKey, FlowEntry>,
    pub prefixes_v4: LpmTrie<MapData, [u8; 4], PrefixValue>,
    pub prefixes_v6: LpmTrie<MapData, [u8; 16], PrefixValue>,
    pub report: Array<MapData, PacketReport>,
}

/// The counters summed over all CPUs, indexed like the kernel's `COUNTERS` array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterSnapshot(pub Vec<CounterValue>);

impl CounterSnapshot {
    pub fn get(&self, index: u32) -> CounterValue {
        self.0.get(index as usize).copied().unwrap_or_default()
    }

    /// Slots whose packet count differs from `earlier`, with the difference.
    pub fn moved_since(&self, earlier: &CounterSnapshot) -> Vec<(u32, CounterValue)> {
        (0..COUNTER_SLOTS)
            .filter_map(|index| {
                let (now, then) = (self.get(index), earlier.get(index));
                (now.packets != then.packets).then(|| {
                    (
                        index,
                        CounterValue {
                            packets: now.packets - then.packets,
                            bytes: now.bytes - then.bytes,
                        },
                    )
                })
            })
            .collect()
    }
}

fn take(ebpf: &mut Ebpf, name: &'static str) -> Result<Map, Error> {
    ebpf.take_map(name).ok_or(Error::MissingMap(name))
}

impl ClassifierMaps {
    pub(crate) fn take_from(ebpf: &mut Ebpf) -> Result<Self, Error> {
        Ok(Self {
            counters: PerCpuArray::try_from(take(ebpf, MAP_COUNTERS)?)
                .map_err(Error::map(MAP_COUNTERS))?,
            config: Array::try_from(take(ebpf, MAP_CONFIG)?).map_err(Error::map(MAP_CONFIG))?,
            flows: HashMap::try_from(take(ebpf, MAP_FLOWS)?).map_err(Error::map(MAP_FLOWS))?,
            prefixes_v4: LpmTrie::try_from(take(ebpf, MAP_PREFIXES_V4)?)
                .map_err(Error::map(MAP_PREFIXES_V4))?,
            prefixes_v6: LpmTrie::try_from(take(ebpf, MAP_PREFIXES_V6)?)
                .map_err(Error::map(MAP_PREFIXES_V6))?,
            report: Array::try_from(take(ebpf, MAP_REPORT)?).map_err(Error::map(MAP_REPORT))?,
        })
    }

    pub fn counters(&self) -> Result<CounterSnapshot, Error> {
        (0..COUNTER_SLOTS)
            .map(|index| {
                let per_cpu = self
                    .counters
                    .get(&index, 0)
                    .map_err(Error::map(MAP_COUNTERS))?;
                Ok(per_cpu
                    .iter()
                    .fold(CounterValue::default(), |sum, cpu| CounterValue {
                        packets: sum.packets + cpu.packets,
                        bytes: sum.bytes + cpu.bytes,
                    }))
            })
            .collect::<Result<_, _>>()
            .map(CounterSnapshot)
    }

    pub fn config(&self) -> Result<Config, Error> {
        self.config.get(&0, 0).map_err(Error::map(MAP_CONFIG))
    }

    pub fn set_config(&mut self, config: &Config) -> Result<(), Error> {
        self.config
            .set(0, config, 0)
            .map_err(Error::map(MAP_CONFIG))
    }

    pub fn report(&self) -> Result<PacketReport, Error> {
        self.report.get(&0, 0).map_err(Error::map(MAP_REPORT))
    }

    pub fn flow(&self, key: &FlowKey) -> Result<Option<FlowEntry>, Error> {
        match self.flows.get(key, 0) {
            Ok(entry) => Ok(Some(entry)),
            Err(aya::maps::MapError::KeyNotFound) => Ok(None),
            Err(error) => Err(Error::map(MAP_FLOWS)(error)),
        }
    }

    pub fn flows(&self) -> Result<Vec<(FlowKey, FlowEntry)>, Error> {
        self.flows
            .iter()
            .collect::<Result<_, _>>()
            .map_err(Error::map(MAP_FLOWS))
    }

    /// Sets the value of one prefix (the network address, host bits cleared).
    pub fn set_prefix(&mut self, prefix: IpNet, value: PrefixValue) -> Result<(), Error> {
        let len = u32::from(prefix.prefix_len());
        match prefix.trunc().addr() {
            IpAddr::V4(addr) => self
                .prefixes_v4
                .insert(&Key::new(len, addr.octets()), value, 0)
                .map_err(Error::map(MAP_PREFIXES_V4)),
            IpAddr::V6(addr) => self
                .prefixes_v6
                .insert(&Key::new(len, addr.octets()), value, 0)
                .map_err(Error::map(MAP_PREFIXES_V6)),
        }
    }

    pub fn remove_prefix(&mut self, prefix: IpNet) -> Result<(), Error> {
        let len = u32::from(prefix.prefix_len());
        match prefix.trunc().addr() {
            IpAddr::V4(addr) => self
                .prefixes_v4
                .remove(&Key::new(len, addr.octets()))
                .map_err(Error::map(MAP_PREFIXES_V4)),
            IpAddr::V6(addr) => self
                .prefixes_v6
                .remove(&Key::new(len, addr.octets()))
                .map_err(Error::map(MAP_PREFIXES_V6)),
        }
    }
}
