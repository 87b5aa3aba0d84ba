//! The machine and the build the numbers were measured on, for BENCHMARKS.md.

use std::process::Command;

fn first_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

/// The kernel's view of the CPU's speculative-execution flaws and their mitigations, one
/// "file: content" per file of /sys/devices/system/cpu/vulnerabilities: mitigations such as
/// Safe RET put a cost on every return, so they belong beside the figures.
fn mitigations() -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_dir("/sys/devices/system/cpu/vulnerabilities")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let content = std::fs::read_to_string(entry.path()).ok()?;
            Some(format!(
                "{}: {}",
                entry.file_name().to_string_lossy(),
                content.trim()
            ))
        })
        .collect();
    lines.sort();
    lines
}

/// Now, as the report writes it.
pub fn date() -> String {
    first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
}

/// This tree's commit (`-dirty` when it has changes).
pub fn commit() -> String {
    first_line("git", &["describe", "--always", "--dirty"])
}

/// A Markdown list: date, CPU, cores, memory, the CPU's mitigations, kernel, commit,
/// toolchain.
pub fn describe() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory = first_line("sh", &["-c", "free -g | awk '/Mem:/ {print $2}'"]);
    let mitigations = match mitigations() {
        lines if lines.is_empty() => {
            " unknown (no /sys/devices/system/cpu/vulnerabilities)".to_owned()
        }
        lines => lines.iter().map(|line| format!("\n  - {line}")).collect(),
    };
    format!(
        "- date: {}\n- CPU: {} × {cores} cores; {memory} GiB of memory (a shared virtual \
         machine)\n- CPU vulnerabilities and mitigations (the kernel's view):{mitigations}\n- kernel: {}\n- commit: {}\n- host build: release, {}",
        date(),
        cpu_model(),
        first_line("uname", &["-r"]),
        commit(),
        first_line("rustc", &["--version"]),
    )
}
