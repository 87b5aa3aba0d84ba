//! What is kept per interface: the bookkeeping of each attachment (by link id), the counter
//! slot of each ifindex, and the egress steering of each shaped interface.

use classifier_common::{Attachment, ShapeConfig};

use super::{ClassifierMaps, MapWriter, entries, found, removed};
use crate::{
    Error,
    load::names::{MAP_ATTACHMENTS, MAP_IFACE_SLOTS, MAP_SHAPING},
};

impl ClassifierMaps {
    /// Every attachment's bookkeeping, by link id.
    pub fn attachments(&self) -> Result<Vec<(u32, Attachment)>, Error> {
        entries(self.attachments.iter()).map_err(Error::map(MAP_ATTACHMENTS))
    }

    pub fn attachment(&self, link_id: u32) -> Result<Option<Attachment>, Error> {
        found(self.attachments.get(&link_id, 0)).map_err(Error::map(MAP_ATTACHMENTS))
    }

    /// The counter slot of the interface `ifindex` (0: the shared one).
    pub fn iface_slot(&self, ifindex: u32) -> Result<u32, Error> {
        self.iface_slots
            .get(&ifindex, 0)
            .map_err(Error::map(MAP_IFACE_SLOTS))
    }

    /// How interface `ifindex`'s egress is steered, if it is.
    pub fn shaping(&self, ifindex: u32) -> Result<Option<ShapeConfig>, Error> {
        found(self.shaping.get(&ifindex, 0)).map_err(Error::map(MAP_SHAPING))
    }
}

impl MapWriter<'_> {
    pub fn insert_attachment(&mut self, link_id: u32, attachment: Attachment) -> Result<(), Error> {
        self.maps
            .attachments
            .insert(link_id, attachment, 0)
            .map_err(Error::map(MAP_ATTACHMENTS))
    }

    /// Forgets one attachment's bookkeeping; false when there was none.
    pub fn remove_attachment(&mut self, link_id: u32) -> Result<bool, Error> {
        removed(self.maps.attachments.remove(&link_id)).map_err(Error::map(MAP_ATTACHMENTS))
    }

    pub fn set_iface_slot(&mut self, ifindex: u32, slot: u32) -> Result<(), Error> {
        self.maps
            .iface_slots
            .set(ifindex, slot, 0)
            .map_err(Error::map(MAP_IFACE_SLOTS))
    }

    /// Steers the egress traffic of interface `ifindex` into the shaper's classes.
    pub fn set_shaping(&mut self, ifindex: u32, steering: ShapeConfig) -> Result<(), Error> {
        self.maps
            .shaping
            .insert(ifindex, steering, 0)
            .map_err(Error::map(MAP_SHAPING))
    }

    /// Stops steering interface `ifindex`; false when it was not steered.
    pub fn remove_shaping(&mut self, ifindex: u32) -> Result<bool, Error> {
        removed(self.maps.shaping.remove(&ifindex)).map_err(Error::map(MAP_SHAPING))
    }
}
