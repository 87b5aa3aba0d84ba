//! DNS-learned prefixes. CDNs serve Apple's updates from addresses outside Apple's own
//! prefixes, so the static list misses them; the answers to the lookups that lead there
//! name them. The kernel hands DNS responses over (`DNS_EVENTS`); this module reads them and
//! keeps each learned address in its list for the answer's TTL (at least a minimum).
//!
//! DNS over HTTPS or TLS cannot be seen: those answers never cross the router as DNS.

mod answers;
mod learner;

pub use answers::{DomainLists, Learned, learned_from};
pub use learner::{Learner, SHIPPED_APPLE_DOMAINS, addr_of, parse_domains};

/// The DNS message of a `DnsEvent` as it comes out of the `DNS_EVENTS` ring buffer:
/// `len` (u32), `ifindex` (u32), then the message.
pub fn event_message(event: &[u8]) -> &[u8] {
    const HEADER: usize = 8;
    let len = event
        .get(..4)
        .and_then(|len| len.try_into().ok())
        .map_or(0, |len| u32::from_ne_bytes(len) as usize);
    event.get(HEADER..HEADER + len).unwrap_or_default()
}
