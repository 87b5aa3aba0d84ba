//! The flow table: one entry per flow (an LRU hash), the decision filed under a generation.

use std::os::fd::AsFd as _;

use aya::maps::IterableMap as _;
use classifier_common::{FlowEntry, FlowKey};

use super::{ClassifierMaps, batch, found, removed};
use crate::{Error, load::names::MAP_FLOWS};

impl ClassifierMaps {
    pub fn flow(&self, key: &FlowKey) -> Result<Option<FlowEntry>, Error> {
        found(self.flows.get(key, 0)).map_err(Error::map(MAP_FLOWS))
    }

    /// Every flow, read in batches (`batch`): a reader of the whole table, such as a metrics
    /// scrape, takes a few dozen calls, not two per flow.
    pub fn flows(&self) -> Result<Vec<(FlowKey, FlowEntry)>, Error> {
        batch::entries(self.flows.map().fd().as_fd()).map_err(Error::map(MAP_FLOWS))
    }

    /// How many entries the table holds now (none counted if it cannot be read).
    pub fn flow_count(&self) -> usize {
        self.flows().map_or(0, |flows| flows.len())
    }

    /// Forgets one flow; false when it was not there (an LRU entry may be gone already).
    pub fn remove_flow(&mut self, key: &FlowKey) -> Result<bool, Error> {
        removed(self.flows.remove(key)).map_err(Error::map(MAP_FLOWS))
    }
}
