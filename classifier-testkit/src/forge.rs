//! Writing the pinned state as something other than this library would: another version's
//! layout stamp, a learned record. Straight through the bpffs pins with aya, since the
//! library writes the live state only under `control`'s writer lock.

use aya::maps::{Array, HashMap, LpmTrie, Map, MapData, lpm_trie::Key};
use classifier::{
    ClassifierMaps, PinDir,
    load::names::{MAP_CONFIG, MAP_LEARNED, MAP_PREFIXES_V4},
};
use classifier_common::{
    Config, PrefixValue,
    config::config_slot,
    dns::{LEARNED_FROM_ANSWER, LEARNED_NAME_LEN, LearnedEntry, LearnedKey},
};

fn pinned(pin_dir: &PinDir, name: &str) -> MapData {
    MapData::from_pin(pin_dir.map(name))
        .unwrap_or_else(|error| panic!("the pinned {name}: {error}"))
}

/// Stamps the state with `layout`, as another version's binary would have made it; returns
/// the stamp it had.
pub fn stamp_layout(pin_dir: &PinDir, layout: u32) -> u32 {
    let generation = ClassifierMaps::open_pinned_unchecked(pin_dir)
        .and_then(|maps| maps.generation())
        .expect("the generation");
    let mut config: Array<MapData, Config> =
        Array::try_from(Map::Array(pinned(pin_dir, MAP_CONFIG))).expect("CONFIG");
    let slot = config_slot(generation);
    let mut current = config.get(&slot, 0).expect("the config in force");
    let before = current.layout;
    current.layout = layout;
    config.set(slot, current, 0).expect("stamping the layout");
    before
}

/// Teaches `addr` to list bit `list` as `run` would from an answer for `name` (its record
/// first, then its host prefix), expiring at `expires_at` (Unix seconds).
pub fn learned(pin_dir: &PinDir, addr: std::net::Ipv4Addr, list: u32, name: &str, expires_at: u64) {
    let mut records: HashMap<MapData, LearnedKey, LearnedEntry> =
        HashMap::try_from(Map::HashMap(pinned(pin_dir, MAP_LEARNED))).expect("LEARNED");
    let mut key = LearnedKey::default();
    key.addr[..4].copy_from_slice(&addr.octets());
    key.list = list;
    key.ip_version = 4;
    let mut entry = LearnedEntry {
        expires_at,
        learned_at: expires_at - 60,
        source: LEARNED_FROM_ANSWER,
        resolver_version: 4,
        _pad: [0; 6],
        resolver: [0; 16],
        name: [0; LEARNED_NAME_LEN],
    };
    entry.resolver[..4].copy_from_slice(&[198, 51, 100, 53]);
    entry.name[..name.len()].copy_from_slice(name.as_bytes());
    records.insert(key, entry, 0).expect("the record");
    let mut v4: LpmTrie<MapData, [u8; 4], PrefixValue> =
        LpmTrie::try_from(Map::LpmTrie(pinned(pin_dir, MAP_PREFIXES_V4))).expect("PREFIXES_V4");
    let value = PrefixValue {
        lists: 1 << list,
        own: 0,
        learned: 1 << list,
        prefix_len: 32,
    };
    v4.insert(&Key::new(32, addr.octets()), value, 0)
        .expect("the host prefix");
}
