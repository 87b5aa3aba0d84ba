//! `classifier run --keep-attached` ended with SIGTERM: it exits cleanly and stops learning,
//! but leaves the program attached through its pinned link (same link, same program), and
//! the program goes on classifying and marking with nothing running. `detach` removes it
//! afterwards. (The default, detaching on SIGTERM, is in `run_daemon.rs`.)

use classifier_testkit as support;

use std::time::Duration;

use classifier::{ClassifierMaps, PinDir};
use classifier_common::config::CONFIG_LEARN_DNS;
use support::{
    cli::Cli,
    faults::{Daemon, assert_freed, link_ids},
    hosts::{LISTED, TwoHosts},
    wait::wait_for,
};

const DATAGRAMS: usize = 50;

fn counted(cli: &Cli, class: &str) -> u64 {
    cli.run(&["stats", "--json"]).ok().json()["classes"][class]["packets"]
        .as_u64()
        .unwrap_or_else(|| panic!("stats --json has no classes.{class}.packets"))
}

#[test]
fn a_run_with_keep_attached_leaves_the_program_attached_and_classifying_after_sigterm() {
    let hosts = TwoHosts::new();
    let cli = Cli::new();
    let server = hosts.server.name();
    let mut run = Daemon::start(&cli, &["--netns", server, "run", "s0", "--keep-attached"]);
    run.wait_for_log("learning from DNS answers", 20);
    let (links, program) = link_ids(&cli);
    assert_eq!(links.len(), 1, "run attached s0: {links:?}");

    run.signal(libc::SIGTERM);
    let status = run.wait();
    assert!(status.success(), "{status}:\n{}", run.log());
    assert!(
        !run.log().contains("detached from"),
        "run detached despite --keep-attached:\n{}",
        run.log()
    );
    assert!(hosts.server.has_xdp("s0").unwrap(), "s0 is still attached");
    assert_eq!(
        link_ids(&cli),
        (links.clone(), program),
        "the same link and program stay"
    );
    let maps = ClassifierMaps::open_pinned(&PinDir::new(cli.pin_dir())).unwrap();
    assert_eq!(
        maps.config().unwrap().flags & CONFIG_LEARN_DNS,
        0,
        "learning is off once its reader is gone"
    );

    // With no run, listed traffic is still counted as listed and marked LE on arrival.
    let before = counted(&cli, "listed");
    hosts.udp_stream(LISTED, 6200, DATAGRAMS, Duration::ZERO);
    let arrived = wait_for(
        Duration::from_secs(5),
        format!("the {DATAGRAMS} datagrams to arrive"),
        || Some(hosts.arrived()).filter(|arrived| arrived.listed >= DATAGRAMS as u64),
    );
    assert_eq!(arrived.listed_le, arrived.listed, "every one marked LE");
    assert_eq!(
        counted(&cli, "listed") - before,
        DATAGRAMS as u64,
        "every one counted as listed"
    );

    cli.run(&["--netns", server, "detach", "s0"]).ok();
    assert!(!hosts.server.has_xdp("s0").unwrap(), "detach removes it");
    assert_freed("link", links[0].1, "the kept link");
}
