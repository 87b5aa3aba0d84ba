//! A small update storm (what `cargo xtask storm` runs at full size): 20 phones, 2 of them
//! over 8 connections, on 5 servers of which 2 are known only through DNS answers whose CNAME
//! chains lead into Apple's CDN domains, beside a non-Apple bulk download and an interactive
//! probe, on a link shaped to 50 Mbit/s; once without the classifier and once with it
//! (`classifier run`, per-flow bulk class). Checks what must hold whatever the machine's
//! speed: every phone downloads, the probe's round trips collapse with the classifier, and the
//! CDN servers are classified from DNS alone (docs/design.md, 'DNS learning'). With the
//! classifier at either hook, XDP or tc (docs/design.md, 'The tc hook').

use classifier_testkit as support;

use std::{path::Path, sync::Mutex, time::Duration};

use classifier::Hook;
use classifier_lab::{
    ROUTER_INGRESS,
    storm::{self, Outcome, Setup, Spec, summary::percentile},
};

fn spec(hook: Hook) -> Spec {
    Spec {
        phones: 20,
        heavy_phones: 2,
        idle: Duration::from_secs(2),
        ramp: Duration::from_secs(2),
        measure: Duration::from_secs(4),
        hook: Some(hook),
        ..Spec::default()
    }
}

fn storm(hook: Hook, setup: Setup) -> Outcome {
    // The hook in the names: the two tests' storms must not share a namespace or a pin dir.
    let prefix = format!(
        "classifier-test-storm-{}-{}",
        std::process::id(),
        hook.name()
    );
    storm::run(
        Path::new(support::cli::binary()),
        &spec(hook),
        setup,
        &prefix,
    )
    .unwrap_or_else(|error| panic!("the storm ({}): {error}", setup.name()))
}

fn p99(trips: &[Option<Duration>]) -> Duration {
    percentile(trips, 99.0).expect("probes under the storm")
}

#[test]
fn every_phone_downloads_the_probe_stays_fast_and_cdn_servers_are_learned_with_the_xdp_hook() {
    storm_with_and_without_the_classifier(Hook::Xdp);
}

#[test]
fn every_phone_downloads_the_probe_stays_fast_and_cdn_servers_are_learned_with_the_tc_hook() {
    storm_with_and_without_the_classifier(Hook::Tc);
}

/// One storm at a time: each measures round trips and shares on a shaped link, which a second
/// storm beside it on this machine's few cores would disturb.
static ONE_STORM_AT_A_TIME: Mutex<()> = Mutex::new(());

fn storm_with_and_without_the_classifier(hook: Hook) {
    support::require_root();
    // A storm that failed in the other test leaves the lock poisoned, not the lab in use.
    let _turn = ONE_STORM_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let without = storm(hook, Setup::NoClassifier);
    let with = storm(hook, Setup::PerFlow);

    for outcome in [&without, &with] {
        let name = outcome.setup.name();
        // Breaks if a phone's address is not routed, or the bulk class starves a phone.
        for phone in &outcome.phones {
            assert!(
                phone.bytes > 0 && phone.failed == 0,
                "{name}: phone {} received {} bytes, {} connections failed",
                phone.address,
                phone.bytes,
                phone.failed
            );
        }
        assert!(outcome.normal_bytes > 0, "{name}: no normal bulk download");
    }

    // Breaks if the storm is not marked (learning, the policy, the shaper's steering): the
    // probe then waits behind the storm's queue as it does without the classifier.
    for (probe, before, after) in [
        ("TCP", &without.storm_tcp, &with.storm_tcp),
        ("ICMP", &without.storm_icmp, &with.storm_icmp),
    ] {
        let (before, after) = (p99(before), p99(after));
        println!("{probe} probe p99: {before:?} without, {after:?} with the classifier at {hook}");
        assert!(
            after * 2 < before,
            "{probe} probe p99 {after:?} with the classifier, {before:?} without"
        );
    }

    // The CDN servers are in no list: only the answers' CNAME chains make them Apple's. The
    // client's nftables counts their packets by DSCP, beside the classifier's own counters.
    for (outcome, learned) in [(&without, false), (&with, true)] {
        for server in &outcome.learned_servers {
            assert!(server.packets > 0, "no packets from {}", server.server);
            let expected = if learned { server.packets } else { 0 };
            assert_eq!(
                server.le,
                expected,
                "{}: packets from {} marked LE",
                outcome.setup.name(),
                server.server
            );
        }
    }
    assert_eq!(with.learned_servers.len(), 2);

    // `classifier devices`: every phone, and nothing else, is an Apple device.
    // Breaks if `devices` fails (the storm then fails, with its error) or miscounts.
    assert_eq!(
        with.phones_seen,
        Some(spec(hook).phones),
        "phones the classifier saw"
    );
    assert_eq!(
        without.phones_seen, None,
        "devices asked without a classifier"
    );

    // Breaks if `--hook` is lost on the way to `classifier run`: this would run XDP twice.
    let expected = ROUTER_INGRESS.map(|i| (i.to_owned(), hook.name().to_owned()));
    assert_eq!(
        with.attached, expected,
        "where status showed the classifier"
    );
    assert_eq!(without.attached, [], "the classifier attached without it");
}
