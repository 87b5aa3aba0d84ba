//! Network namespaces. BPF objects and bpffs do not belong to a network namespace, so entering
//! one (setns with CLONE_NEWNET only, as `nsenter --net` does) changes which interfaces we see
//! while the pins stay in the host's bpffs. `ip netns exec` would also remount /sys and hide
//! the host's bpffs, which is why it is not used. Which namespace we are in, and the pin names
//! that follow, are `load::netns`.

use std::{fs::File, os::fd::AsRawFd as _};

use classifier_common::control::IFNAME_LEN;

use crate::{
    Error,
    load::netns::{describe_current, remember_initial},
};

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
