//! Keeping learned addresses: into their lists when an answer teaches them, out again when
//! their time is up. The addresses go in as host prefixes (/32, /128) through
//! `prefixes::learn_host`, and their name and expiry into the pinned `LEARNED` map, where
//! `classifier prefixes list` finds them.
//!
//! Only answers that match a query the classifier saw teach (`queries`), or answers from a
//! trusted resolver on its interfaces; each list holds at most `max_per_list` learned
//! addresses. Every refused answer is counted by reason (`refused`).
//!
//! Established flows are not re-classified when an address is learned or forgotten (the
//! generation is not bumped): the flows the lookup leads to start after the answer, and a
//! download that began under a learned address keeps its class after the answer expires.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    time::Duration,
};

use classifier_common::{
    dns::{LEARNED_NAME_LEN, LearnedEntry, LearnedKey},
    limits::MAX_LISTS,
};

use super::{
    answers::{DomainLists, answer_of, query_of},
    event::{Direction, DnsDatagram},
    queries::{PendingQueries, QueryKey},
    refused::{Refusal, count_refused},
};
use crate::{
    ClassifierMaps, Error,
    config_file::{DEFAULT_MAX_LEARNED_PER_LIST, TrustedResolver},
    control::prefixes::{forget_host, learn_host},
    padded_name,
};

/// UDP port of DNS.
const DNS_PORT: u16 = 53;

/// The `apple` list's domain suffixes as shipped.
pub const SHIPPED_APPLE_DOMAINS: &str = include_str!("../../data/apple-domains.txt");

/// How the learner is bounded and whom it trusts.
#[derive(Clone, Debug)]
pub struct LearnerSettings {
    /// Learned addresses live at least this long, whatever their TTL.
    pub min_ttl: Duration,
    /// Learned addresses one list holds at most.
    pub max_per_list: u32,
    pub trusted: Vec<TrustedResolver>,
}

impl LearnerSettings {
    pub fn new(min_ttl: Duration) -> Self {
        Self {
            min_ttl,
            max_per_list: DEFAULT_MAX_LEARNED_PER_LIST,
            trusted: Vec::new(),
        }
    }
}

/// What one datagram did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// A query, remembered for its answer.
    Query,
    /// An answer that was let in; it learned or renewed this many (address, list) pairs.
    Learned(usize),
    /// An answer refused (and counted) for this reason. Over the cap, it may have taught the
    /// addresses that fitted.
    Refused(Refusal),
    /// Neither a usable query nor an answer (a malformed query, a full query table).
    Ignored,
}

pub struct Learner {
    domains: DomainLists,
    settings: LearnerSettings,
    queries: PendingQueries,
    /// Learned addresses per list, for the cap.
    per_list: HashMap<u32, u32>,
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
    match key.ip_version {
        4 => IpAddr::V4(std::net::Ipv4Addr::new(
            key.addr[0],
            key.addr[1],
            key.addr[2],
            key.addr[3],
        )),
        _ => IpAddr::V6(std::net::Ipv6Addr::from(key.addr)),
    }
}

/// Domain suffixes from text: one per line, `#` comments.
pub fn parse_domains(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty())
}

impl Learner {
    pub fn new(domains: DomainLists, settings: LearnerSettings) -> Self {
        Self {
            domains,
            settings,
            queries: PendingQueries::default(),
            per_list: HashMap::new(),
            due: BTreeMap::new(),
        }
    }

    pub fn domains(&self) -> &DomainLists {
        &self.domains
    }

