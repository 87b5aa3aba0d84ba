//! `cargo xtask bench --before REV`: the benchmark of an earlier commit, built from an export
//! of its tree (`git archive`, so no worktree is left registered) in target/before/, with a
//! target directory of its own so that neither build disturbs the other's artifacts. Its
//! kernel object and loader are its own: the maps changed since, so this tree's loader could
//! not drive the old object.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail, ensure};

use crate::run::output;

/// The earlier commit's benchmark binary, and the commit's short name.
pub struct BeforeBench {
    pub binary: PathBuf,
    pub commit: String,
}

pub fn build(workspace: &Path, rev: &str) -> anyhow::Result<BeforeBench> {
    let commit = output(
        "git",
        &[
            "-C",
            &workspace.to_string_lossy(),
            "rev-parse",
            "--short",
            &format!("{rev}^{{commit}}"),
        ],
    )
    .map(|text| text.trim().to_owned())
    .with_context(|| format!("--before {rev}: not a commit of this repository"))?;
    let root = workspace.join("target").join("before");
    let tree = root.join(&commit);
    if !tree.join("Cargo.toml").exists() {
        export(workspace, &commit, &tree)?;
    }
    eprintln!(
        "xtask: building the benchmark of {commit} in {}",
        tree.display()
    );
    // The per-packet benchmark's name at that commit: `classifier` before it was renamed.
    let bench = if tree.join("classifier-lab/benches/data_path").exists() {
        "data_path"
    } else {
        "classifier"
    };
    let built = Command::new("cargo")
        .current_dir(&tree)
        .env("CARGO_TARGET_DIR", root.join("target"))
        .args([
            "bench",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .args(["--package", "classifier-lab", "--bench", bench])
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo bench --no-run for the earlier commit")?;
    ensure!(
        built.status.success(),
        "building the benchmark of {commit} failed ({})",
        built.status
    );
    let binary = executable(&String::from_utf8_lossy(&built.stdout), bench)
        .with_context(|| format!("cargo built no benchmark binary for {commit}"))?;
    Ok(BeforeBench { binary, commit })
}

/// Writes `commit`'s tree into `tree` (replacing a partial one).
fn export(workspace: &Path, commit: &str, tree: &Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(tree);
    std::fs::create_dir_all(tree)?;
    let archive = Command::new("git")
        .current_dir(workspace)
        .args(["archive", "--format=tar", commit])
        .stdout(Stdio::piped())
        .spawn()
        .context("running git archive")?;
    let unpacked = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(tree)
        .stdin(archive.stdout.context("git archive's output")?)
        .status()
        .context("running tar")?;
    if !unpacked.success() {
        let _ = std::fs::remove_dir_all(tree);
        bail!(
            "unpacking {commit} into {} failed ({unpacked})",
            tree.display()
        );
    }
    Ok(())
}

/// The `executable` of the `classifier` benchmark in cargo's JSON messages.
fn executable(messages: &str, bench: &str) -> Option<PathBuf> {
    const FIELD: &str = "\"executable\":\"";
    let name = format!("\"name\":\"{bench}\"");
    messages
        .lines()
        .filter(|line| line.contains("\"kind\":[\"bench\"]") && line.contains(&name))
        .find_map(|line| {
            let start = line.find(FIELD)? + FIELD.len();
            let end = line[start..].find('"')? + start;
            Some(PathBuf::from(&line[start..end]))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_benchmark_s_executable_is_found_among_cargo_s_messages() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"classifier"},"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"kind":["bench"],"crate_types":["bin"],"name":"classifier","src_path":"/x/main.rs"},"executable":"/t/release/deps/classifier-0a1b"}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        assert_eq!(
            executable(messages, "classifier"),
            Some(PathBuf::from("/t/release/deps/classifier-0a1b"))
        );
        assert_eq!(
            executable(r#"{"reason":"build-finished"}"#, "data_path"),
            None
        );
    }
}
