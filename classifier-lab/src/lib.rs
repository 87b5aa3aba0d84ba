//! The lab: test hosts for the classifier, outside the product. Network namespaces and the
//! veths between them, which the integration tests and the demo create for themselves and
//! remove when dropped (also when a test fails); nftables counters; HTB's counts per class;
//! real traffic between the namespaces; the demo; removing all of it on Ctrl-C; and the
//! baseline program the benchmarks time the classifier against. Traffic only ever flows
//! between these namespaces. None of it ships in the `classifier` binary.
//!
//! Where the tests live, and why: the integration tests that run the `classifier` binary in
//! namespaces (cli_*, fault_*, lab_*, run_*, security_*, and analyze_captures' recorded
//! MPTCP connection) stay in `classifier-user/tests` and use this crate as a dev-dependency,
//! which the product's normal build never sees. Cargo gives the path of a built binary
//! (`CARGO_BIN_EXE_classifier`) only to the tests and benchmarks of the package that owns it,
//! and `cargo test -p classifier-lab` would not even build that binary: moved here, those
//! tests could run a stale one, or none. What the tests share is the dev crate
//! `classifier-testkit`, which builds on this one; each lab type has one home, here.
//! This crate's own tests are those of its own binary (`tests/lab_demo.rs`) and of the lab
//! itself (`lab_stall.rs`: the soak's stall detector; `lab_mptcp_blackhole.rs`: the stall of
//! the soak's run 1); they and the benchmarks take `wait` and the packet builders from
//! `classifier-testkit`, a dev-dependency. The benchmarks and the soak run the `classifier`
//! binary that `cargo xtask bench` (or `soak`) builds and names in `CLASSIFIER_BIN`
//! (`classifier_binary`).

use std::{
    fs::File,
    os::fd::AsRawFd as _,
    path::PathBuf,
    process::{Command, Output},
    sync::{
        Mutex,
        atomic::{AtomicU32, Ordering},
    },
    thread,
};

use classifier::Error;

mod baseline;
pub mod demo;
pub mod dns;
pub mod htb;
mod interrupt;
pub mod marked_section;
pub mod nft;
pub mod stall;
pub mod storm;
mod topology;
pub mod traffic;

pub use baseline::{Baseline, TimeRun, time_run};
pub use interrupt::{remove_all_on_interrupt, unless_interrupted};
pub use topology::{
    CLIENT_V4, CLIENT_V4_SECOND, CLIENT_V6, Lab, ROUTER_INGRESS, ROUTER_TO_CLIENT,
    ROUTER_TO_CLIENT_SECOND, ROUTER_TO_SERVER, SERVER_APPLE_V4, SERVER_APPLE_V6, SERVER_OTHER_V4,
    SERVER_OTHER_V6,
};

