//! `cargo xtask demo`: make the machine ready, build the lab binary, run it.

use std::process::Command;

use crate::{run::run_command, setup::setup};

pub fn demo() -> anyhow::Result<()> {
    setup()?;
    run_command(Command::new("cargo").args([
        "run",
        "--quiet",
        "--package",
        "classifier-lab",
        "--bin",
        "classifier-lab",
    ]))
}
