//! DNS-learned prefixes. CDNs serve Apple's updates from addresses outside Apple's own
//! prefixes, so the static list misses them; the answers to the lookups that lead there
//! name them. Two sources teach (docs/design.md, 'DNS learning'): answers from resolvers
//! the operator named, seen passing through on their interfaces (the kernel hands DNS over
//! in `DNS_EVENTS`; `learner`, `queries`), and `run`'s own lookups of the lists' host names
//! (`lookup`). Each address is kept in its list for its TTL, within bounds (`bounds`).
//!
//! DNS over HTTPS or TLS cannot be seen passing; the router's own lookups do not need to.

mod answers;
mod bounds;
mod event;
mod learner;
mod lookup;
mod queries;
mod refused;
mod settings;

pub use answers::{Answer, DomainLists, Learned, Question, answer_of, learned_from, query_of};
pub use bounds::{AddressBounds, router_addresses};
pub use event::{Direction, DnsDatagram};
pub use learner::{
    Learner, LearnerSettings, MOVE_INTERVAL, Observed, SHIPPED_APPLE_DOMAINS, Source, Taught,
    Trust, addr_of, key_of, parse_domains,
};
pub use lookup::{
    HostLists, LookupDone, Lookups, OwnLookups, SHIPPED_APPLE_HOSTS, system_resolver,
};
pub use queries::{MAX_PENDING_QUERIES, QUERY_WINDOW};
pub use refused::{Refusal, refused};
pub use settings::lookup_resolver;
