//! Running the built `classifier` binary against a pin directory of the test's own, removed
//! (with everything attached from it) when the test ends, pass or fail.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::{
        OnceLock,
        atomic::{AtomicU32, Ordering},
    },
};

/// The `classifier` binary under test: the one cargo built beside this test
/// (`target/<profile>/classifier`, a test being `target/<profile>/deps/NAME-HASH`). Cargo
/// names a binary (`CARGO_BIN_EXE_classifier`) only to its own package's tests, but it builds
/// it before them, so `cargo test -p classifier-user` runs a fresh one. None there fails,
/// saying how to build it: a test never skips.
pub fn binary() -> &'static str {
    static BINARY: OnceLock<String> = OnceLock::new();
    BINARY.get_or_init(|| {
        let test = std::env::current_exe().expect("finding the running test binary");
        let binary = test
            .parent()
            .and_then(Path::parent)
            .unwrap_or_else(|| panic!("{}: not in target/<profile>/deps", test.display()))
            .join("classifier");
        assert!(
            binary.is_file(),
            "no classifier binary at {}: the tests run the built binary; build it with \
             `cargo build -p classifier-user --bin classifier` (`cargo test -p classifier-user` \
             builds it first)",
            binary.display()
        );
        binary
            .into_os_string()
            .into_string()
            .expect("the target directory's path is UTF-8")
    })
}

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct Cli {
    pub pin_dir: PathBuf,
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "classifier failed: {}{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Failed with `code`, and `message` is in what it printed on stderr.
    pub fn fails(self, code: i32, message: &str) -> Self {
        assert_eq!(self.code, code, "exit code; stderr: {}", self.stderr);
        assert!(
            self.stderr.contains(message),
            "expected `{message}` in: {}",
            self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.stdout))
    }
}

impl From<Output> for Ran {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Cli {
    /// A pin directory no other test or process uses.
    #[expect(
        clippy::new_without_default,
        reason = "it checks for root and takes a pin directory: not a default value"
    )]
    pub fn new() -> Self {
        crate::require_root();
        // Fails here, not in `drop`, when there is no binary to run.
        binary();
        let pin_dir = PathBuf::from(format!(
            "/sys/fs/bpf/classifier-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        Self { pin_dir }
    }

    pub fn command(&self) -> Command {
        // Never pick up a config file of the machine's.
        self.command_with_config(std::path::Path::new("/dev/null"))
    }

    /// The binary on this pin directory, reading `config`.
    pub fn command_with_config(&self, config: &std::path::Path) -> Command {
        let mut command = Command::new(binary());
        command
            .env("CLASSIFIER_PIN_DIR", &self.pin_dir)
            .arg("--config")
            .arg(config);
        command
    }

    pub fn run(&self, args: &[&str]) -> Ran {
        self.command()
            .args(args)
            .output()
            .expect("running the classifier binary")
            .into()
    }

    pub fn pin_dir(&self) -> &Path {
        &self.pin_dir
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = self.command().args(["detach", "--all", "--purge"]).output();
        let _ = std::fs::remove_dir_all(&self.pin_dir);
        if let Some(name) = self.pin_dir.file_name() {
            let _ = std::fs::remove_dir_all(std::env::temp_dir().join(name));
        }
    }
}

/// The flow of `flows --json` whose client address is `source`.
pub fn flow_from<'a>(flows: &'a [serde_json::Value], source: &str) -> &'a serde_json::Value {
    flows
        .iter()
        .find(|f| {
            f["client"]
                .as_str()
                .unwrap_or_default()
                .starts_with(&format!("{source}:"))
        })
        .unwrap_or_else(|| panic!("no flow from {source}: {flows:?}"))
}
