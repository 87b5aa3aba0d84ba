//! Keeping learned addresses: into their lists when a trusted source teaches them, out again
//! when their time is up. The addresses go in as host prefixes (/32, /128), and their
//! provenance and expiry into the pinned `LEARNED` map, where `classifier prefixes list`
//! finds them; `control::learning` writes both, this module decides.
//!
//! Who may teach (docs/design.md, 'DNS learning'): a resolver the operator named, by its
//! answers arriving on the interfaces named with it (passive), or the router's own lookups
//! (active, `lookup`). Never an asker. Each list holds at most `max_per_list` learned
//! addresses; each address lives between `min_ttl` and `max_ttl`; `bounds` refuses the
//! addresses no answer may teach. Every refusal is counted by reason (`refused`), and none
//! stops learning: a full table, a bad answer or a failed write costs that answer only.
//!
//! A learned address that is new moves the generation, so that a flow whose first packet
//! raced the answer is decided again with it (docs/design.md, 'DNS learning').

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use classifier_common::{
    dns::{
        DNS_PORT, LEARNED_FROM_ANSWER, LEARNED_FROM_LOOKUP, LEARNED_NAME_LEN, LearnedEntry,
        LearnedKey,
    },
    limits::MAX_LISTS,
};

use super::{
    answers::{Answer, DomainLists, answer_of, query_of},
    bounds::AddressBounds,
    event::{Direction, DnsDatagram},
    lookup::OwnLookups,
    queries::{PendingQueries, QueryKey},
    refused::Refusal,
};
use crate::{
    ClassifierMaps, Error,
    config_file::{DEFAULT_DNS_MAX_TTL, DEFAULT_MAX_LEARNED_PER_LIST, TrustedResolver},
    control::learning::Learning,
    padded_name,
};

/// The generation moves for learning at most this often: every move sends each established
/// flow's next packet through a decision again, and a burst of new addresses (a flood of
/// answers from a named resolver) must not make that every packet.
pub const MOVE_INTERVAL: Duration = Duration::from_secs(1);

/// The `apple` list's domain suffixes as shipped.
pub const SHIPPED_APPLE_DOMAINS: &str = include_str!("../../data/apple-domains.txt");

/// Whose answers teach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    /// `classifier run`: only the named resolvers, on their interfaces.
    Named(Vec<TrustedResolver>),
    /// `analyze`: a capture has no interfaces and its resolvers are whoever answered; an
    /// answer teaches when it matches a query in the capture (the capture is the operator's
    /// own evidence, not live input).
    CapturedQueries,
}

/// How the learner is bounded and whom it trusts.
#[derive(Clone, Debug)]
pub struct LearnerSettings {
    /// Learned addresses live at least this long, whatever their TTL.
    pub min_ttl: Duration,
    /// And at most this long.
    pub max_ttl: Duration,
    /// Learned addresses one list holds at most.
    pub max_per_list: u32,
    pub trust: Trust,
    pub bounds: AddressBounds,
}

impl LearnerSettings {
    /// `analyze`'s settings without a config file.
    pub fn new(min_ttl: Duration) -> Self {
        Self {
            min_ttl,
            max_ttl: Duration::from_secs(DEFAULT_DNS_MAX_TTL).max(min_ttl),
            max_per_list: DEFAULT_MAX_LEARNED_PER_LIST,
            trust: Trust::CapturedQueries,
            bounds: AddressBounds::default(),
        }
    }
}

/// Where an answer came from: what `LEARNED` records with each address.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A resolver's answer seen passing through.
    Answer(IpAddr),
    /// One of `run`'s own lookups, answered by this resolver.
    Lookup(IpAddr),
}

/// What one datagram did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// A query to a named resolver, remembered for its answer.
    Query,
    /// An answer that was let in: it learned or renewed this many (address, list) pairs.
    Learned(usize),
    /// An answer refused (and counted) for this reason. Some reasons (over the cap, a full
    /// table, a forbidden or off-chain address) refuse part of it: the rest may have taught.
    Refused(Refusal),
    /// Neither a usable query nor an answer (a malformed query, a query to a resolver
    /// nobody named, the answer to one of `run`'s own lookups).
    Ignored,
}

/// What teaching an answer's addresses did.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Taught {
    /// (address, list) pairs learned or renewed.
    pub count: usize,
    /// Of them, new: a flow may have raced them (the generation must move).
    pub new: usize,
    /// The first refusal met, if any.
    pub refused: Option<Refusal>,
}

