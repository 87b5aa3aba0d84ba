//! The `classifier` binary on the storm's router, driven as an operator would: `classifier
//! run` (attach and DNS learning), `classifier shape`, and the questions asked of it
//! (learned prefixes, the devices it sees). Each storm run has its own pin directory, and
//! everything in it is removed when the run ends.

use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use crate::{Lab, ROUTER_INGRESS, ROUTER_TO_CLIENT, io_error};
use classifier::{Error, Hook};

/// How the bulk class is shared: `--fair off` (per flow, today's behaviour) or `--fair K`
/// (per device, K leaves).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fair {
    Off,
    Leaves(u32),
}

/// The value of `--fair`.
impl std::fmt::Display for Fair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::Leaves(k) => write!(f, "{k}"),
        }
    }
}

/// The `classifier` binary with a pin directory of the storm's own, and the operator at it.
pub struct Operator {
    binary: PathBuf,
    pin_dir: PathBuf,
    config: PathBuf,
    daemon: Option<Child>,
}

impl Operator {
    /// `prefix` names the pin directory and the config file (it carries the process id, so
    /// the Ctrl-C handler removes them: `remove_all_on_interrupt`).
    pub fn new(binary: &Path, prefix: &str) -> Result<Self, Error> {
        let config = std::env::temp_dir().join(format!("{prefix}.toml"));
        // The lab's resolver sits beyond the uplink (r2): name it, as an operator would
        // (docs/design.md, 'DNS learning'). No lookups of Apple's real host names: the lab
        // has no resolver that knows them.
        let text = format!(
            "policy = [\"list:apple=LE\"]\n\
             [[dns.trusted_resolvers]]\naddress = \"{}\"\ninterfaces = [\"{}\"]\n\
             [dns.lookup]\nenabled = false\n",
            super::hosts::RESOLVER,
            crate::ROUTER_TO_SERVER
        );
        std::fs::write(&config, text).map_err(io_error(format!("writing {}", config.display())))?;
        Ok(Self {
            binary: binary.to_owned(),
            pin_dir: PathBuf::from(format!("/sys/fs/bpf/{prefix}")),
            config,
            daemon: None,
        })
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .env("CLASSIFIER_PIN_DIR", &self.pin_dir)
            .arg("--config")
            .arg(&self.config);
        command
    }

    fn run(&self, args: &[&str]) -> Result<Output, Error> {
        let output = self
            .command()
            .args(args)
            .output()
            .map_err(io_error(format!("running {}", self.binary.display())))?;
        if !output.status.success() {
            // Under `--json` the error is a document on stdout, not a line on stderr.
            let said: Vec<String> = [&output.stderr, &output.stdout]
                .into_iter()
                .map(|bytes| String::from_utf8_lossy(bytes).trim().to_owned())
                .filter(|text| !text.is_empty())
                .collect();
            return Err(Error::Command {
                command: format!("classifier {}", args.join(" ")),
                stderr: said.join("\n"),
            });
        }
        Ok(output)
    }

