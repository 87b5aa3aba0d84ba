//! `classifier run` in the lab's router, with a pin directory and config of its own: the
//! soak's and the dashboard picture's (`benches/dashboard` includes this file). Stopped with
//! SIGTERM and purged on drop.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    thread,
    time::Duration,
};

use anyhow::{Context as _, Result, bail, ensure};
use classifier_lab::{Lab, ROUTER_INGRESS};

pub struct Daemon {
    /// The `classifier` binary (`CLASSIFIER_BIN`).
    pub binary: PathBuf,
    pub child: Child,
    pub pin_dir: String,
    config: PathBuf,
}

impl Daemon {
    /// Starts it for the run named `run` (the pin directory and config are
    /// `classifier-RUN-PID`, which `remove_all_on_interrupt` knows), with the metrics
    /// endpoint on the router's loopback at `metrics` or off, and waits until it answers.
    pub fn start(lab: &Lab, run: &str, metrics: Option<u16>) -> Result<Self> {
        let name = format!("classifier-{run}-{}", std::process::id());
        let pin_dir = format!("/sys/fs/bpf/{name}");
        let config = std::env::temp_dir().join(format!("{name}.toml"));
        // The lab's resolver (the DNS load's) beyond the uplink, named as an operator would
        // (docs/design.md, 'DNS learning'); no lookups of Apple's real names.
        std::fs::write(
            &config,
            format!(
                "policy = [\"list:apple=LE\", \"mptcp=LE\"]\n\
                 [[dns.trusted_resolvers]]\naddress = \"{}\"\ninterfaces = [\"{}\"]\n\
                 [dns.lookup]\nenabled = false\n",
                classifier_lab::SERVER_OTHER_V4,
                classifier_lab::ROUTER_TO_SERVER
            ),
        )?;
        let binary = classifier_lab::classifier_binary()?;
        let metrics = metrics.map_or("off".to_owned(), |port| format!("127.0.0.1:{port}"));
        let child = Command::new(&binary)
            .env("CLASSIFIER_PIN_DIR", &pin_dir)
            .env("RUST_LOG", "warn")
            .arg("--config")
            .arg(&config)
            .args(["--netns", lab.router.name(), "run", "--metrics", &metrics])
            .args(ROUTER_INGRESS)
            .stdout(Stdio::null())
            .spawn()
            .context("starting classifier run")?;
        let daemon = Self {
            binary,
            child,
            pin_dir,
            config,
        };
        // A poll under a deadline: `stats` answers once the state is attached.
        for _ in 0..100 {
            if daemon.stats().is_ok() {
                return Ok(daemon);
            }
            thread::sleep(Duration::from_millis(100));
        }
        bail!("classifier run did not attach within 10 s")
    }

    pub fn stats(&self) -> Result<serde_json::Value> {
        let output = Command::new(&self.binary)
            .env("CLASSIFIER_PIN_DIR", &self.pin_dir)
            .args(["--config", "/dev/null", "stats", "--json"])
            .output()?;
        ensure!(output.status.success(), "classifier stats failed");
        Ok(serde_json::from_slice(&output.stdout)?)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        let _ = Command::new(&self.binary)
            .env("CLASSIFIER_PIN_DIR", &self.pin_dir)
            .args(["--config", "/dev/null", "detach", "--all", "--purge"])
            .output();
        let _ = std::fs::remove_dir_all(&self.pin_dir);
        let _ = std::fs::remove_file(&self.config);
    }
}
