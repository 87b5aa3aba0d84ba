//! What the kernel asks of the caller: capabilities, not uid 0. Each operation checks the
//! effective capabilities it needs before it changes anything, and names the missing ones,
//! where the kernel would answer a bare EPERM (or, for a load, a verifier log that blames the
//! program). Measured on Linux 6.18 as uid 0 with a reduced bounding set (`setpriv
//! --bounding-set`), and by `tests/security_capabilities.rs`:
//! - loading the program (`attach`, `analyze`, `run`, `shape`): CAP_BPF for its maps,
//!   CAP_NET_ADMIN because XDP and tc are networking program types, and CAP_PERFMON because
//!   the verifier refuses the packet-pointer arithmetic of the bounds checks without it
//!   ("pointer -= pointer prohibited");
//! - opening the pinned state (every command that reads or writes it): CAP_BPF. Since 6.5
//!   the kernel itself only asks for the pin's file mode, but before it every bpf(2) command
//!   needs CAP_BPF when unprivileged BPF is disabled (Debian's default), so one rule holds on
//!   every supported kernel;
//! - tc (`shape`, `shape --off`): CAP_NET_ADMIN;
//! - `--netns` (setns) and mounting bpffs: CAP_SYS_ADMIN.
//!
//! The pins are 0600 and their directories 0700, owned by root: capabilities do not replace
//! those modes, which is why the service runs as root with everything else dropped
//! (deploy/classifier.service).

use std::fmt;

use crate::Error;

/// A capability classifier may need (numbers from linux/capability.h).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Capability {
    NetAdmin = 12,
    SysAdmin = 21,
    Perfmon = 38,
    Bpf = 39,
}

impl Capability {
    pub fn name(self) -> &'static str {
        match self {
            Self::NetAdmin => "CAP_NET_ADMIN",
            Self::SysAdmin => "CAP_SYS_ADMIN",
            Self::Perfmon => "CAP_PERFMON",
            Self::Bpf => "CAP_BPF",
        }
    }

    /// Whether `effective` grants it. CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON,
    /// as it does in the kernel (bpf_capable, perfmon_capable).
    fn held(self, effective: u64) -> bool {
        let has = |cap: Self| effective & (1 << cap as u64) != 0;
        has(self) || (matches!(self, Self::Bpf | Self::Perfmon) && has(Self::SysAdmin))
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Loading the classifier's or the shaper's program and creating its maps.
pub const LOAD: &[Capability] = &[Capability::Bpf, Capability::NetAdmin, Capability::Perfmon];
/// Opening the pinned maps, links and program, to read or write them.
pub const STATE: &[Capability] = &[Capability::Bpf];
/// Changing an interface's qdiscs and filters with tc, and opening the pinned state.
pub const TC: &[Capability] = &[Capability::Bpf, Capability::NetAdmin];
/// setns into another network namespace; mounting bpffs.
pub const SYS_ADMIN: &[Capability] = &[Capability::SysAdmin];

/// Fails naming the capabilities in `needed` that this thread does not hold in its effective
/// set. `action` says what needs them, as in "loading the program needs ...".
pub fn require(action: &'static str, needed: &'static [Capability]) -> Result<(), Error> {
    let effective = effective().map_err(Error::io("reading this process's capabilities"))?;
    let missing: Vec<Capability> = needed
        .iter()
        .copied()
        .filter(|cap| !cap.held(effective))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::MissingCapabilities {
        action,
        needed: list(needed),
        missing: list(&missing),
        verb: if missing.len() == 1 { "is" } else { "are" },
    })
}

/// "CAP_BPF", "CAP_BPF and CAP_PERFMON", "CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON".
fn list(caps: &[Capability]) -> String {
    let names: Vec<&str> = caps.iter().map(|cap| cap.name()).collect();
    match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// The calling thread's effective capability set, from capget(2).
fn effective() -> std::io::Result<u64> {
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Copy, Clone, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: version 3 takes a header and two data structs, both valid and writable.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(u64::from(data[0].effective) | (u64::from(data[1].effective) << 32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sys_admin_stands_in_for_bpf_and_perfmon_only() {
        let sys_admin = 1 << Capability::SysAdmin as u64;
        assert!(Capability::Bpf.held(sys_admin));
        assert!(Capability::Perfmon.held(sys_admin));
        assert!(!Capability::NetAdmin.held(sys_admin));
        assert!(!Capability::Bpf.held(1 << Capability::Perfmon as u64));
    }

    #[test]
    fn lists_read_as_english() {
        assert_eq!(list(STATE), "CAP_BPF");
        assert_eq!(list(TC), "CAP_BPF and CAP_NET_ADMIN");
        assert_eq!(list(LOAD), "CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON");
    }
}
