//! The `classifier` binary in release mode, for the lab's benchmarks and soak. They belong to
//! `classifier-lab`, and cargo names a built binary (`CARGO_BIN_EXE_*`) only to its own
//! package's targets, so this builds it first and they read its path from `CLASSIFIER_BIN`.

use std::{path::PathBuf, process::Command};

use anyhow::ensure;

use crate::run::run_command;

/// Builds `classifier` (release) and returns where it is.
pub fn classifier() -> anyhow::Result<PathBuf> {
    run_command(Command::new("cargo").args([
        "build",
        "--quiet",
        "--release",
        "--package",
        "classifier-user",
        "--bin",
        "classifier",
    ]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("xtask sits in the workspace")
                .join("target")
        });
    let binary = target.join("release").join("classifier");
    ensure!(
        binary.is_file(),
        "cargo built classifier, but it is not at {}",
        binary.display()
    );
    Ok(binary)
}
