//! `cargo xtask package`: the Debian package, built by cargo-deb from the release binary.
//! The man pages and completions come from that same binary (`classifier generate`, hidden),
//! so they describe exactly the command line that is packaged.

use std::{fs, path::PathBuf, process::Command};

use anyhow::{Context as _, ensure};

use crate::{release_binary, run::run_command, setup::ensure_cargo_deb};

/// Where the installed binary lives: the completion scripts call it back for candidates.
const INSTALLED_BINARY: &str = "/usr/sbin/classifier";

/// Builds the .deb and returns its path (`target/debian/classifier_<version>-1_<arch>.deb`).
pub fn package() -> anyhow::Result<PathBuf> {
    ensure_cargo_deb()?;
    let binary = release_binary::classifier()?;
    let release = binary.parent().context("the binary has no directory")?;
    // cargo-deb's assets name them under target/release/package/ (classifier-user/Cargo.toml).
    let generated = release.join("package");
    if generated.exists() {
        fs::remove_dir_all(&generated)
            .with_context(|| format!("removing {}", generated.display()))?;
    }
    let man = generated.join("man");
    let completions = generated.join("completions");
    run_command(Command::new(&binary).arg("generate").arg("man").arg(&man))?;
    // Debian policy: man pages gzipped, -n for reproducible bytes (cargo-deb compresses only
    // what it does not count as built output).
    let pages: Vec<PathBuf> = fs::read_dir(&man)
        .with_context(|| format!("reading {}", man.display()))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    run_command(
        Command::new("gzip")
            .args(["-9", "-n", "--force"])
            .args(&pages),
    )?;
    run_command(
        Command::new(&binary)
            .args(["generate", "completions"])
            .arg(&completions)
            .args(["--completer", INSTALLED_BINARY]),
    )?;
    let output_dir = release
        .parent()
        .context("the release directory has no parent")?
        .join("debian");
    // --no-build: the release binary above is the one packaged (tests reuse it, no rebuild).
    let mut cargo_deb = Command::new("cargo");
    cargo_deb
        .args(["deb", "--package", "classifier-user", "--no-build"])
        .arg("--output")
        .arg(&output_dir);
    eprintln!("xtask: running cargo deb --package classifier-user --no-build");
    let out = cargo_deb.output().context("starting cargo deb")?;
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    ensure!(out.status.success(), "cargo deb failed ({})", out.status);
    // cargo-deb prints the package's path on stdout.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let deb = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
    ensure!(
        deb.extension().is_some_and(|ext| ext == "deb") && deb.is_file(),
        "cargo deb printed no package path: {stdout}"
    );
    println!("{}", deb.display());
    Ok(deb)
}