    /// Starts `classifier run` on the router's ingress interfaces (DNS learning on), at
    /// `hook` if given, and waits up to 10 s for it to have attached.
    pub fn start(&mut self, lab: &Lab, hook: Option<Hook>) -> Result<(), Error> {
        let child = self
            .command()
            .env("RUST_LOG", "warn")
            .args(["--netns", lab.router.name(), "run", "--metrics", "off"])
            .args(hook.map(|hook| format!("--hook={hook}")))
            .args(ROUTER_INGRESS)
            .stdout(Stdio::null())
            .spawn()
            .map_err(io_error("starting classifier run"))?;
        self.daemon = Some(child);
        let started = Instant::now();
        loop {
            if self.run(&["stats", "--json"]).is_ok() {
                return Ok(());
            }
            if let Some(status) = self
                .daemon
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(Error::Command {
                    command: "classifier run".to_owned(),
                    stderr: format!("exited with {status} before attaching"),
                });
            }
            if started.elapsed() > Duration::from_secs(10) {
                return Err(Error::Command {
                    command: "classifier run".to_owned(),
                    stderr: "not attached after 10 s".to_owned(),
                });
            }
            // A poll interval, not a synchronisation.
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// `classifier shape r0 --rate RATE --bulk-floor FLOOR --fair FAIR --flows FLOWS` in the
    /// router. Both flags always: the binary is built from this workspace, and one without
    /// them fails here, naming the flag, instead of shaping some other way.
    pub fn shape(
        &self,
        lab: &Lab,
        rate_mbit: u64,
        bulk_floor: u8,
        fair: Fair,
        flows: &str,
    ) -> Result<(), Error> {
        let (rate, floor, fair) = (
            format!("{rate_mbit}mbit"),
            bulk_floor.to_string(),
            fair.to_string(),
        );
        self.run(&[
            "--netns",
            lab.router.name(),
            "shape",
            ROUTER_TO_CLIENT,
            "--rate",
            &rate,
            "--bulk-floor",
            &floor,
            "--fair",
            &fair,
            "--flows",
            flows,
        ])
        .map(drop)
    }

    /// Waits up to `within` for every one of `addresses` to be learned into the apple list.
    pub fn wait_learned(&self, addresses: &[Ipv4Addr], within: Duration) -> Result<(), Error> {
        let started = Instant::now();
        loop {
            let output = self.run(&["prefixes", "list", "--list", "apple", "--json"])?;
            let rows: serde_json::Value =
                serde_json::from_slice(&output.stdout).map_err(|error| {
                    io_error("reading prefixes' JSON")(std::io::Error::other(error))
                })?;
            let learned = |address: &Ipv4Addr| {
                rows.as_array().into_iter().flatten().any(|row| {
                    row["prefix"] == format!("{address}/32")
                        && row["learned"].as_array().is_some_and(|l| !l.is_empty())
                })
            };
            let missing: Vec<String> = addresses
                .iter()
                .filter(|a| !learned(a))
                .map(ToString::to_string)
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            if started.elapsed() > within {
                return Err(Error::Command {
                    command: "classifier prefixes list --list apple".to_owned(),
                    stderr: format!(
                        "{} not learned from DNS within {} s",
                        missing.join(", "),
                        within.as_secs()
                    ),
                });
            }
            // A poll interval, not a synchronisation.
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// (interface, hook) for each interface `classifier status --json` shows attached.
    pub fn attached(&self) -> Result<Vec<(String, String)>, Error> {
        let output = self.run(&["status", "--json"])?;
        let status: serde_json::Value = serde_json::from_slice(&output.stdout)
            .map_err(|error| io_error("reading status' JSON")(std::io::Error::other(error)))?;
        let name = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
        let mut attached: Vec<(String, String)> = status["interfaces"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| (name(&i["interface"]), name(&i["hook"])))
            .collect();
        attached.sort();
        Ok(attached)
    }

    /// How many devices `classifier devices --list apple --json` lists. Its
    /// failure is the storm's: the error says which command failed and what it printed.
    pub fn apple_devices(&self) -> Result<usize, Error> {
        let output = self.run(&["devices", "--list", "apple", "--json", "--interval", "0"])?;
        let json: serde_json::Value = serde_json::from_slice(&output.stdout)
            .map_err(|error| io_error("reading devices' JSON")(std::io::Error::other(error)))?;
        json["devices"].as_array().map(Vec::len).ok_or_else(|| {
            io_error("reading devices' JSON")(std::io::Error::other(format!(
                "no `devices` array in {json}"
            )))
        })
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            // SAFETY: signalling our own child; SIGTERM makes run detach.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
        let _ = self.run(&["detach", "--all", "--purge"]);
        let _ = std::fs::remove_dir_all(&self.pin_dir);
        let _ = std::fs::remove_file(&self.config);
    }
}
