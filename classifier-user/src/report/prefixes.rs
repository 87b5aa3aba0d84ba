//! `classifier prefixes list`: each prefix with the lists it was added to, those it matches,
//! and those DNS answers taught it into, with the name and the expiry.

use std::{
    collections::BTreeMap,
    time::{Duration, UNIX_EPOCH},
};

use ipnet::IpNet;
use serde::Serialize;

use classifier_common::dns::LEARNED_FROM_LOOKUP;

use crate::{
    ClassifierMaps, Error, PinDir, dns::addr_of, load::ListNames, padded_name,
    report::flows::address,
};

#[derive(Clone, Debug, Serialize)]
pub struct PrefixRow {
    pub prefix: String,
    /// Lists this prefix was added to.
    pub lists: Vec<String>,
    /// Lists an address in it matches (its own plus those of prefixes containing it).
    pub effective: Vec<String>,
    /// Lists whose learned bit the prefix tries hold for it.
    pub learned_lists: Vec<String>,
    /// Learned addresses' records (`LEARNED`): provenance and expiry, one per list. Always
    /// the same lists as `learned_lists`; a record whose prefix is gone is shown too, with
    /// empty `lists`, so that a drift between the two could be seen.
    pub learned: Vec<LearnedRow>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LearnedRow {
    pub list: String,
    /// The question whose answer taught the address.
    pub name: String,
    pub source: LearnedSource,
    /// The resolver that answered.
    pub resolver: String,
    /// When the answer that taught or last renewed it was read; RFC 3339, UTC.
    pub learned_at: String,
    /// RFC 3339, UTC.
    pub expires_at: String,
}

/// Where a learned address came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LearnedSource {
    /// A named resolver's answer, seen passing through.
    Answer,
    /// `run`'s own lookup.
    Lookup,
}

/// The prefixes of the state in `pin_dir`, in order; with `list`, only those in that list.
pub fn prefixes(pin_dir: &PinDir, list: Option<&str>) -> Result<Vec<PrefixRow>, Error> {
    let maps = ClassifierMaps::open_pinned(pin_dir)?;
    let names = ListNames::read(&maps)?;
    let only = list.map(|name| names.require(name)).transpose()?;
    // The tries first, the records after: learning writes a record before its prefix, so a
    // learned prefix read here has its record by the time the records are read (a prefix is
    // never shown without where it was learned from).
    let mut entries = maps.prefixes()?;
    let mut learned = learned(&maps, &names)?;
    entries.sort_by_key(|(prefix, _)| *prefix);
    let in_list = |rows: &[LearnedRow]| {
        only.is_none_or(|bit| rows.iter().any(|row| names.bit(&row.list) == Some(bit)))
    };
    let mut rows: Vec<PrefixRow> = entries
        .into_iter()
        .filter_map(|(prefix, value)| {
            let learned = learned.remove(&prefix).unwrap_or_default();
            let keep = only.is_none_or(|bit| (value.own | value.learned) & (1 << bit) != 0)
                || in_list(&learned);
            keep.then(|| PrefixRow {
                prefix: prefix.to_string(),
                lists: names.names_in(value.own),
                effective: names.names_in(value.lists),
                learned_lists: names.names_in(value.learned),
                learned,
            })
        })
        .collect();
    rows.extend(
        learned
            .into_iter()
            .filter(|(_, learned)| in_list(learned))
            .map(|(prefix, learned)| PrefixRow {
                prefix: prefix.to_string(),
                lists: Vec::new(),
                effective: Vec::new(),
                learned_lists: Vec::new(),
                learned,
            }),
    );
    Ok(rows)
}

/// Learned addresses by host prefix, decoded from the pinned `LEARNED` map.
fn learned(
    maps: &ClassifierMaps,
    names: &ListNames,
) -> Result<BTreeMap<IpNet, Vec<LearnedRow>>, Error> {
    let mut rows: BTreeMap<IpNet, Vec<LearnedRow>> = BTreeMap::new();
    for (key, value) in maps.learned()? {
        let time = |seconds| {
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(seconds)).to_string()
        };
        rows.entry(IpNet::from(addr_of(&key)))
            .or_default()
            .push(LearnedRow {
                list: names.names_in(1 << key.list).join(","),
                name: padded_name(&value.name),
                source: if value.source == LEARNED_FROM_LOOKUP {
                    LearnedSource::Lookup
                } else {
                    LearnedSource::Answer
                },
                resolver: address(&value.resolver, value.resolver_version).to_string(),
                learned_at: time(value.learned_at),
                expires_at: time(value.expires_at),
            });
    }
    Ok(rows)
}
