//! `cargo xtask bench`: make the machine ready, then run the benchmarks (release build) and
//! write BENCHMARKS.md at the workspace root.

use std::{path::PathBuf, process::Command};

use crate::{before, release_binary, run::run_command, setup::setup};

/// `before`: a commit whose benchmark runs beside this tree's, compared in one run.
pub fn bench(only: &[String], before: Option<&str>) -> anyhow::Result<()> {
    setup()?;
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_owned();
    // Built first: a build running beside the timing would disturb it.
    let before = before
        .map(|rev| before::build(&workspace, rev))
        .transpose()?;
    let binary = release_binary::classifier()?;
    let mut command = Command::new("cargo");
    command.env("CLASSIFIER_BIN", binary).args([
        "bench",
        "--quiet",
        "--package",
        "classifier-lab",
        "--bench",
        "data_path",
        "--",
    ]);
    if let Some(before) = &before {
        command
            .arg("--before-bench")
            .arg(&before.binary)
            .args(["--before-commit", &before.commit]);
    }
    if only.is_empty() {
        // Only a full run rewrites the report: a partial one would drop the other sections.
        command.arg("--out").arg(workspace.join("BENCHMARKS.md"));
    } else {
        command.arg("--only").arg(only.join(","));
    }
    run_command(&mut command)
}
