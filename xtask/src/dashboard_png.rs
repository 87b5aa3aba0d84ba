//! `cargo xtask dashboard-png`: docs/dashboard.png from a lab run (classifier-lab's
//! `dashboard` bench, with the release binary).

use std::{path::Path, process::Command};

use crate::{release_binary, run::run_command};

pub fn dashboard_png(seconds: u64) -> anyhow::Result<()> {
    let binary = release_binary::classifier()?;
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/dashboard.png");
    run_command(
        Command::new("cargo")
            .env("CLASSIFIER_BIN", binary)
            .args([
                "bench",
                "--quiet",
                "--package",
                "classifier-lab",
                "--bench",
                "dashboard",
                "--",
            ])
            .args(["--seconds", &seconds.to_string(), "--out"])
            .arg(out),
    )
}
