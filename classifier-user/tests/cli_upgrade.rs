//! What installing a new version does to a running router (docs/design.md, 'Upgrades').
//!
//! - Same state layout: the new binary's programs replace the old ones through the same links
//!   (`attach --replace`, or `run` starting on interfaces attached before), on the same maps:
//!   counters, lists, learned addresses and policy stay, and no packet goes unmarked while
//!   the programs change under a stream of new flows.
//! - Another layout: every command refuses the state, naming the recovery; the recovery
//!   (`detach --all --purge`, `attach`, `state restore` of the file `state save` wrote
//!   before) brings the lists and the policy back.

use classifier_testkit as support;

use std::{
    net::Ipv4Addr,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use std::os::unix::fs::PermissionsExt as _;

use classifier::PinDir;
use support::{
    cli::Cli,
    faults::{Daemon, link_ids},
    forge,
    hosts::{LISTED, TwoHosts},
    wait::wait_until,
};

/// Program swaps made while the packets stream in, each a load of both programs.
const REPLACES: usize = 3;

fn attach(cli: &Cli, hosts: &TwoHosts) {
    let server = hosts.server.name();
    cli.run(&["--netns", server, "attach", "s0", "--mode", "native"])
        .ok();
}

/// What the operator set up: a list of their own, a policy, a learned address.
fn set_up(cli: &Cli) {
    cli.run(&[
        "prefixes",
        "add",
        "--list",
        "cdn",
        "198.18.0.0/15",
        "2001:db8::/32",
    ])
    .ok();
    cli.run(&[
        "policy",
        "set",
        "list:apple=LE",
        "list:cdn=AF11",
        "mptcp=keep",
    ])
    .ok();
    let in_an_hour = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    forge::learned(
        &PinDir::new(cli.pin_dir()),
        Ipv4Addr::new(203, 0, 113, 77),
        0,
        "mesu.apple.com",
        in_an_hour,
    );
}

/// The state an operator reads back: lists with what was learned, and the policy.
fn state(cli: &Cli) -> (serde_json::Value, serde_json::Value) {
    (
        cli.run(&["prefixes", "list", "--json"]).ok().json(),
        cli.run(&["policy", "show", "--json"]).ok().json(),
    )
}

fn listed_packets(cli: &Cli) -> u64 {
    cli.run(&["stats", "--json"]).ok().json()["classes"]["listed"]["packets"]
        .as_u64()
        .expect("stats --json has classes.listed.packets")
}

#[test]
fn the_same_layout_swaps_the_programs_and_keeps_the_state_and_every_mark() {
    let hosts = TwoHosts::new();
    let cli = Cli::new();
    attach(&cli, &hosts);
    set_up(&cli);
    hosts.udp_stream(LISTED, 6300, 50, Duration::ZERO);
    wait_until(Duration::from_secs(5), "the first datagrams", || {
        hosts.arrived().listed >= 50
    });
    let counted = listed_packets(&cli);
    assert!(counted >= 50, "{counted} listed packets counted before");
    let before = state(&cli);
    let (links, program) = link_ids(&cli);

    // Replaces, one after another, while new flows stream in: the sender starts before the
    // first and stops after the last.
    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    std::thread::scope(|scope| {
        // A failed replace must stop the sender too, or the scope would wait for it for ever.
        let _stop_on_exit = StopOnExit(&stop);
        scope.spawn(|| {
            hosts.udp_new_flows_until(LISTED, 6301, Duration::from_micros(100), &stop, &sent);
        });
        wait_until(Duration::from_secs(10), "the stream to start", || {
            hosts.arrived().listed > 50
        });
        for _ in 0..REPLACES {
            cli.run(&["--netns", hosts.server.name(), "attach", "s0", "--replace"])
                .ok();
        }
    });
    let sent = sent.load(Ordering::Relaxed);
    wait_until(
        Duration::from_secs(5),
        "the datagrams sent to arrive",
        || hosts.arrived().listed >= sent + 50,
    );
    let arrived = hosts.arrived();
    println!("{REPLACES} replaces while sending; arrived: {arrived:?}");
    assert!(arrived.listed > 1000, "{arrived:?}");
    assert_eq!(arrived.listed_not_le, 0, "packets that left unmarked");
    assert_eq!(arrived.listed_le, arrived.listed);

    let (links_after, program_after) = link_ids(&cli);
    assert_eq!(links_after, links, "the same links");
    assert_ne!(program_after, program, "the program is the new one");
    assert_eq!(state(&cli), before, "lists, learned addresses and policy");
    assert!(
        listed_packets(&cli) >= counted + arrived.listed - 50,
        "the counters went on from where they were"
    );
}

#[test]
fn run_puts_its_own_programs_on_what_was_attached_before_and_keeps_the_state() {
    let hosts = TwoHosts::new();
    let cli = Cli::new();
    attach(&cli, &hosts);
    set_up(&cli);
    let before = state(&cli);
    let (links, program) = link_ids(&cli);
    let server = hosts.server.name();
    let mut run = Daemon::start(&cli, &["--netns", server, "run", "s0", "--keep-attached"]);
    run.wait_for_log("learning from DNS answers", 20);
    assert!(
        run.log().contains("its program is now this binary's"),
        "{}",
        run.log()
    );
    let (links_after, program_after) = link_ids(&cli);
    assert_eq!(links_after, links, "the same link");
    assert_ne!(program_after, program, "run's own program");
    assert_eq!(state(&cli), before, "lists, learned addresses and policy");
}

#[test]
fn another_layout_is_refused_naming_the_recovery_which_brings_back_lists_and_policy() {
    let hosts = TwoHosts::new();
    let cli = Cli::new();
    attach(&cli, &hosts);
    set_up(&cli);
    let (lists, policy) = state(&cli);
    let scratch = std::env::temp_dir().join(cli.pin_dir().file_name().unwrap());
    std::fs::create_dir_all(&scratch).unwrap();
    let saved = scratch.join("saved.json");
    let saved_arg = saved.to_str().unwrap();
    // A link another user planted where `save` writes its partial file is removed, not
    // followed: the file it points to is left as it was.
    let victim = scratch.join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    std::os::unix::fs::symlink(&victim, scratch.join(".saved.json.partial")).unwrap();
    let summary = cli.run(&["state", "save", saved_arg, "--json"]).ok().json();
    assert_eq!(summary["rules"], 3, "{summary}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    let mode = std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the saved state is root's alone");

    // A bad file changes nothing, and says which file and what is wrong.
    let bad = scratch.join("bad.json");
    std::fs::write(&bad, r#"{"format": 1, "lists": [{"name": "Bad Name", "prefixes": []}], "rules": [], "dry_run": false}"#).unwrap();
    cli.run(&["state", "restore", bad.to_str().unwrap()])
        .fails(2, "not a valid list name");
    std::fs::write(&bad, "{").unwrap();
    cli.run(&["state", "restore", bad.to_str().unwrap()])
        .fails(2, &format!("saved state {}", bad.display()));
    assert_eq!(
        state(&cli),
        (lists.clone(), policy.clone()),
        "a refused restore changed the state"
    );
    // A FIFO would let whoever writes it choose when the read ends, and swap the name for a
    // trusted file meanwhile: only a regular file is read, checked as it was opened.
    let fifo = scratch.join("fifo.json");
    std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    cli.run(&["state", "restore", fifo.to_str().unwrap()])
        .fails(2, "not a regular file");

    forge::stamp_layout(&PinDir::new(cli.pin_dir()), 999);
    let server = hosts.server.name();
    for args in [
        &["status"][..],
        &["--netns", server, "attach", "s0", "--replace"],
        &["prefixes", "list"],
    ] {
        let refused = cli.run(args).fails(1, "incompatible version");
        assert!(
            refused.stderr.contains("state restore FILE") && refused.stderr.contains("--purge"),
            "`{}` does not name the recovery: {}",
            args.join(" "),
            refused.stderr
        );
    }

    cli.run(&["detach", "--all", "--purge"]).ok();
    attach(&cli, &hosts);
    cli.run(&["state", "restore", saved_arg]).ok();
    let (lists_now, policy_now) = state(&cli);
    assert_eq!(policy_now, policy, "the policy");
    // What DNS taught is not saved: it is taught again. Every list's own prefixes are back.
    let own = |rows: &serde_json::Value| -> Vec<(String, serde_json::Value)> {
        rows.as_array()
            .expect("prefix rows")
            .iter()
            .filter(|row| !row["lists"].as_array().unwrap().is_empty())
            .map(|row| {
                (
                    row["prefix"].as_str().unwrap().to_owned(),
                    row["lists"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(own(&lists_now), own(&lists), "every list's own prefixes");
    assert!(
        own(&lists)
            .iter()
            .any(|(prefix, _)| prefix == "198.18.0.0/15"),
        "{lists}"
    );
    let _ = std::fs::remove_dir_all(scratch);
}

/// Sets its flag when dropped, unwinding included.
struct StopOnExit<'a>(&'a AtomicBool);

impl Drop for StopOnExit<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A swap goes through the link pinned for the interface named, and only if that link is
/// still on it: an interface renamed away keeps its link, and another one given its name must
/// not have its program changed through it.
#[test]
fn a_swap_refuses_a_link_that_is_on_another_interface_now() {
    let ns = classifier_lab::Netns::create("clst-u").expect("namespace");
    classifier_lab::veth(&ns, "u0", &ns, "u1").expect("veth");
    let cli = Cli::new();
    cli.run(&["--netns", ns.name(), "attach", "u0"]).ok();
    for args in [
        &["link", "set", "u0", "down"][..],
        &["link", "set", "u0", "name", "moved0"],
        &["link", "set", "u1", "down"],
        &["link", "set", "u1", "name", "u0"],
        &["link", "set", "u0", "up"],
    ] {
        ns.ip(args).expect("ip link");
    }
    cli.run(&["--netns", ns.name(), "attach", "u0", "--replace"])
        .fails(1, "is attached to interface index");
    assert!(
        ns.has_xdp("moved0").unwrap(),
        "the renamed interface keeps its program"
    );
    assert!(!ns.has_xdp("u0").unwrap(), "nothing attached to the new u0");
    cli.run(&["detach", "--all"]).ok();
}
