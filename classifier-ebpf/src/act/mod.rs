//! Acting on a decision: rewriting the DSCP, counting, and reporting.

mod counters;
mod dns;
pub mod dscp;
mod outcome;

pub use counters::record;
pub use dns::forward_dns;
pub use dscp::{apply_action, read_dscp};
pub use outcome::{NO_COUNTER, NO_SLOT, Outcome, slot};
