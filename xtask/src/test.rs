//! Every check CI runs, in the order a developer wants to see them fail.

use std::process::Command;

use crate::{
    run::{run, run_command},
    setup::{NIGHTLY, setup},
};

pub fn test(cargo_test_args: &[String]) -> anyhow::Result<()> {
    setup()?;
    run("cargo", &["fmt", "--all", "--check"])?;
    // Host crates (the workspace's default members leave the eBPF crate out).
    run(
        "cargo",
        &["clippy", "--all-targets", "--", "-D", "warnings"],
    )?;
    // The eBPF crate, for its real target.
    run(
        "cargo",
        &[
            &format!("+{NIGHTLY}"),
            "clippy",
            "--package",
            "classifier-ebpf",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
            "--release",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    run_command(Command::new("cargo").arg("test").args(cargo_test_args))
}
