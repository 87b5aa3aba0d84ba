//! `classifier stats`: reading the pinned counters again and again, each reading with the
//! rates since the one before.

use std::time::Instant;

use classifier_common::counter::CounterValue;

use super::stats::{Snapshot, Stats};
use crate::{ClassifierMaps, Error, PinDir, load::ListNames};

pub struct StatsReader {
    maps: ClassifierMaps,
    names: ListNames,
    show_per_cpu: bool,
    previous: Option<(Vec<Vec<CounterValue>>, Instant)>,
}

impl StatsReader {
    pub fn open(pin_dir: &PinDir, show_per_cpu: bool) -> Result<Self, Error> {
        let maps = ClassifierMaps::open_pinned(pin_dir)?;
        let names = ListNames::read(&maps)?;
        Ok(Self {
            maps,
            names,
            show_per_cpu,
            previous: None,
        })
    }

    /// The counters now, with rates since the last reading (none on the first).
    pub fn read(&mut self) -> Result<Stats, Error> {
        let current = self.maps.counters_per_cpu()?;
        let now = Instant::now();
        let stats = Snapshot {
            per_cpu: &current,
            previous: self
                .previous
                .as_ref()
                .map(|(previous, then)| (&previous[..], now.duration_since(*then).as_secs_f64())),
            show_per_cpu: self.show_per_cpu,
        }
        .stats(&self.names);
        self.previous = Some((current, now));
        Ok(stats)
    }
}
