//! Typed handles on the kernel program's maps. The maps are private: every reader goes
//! through `ClassifierMaps`'s methods, and every writer through a `MapWriter`, here and in
//! the submodules, one per kind of state.
//!
//! Who may write is a type (docs/design.md, 'One writer at a time'): a `MapWriter` comes only
//! from the owner of a private object (`Classifier<Private>::writer`: tests, `analyze`, the
//! benchmarks), or, for the live state pinned in bpffs, from `control`'s writer lock
//! (`MapWriter::under`), which only `control` can take. The writer lock's type is named here
//! for that reason alone.

mod batch;
mod counters;
mod flows;
mod interfaces;
mod lists;
mod prefixes;

use aya::{
    Ebpf,
    maps::{Array, HashMap, LpmTrie, Map, MapData, MapError, PerCpuArray, RingBuf},
};
use classifier_common::{
    Attachment, Config, FlowEntry, FlowKey, FlowKeyV4, ListName, PacketReport, PrefixValue,
    ShapeConfig,
    config::{STATE_LAYOUT, config_slot},
    counter::CounterBlock,
    dns::{LearnedEntry, LearnedKey},
    flow::FlowCacheSlot,
};
pub use counters::CounterSnapshot;

use super::{
    names::{
        MAP_ATTACHMENTS, MAP_CONFIG, MAP_COUNTERS, MAP_DNS_EVENTS, MAP_FLOW_CACHE, MAP_FLOW_EPOCH,
        MAP_FLOWS_TCP_V4, MAP_FLOWS_TCP_V6, MAP_FLOWS_UDP_V4, MAP_FLOWS_UDP_V6, MAP_GENERATION,
        MAP_IFACE_SLOTS, MAP_LEARNED, MAP_LIST_NAMES, MAP_PREFIXES_V4, MAP_PREFIXES_V6, MAP_REPORT,
        MAP_SHAPING,
    },
    pin_dir::PinDir,
};
use crate::{Error, control::WriterLock};

/// The maps, to read. Writes go through a `MapWriter`.
pub struct ClassifierMaps {
    counters: PerCpuArray<MapData, CounterBlock>,
    /// Two slots; the generation's parity says which is in force (`publish`).
    config: Array<MapData, Config>,
    generation: Array<MapData, u32>,
    /// The flow tables (`FlowTable`): IPv4 keyed by `FlowKeyV4`, IPv6 by `FlowKey`.
    flows_tcp_v4: HashMap<MapData, FlowKeyV4, FlowEntry>,
    flows_tcp_v6: HashMap<MapData, FlowKey, FlowEntry>,
    flows_udp_v4: HashMap<MapData, FlowKeyV4, FlowEntry>,
    flows_udp_v6: HashMap<MapData, FlowKey, FlowEntry>,
    /// Each CPU's flow cache: counts not yet in the tables, which readers add.
    flow_cache: PerCpuArray<MapData, FlowCacheSlot>,
    /// Moved by the kernel whenever a flow entry's flags change: every CPU's cached slots
    /// go stale.
    flow_epoch: Array<MapData, u64>,
    prefixes_v4: LpmTrie<MapData, [u8; 4], PrefixValue>,
    prefixes_v6: LpmTrie<MapData, [u8; 16], PrefixValue>,
    report: Array<MapData, PacketReport>,
    list_names: Array<MapData, ListName>,
    attachments: HashMap<MapData, u32, Attachment>,
    shaping: HashMap<MapData, u32, ShapeConfig>,
    /// DNS queries and answers from the kernel; only one reader at a time may drain it.
    dns_events: RingBuf<MapData>,
    learned: HashMap<MapData, LearnedKey, LearnedEntry>,
    /// Counter block of each interface, by ifindex.
    iface_slots: Array<MapData, u32>,
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
            flows_tcp_v4: typed(&mut map, MAP_FLOWS_TCP_V4)?,
            flows_tcp_v6: typed(&mut map, MAP_FLOWS_TCP_V6)?,
            flows_udp_v4: typed(&mut map, MAP_FLOWS_UDP_V4)?,
            flows_udp_v6: typed(&mut map, MAP_FLOWS_UDP_V6)?,
            flow_cache: typed(&mut map, MAP_FLOW_CACHE)?,
            flow_epoch: typed(&mut map, MAP_FLOW_EPOCH)?,
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

    /// The generation in force: flow decisions filed under another one are made again.
    pub fn generation(&self) -> Result<u32, Error> {
        self.generation
            .get(&0, 0)
            .map_err(Error::map(MAP_GENERATION))
    }

    /// `FLOW_EPOCH` as it is now: each move writes a value no other move wrote, so two reads
    /// that differ saw it move (docs/design.md, 'The flow cache').
    pub fn flow_epoch(&self) -> Result<u64, Error> {
        self.flow_epoch
            .get(&0, 0)
            .map_err(Error::map(MAP_FLOW_EPOCH))
    }

