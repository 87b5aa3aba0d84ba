//! Every check CI runs, in the order a developer wants to see them fail.

use std::{
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

use crate::{
    run::run,
    setup::{NIGHTLY, setup},
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

/// Runs `cargo test` over every test binary (not stopping at the first failing one) and
/// closes with one line that totals them all.
fn cargo_test(args: &[String]) -> anyhow::Result<()> {
    eprintln!(
        "xtask: running cargo test --no-fail-fast {}",
        args.join(" ")
    );
    let mut child = Command::new("cargo")
        .args(["test", "--no-fail-fast"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting cargo test")?;
    let stdout = child.stdout.take().context("cargo test's stdout")?;
    let (mut passed, mut failed, mut ignored) = (0u64, 0u64, 0u64);
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo test's output")?;
        println!("{line}");
        if let Some(result) = line.strip_prefix("test result: ") {
            passed += count_of(result, "passed");
            failed += count_of(result, "failed");
            ignored += count_of(result, "ignored");
        }
    }
    let status = child.wait().context("waiting for cargo test")?;
    println!("tests: {passed} passed, {failed} failed, {ignored} skipped");
    if !status.success() || failed > 0 {
        bail!("cargo test failed ({status})");
    }
    if passed == 0 {
        bail!("cargo test ran no test");
    }
    Ok(())
}

/// The number before `word` in "ok. 6 passed; 0 failed; 0 ignored; ...".
fn count_of(result: &str, word: &str) -> u64 {
    result
        .split(';')
        .filter_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .split_once(' ')
        })
        .find(|(_, name)| *name == word)
        .and_then(|(number, _)| number.parse().ok())
        .unwrap_or(0)
}
