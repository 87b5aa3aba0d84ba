//! `classifier prefixes list`: each prefix with the lists it was added to, those it matches,
//! and those DNS answers taught it into, with the name and the expiry.

use std::{
    collections::BTreeMap,
    time::{Duration, UNIX_EPOCH},
};

use ipnet::IpNet;
use serde::Serialize;

use crate::{ClassifierMaps, Error, PinDir, control::lists::ListNames, dns::addr_of, padded_name};

#[derive(Clone, Debug, Serialize)]
pub struct PrefixRow {
    pub prefix: String,
    /// Lists this prefix was added to.
    pub lists: Vec<String>,
    /// Lists an address in it matches (its own plus those of prefixes containing it).
    pub effective: Vec<String>,
    /// Lists it was learned into from DNS answers, with the name and the expiry.
    pub learned: Vec<LearnedRow>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LearnedRow {
    pub list: String,
    /// The name whose answer taught the address.
    pub name: String,
    /// RFC 3339, UTC.
    pub expires_at: String,
}

/// The prefixes of the state in `pin_dir`, in order; with `list`, only those in that list.
pub fn prefixes(pin_dir: &PinDir, list: Option<&str>) -> Result<Vec<PrefixRow>, Error> {
    let maps = ClassifierMaps::open_pinned(pin_dir)?;
    let names = ListNames::read(&maps)?;
    let only = list.map(|name| names.require(name)).transpose()?;
    let mut learned = learned(&maps, &names)?;
    let mut entries = maps.prefixes()?;
    entries.sort_by_key(|(prefix, _)| *prefix);
    Ok(entries
        .into_iter()
        .filter(|(_, value)| only.is_none_or(|bit| (value.own | value.learned) & (1 << bit) != 0))
        .map(|(prefix, value)| PrefixRow {
            prefix: prefix.to_string(),
            lists: names.names_in(value.own),
            effective: names.names_in(value.lists),
            learned: learned.remove(&prefix).unwrap_or_default(),
        })
        .collect())
}

/// Learned addresses by host prefix, decoded from the pinned `LEARNED` map.
fn learned(
    maps: &ClassifierMaps,
    names: &ListNames,
) -> Result<BTreeMap<IpNet, Vec<LearnedRow>>, Error> {
    let mut rows: BTreeMap<IpNet, Vec<LearnedRow>> = BTreeMap::new();
    for (key, value) in maps.learned()? {
        let expires = UNIX_EPOCH + Duration::from_secs(value.expires_at);
        rows.entry(IpNet::from(addr_of(&key)))
            .or_default()
            .push(LearnedRow {
                list: names.names_in(1 << key.list).join(","),
                name: padded_name(&value.name),
                expires_at: humantime::format_rfc3339_seconds(expires).to_string(),
            });
    }
    Ok(rows)
}
