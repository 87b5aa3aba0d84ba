//! Every error a user can cause: its message, its exit code (2 for bad input, 1 for the
//! system), and that it changed nothing. And a CLI killed mid-command leaves usable state.

use classifier_testkit as support;

use std::{fs, process::Stdio, time::Duration};

use classifier::{ClassifierMaps, PinDir};
use classifier_lab::{Netns, veth};
use support::{
    cli::{Cli, binary},
    forge,
    wait::wait_until,
};

/// A namespace with a veth pair (a0, b0) and the classifier attached to a0.
fn attached() -> (Netns, Cli) {
    let ns = Netns::create("clst-e").expect("namespace");
    veth(&ns, "a0", &ns, "b0").expect("veth");
    let cli = Cli::new();
    cli.run(&["--netns", ns.name(), "attach", "a0"]).ok();
    (ns, cli)
}

fn expect_error(cli: &Cli, args: &[&str], code: i32, message: &str) {
    let ran = cli.run(args);
    assert_eq!(
        ran.code,
        code,
        "`{}`: exit code; stderr: {}",
        args.join(" "),
        ran.stderr
    );
    assert!(
        ran.stderr.contains(message),
        "`{}`: expected `{message}` in: {}",
        args.join(" "),
        ran.stderr
    );
}

fn prefixes(cli: &Cli) -> serde_json::Value {
    cli.run(&["prefixes", "list", "--json"]).ok().json()
}

fn scratch(cli: &Cli, name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(cli.pin_dir().file_name().unwrap());
    fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn bad_input_is_refused_with_exit_code_2_and_changes_nothing() {
    let (ns, cli) = attached();
    let before = prefixes(&cli);
    let netns = ns.name();

    let bad_file = scratch(&cli, "bad.txt");
    fs::write(&bad_file, "203.0.113.0/24\n# a comment\n\n17.300.0.0/16\n").unwrap();
    let bad_file = bad_file.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["prefixes", "load", bad_file],
            "bad.txt:4: `17.300.0.0/16`",
        ),
        (&["prefixes", "replace", bad_file], "bad.txt:4:"),
        (
            &["prefixes", "add", "203.0.113.0/24", "17.1.2.3/8"],
            "did you mean 17.0.0.0/8?",
        ),
        (&["prefixes", "add", "example.com"], "is not a prefix"),
        (
            &["prefixes", "add", "10.0.0.0/8", "--list", "Bad Name"],
            "not a valid list name",
        ),
        (&["prefixes", "remove", "18.0.0.0/8"], "it is in no list"),
        (
            &["prefixes", "remove", "17.0.0.0/8", "--list", "nope"],
            "no list named `nope`",
        ),
        (
            &["prefixes", "list", "--list", "nope"],
            "no list named `nope` (lists: apple)",
        ),
        (&["policy", "set", "list:nope=LE"], "no list named `nope`"),
        (&["policy", "set", "apple=LE"], "`apple` is not a match"),
        (&["policy", "set", "list:apple=64"], "is not a DSCP"),
        (&["policy", "set", "list:apple"], "expected MATCH=ACTION"),
        (&["attach", "nosuch0"], "no interface named `nosuch0`"),
        (
            &["--netns", netns, "attach", "a0"],
            "a0 is already attached; use --replace",
        ),
        (&["--netns", netns, "detach", "b0"], "b0 is not attached"),
        (
            &["--netns", "clst-no-such-ns", "status"],
            "no network namespace named",
        ),
        (&["stats", "--watch", "0"], "invalid value '0'"),
        (
            &["policy", "set", "--dry-run", "maybe"],
            "invalid value 'maybe'",
        ),
        (&["frobnicate"], "unrecognized subcommand"),
        (&["shape", "a0", "--rate", "fast"], "is not a rate"),
        (
            &["shape", "a0", "--rate", "50mbit", "--bulk-floor", "0"],
            "invalid value '0'",
        ),
        (
            &["shape", "a0", "--rate", "50mbit", "--bulk-dscp", "LE,XX"],
            "`XX` is not a DSCP",
        ),
        (
            &["shape", "nosuch0", "--rate", "50mbit"],
            "no interface named `nosuch0`",
        ),
    ];
    for (args, message) in cases {
        expect_error(&cli, args, 2, message);
    }
    // --purge would pull the maps from under an interface that stays attached.
    cli.run(&["--netns", netns, "attach", "b0"]).ok();
    expect_error(
        &cli,
        &["--netns", netns, "detach", "b0", "--purge"],
        2,
        "add --all (a0@netns-",
    );
    cli.run(&["--netns", netns, "detach", "b0"]).ok();
    assert_eq!(
        prefixes(&cli),
        before,
        "a refused command changed the prefixes"
    );
    let policy = cli.run(&["policy", "show", "--json"]).ok().json();
    assert_eq!(
        policy["rules"],
        serde_json::json!(["list:apple=LE", "mptcp=keep"])
    );
    assert!(ns.has_xdp("a0").unwrap(), "still attached");
}