/// `Error::Io` for `what`, as the library's own helper (private to it) makes it.
pub(crate) fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// The `classifier` binary the benchmarks and the soak run, named by `CLASSIFIER_BIN`:
/// `cargo xtask bench` and `cargo xtask soak` build it (release) and set it. Cargo gives
/// the path of a binary only to its own package's targets, and this crate's benchmarks
/// must not time a stale one, so there is no guess.
pub fn classifier_binary() -> Result<PathBuf, Error> {
    let path = std::env::var_os("CLASSIFIER_BIN")
        .map(PathBuf::from)
        .ok_or_else(|| {
            io_error("finding the classifier binary")(std::io::Error::other(
                "CLASSIFIER_BIN is not set: run through `cargo xtask bench` or `cargo xtask soak`, \
             which build it and set it",
            ))
        })?;
    if !path.is_file() {
        return Err(io_error(format!("CLASSIFIER_BIN={}", path.display()))(
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    Ok(path)
}

/// A network namespace made by `ip netns add`, deleted (with its interfaces) on drop.
pub struct Netns {
    name: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Namespaces alive in this process, for `remove_all` (a signal handler cannot run Drop).
static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Deletes every namespace this process created and has not dropped yet: for a Ctrl-C
/// handler, which exits without unwinding.
pub fn remove_all() {
    let names = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|e| e.into_inner()));
    for name in names {
        let _ = run("ip", &["netns", "del", &name]);
    }
}

/// Runs a command to completion; a non-zero exit is an error carrying its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<Output, Error> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(io_error(format!("running {program}")))?;
    if !output.status.success() {
        return Err(Error::Command {
            command: format!("{program} {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(output)
}

impl Netns {
    /// A new namespace named `<prefix>-<pid>-<n>`, unique on this machine.
    pub fn create(prefix: &str) -> Result<Self, Error> {
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        run("ip", &["netns", "add", &name])?;
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(name.clone());
        let netns = Self { name };
        netns.ip(&["link", "set", "lo", "up"])?;
        Ok(netns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }

    /// `ip -n NAME ...`
    pub fn ip(&self, args: &[&str]) -> Result<Output, Error> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Runs a program inside the namespace (`ip netns exec`: fine for sysctl, nft, ethtool).
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<Output, Error> {
        let mut full = vec!["netns", "exec", self.name.as_str(), program];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Loads an nftables ruleset (what `nft -f` reads) into this namespace.
    pub fn load_nft(&self, rules: &str) -> Result<(), Error> {
        let file = std::env::temp_dir().join(format!("{}.nft", self.name));
        std::fs::write(&file, rules).map_err(io_error(format!("writing {}", file.display())))?;
        let loaded = self.exec("nft", &["-f", &file.to_string_lossy()]);
        let _ = std::fs::remove_file(&file);
        loaded.map(drop)
    }

    /// Runs `work` on a thread that has entered this namespace (setns moves one thread only).
    pub fn enter<R: Send>(&self, work: impl FnOnce() -> R + Send) -> Result<R, Error> {
        let file = File::open(self.path()).map_err(io_error(format!("opening {}", self.name)))?;
        classifier::load::netns::remember_initial();
        thread::scope(|scope| {
            scope
                .spawn(|| {
                    // SAFETY: a valid namespace fd; only this thread changes namespace.
                    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                        return Err(io_error(format!("entering {}", self.name))(
                            std::io::Error::last_os_error(),
                        ));
                    }
                    Ok(work())
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// The MAC address of an interface in this namespace.
    pub fn mac(&self, device: &str) -> Result<String, Error> {
        let output = self.ip(&["-j", "link", "show", "dev", device])?;
        let links: serde_json::Value = serde_json::from_slice(&output.stdout)
            .map_err(|error| io_error("reading ip's JSON")(std::io::Error::other(error)))?;
        links[0]["address"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Error::Command {
                command: format!("ip -n {} link show dev {device}", self.name),
                stderr: "no address in the output".to_owned(),
            })
    }

    /// The kernel's network counters in this namespace whose names start with one of
    /// `prefixes` (`nstat`'s names: "MPTcpExt", "Tcp", "TcpExt"), absolute values, without
    /// touching nstat's history file.
    pub fn nstat(&self, prefixes: &[&str]) -> Result<Vec<(String, u64)>, Error> {
        let output = self.exec("nstat", &["-a", "-s", "-z"])?;
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let name = fields.next()?;
                let value = fields.next()?.parse().ok()?;
                prefixes
                    .iter()
                    .any(|prefix| name.starts_with(prefix))
                    .then(|| (name.to_owned(), value))
            })
            .collect())
    }

    /// One counter of `nstat`, 0 if the kernel does not list it.
    pub fn nstat_counter(&self, name: &str) -> Result<u64, Error> {
        Ok(self
            .nstat(&[name])?
            .into_iter()
            .find(|(found, _)| found == name)
            .map_or(0, |(_, value)| value))
    }

    /// Whether an XDP program is attached to `device` (per `ip -d link`).
    pub fn has_xdp(&self, device: &str) -> Result<bool, Error> {
        let output = self.ip(&["-d", "-j", "link", "show", "dev", device])?;
        let links: serde_json::Value = serde_json::from_slice(&output.stdout)
            .map_err(|error| io_error("reading ip's JSON")(std::io::Error::other(error)))?;
        Ok(!links[0]["xdp"].is_null())
    }

    /// Turns off what makes one skb of many packets (TSO/GSO on the way out, GRO on the way
    /// in) and IPv6 on `device`, so that counts on both sides of the wire compare exactly.
    pub fn plain_frames(&self, device: &str) -> Result<(), Error> {
        self.exec(
            "ethtool",
            &["-K", device, "tso", "off", "gso", "off", "gro", "off"],
        )?;
        self.exec(
            "sysctl",
            &[
                "-q",
                "-w",
                &format!("net.ipv6.conf.{device}.disable_ipv6=1"),
            ],
        )?;
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes its interfaces too; nothing to report on failure.
        let _ = run("ip", &["netns", "del", &self.name]);
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|name| *name != self.name);
    }
}

/// A veth pair between two namespaces, both ends up.
pub fn veth(a: &Netns, a_name: &str, b: &Netns, b_name: &str) -> Result<(), Error> {
    run(
        "ip",
        &[
            "link",
            "add",
            a_name,
            "netns",
            a.name(),
            "type",
            "veth",
            "peer",
            "name",
            b_name,
            "netns",
            b.name(),
        ],
    )?;
    a.ip(&["link", "set", a_name, "up"])?;
    b.ip(&["link", "set", b_name, "up"])?;
    Ok(())
}
