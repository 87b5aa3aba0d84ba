//! Starting `tc`: one command, or many in one `tc -batch` (hundreds of leaf classes in one
//! process, not one process each). A failure is known by the exit status alone.

use std::{
    io::Write as _,
    process::{Command, Stdio},
};

use crate::Error;

/// Runs `tc` and returns what it printed. A failure is known by the exit status alone; the
/// stderr goes into the error for the operator to read.
pub(crate) fn output(args: &[&str]) -> Result<Vec<u8>, Error> {
    let output = Command::new("tc")
        .args(args)
        .output()
        .map_err(Error::io("running tc (install iproute2)"))?;
    if !output.status.success() {
        return Err(Error::Command {
            command: format!("tc {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(output.stdout)
}

/// Runs `tc`, judged by its exit status alone.
pub(crate) fn run(args: &[&str]) -> Result<(), Error> {
    output(args).map(drop)
}

/// Runs `tc -batch -` over `commands`, one per line. tc stops at the first that fails and
/// exits non-zero; what ran before it stays, and the caller undoes it.
pub(crate) fn batch(commands: &str) -> Result<(), Error> {
    if commands.is_empty() {
        return Ok(());
    }
    let failed = |stderr: String| Error::Command {
        command: format!(
            "tc -batch - ({} commands, the first: {})",
            commands.lines().count(),
            commands.lines().next().unwrap_or_default()
        ),
        stderr,
    };
    let mut child = Command::new("tc")
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(Error::io("running tc (install iproute2)"))?;
    let written = child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(commands.as_bytes());
    let output = child
        .wait_with_output()
        .map_err(Error::io("running tc -batch"))?;
    if !output.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ));
    }
    written.map_err(|error| failed(format!("writing the commands: {error}")))
}
