//! Turning kernel counters, flow entries and pinned state into what an operator reads.

mod counter_labels;
pub mod devices;
pub mod flows;
pub mod policy;
pub mod prefixes;
pub mod saved_state;
pub mod shaping;
pub mod stats;
pub mod stats_reader;
pub mod status;
pub mod units;

pub use counter_labels::counter_label;
