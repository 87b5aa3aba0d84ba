//! Capabilities, not uid 0. The CLI runs with exactly the capabilities deploy/classifier.service
//! keeps (its CapabilityBoundingSet, read from the unit), as uid 0 with everything else
//! dropped and as a non-root user, and every command the unit and an operator use works;
//! without one of them a command fails naming exactly that capability, before changing
//! anything. The unit's `systemd-analyze security` exposure is held to the README's figure.

use classifier_testkit as support;

use std::process::Command;

use classifier_lab::{Netns, veth};
use support::{
    cli::{Cli, Ran, binary},
    faults::throwaway_uid,
};

const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/classifier.service");
const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
const CAPTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/captures/public/mptcpanalyzer/iperf-mptcp-0-0.pcap"
);

/// The unit's CapabilityBoundingSet in setpriv's words: ["bpf", "net_admin", "perfmon"].
fn unit_capabilities() -> Vec<String> {
    let unit = std::fs::read_to_string(UNIT).unwrap();
    let line = unit
        .lines()
        .find_map(|line| line.strip_prefix("CapabilityBoundingSet="))
        .expect("the unit sets CapabilityBoundingSet");
    line.split_whitespace()
        .map(|cap| cap.strip_prefix("CAP_").unwrap().to_lowercase())
        .collect()
}

/// setpriv's list: "-all,+bpf,+net_admin".
fn setpriv_list(caps: &[String]) -> String {
    std::iter::once("-all".to_owned())
        .chain(caps.iter().map(|cap| format!("+{cap}")))
        .collect::<Vec<_>>()
        .join(",")
}

/// How the CLI is run: as root with only `caps` in its bounding set (root's effective set is
/// its bounding set), or as a throwaway uid holding `caps` as ambient capabilities.
#[derive(Copy, Clone)]
enum As {
    Root,
    User(u32),
}

/// Runs the CLI as `who` with only `caps`, inside `netns` when given: `nsenter` moves there
/// with all of root's capabilities, so `--netns` (CAP_SYS_ADMIN) is not needed.
fn run(cli: &Cli, who: As, caps: &[String], netns: Option<&Netns>, args: &[&str]) -> Ran {
    let list = setpriv_list(caps);
    let mut command = match netns {
        Some(ns) => {
            let mut command = Command::new("nsenter");
            command.arg(format!("--net={}", ns.path().display()));
            command.arg("setpriv");
            command
        }
        None => Command::new("setpriv"),
    };
    match who {
        As::Root => command.args([format!("--bounding-set={list}"), "--inh-caps=-all".into()]),
        As::User(uid) => command.args([
            format!("--reuid={uid}"),
            format!("--regid={uid}"),
            "--clear-groups".into(),
            format!("--inh-caps={list}"),
            format!("--ambient-caps={list}"),
        ]),
    };
    command
        .args([binary(), "--config", "/dev/null", "--pin-dir"])
        .arg(cli.pin_dir())
        .args(args)
        .output()
        .expect("setpriv")
        .into()
}

fn without(caps: &[String], dropped: &str) -> Vec<String> {
    caps.iter().filter(|cap| *cap != dropped).cloned().collect()
}

/// Fails with exit code 1 naming exactly `missing` ("CAP_BPF is missing;" is said of one
/// capability alone) and having printed nothing on stdout.
fn fails_missing(ran: Ran, missing: &str) {
    let name = format!("CAP_{}", missing.to_uppercase());
    let ran = ran.fails(1, &format!(": {name} is missing; run classifier as root"));
    assert!(!ran.stderr.contains("are missing"), "{}", ran.stderr);
    assert!(ran.stdout.is_empty(), "{}", ran.stdout);
}

fn listed(cli: &Cli, prefix: &str) -> bool {
    cli.run(&["prefixes", "list", "--json"])
        .ok()
        .stdout
        .contains(prefix)
}

