//! `attach --hook tc` on a veth with real traffic: the tc program at TCX ingress marks what
//! arrives, `status` shows the hook, `--replace` swaps the program under the same TCX link and
//! it keeps classifying, and `detach` leaves no link, program or qdisc on the interface
//! (docs/design.md, 'The tc hook' and 'Hitless replace').

use classifier_testkit as support;

use std::time::{Duration, Instant};

use support::{
    cli::Cli,
    hosts::{LISTED, TwoHosts, UNLISTED},
    tcx,
    wait::wait_until,
};

/// Sends TCP from the listed and from the unlisted address, and checks that every packet
/// that arrived from the listed one is LE, and that the unlisted one's arrived too.
fn listed_traffic_arrives_marked(hosts: &TwoHosts, port: u16) {
    let before = hosts.arrived();
    hosts.tcp_transfer(LISTED, port, 200_000);
    hosts.tcp_transfer(UNLISTED, port + 1, 50_000);
    let after = hosts.arrived();
    let listed = after.listed - before.listed;
    assert!(listed > 0, "no listed packet arrived");
    assert_eq!(
        after.listed_le - before.listed_le,
        listed,
        "every listed packet must arrive LE ({before:?} then {after:?})"
    );
    assert_eq!(after.listed_not_le, before.listed_not_le);
    assert!(
        after.unlisted > before.unlisted,
        "no unlisted packet arrived"
    );
}

fn interface(status: &serde_json::Value) -> &serde_json::Value {
    let interfaces = status["interfaces"].as_array().expect("interfaces");
    assert_eq!(interfaces.len(), 1, "{status}");
    &interfaces[0]
}

#[test]
fn tc_hook_attaches_marks_replaces_and_detaches_without_leftovers() {
    let hosts = TwoHosts::new();
    let cli = Cli::new();
    let ns = hosts.server.name();
    let attached = cli
        .run(&["--netns", ns, "attach", "s0", "--hook", "tc"])
        .ok();
    assert!(
        attached.stdout.contains("attached to s0 (tc tcx)"),
        "{}",
        attached.stdout
    );
    assert!(!hosts.server.has_xdp("s0").unwrap(), "tc must not use XDP");
    let status = cli.run(&["status", "--json"]).ok().json();
    let before = interface(&status).clone();
    assert_eq!(before["hook"], "tc");
    assert_eq!(before["mode"], "tcx");
    let program = before["program_id"].as_u64().unwrap() as u32;
    assert_eq!(
        tcx::ingress_programs(&hosts.server, "s0"),
        vec![program],
        "the pinned link's program runs at s0's TCX ingress"
    );
    assert_eq!(
        status["program_tc"]["id"].as_u64(),
        Some(u64::from(program)),
        "the pinned tc program is the one attached"
    );

    listed_traffic_arrives_marked(&hosts, 47000);
    // The tc program counted exactly what arrived: offloads are off, so one skb is one frame.
    let arrived = hosts.arrived();
    let stats = cli.run(&["stats", "--json"]).ok().json();
    let count = |path: &str| {
        path.split('.')
            .fold(&stats, |value, key| &value[key])
            .as_u64()
            .unwrap_or_else(|| panic!("no number at {path} in {stats}"))
    };
    assert_eq!(count("lists.apple.packets"), arrived.listed);
    assert_eq!(count("actions.marked.packets"), arrived.listed);
    assert_eq!(count("classes.normal.packets"), arrived.unlisted);
    assert_eq!(count("flows.created.packets"), 2);

    // Another hook cannot be asked of a replace: it is refused and changes nothing.
    cli.run(&["--netns", ns, "attach", "s0", "--replace", "--hook", "xdp"])
        .fails(2, "attached at the tc hook");
    // Nor an XDP mode of the tc hook.
    cli.run(&[
        "--netns", ns, "attach", "s0", "--hook", "tc", "--mode", "skb",
    ])
    .fails(2, "do not go with --hook tc");

    cli.run(&["--netns", ns, "attach", "s0", "--replace"]).ok();
    let after = interface(&cli.run(&["status", "--json"]).ok().json()).clone();
    assert_eq!(after["link_id"], before["link_id"], "the same TCX link");
    assert_ne!(
        after["program_id"], before["program_id"],
        "a new program under it"
    );
    assert_eq!(after["hook"], "tc");
    assert_eq!(
        tcx::ingress_programs(&hosts.server, "s0"),
        vec![after["program_id"].as_u64().unwrap() as u32],
        "the new program alone runs at s0's ingress"
    );
    listed_traffic_arrives_marked(&hosts, 47100);

    cli.run(&["--netns", ns, "detach", "s0"]).ok();
    // The kernel releases a link whose last pin is gone from a work queue, moments later.
    let started = Instant::now();
    wait_until(
        Duration::from_secs(5),
        "s0's TCX ingress to be empty after detach",
        || tcx::ingress_programs(&hosts.server, "s0").is_empty(),
    );
    println!(
        "TCX ingress empty {:?} after detach returned",
        started.elapsed()
    );
    let qdiscs = tcx::qdiscs(&hosts.server, "s0");
    assert!(
        !qdiscs.contains("clsact") && !qdiscs.contains("ingress"),
        "detach left a qdisc: {qdiscs}"
    );
    let status = cli.run(&["status", "--json"]).ok().json();
    assert_eq!(status["interfaces"], serde_json::json!([]));
    // Traffic still passes, unmarked.
    let before = hosts.arrived();
    hosts.tcp_transfer(LISTED, 47200, 20_000);
    let after = hosts.arrived();
    assert!(after.listed > before.listed);
    assert_eq!(after.listed_le, before.listed_le, "marked after detach");
}

