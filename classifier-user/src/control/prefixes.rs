//! Changing prefix lists without a moment of mismatch.
//!
//! The kernel reads one value per lookup, that of the longest matching prefix, so every entry
//! carries its *effective* lists: its own (added by hand or learned from DNS) and those of
//! every shorter prefix containing it. A change is planned in full on the user side
//! (membership → effective lists for every entry),
//! checked against the map sizes, and only then written, in an order that never leaves an
//! address unmatched that both the old and the new state match:
//!
//! 1. entries that are new or only gain lists;
//! 2. entries that lose lists;
//! 3. entries that no list holds any more, deleted.
//!
//! During step 1 every value only grows. In steps 2 and 3 an entry loses list L only if no
//! prefix of L in the new state contains it, so an address still covered by L in the new
//! state keeps L at its longest match throughout. If a write fails, the ones before it are
//! undone. The generation is bumped at the end so established flows look again.
//!
//! `plan` computes the writes (`Step`s) in that order and `Plan::apply` makes them, so a test
//! can make them one at a time and look at the data path between any two
//! (tests/kernel_replace_steps.rs; docs/design.md, 'Hitless replace').

use std::collections::BTreeMap;

use classifier_common::{
    PrefixValue,
    limits::{PREFIX_V4_ENTRIES, PREFIX_V6_ENTRIES},
};
use std::net::IpAddr;

use ipnet::IpNet;

use serde::Serialize;

use crate::{ClassifierMaps, Error, MapWriter};

/// What to do to the prefix lists.
#[derive(Clone, Debug)]
pub enum Change {
    /// Add these prefixes to list `list` (a bit index).
    Add { list: u32, prefixes: Vec<IpNet> },
    /// Remove these prefixes from one list, or from every list they are in.
    Remove {
        list: Option<u32>,
        prefixes: Vec<IpNet>,
    },
    /// Make list `list` hold exactly these prefixes.
    Replace { list: u32, prefixes: Vec<IpNet> },
    /// Empty one list, or all of them (learned addresses included).
    Clear { list: Option<u32> },
    /// Add addresses learned from DNS answers to list `list`.
    Learn { list: u32, prefixes: Vec<IpNet> },
    /// Remove learned addresses (expired) from list `list`; prefixes added by hand stay.
    Forget { list: u32, prefixes: Vec<IpNet> },
}

/// Which lists hold a prefix: added by hand (`own`) or learned from DNS.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct Membership {
    own: u32,
    learned: u32,
}

impl Membership {
    fn lists(self) -> u32 {
        self.own | self.learned
    }
}

/// What a change did to the tries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Applied {
    pub inserted: usize,
    pub updated: usize,
    /// "removed", as the CLI says it.
    #[serde(rename = "removed")]
    pub deleted: usize,
}

/// One map write of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Insert the entry, or overwrite its value.
    Set { prefix: IpNet, value: PrefixValue },
    /// Delete the entry: no list holds it any more.
    Delete { prefix: IpNet },
}

impl Step {
    pub fn prefix(&self) -> IpNet {
        match self {
            Self::Set { prefix, .. } | Self::Delete { prefix } => *prefix,
        }
    }

    /// Makes this one write.
    pub fn write(&self, maps: &mut MapWriter<'_>) -> Result<(), Error> {
        match self {
            Self::Set { prefix, value } => maps.set_prefix(*prefix, *value),
            Self::Delete { prefix } => maps.remove_prefix(*prefix),
        }
    }
}

/// A change planned in full: the map writes in the order that keeps it hitless, and what
/// each written entry held before, to undo them.
#[derive(Clone, Debug)]
pub struct Plan {
    steps: Vec<Step>,
    before: BTreeMap<IpNet, PrefixValue>,
    applied: Applied,
}

impl Plan {
    /// The writes, in the order they must be made.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// What the plan does, counted.
    pub fn applied(&self) -> Applied {
        self.applied
    }

    /// Makes every write in order: all of them, or (on an error) none. Then bumps the
    /// generation, so established flows look again.
    pub fn apply(self, maps: &mut MapWriter<'_>) -> Result<Applied, Error> {
        let mut journal = Journal::default();
        for step in &self.steps {
            journal.note(step.prefix(), self.before.get(&step.prefix()).copied());
            if let Err(error) = step.write(maps) {
                journal.undo(maps);
                return Err(error);
            }
        }
        maps.bump_generation()?;
        Ok(self.applied)
    }
}

/// Applies `change` to the tries in `maps`: all of it, or (on an error) none of it.
pub fn apply(maps: &mut MapWriter<'_>, change: &Change) -> Result<Applied, Error> {
    plan(maps, change)?.apply(maps)
}

