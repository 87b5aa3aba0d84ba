//! Turning kernel counters and flow entries into what an operator reads.

mod counter_labels;

pub use counter_labels::counter_label;
