//! DNS-learned prefixes. CDNs serve Apple's updates from addresses outside Apple's own
//! prefixes, so the static list misses them; the answers to the lookups that lead there
//! name them. The kernel hands DNS queries and answers over (`DNS_EVENTS`); this module
//! matches each answer to its query (`queries`) and keeps each address it teaches in its list
//! for the answer's TTL (at least a minimum).
//!
//! DNS over HTTPS or TLS cannot be seen: those answers never cross the router as DNS.

mod answers;
mod event;
mod learner;
mod queries;
mod refused;

pub use answers::{Answer, DomainLists, Learned, Question, answer_of, learned_from, query_of};
pub use event::{Direction, DnsDatagram};
pub use learner::{
    Learner, LearnerSettings, Observed, SHIPPED_APPLE_DOMAINS, addr_of, parse_domains,
};
pub use queries::{MAX_PENDING_QUERIES, QUERY_WINDOW};
pub use refused::{Refusal, refused};
