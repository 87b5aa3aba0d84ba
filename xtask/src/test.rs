//! Every check CI runs, in the order a developer wants to see them fail.

use std::{
    io::{BufRead as _, BufReader},
    process::{Command, ExitStatus},
};

use anyhow::{Context as _, bail};

use crate::{
    inventory::{self, Measure},
    run::run,
    setup::{NIGHTLY, setup},
    test_binaries::Tally,
};

pub fn test(cargo_test_args: &[String]) -> anyhow::Result<()> {
    setup()?;
    run("cargo", &["fmt", "--all", "--check"])?;
    // Host crates, the lab included (the workspace's default members leave the eBPF crate out).
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
    cargo_test(cargo_test_args)
}

/// Runs `cargo test` over every test binary (not stopping at the first failing one), holds
/// each binary to the inventory, and closes with a table of the binaries and one line that
/// totals them all.
fn cargo_test(args: &[String]) -> anyhow::Result<()> {
    // Read first: a malformed inventory fails before the suite's minutes, not after.
    let inventory = inventory::read()?;
    eprintln!(
        "xtask: running cargo test --no-fail-fast {}",
        args.join(" ")
    );
    let mut command = Command::new("cargo");
    command.args(["test", "--no-fail-fast"]).args(args);
    let (status, tally) = tally(command)?;
    let total = tally.total();
    print!("\n{}", tally.table(|binary| inventory.minimum(binary)));
    println!(
        "tests: {} passed, {} failed, {} skipped",
        total.passed, total.failed, total.ignored
    );
    // Arguments may select binaries or tests: then only what ran whole is held to it.
    let everything = args.is_empty();
    if !everything {
        println!(
            "{}: binaries that did not run are not checked (cargo test had arguments)",
            inventory::FILE
        );
    }
    let mut failures = Vec::new();
    if !status.success() || total.failed > 0 {
        failures.push(format!("cargo test failed ({status})"));
    }
    if total.passed == 0 {
        failures.push("cargo test ran no test".to_owned());
    }
    for problem in inventory.problems(&tally, Measure::Passed, everything) {
        failures.push(format!("{} does not hold: {problem}", inventory::FILE));
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("\n"));
    }
    Ok(())
}

/// Runs a `cargo test` command with its stdout and stderr in one pipe, so that each binary's
/// results follow the `Running` line cargo writes to stderr before it; echoes every line and
/// counts them per binary.
pub fn tally(mut command: Command) -> anyhow::Result<(ExitStatus, Tally)> {
    let (reader, writer) = std::io::pipe().context("a pipe for cargo test's output")?;
    let mut child = command
        .stdout(
            writer
                .try_clone()
                .context("a pipe for cargo test's output")?,
        )
        .stderr(writer)
        .spawn()
        .context("starting cargo test")?;
    // The command holds the pipe's write end: without dropping it, the reader never ends.
    drop(command);
    let mut tally = Tally::default();
    for line in BufReader::new(reader).lines() {
        let line = line.context("reading cargo test's output")?;
        println!("{line}");
        tally.line(&line);
    }
    let status = child.wait().context("waiting for cargo test")?;
    Ok((status, tally))
}
