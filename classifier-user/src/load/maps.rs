//! Typed handles on the kernel program's maps.

use std::net::IpAddr;

use aya::{
    Ebpf,
    maps::{Array, HashMap, LpmTrie, Map, MapData, MapError, PerCpuArray, RingBuf, lpm_trie::Key},
};
use classifier_common::{
    Attachment, Config, CounterValue, FlowEntry, FlowKey, ListName, PacketReport, PrefixValue,
    ShapeConfig,
    config::{STATE_LAYOUT, config_slot},
    counter::{COUNTER_SLOTS, INTERFACE_SLOTS},
    dns::{LearnedEntry, LearnedKey},
};
use ipnet::IpNet;

use super::{
    names::{
        MAP_ATTACHMENTS, MAP_CONFIG, MAP_COUNTERS, MAP_DNS_EVENTS, MAP_FLOWS, MAP_GENERATION,
        MAP_IFACE_SLOTS, MAP_LEARNED, MAP_LIST_NAMES, MAP_PREFIXES_V4, MAP_PREFIXES_V6, MAP_REPORT,
        MAP_SHAPING,
    },
    pin_dir::PinDir,
};
use crate::Error;

pub struct ClassifierMaps {
    pub counters: PerCpuArray<MapData, CounterValue>,
    /// Two slots; the generation's parity says which is in force (`publish`).
    config: Array<MapData, Config>,
    generation: Array<MapData, u32>,
    pub flows: HashMap<MapData, FlowKey, FlowEntry>,
    pub prefixes_v4: LpmTrie<MapData, [u8; 4], PrefixValue>,
    pub prefixes_v6: LpmTrie<MapData, [u8; 16], PrefixValue>,
    pub report: Array<MapData, PacketReport>,
    pub list_names: Array<MapData, ListName>,
    pub attachments: HashMap<MapData, u32, Attachment>,
    pub shaping: HashMap<MapData, u32, ShapeConfig>,
    /// DNS queries and answers from the kernel; only one reader at a time may drain it.
    pub dns_events: RingBuf<MapData>,
    pub learned: HashMap<MapData, LearnedKey, LearnedEntry>,
    /// Counter block of each interface, by ifindex.
    pub iface_slots: Array<MapData, u32>,
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

impl ClassifierMaps {
    /// Builds the typed handles from a source of maps by name.
    fn from_source(mut map: impl FnMut(&'static str) -> Result<Map, Error>) -> Result<Self, Error> {
        fn typed<T: TryFrom<Map, Error = MapError>>(
            map: &mut impl FnMut(&'static str) -> Result<Map, Error>,
            name: &'static str,
        ) -> Result<T, Error> {
            T::try_from(map(name)?).map_err(Error::map(name))
        }
        Ok(Self {
            counters: typed(&mut map, MAP_COUNTERS)?,
            config: typed(&mut map, MAP_CONFIG)?,
            generation: typed(&mut map, MAP_GENERATION)?,
            flows: typed(&mut map, MAP_FLOWS)?,
            prefixes_v4: typed(&mut map, MAP_PREFIXES_V4)?,
            prefixes_v6: typed(&mut map, MAP_PREFIXES_V6)?,
            report: typed(&mut map, MAP_REPORT)?,
            list_names: typed(&mut map, MAP_LIST_NAMES)?,
            attachments: typed(&mut map, MAP_ATTACHMENTS)?,
            shaping: typed(&mut map, MAP_SHAPING)?,
            dns_events: typed(&mut map, MAP_DNS_EVENTS)?,
            learned: typed(&mut map, MAP_LEARNED)?,
            iface_slots: typed(&mut map, MAP_IFACE_SLOTS)?,
        })
    }

    pub(crate) fn take_from(ebpf: &mut Ebpf) -> Result<Self, Error> {
        Self::from_source(|name| ebpf.take_map(name).ok_or(Error::MissingMap(name)))
    }

    /// Opens the maps pinned in `pin_dir`, checking that they were made by a compatible
    /// version: same key and value sizes, same state layout.
    pub fn open_pinned(pin_dir: &PinDir) -> Result<Self, Error> {
        let maps = Self::open_pinned_unchecked(pin_dir)?;
        let layout = maps.config()?.layout;
        if layout == 0 {
            return Err(Error::IncompleteState {
                dir: pin_dir.path().to_path_buf(),
            });
        }
        if layout != STATE_LAYOUT {
            return Err(Error::IncompatibleState {
                dir: pin_dir.path().to_path_buf(),
                detail: format!("state layout {layout}, this binary uses {STATE_LAYOUT}"),
            });
        }
        Ok(maps)
    }

    /// Opens the pinned maps checking only their key and value sizes (the layout stamp may not
    /// be written yet, right after they were created).
    pub fn open_pinned_unchecked(pin_dir: &PinDir) -> Result<Self, Error> {
        crate::capabilities::require("opening the pinned state", crate::capabilities::STATE)?;
        pin_dir.check_trusted()?;
        // A directory this process may not search (0700, another uid) is not "no state".
        let config = pin_dir.map(MAP_CONFIG);
        if let Err(source) = std::fs::symlink_metadata(&config)
            && source.kind() == std::io::ErrorKind::PermissionDenied
        {
            return Err(Error::PermissionDenied {
                path: config,
                source,
            });
        }
        if !pin_dir.has_state() {
            return Err(pin_dir.bpffs_missing().unwrap_or_else(|| Error::NoState {
                dir: pin_dir.path().to_path_buf(),
            }));
        }
        let incompatible = |detail: String| Error::IncompatibleState {
            dir: pin_dir.path().to_path_buf(),
            detail,
        };
        Self::from_source(|name| {
            let path = pin_dir.map(name);
            let data = MapData::from_pin(&path).map_err(|error| match error {
                // Not a version mismatch: this process may not open the pins (no CAP_BPF).
                MapError::SyscallError(aya::sys::SyscallError { io_error, .. })
                    if matches!(io_error.kind(), std::io::ErrorKind::PermissionDenied) =>
                {
                    Error::PermissionDenied {
                        path,
                        source: io_error,
                    }
                }
                error => incompatible(format!("map {name} cannot be opened: {error}")),
            })?;
            Map::from_map_data(data).map_err(Error::map(name))
        })
        .map_err(|error| match error {
            Error::Map { map, source } => incompatible(format!("map {map}: {source}")),
            other => other,
        })
    }

    /// The counters summed over all CPUs and all interfaces.
    pub fn counters(&self) -> Result<CounterSnapshot, Error> {
        self.counters_per_cpu()
            .map(|per_cpu| CounterSnapshot(per_cpu.iter().map(|cpus| sum_cpus(cpus)).collect()))
    }

    /// Every counter, with one value per possible CPU, summed over all interfaces.
    pub fn counters_per_cpu(&self) -> Result<Vec<Vec<CounterValue>>, Error> {
        let mut total: Vec<Vec<CounterValue>> = Vec::new();
        for slot in 0..INTERFACE_SLOTS {
            let block = self.counter_block(slot)?;
            if total.is_empty() {
                total = block;
                continue;
            }
            for (sum, cpus) in total.iter_mut().zip(block) {
                for (sum, cpu) in sum.iter_mut().zip(cpus) {
                    sum.packets += cpu.packets;
                    sum.bytes += cpu.bytes;
                }
            }
        }
        Ok(total)
    }

    /// The counters of one interface slot (0: interfaces without a slot of their own).
    pub fn counters_of_slot(&self, slot: u32) -> Result<CounterSnapshot, Error> {
        Ok(CounterSnapshot(
            self.counter_block(slot)?
                .iter()
                .map(|cpus| sum_cpus(cpus))
                .collect(),
        ))
    }

    /// One interface slot's counters, per CPU.
    pub fn counter_block(&self, slot: u32) -> Result<Vec<Vec<CounterValue>>, Error> {
        (0..COUNTER_SLOTS)
            .map(|index| {
                self.counters
                    .get(&(slot * COUNTER_SLOTS + index), 0)
                    .map(|values| values.to_vec())
                    .map_err(Error::map(MAP_COUNTERS))
            })
            .collect()
    }

    /// Zeroes one interface slot's counters, for an interface that takes the slot over.
    pub fn clear_counter_block(&mut self, slot: u32) -> Result<(), Error> {
        let cpus = aya::util::nr_cpus().map_err(|(_, error)| Error::io("counting CPUs")(error))?;
        for index in 0..COUNTER_SLOTS {
            let zeros = aya::maps::PerCpuValues::try_from(vec![CounterValue::default(); cpus])
                .map_err(Error::io("building zeroed counters"))?;
            self.counters
                .set(slot * COUNTER_SLOTS + index, zeros, 0)
                .map_err(Error::map(MAP_COUNTERS))?;
        }
        Ok(())
    }

    /// The generation in force: flow decisions filed under another one are made again.
    pub fn generation(&self) -> Result<u32, Error> {
        self.generation
            .get(&0, 0)
            .map_err(Error::map(MAP_GENERATION))
    }

    /// The configuration in force: the slot the generation selects.
    pub fn config(&self) -> Result<Config, Error> {
        let slot = config_slot(self.generation()?);
        self.config.get(&slot, 0).map_err(Error::map(MAP_CONFIG))
    }

    /// Puts `config`, and every prefix written before this call, in force; returns the new
    /// generation. The one place the generation moves (docs/design.md, 'Live updates: the
    /// generation protocol'):
    ///
    /// 1. the whole configuration goes into the slot the next generation selects, which no
    ///    packet reads while the current generation is in force;
    /// 2. then the generation moves on, in a write of its own.
    ///
    /// A packet reads the generation first and everything else after, so a decision it files
    /// under the new generation was made from the new configuration and the new prefixes;
    /// one it files under the old generation is made again on the flow's next packet.
    pub fn publish(&mut self, config: &Config) -> Result<u32, Error> {
        let next = self.generation()?.wrapping_add(1);
        let config = Config {
            generation: next,
            ..*config
        };
        self.config
            .set(config_slot(next), config, 0)
            .map_err(Error::map(MAP_CONFIG))?;
        self.generation
            .set(0, next, 0)
            .map_err(Error::map(MAP_GENERATION))?;
        Ok(next)
    }

    /// Puts the prefixes written so far in force: established flows look their lists and
    /// policy up again on their next packet.
    pub fn bump_generation(&mut self) -> Result<u32, Error> {
        let config = self.config()?;
        self.publish(&config)
    }

    pub fn report(&self) -> Result<PacketReport, Error> {
        self.report.get(&0, 0).map_err(Error::map(MAP_REPORT))
    }

    pub fn flow(&self, key: &FlowKey) -> Result<Option<FlowEntry>, Error> {
        match self.flows.get(key, 0) {
            Ok(entry) => Ok(Some(entry)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(error) => Err(Error::map(MAP_FLOWS)(error)),
        }
    }

    pub fn flows(&self) -> Result<Vec<(FlowKey, FlowEntry)>, Error> {
        self.flows
            .iter()
            // An LRU entry can be evicted between reading its key and its value.
            .filter(|entry| !matches!(entry, Err(MapError::KeyNotFound)))
            .collect::<Result<_, _>>()
            .map_err(Error::map(MAP_FLOWS))
    }

    /// Every prefix in both tries with its value.
    pub fn prefixes(&self) -> Result<Vec<(IpNet, PrefixValue)>, Error> {
        let mut all = Vec::new();
        for entry in self.prefixes_v4.iter() {
            let (key, value) = entry.map_err(Error::map(MAP_PREFIXES_V4))?;
            let net = ipnet::Ipv4Net::new(key.data().into(), key.prefix_len() as u8)
                .expect("the kernel keeps prefix lengths within 32");
            all.push((IpNet::V4(net), value));
        }
        for entry in self.prefixes_v6.iter() {
            let (key, value) = entry.map_err(Error::map(MAP_PREFIXES_V6))?;
            let net = ipnet::Ipv6Net::new(key.data().into(), key.prefix_len() as u8)
                .expect("the kernel keeps prefix lengths within 128");
            all.push((IpNet::V6(net), value));
        }
        Ok(all)
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

    /// The value of the longest prefix covering `prefix` (itself included), if any.
    pub fn longest_match(&self, prefix: IpNet) -> Result<Option<PrefixValue>, Error> {
        let len = u32::from(prefix.prefix_len());
        let found = match prefix.trunc().addr() {
            IpAddr::V4(addr) => self.prefixes_v4.get(&Key::new(len, addr.octets()), 0),
            IpAddr::V6(addr) => self.prefixes_v6.get(&Key::new(len, addr.octets()), 0),
        };
        match found {
            Ok(value) => Ok(Some(value)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(error) => Err(Error::map(MAP_PREFIXES_V4)(error)),
        }
    }

    /// The value of exactly `prefix`, if it is an entry.
    pub fn exact_prefix(&self, prefix: IpNet) -> Result<Option<PrefixValue>, Error> {
        Ok(self
            .longest_match(prefix)?
            .filter(|value| value.prefix_len == u32::from(prefix.prefix_len())))
    }

    /// The effective lists of the longest prefix strictly containing `prefix`.
    pub fn covering_lists(&self, prefix: IpNet) -> Result<u32, Error> {
        let Some(parent) = prefix.supernet() else {
            return Ok(0);
        };
        Ok(self.longest_match(parent)?.map_or(0, |value| value.lists))
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

/// One counter summed over CPUs.
pub fn sum_cpus(values: &[CounterValue]) -> CounterValue {
    values
        .iter()
        .fold(CounterValue::default(), |sum, v| CounterValue {
            packets: sum.packets + v.packets,
            bytes: sum.bytes + v.bytes,
        })
}
