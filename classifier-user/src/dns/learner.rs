//! Keeping learned addresses: into their lists when an answer teaches them, out again when
//! their time is up. The addresses go in as host prefixes (/32, /128) through
//! `prefixes::learn_host`, and their name and expiry into the pinned `LEARNED` map, where
//! `classifier prefixes list` finds them.
//!
//! Established flows are not re-classified when an address is learned or forgotten (the
//! generation is not bumped): the flows the lookup leads to start after the answer, and a
//! download that began under a learned address keeps its class after the answer expires.

use std::{collections::BTreeMap, net::IpAddr, time::Duration};

use classifier_common::{
    dns::{LEARNED_NAME_LEN, LearnedEntry, LearnedKey},
    limits::MAX_LISTS,
};

use super::answers::{DomainLists, learned_from};
use crate::{
    ClassifierMaps, Error,
    control::prefixes::{forget_host, learn_host},
    load::names::MAP_LEARNED,
};

/// The `apple` list's domain suffixes as shipped.
pub const SHIPPED_APPLE_DOMAINS: &str = include_str!("../../data/apple-domains.txt");

pub struct Learner {
    domains: DomainLists,
    min_ttl: Duration,
    /// Expiry (Unix seconds) → keys to look at then; an entry may have been renewed since.
    due: BTreeMap<u64, Vec<LearnedKey>>,
}

fn key_of(addr: IpAddr, list: u32) -> LearnedKey {
    let mut key = LearnedKey {
        list,
        ..LearnedKey::default()
    };
    match addr {
        IpAddr::V4(v4) => {
            key.ip_version = 4;
            key.addr[..4].copy_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            key.ip_version = 6;
            key.addr = v6.octets();
        }
    }
    key
}

pub fn addr_of(key: &LearnedKey) -> IpAddr {
    crate::report::flows::address(&key.addr, key.ip_version)
}

/// Domain suffixes from text: one per line, `#` comments.
pub fn parse_domains(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty())
}

impl Learner {
    pub fn new(domains: DomainLists, min_ttl: Duration) -> Self {
        Self {
            domains,
            min_ttl,
            due: BTreeMap::new(),
        }
    }

    pub fn domains(&self) -> &DomainLists {
        &self.domains
    }

    /// Learns what the DNS response `message` teaches, at time `now` (Unix seconds); returns
    /// how many (address, list) pairs it learned or renewed.
    pub fn observe(
        &mut self,
        maps: &mut ClassifierMaps,
        message: &[u8],
        now: u64,
    ) -> Result<usize, Error> {
        let mut count = 0;
        for learned in learned_from(message, &self.domains) {
            let lifetime = Duration::from_secs(u64::from(learned.ttl)).max(self.min_ttl);
            let expires_at = now + lifetime.as_secs();
            let mut entry = LearnedEntry {
                expires_at,
                name: [0; LEARNED_NAME_LEN],
            };
            let name = learned.name.as_bytes();
            let n = name.len().min(LEARNED_NAME_LEN);
            entry.name[..n].copy_from_slice(&name[..n]);
            for list in (0..MAX_LISTS).filter(|list| learned.lists & (1 << list) != 0) {
                learn_host(maps, list, learned.addr)?;
                let key = key_of(learned.addr, list);
                maps.learned
                    .insert(key, entry, 0)
                    .map_err(Error::map(MAP_LEARNED))?;
                self.due.entry(expires_at).or_default().push(key);
                count += 1;
            }
        }
        Ok(count)
    }

    /// Forgets the addresses whose time is up at `now` (Unix seconds); returns how many.
    pub fn expire(&mut self, maps: &mut ClassifierMaps, now: u64) -> Result<usize, Error> {
        let mut count = 0;
        while let Some(entry) = self.due.first_entry() {
            if *entry.key() > now {
                break;
            }
            for key in entry.remove() {
                let Ok(current) = maps.learned.get(&key, 0) else {
                    continue;
                };
                if current.expires_at > now {
                    continue; // renewed by a later answer; due again then
                }
                forget_host(maps, key.list, addr_of(&key))?;
                let _ = maps.learned.remove(&key);
                count += 1;
            }
        }
        Ok(count)
    }

    /// Picks up entries learned by an earlier run (after a restart), so that they expire.
    pub fn adopt(&mut self, maps: &ClassifierMaps) -> Result<usize, Error> {
        let mut count = 0;
        for entry in maps.learned.iter() {
            let (key, value) = entry.map_err(Error::map(MAP_LEARNED))?;
            self.due.entry(value.expires_at).or_default().push(key);
            count += 1;
        }
        Ok(count)
    }
}