/// A bridge has no native XDP: `attach` picks tc for it by default and says so rather than
/// generic XDP, the slow path; `--hook xdp` falls back to generic XDP, with a warning, and `--mode native` fails and leaves nothing attached.
#[test]
fn auto_picks_tc_where_native_xdp_is_missing_and_says_so() {
    let ns = classifier_lab::Netns::create("cltc-br").expect("namespace");
    ns.ip(&["link", "add", "br0", "type", "bridge"])
        .expect("a bridge");
    ns.ip(&["link", "add", "br1", "type", "bridge"])
        .expect("a bridge");
    let cli = Cli::new();
    cli.run(&["--netns", ns.name(), "attach", "br0", "--mode", "native"])
        .fails(1, "native");
    assert_eq!(
        cli.run(&["status", "--json"]).ok().json()["interfaces"],
        serde_json::json!([])
    );

    let attached = cli.run(&["--netns", ns.name(), "attach", "br0"]).ok();
    assert!(
        attached.stderr.contains("br0: no native XDP")
            && attached.stderr.contains("attached at tc"),
        "{}",
        attached.stderr
    );
    assert!(attached.stdout.contains("attached to br0 (tc tcx)"));
    assert!(!ns.has_xdp("br0").unwrap());
    assert_eq!(tcx::ingress_programs(&ns, "br0").len(), 1);

    let attached = cli
        .run(&["--netns", ns.name(), "attach", "br1", "--hook", "xdp"])
        .ok();
    assert!(
        attached.stderr.contains("attached in skb mode"),
        "{}",
        attached.stderr
    );
    assert!(ns.has_xdp("br1").unwrap());

    let status = cli.run(&["status", "--json"]).ok().json();
    let hooks: Vec<(String, String)> = status["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["interface"].as_str().unwrap().to_owned(),
                format!(
                    "{} {}",
                    i["hook"].as_str().unwrap(),
                    i["mode"].as_str().unwrap()
                ),
            )
        })
        .collect();
    assert_eq!(
        hooks,
        [
            ("br0".to_owned(), "tc tcx".to_owned()),
            ("br1".to_owned(), "xdp skb".to_owned())
        ]
    );
    cli.run(&["--netns", ns.name(), "detach", "br0", "br1"])
        .ok();
    wait_until(
        Duration::from_secs(5),
        "br0's TCX ingress to be empty after detach",
        || tcx::ingress_programs(&ns, "br0").is_empty(),
    );
}
