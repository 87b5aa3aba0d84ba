//! `cargo xtask demo`: make the machine ready, build the lab binary, run it.

use std::process::Command;

use crate::{run::run_command, setup::setup};

/// `hook`: `--hook` for the demo (xdp or tc), None for its default.
pub fn demo(hook: Option<&str>) -> anyhow::Result<()> {
    setup()?;
    let mut command = Command::new("cargo");
    command.args([
        "run",
        "--quiet",
        "--package",
        "classifier-lab",
        "--bin",
        "classifier-lab",
    ]);
    if let Some(hook) = hook {
        command.args(["--", "--hook", hook]);
    }
    run_command(&mut command)
}
