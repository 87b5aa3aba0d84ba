//! `cargo xtask storm`: make the machine ready, then run the update storm in the lab
//! (release build) and print its report; `--write-benchmarks` also writes it into
//! BENCHMARKS.md's storm section, which `cargo xtask bench` keeps.

use std::{path::PathBuf, process::Command};

use crate::{release_binary, run::run_command, setup::setup};

pub fn storm(write_benchmarks: bool, storm_args: &[String]) -> anyhow::Result<()> {
    setup()?;
    let binary = release_binary::classifier()?;
    let mut command = Command::new("cargo");
    command.env("CLASSIFIER_BIN", binary).args([
        "bench",
        "--quiet",
        "--package",
        "classifier-lab",
        "--bench",
        "storm",
        "--",
    ]);
    if write_benchmarks {
        let report = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask sits in the workspace")
            .join("BENCHMARKS.md");
        command.arg("--write-benchmarks").arg(report);
    }
    run_command(command.args(storm_args))
}