/// Plans `change` against the tries as they are in `maps`, checked against the map sizes;
/// writes nothing.
pub fn plan(maps: &ClassifierMaps, change: &Change) -> Result<Plan, Error> {
    let current: BTreeMap<IpNet, PrefixValue> = maps.prefixes()?.into_iter().collect();
    let membership = desired_membership(&current, change)?;
    check_capacity(&membership)?;
    let desired = effective(&membership);

    let mut grow = Vec::new();
    let mut shrink = Vec::new();
    let mut delete = Vec::new();
    for (prefix, value) in &desired {
        let step = Step::Set {
            prefix: *prefix,
            value: *value,
        };
        match current.get(prefix) {
            None => grow.push(step),
            Some(old) if old == value => {}
            Some(old) if value.lists & old.lists == old.lists => grow.push(step),
            Some(_) => shrink.push(step),
        }
    }
    for prefix in current.keys() {
        if !desired.contains_key(prefix) {
            delete.push(Step::Delete { prefix: *prefix });
        }
    }
    let inserted = grow
        .iter()
        .filter(|step| !current.contains_key(&step.prefix()))
        .count();
    let applied = Applied {
        inserted,
        updated: grow.len() + shrink.len() - inserted,
        deleted: delete.len(),
    };
    let steps: Vec<Step> = grow.into_iter().chain(shrink).chain(delete).collect();
    let before = steps
        .iter()
        .filter_map(|step| Some((step.prefix(), *current.get(&step.prefix())?)))
        .collect();
    Ok(Plan {
        steps,
        before,
        applied,
    })
}

/// Adds one address learned from DNS to list `list`, without reading the whole tries: a
/// host prefix contains no other, so only its own entry changes, and what it inherits is the
/// value of the longest shorter prefix covering it, which one LPM lookup gives. Only grows
/// lists, so it is hitless by construction.
pub fn learn_host(maps: &mut MapWriter<'_>, list: u32, addr: IpAddr) -> Result<(), Error> {
    let host = IpNet::from(addr);
    let bit = 1 << list;
    let value = match maps.exact_prefix(host)? {
        Some(mut value) => {
            value.learned |= bit;
            value.lists |= bit;
            value
        }
        None => PrefixValue {
            lists: bit | maps.covering_lists(host)?,
            own: 0,
            learned: bit,
            prefix_len: u32::from(host.prefix_len()),
        },
    };
    maps.set_prefix(host, value)
}

/// Removes an address learned into list `list` (it expired); what was added by hand stays.
pub fn forget_host(maps: &mut MapWriter<'_>, list: u32, addr: IpAddr) -> Result<(), Error> {
    let host = IpNet::from(addr);
    let bit = 1 << list;
    let Some(mut value) = maps.exact_prefix(host)? else {
        return Ok(());
    };
    if value.learned & bit == 0 {
        return Ok(());
    }
    value.learned &= !bit;
    if value.own | value.learned == 0 {
        return maps.remove_prefix(host);
    }
    value.lists = value.own | value.learned | maps.covering_lists(host)?;
    maps.set_prefix(host, value)
}

/// Membership per prefix after the change; an entry in no list is dropped.
fn desired_membership(
    current: &BTreeMap<IpNet, PrefixValue>,
    change: &Change,
) -> Result<BTreeMap<IpNet, Membership>, Error> {
    let mut members: BTreeMap<IpNet, Membership> = current
        .iter()
        .map(|(p, v)| {
            let membership = Membership {
                own: v.own,
                learned: v.learned,
            };
            (*p, membership)
        })
        .collect();
    match change {
        Change::Add { list, prefixes } => {
            for prefix in prefixes {
                members.entry(prefix.trunc()).or_default().own |= 1 << list;
            }
        }
        Change::Learn { list, prefixes } => {
            for prefix in prefixes {
                members.entry(prefix.trunc()).or_default().learned |= 1 << list;
            }
        }
        Change::Forget { list, prefixes } => {
            for prefix in prefixes {
                if let Some(membership) = members.get_mut(&prefix.trunc()) {
                    membership.learned &= !(1 << list);
                }
            }
        }
        Change::Remove { list, prefixes } => {
            let mask = list.map_or(u32::MAX, |list| 1 << list);
            for prefix in prefixes {
                let learned_only = members
                    .get(&prefix.trunc())
                    .is_some_and(|m| m.own & mask == 0 && m.learned & mask != 0);
                let lists = members
                    .get_mut(&prefix.trunc())
                    .map(|membership| &mut membership.own)
                    .filter(|lists| **lists & mask != 0);
                let Some(lists) = lists else {
                    return Err(Error::InvalidPrefix {
                        text: prefix.to_string(),
                        reason: match list {
                            _ if learned_only => format!(
                                "it was learned from DNS, not added by hand: `classifier \
                                 prefixes forget {prefix}` forgets it"
                            ),
                            Some(_) => "it is not in that list".to_owned(),
                            None => "it is in no list".to_owned(),
                        },
                    });
                };
                *lists &= !mask;
            }
        }
        Change::Replace { list, prefixes } => {
            for membership in members.values_mut() {
                membership.own &= !(1 << list);
            }
            for prefix in prefixes {
                members.entry(prefix.trunc()).or_default().own |= 1 << list;
            }
        }
        Change::Clear { list } => {
            let mask = list.map_or(u32::MAX, |list| 1 << list);
            for membership in members.values_mut() {
                membership.own &= !mask;
                membership.learned &= !mask;
            }
        }
    }
    members.retain(|_, membership| membership.lists() != 0);
    Ok(members)
}