#[test]
fn root_with_only_the_units_capabilities_runs_every_command_and_names_a_missing_one() {
    let caps = unit_capabilities();
    assert_eq!(caps, ["bpf", "net_admin", "perfmon"], "the unit changed");
    let ns = Netns::create("clst-caps").expect("namespace");
    veth(&ns, "a0", &ns, "b0").expect("veth");
    let cli = Cli::new();
    let root = |caps: &[String], args: &[&str]| run(&cli, As::Root, caps, Some(&ns), args);

    // Loading needs each of the three: without one, nothing is loaded, created or attached.
    for dropped in &caps {
        fails_missing(root(&without(&caps, dropped), &["attach", "a0"]), dropped);
        fails_missing(
            root(&without(&caps, dropped), &["analyze", CAPTURE]),
            dropped,
        );
        fails_missing(
            root(
                &without(&caps, dropped),
                &["shape", "b0", "--rate", "100mbit"],
            ),
            dropped,
        );
    }
    assert!(
        !cli.pin_dir().exists(),
        "a refused attach created the state"
    );
    assert!(!ns.has_xdp("a0").unwrap());

    // With exactly the unit's set: what the unit runs, and an operator's reads and writes.
    root(&caps, &["shape", "b0", "--rate", "100mbit"]).ok();
    root(&caps, &["attach", "a0"]).ok();
    assert!(ns.has_xdp("a0").unwrap());
    root(
        &caps,
        &["prefixes", "add", "198.51.100.0/24", "--list", "cdn"],
    )
    .ok();
    root(&caps, &["policy", "set", "list:cdn=LE", "mptcp=CS1"]).ok();
    for read in [
        &["stats"][..],
        &["flows"],
        &["devices", "--interval", "0"],
        &["status"],
        &["policy", "show"],
    ] {
        root(&caps, read).ok();
    }
    assert!(
        root(&caps, &["analyze", CAPTURE])
            .ok()
            .stdout
            .contains("packets")
    );
    assert!(listed(&cli, "198.51.100.0/24"));

    // The pinned state needs CAP_BPF to be read or written at all; tc needs CAP_NET_ADMIN.
    let no_bpf = without(&caps, "bpf");
    fails_missing(root(&no_bpf, &["stats"]), "bpf");
    fails_missing(root(&no_bpf, &["prefixes", "add", "203.0.113.0/24"]), "bpf");
    fails_missing(root(&no_bpf, &["detach", "a0"]), "bpf");
    fails_missing(
        root(&without(&caps, "net_admin"), &["shape", "b0", "--off"]),
        "net_admin",
    );
    assert!(!listed(&cli, "203.0.113.0/24"), "a refused write wrote");
    assert!(ns.has_xdp("a0").unwrap(), "a refused detach detached");

    // --netns is setns, which needs CAP_SYS_ADMIN: the unit has none and does not use it.
    let elsewhere = ["--netns", ns.name(), "status"];
    fails_missing(run(&cli, As::Root, &caps, None, &elsewhere), "sys_admin");
    let mut with_sys_admin = caps.clone();
    with_sys_admin.push("sys_admin".into());
    run(&cli, As::Root, &with_sys_admin, None, &elsewhere).ok();

    root(&caps, &["shape", "b0", "--off"]).ok();
    root(&caps, &["detach", "a0"]).ok();
    assert!(!ns.has_xdp("a0").unwrap());
}

#[test]
fn a_non_root_user_with_the_capabilities_also_needs_the_file_modes_overridden() {
    let caps = unit_capabilities();
    let ns = Netns::create("clst-caps").expect("namespace");
    veth(&ns, "a0", &ns, "b0").expect("veth");
    let cli = Cli::new();
    cli.run(&["--netns", ns.name(), "attach", "a0"]).ok();
    let uid = As::User(throwaway_uid());

    // The capabilities pass the CLI's checks, and the 0700 directory stops the user there:
    // the pins are root's (README, "Privileges").
    let ran = run(&cli, uid, &caps, None, &["stats"]);
    ran.fails(
        1,
        "Permission denied (os error 13): the classifier's state is root-only",
    );
    let ran = run(&cli, uid, &caps, None, &["prefixes", "add", "192.0.2.0/24"]);
    ran.fails(
        1,
        "Permission denied (os error 13): the classifier's state is root-only",
    );
    assert!(!listed(&cli, "192.0.2.0/24"));

    // With CAP_DAC_OVERRIDE besides, the same user reads and writes the root-owned state.
    let mut overriding = caps.clone();
    overriding.push("dac_override".into());
    let stats = run(&cli, uid, &overriding, None, &["stats", "--json"]).ok();
    assert!(stats.stdout.contains("packets"), "{}", stats.stdout);
    run(
        &cli,
        uid,
        &overriding,
        None,
        &["prefixes", "add", "192.0.2.0/24"],
    )
    .ok();
    assert!(listed(&cli, "192.0.2.0/24"), "root sees the user's write");

    // And still not without CAP_BPF, whatever else it may override.
    let ran = run(
        &cli,
        uid,
        &without(&overriding, "bpf"),
        None,
        &["prefixes", "add", "192.0.2.128/25"],
    );
    fails_missing(ran, "bpf");
    assert!(!listed(&cli, "192.0.2.128/25"));
}

/// "1.8" from "→ Overall exposure level for classifier.service: 1.8 OK 🙂".
fn measured_exposure() -> f64 {
    let ran = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager", UNIT])
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    let text = String::from_utf8_lossy(&ran.stdout);
    let figure = text
        .lines()
        .find_map(|line| {
            line.split("Overall exposure level for classifier.service: ")
                .nth(1)
        })
        .unwrap_or_else(|| {
            panic!(
                "no exposure in: {text}{}",
                String::from_utf8_lossy(&ran.stderr)
            )
        });
    figure.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn the_units_exposure_is_at_most_the_readmes_figure() {
    let readme = std::fs::read_to_string(README).unwrap();
    let claimed: f64 = readme
        .split("exposure level: **")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the README states the unit's exposure level: **N.N OK**")
        .parse()
        .unwrap();
    assert!(claimed <= 4.0, "the README claims {claimed}, not OK");
    let measured = measured_exposure();
    assert!(
        measured <= claimed,
        "systemd-analyze rates the unit {measured}, the README says {claimed}"
    );
}
