//! The per-CPU counters: one `CounterBlock` of `COUNTER_SLOTS` counters per interface slot
//! (docs/design.md, 'Counters').

use aya::maps::PerCpuValues;
use classifier_common::{
    CounterValue,
    counter::{COUNTER_SLOTS, CounterBlock, INTERFACE_SLOTS},
};

use super::{ClassifierMaps, MapWriter};
use crate::{Error, load::names::MAP_COUNTERS};

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
                (now.packets != then.packets).then(|| (index, now.since(then)))
            })
            .collect()
    }
}

impl ClassifierMaps {
    /// The counters summed over all CPUs and all interfaces.
    pub fn counters(&self) -> Result<CounterSnapshot, Error> {
        self.counters_per_cpu().map(|per_cpu| {
            CounterSnapshot(per_cpu.iter().map(|cpus| CounterValue::sum(cpus)).collect())
        })
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
                    *sum = sum.add(cpu);
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
                .map(|cpus| CounterValue::sum(cpus))
                .collect(),
        ))
    }

    /// One interface slot's counters, per CPU: `[counter][cpu]`.
    pub fn counter_block(&self, slot: u32) -> Result<Vec<Vec<CounterValue>>, Error> {
        let cpus = self
            .counters
            .get(&slot, 0)
            .map_err(Error::map(MAP_COUNTERS))?;
        Ok((0..COUNTER_SLOTS as usize)
            .map(|index| cpus.iter().map(|block| block.slots[index]).collect())
            .collect())
    }
}

impl MapWriter<'_> {
    /// Zeroes one interface slot's counters, for an interface that takes the slot over.
    pub fn clear_counter_block(&mut self, slot: u32) -> Result<(), Error> {
        let cpus = aya::util::nr_cpus().map_err(|(_, error)| Error::io("counting CPUs")(error))?;
        let zeros = PerCpuValues::try_from(vec![CounterBlock::default(); cpus])
            .map_err(Error::io("building zeroed counters"))?;
        self.maps
            .counters
            .set(slot, zeros, 0)
            .map_err(Error::map(MAP_COUNTERS))
    }

    /// Adds `amount` to counter `index` of slot 0, on the first CPU's value: for what user
    /// space counts itself (refused DNS answers). A read-modify-write: the caller holds the
    /// writer lock (docs/design.md, 'One writer at a time').
    pub fn add_to_counter(&mut self, index: u32, amount: CounterValue) -> Result<(), Error> {
        let mut blocks = self
            .counters
            .get(&0, 0)
            .map_err(Error::map(MAP_COUNTERS))?
            .to_vec();
        if let Some(counter) = blocks
            .first_mut()
            .and_then(|first| first.slots.get_mut(index as usize))
        {
            *counter = counter.add(amount);
        }
        let blocks =
            PerCpuValues::try_from(blocks).map_err(Error::io("building counter values"))?;
        self.maps
            .counters
            .set(0, blocks, 0)
            .map_err(Error::map(MAP_COUNTERS))
    }
}
