//! An interface deleted while the classifier is attached to it. The kernel detaches the
//! program but keeps the link, defunct, for as long as it is pinned: `status` must say so,
//! `attach` must replace it when the interface comes back, `detach` must remove it, and
//! `classifier run` must do both by itself. Every link and the program must be freed at the
//! end: nothing leaks.

use classifier_testkit as support;

use std::time::Duration;

use classifier_lab::{Netns, veth};
use support::{
    cli::Cli,
    faults::{Daemon, assert_freed, link_ids},
    wait::wait_until,
};

/// A namespace with two veth pairs, a0–a1 and b0–b1.
fn two_pairs() -> Netns {
    let ns = Netns::create("clst-if").expect("namespace");
    veth(&ns, "a0", &ns, "a1").expect("veth a");
    veth(&ns, "b0", &ns, "b1").expect("veth b");
    ns
}

fn recreate_a(ns: &Netns) {
    veth(ns, "a0", ns, "a1").expect("veth a again");
}

fn link_of(links: &[(String, u64)], name: &str) -> u64 {
    links
        .iter()
        .find(|(interface, _)| interface == name)
        .unwrap_or_else(|| panic!("{name} not in status: {links:?}"))
        .1
}

fn gone(cli: &Cli, name: &str) -> bool {
    let status = cli.run(&["status", "--json"]).ok().json();
    status["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["interface"] == name && i["interface_gone"] == true)
}

#[test]
fn a_deleted_interface_is_reported_replaced_and_removed_without_leaks() {
    let ns = two_pairs();
    let cli = Cli::new();
    let netns = ns.name().to_owned();
    cli.run(&["--netns", &netns, "attach", "a0", "b0"]).ok();
    let (links, program) = link_ids(&cli);
    let (a_link, b_link) = (link_of(&links, "a0"), link_of(&links, "b0"));

    ns.ip(&["link", "del", "a0"]).unwrap();
    assert!(gone(&cli, "a0"), "status must report a0 as gone");
    assert!(!gone(&cli, "b0"));
    let text = cli.run(&["status"]).ok().stdout;
    assert!(
        text.contains("warning: a0 was deleted while attached")
            && text.contains("`classifier detach a0` removes it"),
        "{text}"
    );
    assert!(
        support::faults::bpf_object_exists("link", a_link),
        "the kernel keeps a pinned link of a deleted interface"
    );
    cli.run(&["stats"]).ok();

    // While it is gone, attaching it is a clean input error.
    let ran = cli.run(&["--netns", &netns, "attach", "a0"]);
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("no interface named `a0`"),
        "{}",
        ran.stderr
    );

    // Back again: attach replaces the defunct link, rather than refusing it as "already
    // attached".
    recreate_a(&ns);
    let ran = cli.run(&["--netns", &netns, "attach", "a0"]).ok();
    assert!(
        ran.stderr
            .contains("note: a0: the interface had been deleted while attached"),
        "{}",
        ran.stderr
    );
    assert!(ns.has_xdp("a0").unwrap(), "a0 attached again");
    assert!(!gone(&cli, "a0"));
    let (links, _) = link_ids(&cli);
    assert_ne!(link_of(&links, "a0"), a_link, "a new link");
    assert_freed("link", a_link, "the defunct link of a0");
    let a_link = link_of(&links, "a0");

    // Deleted and detached by name while gone.
    ns.ip(&["link", "del", "b0"]).unwrap();
    let ran = cli.run(&["--netns", &netns, "detach", "b0"]).ok();
    assert!(
        ran.stdout.contains("detached from b0@netns-"),
        "{}",
        ran.stdout
    );
    assert_freed("link", b_link, "the link of the deleted b0");

    // The whole namespace deleted while attached (the kernel removes its devices a little
    // later), then everything removed.
    drop(ns);
    wait_until(
        Duration::from_secs(10),
        "a0 to be reported gone with its namespace",
        || gone(&cli, "a0"),
    );
    cli.run(&["detach", "--all", "--purge"]).ok();
    assert!(!cli.pin_dir().exists(), "the pin directory is removed");
    assert_freed("link", a_link, "the link of a0 in the deleted namespace");
    assert_freed("prog", program, "the program");
}

#[test]
fn run_removes_the_link_of_a_deleted_interface_and_attaches_it_again_when_it_returns() {
    let ns = two_pairs();
    let cli = Cli::new();
    let mut daemon = Daemon::start(
        &cli,
        &["--netns", ns.name(), "run", "a0", "b0", "--metrics", "off"],
    );
    daemon.wait_for_log("learning from DNS answers", 20);
    let (links, program) = link_ids(&cli);
    let (a_link, b_link) = (link_of(&links, "a0"), link_of(&links, "b0"));

    ns.ip(&["link", "del", "a0"]).unwrap();
    daemon.wait_for_log("a0 was deleted while attached: its link is removed", 5);
    let (links, _) = link_ids(&cli);
    assert_eq!(
        links
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>(),
        ["b0"],
        "run removed a0's defunct link"
    );
    assert_freed("link", a_link, "the defunct link of a0");
    assert!(ns.has_xdp("b0").unwrap(), "b0 stays attached");

    recreate_a(&ns);
    daemon.wait_for_log("a0 is back: attached again", 5);
    assert!(ns.has_xdp("a0").unwrap());
    let (links, _) = link_ids(&cli);
    let a_link = link_of(&links, "a0");

    daemon.signal(libc::SIGTERM);
    let status = daemon.wait();
    assert!(
        status.success(),
        "run exited with {status}:\n{}",
        daemon.log()
    );
    for device in ["a0", "b0"] {
        assert!(!ns.has_xdp(device).unwrap(), "{device} still attached");
    }
    let (links, _) = link_ids(&cli);
    assert!(links.is_empty(), "pins left: {links:?}");
    assert_freed("link", a_link, "a0's second link");
    assert_freed("link", b_link, "b0's link");
    cli.run(&["detach", "--all", "--purge"]).ok();
    assert_freed("prog", program, "the program");
    println!("{}", daemon.log());
}