fn check_capacity(members: &BTreeMap<IpNet, Membership>) -> Result<(), Error> {
    let v4 = members.keys().filter(|p| matches!(p, IpNet::V4(_))).count();
    let v6 = members.len() - v4;
    for (map, capacity, needed) in [
        ("the IPv4 prefix map", PREFIX_V4_ENTRIES, v4),
        ("the IPv6 prefix map", PREFIX_V6_ENTRIES, v6),
    ] {
        if needed > capacity as usize {
            return Err(Error::MapFull {
                map,
                capacity,
                needed,
            });
        }
    }
    Ok(())
}

/// Effective lists: each prefix's lists plus those of every prefix containing it.
/// `members` iterates in address order, shorter prefixes first, which is a pre-order walk of
/// the prefix tree: a stack of the enclosing prefixes is all it takes.
fn effective(members: &BTreeMap<IpNet, Membership>) -> BTreeMap<IpNet, PrefixValue> {
    let mut enclosing: Vec<(IpNet, u32)> = Vec::new();
    members
        .iter()
        .map(|(prefix, membership)| {
            while enclosing
                .last()
                .is_some_and(|(outer, _)| !outer.contains(prefix))
            {
                enclosing.pop();
            }
            let inherited = enclosing.last().map_or(0, |(_, lists)| *lists);
            let value = PrefixValue {
                lists: membership.lists() | inherited,
                own: membership.own,
                learned: membership.learned,
                prefix_len: u32::from(prefix.prefix_len()),
            };
            enclosing.push((*prefix, value.lists));
            (*prefix, value)
        })
        .collect()
}

/// Previous values of what was written, to put back if a later write fails.
#[derive(Default)]
struct Journal {
    entries: Vec<(IpNet, Option<PrefixValue>)>,
}

impl Journal {
    fn note(&mut self, prefix: IpNet, before: Option<PrefixValue>) {
        self.entries.push((prefix, before));
    }

    fn undo(self, maps: &mut MapWriter<'_>) {
        for (prefix, before) in self.entries.into_iter().rev() {
            // Best effort: the write that failed is already reported.
            let _ = match before {
                Some(value) => maps.set_prefix(prefix, value),
                None => maps.remove_prefix(prefix),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own(entries: &[(&str, u32)]) -> BTreeMap<IpNet, Membership> {
        entries
            .iter()
            .map(|(p, l)| {
                (
                    p.parse().unwrap(),
                    Membership {
                        own: *l,
                        learned: 0,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn more_specific_prefixes_inherit_the_lists_of_those_containing_them() {
        let effective = effective(&own(&[
            ("17.0.0.0/8", 0b01),
            ("17.253.0.0/16", 0b10),
            ("17.253.4.0/24", 0b100),
            ("18.0.0.0/8", 0b1000),
            ("2620:149::/32", 0b01),
        ]));
        let lists = |p: &str| effective[&p.parse::<IpNet>().unwrap()].lists;
        assert_eq!(lists("17.0.0.0/8"), 0b01);
        assert_eq!(lists("17.253.0.0/16"), 0b11);
        assert_eq!(lists("17.253.4.0/24"), 0b111);
        assert_eq!(lists("18.0.0.0/8"), 0b1000, "a sibling inherits nothing");
        assert_eq!(lists("2620:149::/32"), 0b01);
    }

    #[test]
    fn removing_a_prefix_that_is_not_there_is_an_error() {
        let current = BTreeMap::new();
        let change = Change::Remove {
            list: None,
            prefixes: vec!["17.0.0.0/8".parse().unwrap()],
        };
        assert!(desired_membership(&current, &change).is_err());
    }
}
