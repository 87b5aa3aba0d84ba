//! The built `classifier` binary, run as an operator runs it, and timed.

use std::{
    ffi::OsStr,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

/// Runs `classifier ARGS` (with no config file, and the state in `pin_dir` when given);
/// returns its wall time, or its stderr as the error.
pub fn timed(pin_dir: Option<&Path>, args: &[&OsStr]) -> Result<Duration> {
    let mut command = Command::new(classifier_lab::classifier_binary()?);
    if let Some(pin_dir) = pin_dir {
        command.env("CLASSIFIER_PIN_DIR", pin_dir);
    }
    command.args(["--config", "/dev/null"]).args(args);
    let started = Instant::now();
    let output = command.output().context("running classifier")?;
    let elapsed = started.elapsed();
    if !output.status.success() {
        bail!(
            "classifier {} failed: {}",
            args.iter()
                .map(|arg| arg.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(elapsed)
}

/// `classifier prefixes replace FILE`: hitless, the command a list refresh runs.
pub fn replace(pin_dir: &Path, file: &Path) -> Result<Duration> {
    timed(
        Some(pin_dir),
        &["prefixes".as_ref(), "replace".as_ref(), file.as_os_str()],
    )
}