    /// Takes in one DNS datagram the kernel handed over, at time `now` (Unix seconds): a
    /// query is remembered, an answer that matches one (or comes from a trusted resolver)
    /// teaches, any other answer is refused and counted.
    pub fn observe(
        &mut self,
        maps: &mut ClassifierMaps,
        datagram: &DnsDatagram,
        now: u64,
    ) -> Result<Observed, Error> {
        if datagram.direction == Direction::Query {
            let Some((id, question)) = query_of(&datagram.message) else {
                return Ok(Observed::Ignored);
            };
            let key = QueryKey {
                client: datagram.src,
                resolver: datagram.dst,
                id,
                question,
            };
            let remembered = datagram.dst.port() == DNS_PORT && self.queries.remember(key, now);
            return Ok(if remembered {
                Observed::Query
            } else {
                Observed::Ignored
            });
        }
        let refuse = |maps: &mut ClassifierMaps, why: Refusal| {
            count_refused(maps, why, datagram.message.len()).map(|()| Observed::Refused(why))
        };
        let Some(answer) = answer_of(&datagram.message, &self.domains) else {
            return refuse(maps, Refusal::Malformed);
        };
        let key = QueryKey {
            client: datagram.dst,
            resolver: datagram.src,
            id: answer.id,
            question: answer.question,
        };
        if !self.queries.answer(&key, now) && !self.trusted(maps, datagram) {
            return refuse(maps, Refusal::Unmatched);
        }
        let mut count = 0;
        let mut over_cap = false;
        for learned in answer.learned {
            let lifetime = Duration::from_secs(u64::from(learned.ttl)).max(self.settings.min_ttl);
            let expires_at = now + lifetime.as_secs();
            let mut entry = LearnedEntry {
                expires_at,
                name: [0; LEARNED_NAME_LEN],
            };
            let name = learned.name.as_bytes();
            let n = name.len().min(LEARNED_NAME_LEN);
            entry.name[..n].copy_from_slice(&name[..n]);
            for list in (0..MAX_LISTS).filter(|list| learned.lists & (1 << list) != 0) {
                let key = key_of(learned.addr, list);
                // A read-modify-write of the tries and LEARNED: `run` holds the writer lock
                // around `observe` (docs/design.md, 'One writer at a time').
                let renewal = maps.learned_entry(&key)?.is_some();
                let held = self.per_list.entry(list).or_default();
                if !renewal && *held >= self.settings.max_per_list {
                    over_cap = true;
                    continue;
                }
                // The record before the prefix: a reader (`prefixes list`, a scrape) never
                // sees a learned prefix without its name and expiry, and a failure between the
                // two leaves a record that expires, never a prefix nothing would remove.
                maps.insert_learned(key, entry)?;
                self.due.entry(expires_at).or_default().push(key);
                learn_host(maps, list, learned.addr)?;
                if !renewal {
                    *held += 1;
                }
                count += 1;
            }
        }
        if over_cap {
            return refuse(maps, Refusal::OverCap);
        }
        Ok(Observed::Learned(count))
    }

    /// Whether the answer comes from a trusted resolver, on one of the interfaces its answers
    /// arrive on (the interface is named as `attach` recorded it).
    fn trusted(&self, maps: &ClassifierMaps, datagram: &DnsDatagram) -> bool {
        let resolvers: Vec<&TrustedResolver> = self
            .settings
            .trusted
            .iter()
            .filter(|resolver| resolver.address == datagram.src.ip())
            .collect();
        if resolvers.is_empty() {
            return false;
        }
        maps.attachments()
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, attachment)| attachment.ifindex == datagram.ifindex)
            .any(|(_, attachment)| {
                let name = padded_name(&attachment.name);
                resolvers
                    .iter()
                    .any(|resolver| resolver.interfaces.contains(&name))
            })
    }

    /// Forgets the addresses whose time is up at `now` (Unix seconds); returns how many.
    pub fn expire(&mut self, maps: &mut ClassifierMaps, now: u64) -> Result<usize, Error> {
        let mut count = 0;
        while let Some(entry) = self.due.first_entry() {
            if *entry.key() > now {
                break;
            }
            for key in entry.remove() {
                let Ok(Some(current)) = maps.learned_entry(&key) else {
                    continue;
                };
                if current.expires_at > now {
                    continue; // renewed by a later answer; due again then
                }
                // `run` holds the writer lock around `expire`.
                forget_host(maps, key.list, addr_of(&key))?;
                let _ = maps.remove_learned(&key);
                if let Some(held) = self.per_list.get_mut(&key.list) {
                    *held = held.saturating_sub(1);
                }
                count += 1;
            }
        }
        Ok(count)
    }

    /// Picks up entries learned by an earlier run (after a restart), so that they expire.
    pub fn adopt(&mut self, maps: &ClassifierMaps) -> Result<usize, Error> {
        let mut count = 0;
        for (key, value) in maps.learned()? {
            self.due.entry(value.expires_at).or_default().push(key);
            *self.per_list.entry(key.list).or_default() += 1;
            count += 1;
        }
        Ok(count)
    }
}
