//! What the soak watches while the load runs: the kernel log, `classifier run`'s memory, and
//! whether the counters' classes add up to the total.

use std::process::Command;

use anyhow::{Context as _, Result, ensure};

/// Kernel log lines at warning level or worse.
pub fn kernel_warnings() -> Result<Vec<String>> {
    let output = Command::new("dmesg")
        .args(["--level=emerg,alert,crit,err,warn"])
        .output()
        .context("running dmesg")?;
    ensure!(output.status.success(), "dmesg failed");
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect())
}

/// The resident memory of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .context("no VmRSS in /proc/PID/status")
}

/// The packet total and the sum of the classes, from `classifier stats --json`.
pub struct Tally {
    pub total: u64,
    pub classes: u64,
    pub malformed: u64,
    pub mptcp: u64,
    pub listed: u64,
    pub normal: u64,
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

pub fn tally(stats: &serde_json::Value) -> Result<Tally> {
    let packets = |value: &serde_json::Value| value["packets"].as_u64();
    let classes = stats["classes"]
        .as_object()
        .context("stats --json has no classes")?;
    Ok(Tally {
        total: packets(&stats["total"]).context("stats --json has no total")?,
        classes: classes.values().filter_map(packets).sum(),
        malformed: classes.get("malformed").and_then(packets).unwrap_or(0),
        mptcp: classes.get("mptcp").and_then(packets).unwrap_or(0),
        listed: classes.get("listed").and_then(packets).unwrap_or(0),
        normal: classes.get("normal").and_then(packets).unwrap_or(0),
    })
}
