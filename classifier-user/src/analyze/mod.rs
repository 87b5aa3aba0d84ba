//! Offline analysis (`classifier analyze`): a capture's packets through the real kernel
//! program with BPF_PROG_TEST_RUN, in capture order, in private maps (a fresh flow table and
//! counters; never the live, pinned state), reporting what the classifier would do.

pub mod capture;
pub mod link;
mod run;
mod settings;
pub mod summary;

pub use run::{Analysis, PacketVerdict, analyze};
pub use settings::Settings;