pub struct Learner {
    domains: DomainLists,
    settings: LearnerSettings,
    queries: PendingQueries,
    /// Learned addresses per list, for the cap; counted again from `LEARNED` when it says a
    /// list is full, so a record removed by another writer (`prefixes forget`) frees room.
    per_list: HashMap<u32, u32>,
    /// Expiry (Unix seconds) → keys to look at then; an entry may have been renewed or
    /// forgotten since.
    due: BTreeMap<u64, Vec<LearnedKey>>,
    /// New (address, list) pairs since `reclassify_if_new` last ran.
    new: usize,
    /// `run`'s own lookups, whose answers the kernel hands over too.
    own: Option<Arc<OwnLookups>>,
    /// When the records were last counted for the cap (Unix seconds).
    recounted_at: Option<u64>,
    /// When the generation last moved for learning.
    moved_at: Option<Instant>,
}

pub fn key_of(addr: IpAddr, list: u32) -> LearnedKey {
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

/// Domain suffixes (or host names) from text: one per line, `#` comments.
pub fn parse_domains(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty())
}

fn entry_of(name: &str, source: Source, now: u64, expires_at: u64) -> LearnedEntry {
    let (kind, resolver) = match source {
        Source::Answer(resolver) => (LEARNED_FROM_ANSWER, resolver),
        Source::Lookup(resolver) => (LEARNED_FROM_LOOKUP, resolver),
    };
    let resolver_key = key_of(resolver, 0);
    let mut entry = LearnedEntry {
        expires_at,
        learned_at: now,
        source: kind,
        resolver_version: resolver_key.ip_version,
        _pad: [0; 6],
        resolver: resolver_key.addr,
        name: [0; LEARNED_NAME_LEN],
    };
    let name = name.as_bytes();
    let n = name.len().min(LEARNED_NAME_LEN);
    entry.name[..n].copy_from_slice(&name[..n]);
    entry
}

/// Counts a refusal; a failure to count is logged, never fatal.
fn count(maps: &mut Learning<'_>, why: Refusal, bytes: usize) {
    if let Err(error) = maps.count(why.counter(), bytes) {
        log::warn!("counting a refused DNS answer ({}): {error}", why.name());
    }
}

impl Learner {
    pub fn new(domains: DomainLists, settings: LearnerSettings) -> Self {
        Self {
            domains,
            settings,
            queries: PendingQueries::default(),
            per_list: HashMap::new(),
            due: BTreeMap::new(),
            new: 0,
            own: None,
            recounted_at: None,
            moved_at: None,
        }
    }

    /// Answers to these lookups (`run`'s own) are taught through `teach`, by the lookup's
    /// result; seen passing, they are ignored rather than refused.
    pub fn recognise_own_lookups(&mut self, own: Arc<OwnLookups>) {
        self.own = Some(own);
    }

    /// Moves the generation when an address is new in a list since the last move, so that a
    /// flow whose first packet came between the answer and the write is decided again
    /// (docs/design.md, 'DNS learning'). At most once per `MOVE_INTERVAL`: `run` calls it
    /// after every batch of answers and every tick, and a new address waits for the next
    /// move at most that long. A renewal moves nothing. Returns whether it moved.
    pub fn reclassify_if_new(&mut self, maps: &mut Learning<'_>, now: Instant) -> bool {
        if self.new == 0
            || self
                .moved_at
                .is_some_and(|at| now.duration_since(at) < MOVE_INTERVAL)
        {
            return false;
        }
        self.new = 0;
        self.moved_at = Some(now);
        match maps.reclassify() {
            Ok(_) => true,
            Err(error) => {
                log::warn!("moving the generation after learning: {error}");
                false
            }
        }
    }

    pub fn settings_mut(&mut self) -> &mut LearnerSettings {
        &mut self.settings
    }

    /// The named resolver `datagram` comes from, on an interface its answers arrive on.
    fn resolver_of(&self, maps: &ClassifierMaps, datagram: &DnsDatagram) -> Option<Resolver> {
        let resolvers = match &self.settings.trust {
            Trust::CapturedQueries => {
                return Some(Resolver {
                    require_query: true,
                });
            }
            Trust::Named(resolvers) => resolvers,
        };
        let named: Vec<&TrustedResolver> = resolvers
            .iter()
            .filter(|resolver| resolver.address == datagram.src.ip())
            .collect();
        if named.is_empty() {
            return None;
        }
        let interface = Self::interface(maps, datagram.ifindex)?;
        named
            .into_iter()
            .find(|resolver| resolver.interfaces.contains(&interface))
            .map(|resolver| Resolver {
                require_query: resolver.require_query,
            })
    }

