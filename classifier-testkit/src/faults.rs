//! What the fault and security tests share: `classifier run` as a child whose log can be read
//! while it runs; proof that nothing leaked (BPF links and programs looked up by id in the
//! kernel with bpftool: it frees them shortly after their last reference goes); a throwaway
//! unprivileged user.

use std::{
    fs::File,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::Duration,
};

use crate::{
    cli::Cli,
    wait::{wait_for, wait_until},
};

/// A uid (and gid) no account uses, for running things unprivileged.
pub fn throwaway_uid() -> u32 {
    3_900_000_000 + std::process::id() % 1_000_000
}

pub fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Whether the kernel still has the BPF object `kind` (`link` or `prog`) with this id.
pub fn bpf_object_exists(kind: &str, id: u64) -> bool {
    Command::new("bpftool")
        .args([kind, "show", "id", &id.to_string()])
        .output()
        .expect("running bpftool")
        .status
        .success()
}

/// Waits up to 5 s for the kernel to free a BPF object; panics naming it if it does not.
pub fn assert_freed(kind: &str, id: u64, what: &str) {
    wait_until(
        Duration::from_secs(5),
        format!("the kernel to free {what} ({kind} {id}): it leaked"),
        || !bpf_object_exists(kind, id),
    );
}

/// The link id of each interface in `status --json`, and the program id.
pub fn link_ids(cli: &Cli) -> (Vec<(String, u64)>, u64) {
    let status = cli.run(&["status", "--json"]).ok().json();
    let links = status["interfaces"]
        .as_array()
        .expect("interfaces")
        .iter()
        .map(|i| {
            (
                i["interface"].as_str().unwrap().to_owned(),
                i["link_id"].as_u64().unwrap(),
            )
        })
        .collect();
    (links, status["program"]["id"].as_u64().unwrap_or(0))
}

/// `classifier run` with the test's pin directory, its log (stderr) in a file; killed on
/// drop if still running.
pub struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    pub fn start(cli: &Cli, args: &[&str]) -> Self {
        Self::start_with_config(cli, std::path::Path::new("/dev/null"), args)
    }

    /// `start`, reading `config`.
    pub fn start_with_config(cli: &Cli, config: &std::path::Path, args: &[&str]) -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let log = std::env::temp_dir().join(format!(
            "classifier-run-{}-{}.log",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let child = cli
            .command_with_config(config)
            .env("RUST_LOG", "info")
            .args(args)
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("creating the daemon's log"))
            .spawn()
            .expect("starting classifier run");
        Self { child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to `seconds` for `text` to appear in the log; fails at once if run exits.
    pub fn wait_for_log(&mut self, text: &str, seconds: u64) {
        let log = self.log.clone();
        let what = WithLog(format!("run to log `{text}`"), &log);
        wait_until(Duration::from_secs(seconds), what, || {
            let log = self.log();
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("run exited ({status}) before logging `{text}`:\n{log}");
            }
            log.contains(text)
        });
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: signalling our own child, which we have not reaped yet.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Waits up to 10 s for the process to end.
    pub fn wait(&mut self) -> ExitStatus {
        let what = WithLog("run to exit".to_owned(), &self.log);
        let child = &mut self.child;
        wait_for(Duration::from_secs(10), what, || {
            child.try_wait().expect("waiting for run")
        })
    }
}

/// What a wait was for, and the daemon's log read when a failure is reported, as it is then.
struct WithLog<'a>(String, &'a Path);

impl std::fmt::Display for WithLog<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let log = std::fs::read_to_string(self.1).unwrap_or_default();
        write!(f, "{}; the log:\n{log}", self.0)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
