//! Loading the embedded kernel object and giving typed access to its maps.

mod maps;
mod program;

pub use maps::{ClassifierMaps, CounterSnapshot};
pub use program::{Classifier, TestRunOutput};

/// The kernel object built by build.rs (classifier-ebpf for bpfel-unknown-none).
pub(crate) static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/classifier-ebpf"));

/// Program and map names in the object, as the kernel side declares them.
pub mod names {
    pub const PROGRAM_CLASSIFY: &str = "classify";
    pub const MAP_COUNTERS: &str = "COUNTERS";
    pub const MAP_CONFIG: &str = "CONFIG";
    pub const MAP_FLOWS: &str = "FLOWS";
    pub const MAP_PREFIXES_V4: &str = "PREFIXES_V4";
    pub const MAP_PREFIXES_V6: &str = "PREFIXES_V6";
    pub const MAP_REPORT: &str = "REPORT";
}
