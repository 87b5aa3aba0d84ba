//! The flow table: one entry per flow (an LRU hash), the decision filed under a generation.

use classifier_common::{FlowEntry, FlowKey};

use super::{ClassifierMaps, entries, found, removed};
use crate::{Error, load::names::MAP_FLOWS};

impl ClassifierMaps {
    pub fn flow(&self, key: &FlowKey) -> Result<Option<FlowEntry>, Error> {
        found(self.flows.get(key, 0)).map_err(Error::map(MAP_FLOWS))
    }

    pub fn flows(&self) -> Result<Vec<(FlowKey, FlowEntry)>, Error> {
        entries(self.flows.iter()).map_err(Error::map(MAP_FLOWS))
    }

    /// How many entries the table holds now.
    pub fn flow_count(&self) -> usize {
        self.flows.keys().filter(Result::is_ok).count()
    }

    /// Forgets one flow; false when it was not there (an LRU entry may be gone already).
    pub fn remove_flow(&mut self, key: &FlowKey) -> Result<bool, Error> {
        removed(self.flows.remove(key)).map_err(Error::map(MAP_FLOWS))
    }
}
