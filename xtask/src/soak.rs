//! `cargo xtask soak`: make the machine ready, then run the lab under mixed load (release
//! build) and print what RELIABILITY.md reports.

use std::process::Command;

use crate::{release_binary, run::run_command, setup::setup};

pub fn soak(minutes: u64) -> anyhow::Result<()> {
    setup()?;
    let binary = release_binary::classifier()?;
    run_command(Command::new("cargo").env("CLASSIFIER_BIN", binary).args([
        "bench",
        "--quiet",
        "--package",
        "classifier-lab",
        "--bench",
        "soak",
        "--",
        "--minutes",
        &minutes.to_string(),
    ]))
}
