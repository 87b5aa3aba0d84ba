//! Queries to a named resolver, so that its answers can be held to them (`require_query`).
//!
//! The kernel hands over both directions of DNS (UDP to and from port 53). A query to a
//! named resolver (to port 53, not a response, exactly one question) is remembered for
//! `QUERY_WINDOW`. An answer matches when a remembered query went to the socket address it
//! comes from, with the same transaction id and question (name ignoring case, type, class).
//! The client's address and port are not compared: behind NAT the query is seen at LAN
//! ingress from the private address, the answer at WAN ingress to the public one. A match
//! uses the query up, so a replayed answer matches nothing.
//!
//! What it stops: an internet host that spoofs the resolver's address must guess a live
//! query's 16-bit id and question within the window. What it does not: a host on the path
//! that sees the query, and a LAN host working with an internet host that can spoof the
//! resolver (the LAN host makes the query, its accomplice the answer). That the answer
//! arrives on the resolver's own interface, which a LAN host cannot send on, is what stops
//! the LAN (`learner`).

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
    /// Where the query went: where the answer comes from.
    pub resolver: SocketAddr,
    pub id: u16,
    pub question: Question,
}

/// Queries seen and not yet answered, oldest first.
#[derive(Debug, Default)]
pub struct PendingQueries {
    /// Key → when last seen (Unix seconds). A retransmitted query has the same key and
    /// refreshes it; it still allows one answer: a second (the resolver answering each copy,
    /// or a forgery racing the real answer) is refused, which costs a retransmission's
    /// duplicate nothing.
    pending: HashMap<QueryKey, u64>,
    /// (when seen, key), oldest first, for expiry. A key is pushed once per second it is
    /// seen in, so a flood of repeats cannot grow it past twice the keys (plus a margin); an
    /// entry whose key was seen again later, or answered, is skipped when it comes up.
    order: VecDeque<(u64, QueryKey)>,
}

impl PendingQueries {
    /// Remembers a query seen at `now`; false when the table is full.
    pub fn remember(&mut self, key: QueryKey, now: u64) -> bool {
        self.expire(now);
        let full = self.pending.len() >= MAX_PENDING_QUERIES;
        match self.pending.get_mut(&key) {
            Some(seen) if *seen == now => return true,
            Some(seen) => *seen = now,
            None if full => return false,
            None => {
                self.pending.insert(key.clone(), now);
            }
        }
        self.order.push_back((now, key));
        true
    }

    /// Uses up the query `key` answers, if one is pending at `now`.
    pub fn answer(&mut self, key: &QueryKey, now: u64) -> bool {
        self.expire(now);
        self.pending.remove(key).is_some()
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
            if self.pending.get(&key) == Some(&seen) {
                self.pending.remove(&key);
            }
        }
        if self.order.len() > 2 * self.pending.len() + 1024 {
            // Mostly answered or refreshed keys: rebuild, in time proportional to what was
            // pushed since the last rebuild.
            let pending = &self.pending;
            self.order
                .retain(|(seen, key)| pending.get(key) == Some(seen));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u16) -> QueryKey {
        QueryKey {
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
    fn a_retransmitted_query_allows_one_answer() {
        let mut pending = PendingQueries::default();
        pending.remember(key(7), 100);
        pending.remember(key(7), 101);
        assert!(pending.answer(&key(7), 102));
        assert!(
            !pending.answer(&key(7), 102),
            "a second answer: a forgery's chance"
        );
    }

    #[test]
    fn a_flood_of_repeats_keeps_the_queue_small() {
        // Every key twice in the same second, then again each second: the queue holds a
        // bounded multiple of the keys, so a lookup stays cheap.
        let mut pending = PendingQueries::default();
        for now in 100..100 + 2 * QUERY_WINDOW {
            for id in 0..20_000 {
                pending.remember(key(id), now);
                pending.remember(key(id), now);
            }
            assert!(pending.order.len() <= 2 * pending.pending.len() + 1024);
        }
        assert!(pending.answer(&key(3), 100 + 2 * QUERY_WINDOW));
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
            let mut key = key(id as u16);
            key.resolver.set_port((id >> 16) as u16);
            assert!(pending.remember(key, 100));
        }
        assert!(!pending.remember(key(9), 100));
        assert!(!pending.answer(&key(9), 100));
        assert!(pending.remember(key(9), 101 + QUERY_WINDOW), "room again");
    }
}