    /// The interface the kernel saw `ifindex` as, by the name `attach` recorded.
    fn interface(maps: &ClassifierMaps, ifindex: u32) -> Option<String> {
        maps.attachments()
            .unwrap_or_default()
            .into_iter()
            .find(|(_, attachment)| attachment.ifindex == ifindex)
            .map(|(_, attachment)| padded_name(&attachment.name))
    }

    /// Whether a query is worth remembering: it goes to a named resolver that requires
    /// queries, and it did not arrive on one of that resolver's own interfaces (where its
    /// answers arrive: a host there could make a query and its answer both).
    fn wants_query(&self, maps: &ClassifierMaps, datagram: &DnsDatagram) -> bool {
        if datagram.dst.port() != DNS_PORT {
            return false;
        }
        let resolvers = match &self.settings.trust {
            Trust::CapturedQueries => return true,
            Trust::Named(resolvers) => resolvers,
        };
        let named: Vec<&TrustedResolver> = resolvers
            .iter()
            .filter(|named| named.require_query && named.address == datagram.dst.ip())
            .collect();
        if named.is_empty() {
            return false;
        }
        let interface = Self::interface(maps, datagram.ifindex);
        named.iter().any(|resolver| {
            interface
                .as_ref()
                .is_some_and(|name| !resolver.interfaces.contains(name))
        })
    }

