//! Forgetting learned addresses by hand: by address or prefix, by list, or all of them. The
//! record in `LEARNED` and the learned bit in the tries go together, so nothing comes back
//! from a leftover record, and a list's count (its records) frees room under its cap at once.
//! What a list holds by hand stays.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde::Serialize;

use super::prefixes::forget_host;
use crate::load::ListNames;
use crate::{Error, MapWriter, dns::addr_of};

/// Which learned addresses to forget: those in `list` (None: every list) inside one of
/// `prefixes` (empty: every address).
#[derive(Clone, Debug, Default)]
pub struct Forget {
    pub list: Option<u32>,
    pub prefixes: Vec<IpNet>,
}

/// What was forgotten: learned addresses by list name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Forgotten {
    pub forgotten: BTreeMap<String, usize>,
}

impl Forgotten {
    pub fn total(&self) -> usize {
        self.forgotten.values().sum()
    }
}

/// Forgets the learned addresses `what` selects. The caller holds the writer lock. Moves the
/// generation when anything went, so that flows to a forgotten address are decided again.
pub fn forget_learned(
    maps: &mut MapWriter<'_>,
    names: &ListNames,
    what: &Forget,
) -> Result<Forgotten, Error> {
    let mut forgotten = Forgotten::default();
    for (key, _) in maps.learned()? {
        let addr = addr_of(&key);
        let in_list = what.list.is_none_or(|list| list == key.list);
        let in_prefix =
            what.prefixes.is_empty() || what.prefixes.iter().any(|prefix| prefix.contains(&addr));
        if !(in_list && in_prefix) {
            continue;
        }
        // The prefix first: a failure in between leaves a record, which `run` expires,
        // never a learned prefix without one.
        forget_host(maps, key.list, addr)?;
        maps.remove_learned(&key)?;
        let name = names
            .name(key.list)
            .map_or_else(|| format!("list {}", key.list), str::to_owned);
        *forgotten.forgotten.entry(name).or_default() += 1;
    }
    if forgotten.total() > 0 {
        let config = maps.config()?;
        maps.publish(&config)?;
    }
    Ok(forgotten)
}
