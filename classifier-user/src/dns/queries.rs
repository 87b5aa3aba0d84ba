//! Which DNS answers may teach: those that answer a query the classifier saw.
//!
//! The protocol. The kernel hands over both directions of DNS (UDP to and from port 53) with
//! the addresses and ports its headers carried. A query (to port 53, not a response, exactly
//! one question) is remembered for `QUERY_WINDOW`. An answer (from port 53, a response, one
//! question) matches when a remembered query has the same addresses and ports reversed (the
//! answer comes from where the query went, to where it came from), the same transaction id,
//! and the same question (name ignoring case, type, class). A match uses the query up: a
//! replayed or duplicated answer matches nothing. A LAN host that forges an answer must then
//! guess a live query's client address and port, resolver, 16-bit id and question within the
//! window, which is the bar a stub resolver itself sets for accepting an answer; a host that
//! is on the path and sees the query can answer anyway, and is the resolver's own problem.
//! Answers that match nothing are refused (and counted), except from a resolver the operator
//! trusts on the interfaces its answers arrive on (`dns.trusted_resolvers`): a router that is
//! itself the resolver sends its upstream queries from its own stack, which XDP never sees.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
};

use super::answers::Question;

/// How long a query waits for its answer, in seconds. Stub resolvers give up and retry after
/// about as long (glibc's default `timeout:5`), so a later answer is not awaited by anyone;
/// a longer window would only give a forger more time.
pub const QUERY_WINDOW: u64 = 5;

/// Queries remembered at once. A flood of queries beyond it costs only their own answers'
/// learning (the new query is not remembered): it never makes a forged answer match.
pub const MAX_PENDING_QUERIES: usize = 65_536;

/// A query as its answer must mirror it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QueryKey {
    /// Where the query came from: where the answer goes.
    pub client: SocketAddr,
    /// Where the query went: where the answer comes from.
    pub resolver: SocketAddr,
    pub id: u16,
    pub question: Question,
}

/// Queries seen and not yet answered, oldest first.
#[derive(Debug, Default)]
pub struct PendingQueries {
    /// Key → (when last seen, Unix seconds; copies not yet answered). A retransmitted query
    /// has the same key and may get an answer per copy.
    pending: HashMap<QueryKey, (u64, u32)>,
    /// (when seen, key), oldest first, for expiry; an entry whose key was seen again later, or
    /// answered, is skipped when it comes up.
    order: VecDeque<(u64, QueryKey)>,
}

impl PendingQueries {
    /// Remembers a query seen at `now`; false when the table is full.
    pub fn remember(&mut self, key: QueryKey, now: u64) -> bool {
        self.expire(now);
        if let Some((seen, copies)) = self.pending.get_mut(&key) {
            *seen = now;
            *copies += 1;
        } else {
            if self.pending.len() >= MAX_PENDING_QUERIES {
                return false;
            }
            self.pending.insert(key.clone(), (now, 1));
        }
        self.order.push_back((now, key));
        true
    }

    /// Uses up the query `key` answers, if one is pending at `now`.
    pub fn answer(&mut self, key: &QueryKey, now: u64) -> bool {
        self.expire(now);
        let Some((_, copies)) = self.pending.get_mut(key) else {
            return false;
        };
        *copies -= 1;
        if *copies == 0 {
            self.pending.remove(key);
        }
        true
    }

    /// Forgets the queries older than the window.
    fn expire(&mut self, now: u64) {
        while let Some((seen, _)) = self.order.front() {
            if now.saturating_sub(*seen) <= QUERY_WINDOW {
                break;
            }
            let Some((seen, key)) = self.order.pop_front() else {
                break;
            };
            if self
                .pending
                .get(&key)
                .is_some_and(|(last, _)| *last == seen)
            {
                self.pending.remove(&key);
            }
        }
        if self.order.len() > 2 * MAX_PENDING_QUERIES {
            // Mostly answered keys: rebuild rather than let the queue grow.
            let pending = &self.pending;
            self.order
                .retain(|(seen, key)| pending.get(key).is_some_and(|(last, _)| last == seen));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u16) -> QueryKey {
        QueryKey {
            client: "192.0.2.10:40000".parse().unwrap(),
            resolver: "198.51.100.10:53".parse().unwrap(),
            id,
            question: Question {
                name: "updates.cdn-apple.com".to_owned(),
                qtype: 1,
                qclass: 1,
            },
        }
    }

    #[test]
    fn an_answer_uses_its_query_up() {
        let mut pending = PendingQueries::default();
        assert!(pending.remember(key(7), 100));
        assert!(!pending.answer(&key(8), 100), "another transaction id");
        assert!(pending.answer(&key(7), 101));
        assert!(!pending.answer(&key(7), 101), "a replay");
        assert!(pending.pending.is_empty());
    }

    #[test]
    fn a_retransmitted_query_allows_one_answer_per_copy() {
        let mut pending = PendingQueries::default();
        pending.remember(key(7), 100);
        pending.remember(key(7), 101);
        assert!(pending.answer(&key(7), 102));
        assert!(pending.answer(&key(7), 102));
        assert!(!pending.answer(&key(7), 102));
    }

    #[test]
    fn a_query_waits_for_the_window_only() {
        let mut pending = PendingQueries::default();
        pending.remember(key(1), 100);
        pending.remember(key(2), 100);
        assert!(pending.answer(&key(1), 100 + QUERY_WINDOW));
        assert!(!pending.answer(&key(2), 101 + QUERY_WINDOW));
        assert!(pending.pending.is_empty());
    }

    #[test]
    fn a_full_table_remembers_no_more() {
        let mut pending = PendingQueries::default();
        for id in 0..MAX_PENDING_QUERIES {
            let mut key = key(0);
            key.client.set_port(id as u16);
            key.id = (id >> 16) as u16;
            assert!(pending.remember(key, 100));
        }
        assert!(!pending.remember(key(9), 100));
        assert!(!pending.answer(&key(9), 100));
        assert!(pending.remember(key(9), 101 + QUERY_WINDOW), "room again");
    }
}
