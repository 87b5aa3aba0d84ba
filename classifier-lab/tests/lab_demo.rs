//! The demo binary end to end (what `cargo xtask demo` runs): its report, with the classifier
//! at either hook (XDP, the default, or `--hook tc`: docs/design.md, 'The tc hook'), whose
//! figures must show what the demo says they show, and that it leaves nothing behind, whether
//! it finishes or is interrupted with Ctrl-C.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use classifier_lab::demo::{
    self,
    contention::{Contention, Downloads, Verdict},
};
use classifier_testkit::wait::wait_until;

const BINARY: &str = env!("CARGO_BIN_EXE_classifier-lab");

/// The demo builds namespaces and loads BPF programs: without root it cannot run, and must
/// not pass silently.
fn require_root() {
    use classifier::capabilities::{LOAD, SYS_ADMIN, require};
    for needed in [LOAD, SYS_ADMIN] {
        require("the demo test (namespaces and BPF)", needed)
            .expect("the demo test builds namespaces and needs root (`cargo xtask test`)");
    }
}

/// Namespaces and pin directories a demo process with this pid would have made.
fn leftovers(pid: u32) -> Vec<String> {
    let namespaces = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let mut found: Vec<String> = String::from_utf8_lossy(&namespaces.stdout)
        .lines()
        .filter(|line| line.starts_with("clab-") && line.contains(&format!("-{pid}-")))
        .map(str::to_owned)
        .collect();
    let pin_dir = format!("/sys/fs/bpf/classifier-lab-{pid}");
    if std::path::Path::new(&pin_dir).exists() {
        found.push(pin_dir);
    }
    found
}

#[test]
fn the_demo_prints_its_report_and_leaves_nothing_behind_with_the_xdp_hook() {
    // No flag: the default, as `cargo xtask demo` runs it.
    report_and_cleanup(&[], "r0 xdp (native), r1 xdp (native), r2 xdp (native)");
}

#[test]
fn the_demo_prints_its_report_and_leaves_nothing_behind_with_the_tc_hook() {
    report_and_cleanup(&["--hook", "tc"], "r0 tc (tcx), r1 tc (tcx), r2 tc (tcx)");
}

/// Runs the demo with `args`; `attached` is where `classifier status` must show the
/// classifier at the end (breaks if the hook asked for is not the one that ran).
fn report_and_cleanup(args: &[&str], attached: &str) {
    require_root();
    let child = Command::new(BINARY)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}");
    assert!(output.status.success());
    for expected in [
        "1. MPTCP detected",
        "2 subflows",
        "second path (MP_JOIN from 198.18.1.10): yes",
        "at the server: ",
        "2. Apple download on its own",
        "at the client: ",
        "3. Contention",
        "with classifier",
        &format!("attached at the end: {attached}\n"),
        "the lab and its state are removed",
    ] {
        assert!(report.contains(expected), "report lacks `{expected}`");
    }
    // Every packet arrived with the DSCP it should have: "N of N", N > 0, at the server
    // (MPTCP phase) and at the client (Apple phase).
    let verdicts = |line: &&str| line.contains("carried DSCP") || line.contains("arrived as");
    let lines: Vec<&str> = report.lines().filter(verdicts).collect();
    assert_eq!(lines.len(), 2, "two receivers' verdicts: {lines:?}");
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        let of = words.iter().position(|w| *w == "of").unwrap();
        let arrived: u64 = words[of + 1].parse().expect("a packet count");
        assert!(arrived > 0, "no packet arrived: {line}");
        assert_eq!(words[of - 1], words[of + 1], "{line}");
    }
    // The contention phase, from the figures it printed. Breaks if the shaper does not steer
    // the Apple download into the bulk class, if the bulk class's floor is not kept, if the
    // run "without" still marks, or if the verdict printed is not the figures' own.
    let contention = contention_of(&report);
    assert_eq!(
        contention.verdict(),
        Verdict {
            shared_without: true,
            normal_gets_the_rest: true,
            apple_keeps_its_floor: true,
        },
        "{contention:?}"
    );
    assert!(
        report.contains(&contention.sentence()),
        "the report's verdict is not its figures' ({contention:?}): `{}`",
        contention.sentence()
    );
    assert_eq!(leftovers(pid), Vec::<String>::new());
}

/// The goodputs of the contention table's two rows, e.g.
/// `   with classifier         4.8 Mbit/s   10 %    43.0 Mbit/s   86 %`.
fn contention_of(report: &str) -> Contention {
    let downloads = |label: &str| {
        let row = report
            .lines()
            .find(|line| line.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no `{label}` row in the report"));
        let words: Vec<&str> = row.split_whitespace().collect();
        let mbit: Vec<f64> = words
            .windows(2)
            .filter(|pair| pair[1] == "Mbit/s")
            .map(|pair| pair[0].parse().expect("a goodput"))
            .collect();
        let [apple_mbit, normal_mbit] = mbit[..] else {
            panic!("two goodputs expected: {row}");
        };
        Downloads {
            apple_mbit,
            normal_mbit,
        }
    };
    Contention::shown(
        demo::RATE_MBIT,
        demo::BULK_FLOOR,
        downloads("without classifier "),
        downloads("with classifier "),
    )
}

#[test]
fn ctrl_c_removes_the_lab() {
    require_root();
    let mut child = Command::new(BINARY)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Wait until the lab exists, then interrupt as a terminal would.
    wait_until(Duration::from_secs(5), "the lab to come up", || {
        leftovers(pid).len() >= 3
    });
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "exit code after Ctrl-C");
    assert_eq!(leftovers(pid), Vec::<String>::new());
}
