//! The coarse clock each CPU caches (`CLOCK`, not pinned): the kernel reads
//! CLOCK_MONOTONIC_COARSE again only when jiffies have moved on.

/// The coarse time last read on a CPU, with the jiffies of that moment.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct CoarseClock {
    pub jiffies: u64,
    /// `bpf_ktime_get_coarse_ns` at `jiffies`.
    pub ns: u64,
}