#[test]
fn system_errors_exit_with_1() {
    let fresh = Cli::new();
    expect_error(&fresh, &["status"], 1, "no classifier state in");
    expect_error(&fresh, &["stats"], 1, "attach an interface first");
    assert!(
        !fresh.pin_dir().exists(),
        "a failed read created the pin directory"
    );

    // Not root: the same binary under an unprivileged uid, which holds no capability.
    let ran = std::process::Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            binary(),
            "status",
        ])
        .output()
        .expect("setpriv");
    assert_eq!(ran.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&ran.stderr).contains("needs CAP_BPF: CAP_BPF is missing"),
        "{ran:?}"
    );

    let (_ns, cli) = attached();
    // A pin directory made by an incompatible version.
    let pin_dir = PinDir::new(cli.pin_dir());
    let layout = forge::stamp_layout(&pin_dir, 999);
    expect_error(&cli, &["status"], 1, "made by an incompatible version");
    expect_error(
        &cli,
        &["prefixes", "add", "203.0.113.0/24"],
        1,
        "incompatible version",
    );
    forge::stamp_layout(&pin_dir, layout);

    // A pin directory that is a symbolic link.
    let link = std::path::PathBuf::from(format!("{}-link", cli.pin_dir().display()));
    std::os::unix::fs::symlink(cli.pin_dir(), &link).unwrap();
    let ran = std::process::Command::new(binary())
        .args([
            "--config",
            "/dev/null",
            "--pin-dir",
            link.to_str().unwrap(),
            "status",
        ])
        .output()
        .unwrap();
    let _ = fs::remove_file(&link);
    assert_eq!(ran.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&ran.stderr).contains("symbolic link"));
}

#[test]
fn full_maps_are_refused_before_anything_is_written() {
    let (_ns, cli) = attached();
    let before = prefixes(&cli);
    // One more /32 than the IPv4 trie holds.
    let capacity = classifier_common::limits::PREFIX_V4_ENTRIES;
    let mut text = String::with_capacity(capacity as usize * 16);
    for n in 0..=capacity {
        let addr = std::net::Ipv4Addr::from(0x0a00_0000 + n);
        text.push_str(&format!("{addr}\n"));
    }
    let file = scratch(&cli, "too-many.txt");
    fs::write(&file, text).unwrap();
    expect_error(
        &cli,
        &["prefixes", "load", file.to_str().unwrap()],
        1,
        &format!(
            "holds at most {capacity} entries; this change needs {}",
            capacity + 2
        ),
    );
    assert_eq!(prefixes(&cli), before);
    let _ = fs::remove_file(file);

    // Lists are full at 32: the 32nd new name is refused.
    for n in 1..32 {
        cli.run(&[
            "prefixes",
            "add",
            &format!("192.0.2.{n}"),
            "--list",
            &format!("l{n}"),
        ])
        .ok();
    }
    expect_error(
        &cli,
        &["prefixes", "add", "198.51.100.1", "--list", "one-too-many"],
        1,
        "all 32 prefix lists are in use",
    );
}

#[test]
fn a_cli_killed_mid_command_leaves_usable_state() {
    let (ns, cli) = attached();
    let big = scratch(&cli, "big.txt");
    let text: String = (0..400_000u32)
        .map(|n| format!("{}\n", std::net::Ipv4Addr::from(0x0a00_0000 + n)))
        .collect();
    fs::write(&big, text).unwrap();
    let mut child = cli
        .command()
        .args(["prefixes", "load", big.to_str().unwrap(), "--list", "big"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed once it is writing the tries: the file's first address is in them (the plan is
    // written in address order), and 400,000 more are to come.
    let maps = ClassifierMaps::open_pinned(&PinDir::new(cli.pin_dir())).unwrap();
    let first = "10.0.0.0/32".parse().unwrap();
    wait_until(
        Duration::from_secs(30),
        "the load to start writing the tries",
        || maps.exact_prefix(first).unwrap().is_some(),
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "the load ended before it could be killed in the middle: give it more prefixes"
    );
    child.kill().expect("kill -9"); // SIGKILL
    let status = child.wait().unwrap();
    println!("killed: {status}");

    let status = cli.run(&["status", "--json"]).ok().json();
    assert_eq!(
        status["interfaces"].as_array().unwrap().len(),
        1,
        "still attached"
    );
    assert!(ns.has_xdp("a0").unwrap());
    cli.run(&["stats", "--json"]).ok();
    cli.run(&["prefixes", "clear", "--list", "big"]).ok();
    let small = scratch(&cli, "small.txt");
    fs::write(&small, "17.0.0.0/8\n").unwrap();
    cli.run(&["prefixes", "replace", small.to_str().unwrap()])
        .ok();
    let after = prefixes(&cli);
    let listed: Vec<&str> = after
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["prefix"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["17.0.0.0/8"]);
    let _ = fs::remove_dir_all(big.parent().unwrap());
}