    /// Takes in one DNS datagram the kernel handed over, at time `now` (Unix seconds): a
    /// query to a named resolver is remembered; an answer from a named resolver on its
    /// interface (to a remembered query, where the resolver requires one) teaches; any other
    /// answer is refused and counted. Never fails: what cannot be written is counted.
    pub fn observe(
        &mut self,
        maps: &mut Learning<'_>,
        datagram: &DnsDatagram,
        now: u64,
    ) -> Observed {
        if datagram.direction == Direction::Query {
            if !self.wants_query(maps, datagram) {
                return Observed::Ignored;
            }
            let Some((id, question)) = query_of(&datagram.message) else {
                return Observed::Ignored;
            };
            let key = QueryKey {
                resolver: datagram.dst,
                id,
                question,
            };
            if self.queries.remember(key, now) {
                return Observed::Query;
            }
            // A flood of queries: its own answers will be refused `unmatched`.
            count(maps, Refusal::TableFull, datagram.message.len());
            return Observed::Refused(Refusal::TableFull);
        }
        let bytes = datagram.message.len();
        if let (Some(own), Some(&[high, low])) = (&self.own, datagram.message.get(..2)) {
            if own.answers(datagram.dst.port(), u16::from_be_bytes([high, low])) {
                return Observed::Ignored;
            }
        }
        let refuse = |maps: &mut Learning<'_>, why: Refusal| {
            count(maps, why, bytes);
            Observed::Refused(why)
        };
        let Some(resolver) = self.resolver_of(maps, datagram) else {
            return refuse(maps, Refusal::Untrusted);
        };
        let Some(answer) = answer_of(&datagram.message, &self.domains, 0) else {
            return refuse(maps, Refusal::Malformed);
        };
        let key = QueryKey {
            resolver: datagram.src,
            id: answer.id,
            question: answer.question.clone(),
        };
        if resolver.require_query && !self.queries.answer(&key, now) {
            return refuse(maps, Refusal::Unmatched);
        }
        let taught = self.teach(maps, &answer, Source::Answer(datagram.src.ip()), now);
        if let Some(why) = taught.refused {
            count(maps, why, bytes);
            return Observed::Refused(why);
        }
        Observed::Learned(taught.count)
    }

    /// Learns the addresses of a trusted `answer` (an answer seen from a named resolver, or
    /// one of `run`'s own lookups), within the bounds; the refusal it met first, if any, is
    /// for the caller to count.
    pub fn teach(
        &mut self,
        maps: &mut Learning<'_>,
        answer: &Answer,
        source: Source,
        now: u64,
    ) -> Taught {
        let mut taught = Taught::default();
        let mut refuse = |why: Refusal| {
            taught.refused.get_or_insert(why);
        };
        if answer.off_chain > 0 {
            refuse(Refusal::OffChain);
        }
        for learned in &answer.learned {
            if !self.settings.bounds.allows(learned.addr) {
                refuse(Refusal::Forbidden);
                continue;
            }
            let lifetime = Duration::from_secs(u64::from(learned.ttl))
                .clamp(self.settings.min_ttl, self.settings.max_ttl);
            let expires_at = now.saturating_add(lifetime.as_secs());
            let entry = entry_of(&learned.name, source, now, expires_at);
            for list in (0..MAX_LISTS).filter(|list| learned.lists & (1 << list) != 0) {
                let key = key_of(learned.addr, list);
                // A read-modify-write of the tries and LEARNED: `Learning` holds the writer
                // lock (docs/design.md, 'One writer at a time').
                let renewal = matches!(maps.learned_entry(&key), Ok(Some(_)));
                if !renewal && !self.has_room(maps, list, now) {
                    refuse(Refusal::OverCap);
                    continue;
                }
                if let Err(error) = maps.learn(key, entry, learned.addr, renewal) {
                    log::warn!("learning {} into list {list}: {error}", learned.addr);
                    refuse(Refusal::TableFull);
                    continue;
                }
                if !renewal {
                    // One schedule per key: a renewal is found by its old date and moved.
                    self.due.entry(expires_at).or_default().push(key);
                    *self.per_list.entry(list).or_default() += 1;
                    taught.new += 1;
                    self.new += 1;
                }
                taught.count += 1;
            }
        }
        taught
    }

    /// Whether `list` may take one more learned address. At the cap, the records are
    /// counted again, at most once a second (a full read of `LEARNED`): another writer may
    /// have forgotten some.
    fn has_room(&mut self, maps: &ClassifierMaps, list: u32, now: u64) -> bool {
        let cap = self.settings.max_per_list;
        if self.per_list.get(&list).copied().unwrap_or(0) < cap {
            return true;
        }
        if self.recounted_at != Some(now) {
            self.recounted_at = Some(now);
            if let Ok(records) = maps.learned() {
                self.per_list.clear();
                for (key, _) in records {
                    *self.per_list.entry(key.list).or_default() += 1;
                }
            }
        }
        self.per_list.get(&list).copied().unwrap_or(0) < cap
    }

    /// Forgets the addresses whose time is up at `now` (Unix seconds); returns how many.
    /// A failed removal is logged and tried again at the next expiry.
    pub fn expire(&mut self, maps: &mut Learning<'_>, now: u64) -> usize {
        let mut count = 0;
        let (mut retry, mut renewed) = (Vec::new(), Vec::new());
        while let Some(entry) = self.due.first_entry() {
            if *entry.key() > now {
                break;
            }
            for key in entry.remove() {
                let current = match maps.learned_entry(&key) {
                    Ok(Some(current)) => current,
                    Ok(None) => continue, // forgotten by hand
                    Err(error) => {
                        log::warn!("reading the record of {}: {error}", addr_of(&key));
                        retry.push(key);
                        continue;
                    }
                };
                if current.expires_at > now {
                    // Renewed by a later answer: due again then.
                    renewed.push((current.expires_at, key));
                    continue;
                }
                // A failure leaves the record, which the next expiry removes.
                if let Err(error) = maps.forget(&key, addr_of(&key)) {
                    log::warn!("expiring {}: {error}", addr_of(&key));
                    retry.push(key);
                    continue;
                }
                if let Some(held) = self.per_list.get_mut(&key.list) {
                    *held = held.saturating_sub(1);
                }
                count += 1;
            }
        }
        if !retry.is_empty() {
            self.due.entry(now + 1).or_default().extend(retry);
        }
        for (at, key) in renewed {
            self.due.entry(at).or_default().push(key);
        }
        count
    }

    /// Picks up entries learned by an earlier run (after a restart), so that they expire;
    /// an entry beyond `max_ttl` from now is shortened to it.
    pub fn adopt(&mut self, maps: &mut Learning<'_>, now: u64) -> Result<usize, Error> {
        let mut count = 0;
        self.per_list.clear();
        let latest = now + self.settings.max_ttl.as_secs();
        for (key, mut value) in maps.learned()? {
            if !self.settings.bounds.allows(addr_of(&key)) {
                // Learned under other bounds (a new never_learn, learn_private off).
                maps.forget(&key, addr_of(&key))?;
                continue;
            }
            if value.expires_at > latest {
                value.expires_at = latest;
                maps.rewrite_record(key, value)?;
            }
            self.due.entry(value.expires_at).or_default().push(key);
            *self.per_list.entry(key.list).or_default() += 1;
            count += 1;
        }
        Ok(count)
    }
}

/// What the learner needs of a named resolver that sent an answer.
struct Resolver {
    require_query: bool,
}
