//! Loading the embedded kernel object, and reaching its maps with their real types, either
//! private (tests, offline analysis) or pinned in a bpffs directory (the live state).

mod dscp;
mod hook;
mod list_names;
mod maps;
pub mod netns;
mod pin_dir;
pub mod pinned_link;
mod program;
pub mod rules;
mod side;

pub use dscp::{dscp_name, parse_dscp};
pub use hook::{AttachMode, Hook};
pub use list_names::{DEFAULT_LIST, ListNames, validate_name};
pub use maps::{ClassifierMaps, CounterSnapshot, MapWriter, padded_name};
pub(crate) use pin_dir::restrict;
pub use pin_dir::{DEFAULT_PIN_DIR, PinDir};
pub use program::{Classifier, Pinned, Private, Steer, SteerRunOutput, TestRunOutput};
pub use side::Side;

/// The kernel object built by build.rs (classifier-ebpf for bpfel-unknown-none). Public so
/// that tools outside the product can load its other programs from the same bytes: the lab's
/// benchmarks load `baseline` (`names::PROGRAM_BASELINE`) from it, which only a build with the
/// `bench` feature has. The product loads only through `Classifier` and `Steer`.
pub static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/classifier-ebpf"));

/// Program and map names in the object, as the kernel side declares them.
pub mod names {
    pub const PROGRAM_CLASSIFY: &str = "classify";
    pub const PROGRAM_CLASSIFY_TC: &str = "classify_tc";
    pub const PROGRAM_STEER: &str = "steer";
    #[cfg(feature = "bench")]
    pub const PROGRAM_BASELINE: &str = "baseline";
    #[cfg(feature = "bench")]
    pub const PROGRAM_BASELINE_TC: &str = "baseline_tc";
    pub const MAP_COUNTERS: &str = "COUNTERS";
    pub const MAP_CONFIG: &str = "CONFIG";
    pub const MAP_GENERATION: &str = "GENERATION";
    pub const MAP_FLOWS_TCP_V4: &str = "FLOWS_TCP_V4";
    pub const MAP_FLOWS_TCP_V6: &str = "FLOWS_TCP_V6";
    pub const MAP_FLOWS_UDP_V4: &str = "FLOWS_UDP_V4";
    pub const MAP_FLOWS_UDP_V6: &str = "FLOWS_UDP_V6";
    pub const MAP_FLOW_CACHE: &str = "FLOW_CACHE";
    pub const MAP_FLOW_EPOCH: &str = "FLOW_EPOCH";
    pub const MAP_PREFIXES_V4: &str = "PREFIXES_V4";
    pub const MAP_PREFIXES_V6: &str = "PREFIXES_V6";
    pub const MAP_REPORT: &str = "REPORT";
    pub const MAP_LIST_NAMES: &str = "LIST_NAMES";
    pub const MAP_ATTACHMENTS: &str = "ATTACHMENTS";
    pub const MAP_SHAPING: &str = "SHAPING";
    pub const MAP_DNS_EVENTS: &str = "DNS_EVENTS";
    pub const MAP_LEARNED: &str = "LEARNED";
    pub const MAP_IFACE_SLOTS: &str = "IFACE_SLOTS";
    pub const MAP_OPTION_SCRATCH: &str = "OPTION_SCRATCH";

    pub const MAP_CLOCK: &str = "CLOCK";
    pub const MAP_NEW_FLOW: &str = "NEW_FLOW";
    pub const MAP_FLOW_CACHE_USE: &str = "FLOW_CACHE_USE";

    /// Every map there is to keep across loads, in the order they are pinned.
    pub const ALL_MAPS: [&str; 19] = [
        MAP_CONFIG,
        MAP_GENERATION,
        MAP_COUNTERS,
        MAP_FLOWS_TCP_V4,
        MAP_FLOWS_TCP_V6,
        MAP_FLOWS_UDP_V4,
        MAP_FLOWS_UDP_V6,
        MAP_FLOW_CACHE,
        MAP_FLOW_EPOCH,
        MAP_PREFIXES_V4,
        MAP_PREFIXES_V6,
        MAP_REPORT,
        MAP_LIST_NAMES,
        MAP_ATTACHMENTS,
        MAP_SHAPING,
        MAP_DNS_EVENTS,
        MAP_LEARNED,
        MAP_IFACE_SLOTS,
        MAP_OPTION_SCRATCH,
    ];

    /// The maps never pinned: each load makes its own, with nothing worth keeping in them
    /// (`CLOCK` a per-CPU cache of the clock, `NEW_FLOW` scratch, `FLOW_CACHE_USE` a
    /// heuristic). `ALL_MAPS` and these are the object's maps, exactly (`kernel_program.rs`).
    pub const UNPINNED_MAPS: [&str; 3] = [MAP_CLOCK, MAP_NEW_FLOW, MAP_FLOW_CACHE_USE];
}
