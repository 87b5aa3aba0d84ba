//! Network namespaces. BPF objects and bpffs do not belong to a network namespace, so entering
//! one (setns with CLONE_NEWNET only, as `nsenter --net` does) changes which interfaces we see
//! while the pins stay in the host's bpffs. `ip netns exec` would also remount /sys and hide
//! the host's bpffs, which is why it is not used.

use std::{
    fs::File,
    os::{fd::AsRawFd as _, unix::fs::MetadataExt as _},
    sync::OnceLock,
};

use classifier_common::control::IFNAME_LEN;

use crate::Error;

/// The network namespace this process started in: "the host" when PID 1's cannot be read.
static INITIAL: OnceLock<Option<u64>> = OnceLock::new();

/// Records the namespace we are in as the initial one, unless one is recorded already. Call
/// it before any setns (this module's `enter` and the lab's do).
pub fn remember_initial() {
    INITIAL.get_or_init(|| inode("/proc/thread-self/ns/net"));
}

/// Moves this thread (the CLI is single-threaded when it calls this) into /run/netns/NAME.
pub fn enter(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(Error::UnknownNetns {
            name: name.to_owned(),
        });
    }
    let path = format!("/run/netns/{name}");
    let file = File::open(&path).map_err(|_| Error::UnknownNetns {
        name: name.to_owned(),
    })?;
    crate::capabilities::require(
        "entering another network namespace (--netns)",
        crate::capabilities::SYS_ADMIN,
    )?;
    remember_initial();
    // SAFETY: a valid namespace fd; CLONE_NEWNET switches only the network namespace.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(Error::io(format!("entering network namespace {name}"))(
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
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

/// The index of interface `name` in the current network namespace, or an error naming it
/// (and the namespace, when it is not the host's).
pub fn ifindex(name: &str) -> Result<u32, Error> {
    let unknown = || Error::UnknownInterface {
        name: name.to_owned(),
        netns: describe_current(),
    };
    if name.is_empty() || name.len() >= IFNAME_LEN || name.contains('/') {
        return Err(unknown());
    }
    let c_name = std::ffi::CString::new(name).map_err(|_| unknown())?;
    // SAFETY: c_name is NUL-terminated.
    match unsafe { libc::if_nametoindex(c_name.as_ptr()) } {
        0 => Err(unknown()),
        index => Ok(index),
    }
}
