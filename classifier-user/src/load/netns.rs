//! Which network namespace this thread is in, and the pin names that follow from it. BPF
//! objects and bpffs belong to no network namespace, so one pin directory holds the links of
//! interfaces in several; a link's pin name says which (`link_pin_name`). Switching namespace
//! is `control::netns`; this only tells where we are, so that `report` can read it too.

use std::{os::unix::fs::MetadataExt as _, sync::OnceLock};

/// The network namespace this process started in: "the host" when PID 1's cannot be read.
static INITIAL: OnceLock<Option<u64>> = OnceLock::new();

/// Records the namespace we are in as the initial one, unless one is recorded already. Call
/// it before any setns (`control::netns::enter` and the lab's do).
pub fn remember_initial() {
    INITIAL.get_or_init(|| inode("/proc/thread-self/ns/net"));
}

fn inode(path: &str) -> Option<u64> {
    std::fs::metadata(path).ok().map(|meta| meta.ino())
}

/// The inode of this thread's network namespace, or None when it is the host's: PID 1's
/// when it can be read, else (in some containers) the one this process started in.
pub fn current_if_not_host() -> Option<u64> {
    let current = inode("/proc/thread-self/ns/net")?;
    let host = inode("/proc/1/ns/net").or_else(|| {
        remember_initial();
        INITIAL.get().copied().flatten()
    });
    (Some(current) != host).then_some(current)
}

/// The name under `links/` for an interface in the current network namespace.
pub fn link_pin_name(interface: &str) -> String {
    match current_if_not_host() {
        Some(inode) => format!("{interface}@netns-{inode}"),
        None => interface.to_owned(),
    }
}

/// Where an interface lives, for messages: "" in the host, " in network namespace N" else.
pub fn describe_current() -> String {
    current_if_not_host().map_or_else(String::new, |inode| {
        format!(" in network namespace {inode}")
    })
}
