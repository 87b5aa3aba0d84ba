//! `cargo xtask bench`: make the machine ready, then run the benchmarks (release build) and
//! write BENCHMARKS.md at the workspace root.

use std::{path::PathBuf, process::Command};

use crate::{release_binary, run::run_command, setup::setup};

pub fn bench(only: &[String]) -> anyhow::Result<()> {
    setup()?;
    let binary = release_binary::classifier()?;
    let mut command = Command::new("cargo");
    command.env("CLASSIFIER_BIN", binary).args([
        "bench",
        "--quiet",
        "--package",
        "classifier-lab",
        "--bench",
        "classifier",
        "--",
    ]);
    if only.is_empty() {
        // Only a full run rewrites the report: a partial one would drop the other sections.
        let report = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask sits in the workspace")
            .join("BENCHMARKS.md");
        command.arg("--out").arg(report);
    } else {
        command.arg("--only").arg(only.join(","));
    }
    run_command(&mut command)
}
