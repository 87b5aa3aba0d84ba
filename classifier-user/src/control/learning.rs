//! The writes DNS learning makes, and only those: `dns/` decides what to learn, forget and
//! count; this module writes it. `classifier run` holds the writer lock for one batch of
//! answers, one round of expiry, one move of the generation (`with_lock`), never for its whole
//! life, so an operator's command waits at most one batch (docs/design.md, 'One writer at a
//! time'). `analyze`, the tests and the benchmarks learn into a private object's maps
//! (`Learning::new` over its writer).

use std::net::IpAddr;

use classifier_common::{
    Counter, CounterValue,
    config::CONFIG_LEARN_DNS,
    dns::{LearnedEntry, LearnedKey},
};

use super::{
    WriterLock,
    prefixes::{forget_host, learn_host},
};
use crate::{ClassifierMaps, Error, MapWriter, PinDir};

/// Learning's writer: reads everything, writes only learned addresses, the counts of refused
/// answers, the generation and the DNS hand-over switch.
pub struct Learning<'m> {
    maps: MapWriter<'m>,
}

impl std::ops::Deref for Learning<'_> {
    type Target = ClassifierMaps;

    fn deref(&self) -> &ClassifierMaps {
        &self.maps
    }
}

/// Runs `learn` with the pinned maps' writer, under the writer lock, however long another
/// writer holds it: giving up would stop learning. The wait is logged.
pub fn with_lock<R>(
    pin_dir: &PinDir,
    maps: &mut ClassifierMaps,
    learn: impl FnOnce(&mut Learning<'_>) -> R,
) -> Result<R, Error> {
    let lock = loop {
        match WriterLock::acquire(pin_dir) {
            Err(Error::WriterBusy { holder, .. }) => {
                log::warn!("waiting for {holder}, which is changing the state");
            }
            other => break other?,
        }
    };
    let mut learning = Learning::new(MapWriter::under(&lock, maps));
    Ok(learn(&mut learning))
}

impl<'m> Learning<'m> {
    /// Learning through `maps`: a private object's writer, or the pinned maps' under the lock.
    pub fn new(maps: MapWriter<'m>) -> Self {
        Self { maps }
    }

    /// Teaches `addr` to list `key.list` with its record `entry`; `renewal` when a record is
    /// there already. The record goes in before the prefix, so that a reader (`prefixes list`,
    /// a scrape) never sees a learned prefix without its provenance; a failed prefix write
    /// takes a new record back out.
    pub fn learn(
        &mut self,
        key: LearnedKey,
        entry: LearnedEntry,
        addr: IpAddr,
        renewal: bool,
    ) -> Result<(), Error> {
        self.maps.insert_learned(key, entry)?;
        learn_host(&mut self.maps, key.list, addr).inspect_err(|_| {
            if !renewal {
                let _ = self.maps.remove_learned(&key);
            }
        })
    }

    /// Forgets a learned address: its prefix first, then its record, so that a failure in
    /// between leaves a record (expired again later), never a prefix without provenance.
    pub fn forget(&mut self, key: &LearnedKey, addr: IpAddr) -> Result<(), Error> {
        forget_host(&mut self.maps, key.list, addr)?;
        self.maps.remove_learned(key).map(drop)
    }

    /// Rewrites a record in place (a shortened expiry); the prefix stays.
    pub fn rewrite_record(&mut self, key: LearnedKey, entry: LearnedEntry) -> Result<(), Error> {
        self.maps.insert_learned(key, entry)
    }

    /// Adds one event of `bytes` to `counter` (refused answers, failed lookups: what user
    /// space counts itself, in slot 0).
    pub fn count(&mut self, counter: Counter, bytes: usize) -> Result<(), Error> {
        let one = CounterValue {
            packets: 1,
            bytes: bytes as u64,
        };
        self.maps.add_to_counter(counter.index(), one)
    }

    /// Moves the generation with the configuration as it is, so that every flow is decided
    /// again with what was learned.
    pub fn reclassify(&mut self) -> Result<u32, Error> {
        self.maps.bump_generation()
    }

    /// Turns the kernel's hand-over of DNS datagrams on or off.
    pub fn hand_over_dns(&mut self, on: bool) -> Result<(), Error> {
        let mut config = self.maps.config()?;
        if on {
            config.flags |= CONFIG_LEARN_DNS;
        } else {
            config.flags &= !CONFIG_LEARN_DNS;
        }
        self.maps.publish(&config).map(drop)
    }
}