    /// The configuration in force: the slot the generation selects.
    pub fn config(&self) -> Result<Config, Error> {
        let slot = config_slot(self.generation()?);
        self.config.get(&slot, 0).map_err(Error::map(MAP_CONFIG))
    }

    pub fn report(&self) -> Result<PacketReport, Error> {
        self.report.get(&0, 0).map_err(Error::map(MAP_REPORT))
    }

    /// The DNS queries and answers waiting in the ring buffer, taken out of it.
    pub fn take_dns_events(&mut self) -> Vec<Vec<u8>> {
        let mut events = Vec::new();
        while let Some(event) = self.dns_events.next() {
            events.push(event.to_vec());
        }
        events
    }

    /// The ring buffer of DNS queries and answers, for the one reader that drains it as they
    /// come (`run`); the other maps are closed.
    pub fn into_dns_events(self) -> RingBuf<MapData> {
        self.dns_events
    }
}

/// Write access to a set of maps, which reads through it as well. Made only by
/// `Classifier<Private>::writer` (an object no one else sees) and `MapWriter::under` (the
/// writer lock, held for as long as the writer lives).
///
/// The pinned maps opened to read have no write method:
///
/// ```compile_fail,E0599
/// # fn change(pin_dir: &classifier::PinDir) -> Result<(), classifier::Error> {
/// let mut maps = classifier::ClassifierMaps::open_pinned(pin_dir)?;
/// let config = maps.config()?;
/// maps.publish(&config)?;
/// # Ok(())
/// # }
/// ```
///
/// and no one outside `control` takes the writer lock that would make them a writer:
///
/// ```compile_fail,E0624
/// # fn change(pin_dir: &classifier::PinDir) -> Result<(), classifier::Error> {
/// let lock = classifier::control::WriterLock::acquire(pin_dir)?;
/// let mut maps = classifier::ClassifierMaps::open_pinned(pin_dir)?;
/// classifier::MapWriter::under(&lock, &mut maps).bump_generation()?;
/// # Ok(())
/// # }
/// ```
///
/// nor can the pinned maps be put in a private object, whose owner may write:
///
/// ```compile_fail,E0616
/// # fn change(pin_dir: &classifier::PinDir) -> Result<(), classifier::Error> {
/// let mut private = classifier::Classifier::load()?;
/// private.maps = classifier::ClassifierMaps::open_pinned(pin_dir)?;
/// private.writer().bump_generation()?;
/// # Ok(())
/// # }
/// ```
///
/// while the owner of a private object writes it:
///
/// ```no_run
/// # fn change() -> Result<(), classifier::Error> {
/// let mut classifier = classifier::Classifier::load()?;
/// classifier.writer().bump_generation()?;
/// # Ok(())
/// # }
/// ```
pub struct MapWriter<'m> {
    maps: &'m mut ClassifierMaps,
}

impl<'m> MapWriter<'m> {
    /// The writer of a private object's maps, for its owner.
    pub(in crate::load) fn private(maps: &'m mut ClassifierMaps) -> Self {
        Self { maps }
    }

    /// The writer of the pinned maps, for as long as `control` holds the writer lock.
    pub fn under(_held: &'m WriterLock, maps: &'m mut ClassifierMaps) -> Self {
        Self { maps }
    }
}

impl std::ops::Deref for MapWriter<'_> {
    type Target = ClassifierMaps;

    fn deref(&self) -> &ClassifierMaps {
        self.maps
    }
}

/// A name the kernel side keeps NUL-padded (list, interface, DNS name), as text: the one
/// place such bytes are decoded.
pub fn padded_name(bytes: &[u8]) -> String {
    let len = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..len]).into_owned()
}

/// A lookup's value; none when the key is absent.
fn found<T>(result: Result<T, MapError>) -> Result<Option<T>, MapError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(MapError::KeyNotFound) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Whether a removal found its key.
fn removed(result: Result<(), MapError>) -> Result<bool, MapError> {
    found(result).map(|done| done.is_some())
}

/// A hash map's entries. One removed between reading its key and its value (an LRU eviction,
/// a concurrent writer) is left out.
fn entries<K, V>(
    iter: impl Iterator<Item = Result<(K, V), MapError>>,
) -> Result<Vec<(K, V)>, MapError> {
    iter.filter(|entry| !matches!(entry, Err(MapError::KeyNotFound)))
        .collect()
}

impl MapWriter<'_> {
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
        let next = self.maps.generation()?.wrapping_add(1);
        let config = Config {
            generation: next,
            ..*config
        };
        self.maps
            .config
            .set(config_slot(next), config, 0)
            .map_err(Error::map(MAP_CONFIG))?;
        self.maps
            .generation
            .set(0, next, 0)
            .map_err(Error::map(MAP_GENERATION))?;
        Ok(next)
    }

    /// Puts the prefixes written so far in force: established flows look their lists and
    /// policy up again on their next packet.
    pub fn bump_generation(&mut self) -> Result<u32, Error> {
        let config = self.maps.config()?;
        self.publish(&config)
    }
}
