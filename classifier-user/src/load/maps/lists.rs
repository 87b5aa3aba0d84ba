//! What names the lists: their names by bit, and the addresses learned into them from DNS
//! answers (docs/design.md, 'DNS learning').

use std::os::fd::AsFd as _;

use aya::maps::IterableMap as _;
use classifier_common::{
    ListName,
    dns::{LearnedEntry, LearnedKey},
};

use super::{ClassifierMaps, MapWriter, batch, found, padded_name, removed};
use crate::{
    Error,
    load::names::{MAP_LEARNED, MAP_LIST_NAMES},
};

impl ClassifierMaps {
    /// The name of the list at `bit`; none when the bit is free.
    pub fn list_name(&self, bit: u32) -> Result<Option<String>, Error> {
        let entry = self
            .list_names
            .get(&bit, 0)
            .map_err(Error::map(MAP_LIST_NAMES))?;
        let name = padded_name(&entry.name);
        Ok((!name.is_empty()).then_some(name))
    }

    /// Every address learned from DNS, with the name it was learned from and its expiry:
    /// up to `MAX_LEARNED`, read in batches (every scrape reads them).
    pub fn learned(&self) -> Result<Vec<(LearnedKey, LearnedEntry)>, Error> {
        batch::entries(self.learned.map().fd().as_fd()).map_err(Error::map(MAP_LEARNED))
    }

    pub fn learned_entry(&self, key: &LearnedKey) -> Result<Option<LearnedEntry>, Error> {
        found(self.learned.get(key, 0)).map_err(Error::map(MAP_LEARNED))
    }
}

impl MapWriter<'_> {
    /// Names the list at `bit` (the name is validated by the caller: it fits).
    pub fn set_list_name(&mut self, bit: u32, name: &str) -> Result<(), Error> {
        let mut entry = ListName::default();
        entry.name[..name.len()].copy_from_slice(name.as_bytes());
        self.maps
            .list_names
            .set(bit, entry, 0)
            .map_err(Error::map(MAP_LIST_NAMES))
    }

    pub fn insert_learned(&mut self, key: LearnedKey, entry: LearnedEntry) -> Result<(), Error> {
        self.maps
            .learned
            .insert(key, entry, 0)
            .map_err(Error::map(MAP_LEARNED))
    }

    /// Forgets one learned address; false when it was not there.
    pub fn remove_learned(&mut self, key: &LearnedKey) -> Result<bool, Error> {
        removed(self.maps.learned.remove(key)).map_err(Error::map(MAP_LEARNED))
    }
}
