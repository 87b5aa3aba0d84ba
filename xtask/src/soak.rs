//! `cargo xtask soak`: make the machine ready, then run the lab under mixed load (release
//! build) and print what RELIABILITY.md reports.

use std::process::Command;

use crate::{run::run_command, setup::setup};

pub fn soak(minutes: u64) -> anyhow::Result<()> {
    setup()?;
    run_command(Command::new("cargo").args([
        "bench",
        "--quiet",
        "--package",
        "classifier-user",
        "--bench",
        "soak",
        "--",
        "--minutes",
        &minutes.to_string(),
    ]))
}
