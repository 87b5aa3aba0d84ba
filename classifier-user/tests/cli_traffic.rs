//! The CLI over real traffic: the built binary attaches to a veth in a namespace (native XDP),
//! real TCP and UDP cross it, and what the CLI reports must match what nftables counted
//! arriving on the other side.

use classifier_testkit as support;

use std::{
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, Instant},
};

use support::{
    cli::{Cli, flow_from},
    hosts::{Arrived, LISTED, TwoHosts, UNLISTED},
    wait::wait_until,
};

/// Replaces a replace test runs while its packets are on their way, at least: on this 2-core
/// machine, quiet, 400 to 700 run while the packets are sent (the tests print how many).
const REPLACES_UNDER_TRAFFIC: usize = 100;
/// How long those replaces may take in all: replaces that stall cannot do 100 within it
/// (made to take 0.7 s each, 85 ran), a machine so busy that each takes a tenth of a second
/// still does.
const REPLACES_WITHIN: Duration = Duration::from_secs(60);

fn attach(cli: &Cli, hosts: &TwoHosts) {
    cli.run(&[
        "--netns",
        hosts.server.name(),
        "attach",
        "s0",
        "--mode",
        "native",
    ])
    .ok();
}

fn packets(json: &serde_json::Value, path: &str) -> u64 {
    path.split('.')
        .fold(json, |value, key| &value[key])
        .as_u64()
        .unwrap_or_else(|| panic!("no number at {path} in {json}"))
}

#[test]
fn stats_and_flows_match_real_tcp_traffic_exactly() {
    let hosts = TwoHosts::new();
    let cli = Cli::new();
    attach(&cli, &hosts);
    assert!(hosts.server.has_xdp("s0").unwrap(), "attached");

    assert_eq!(hosts.tcp_transfer(LISTED, 5001, 300_000), 300_000);
    assert_eq!(hosts.tcp_transfer(UNLISTED, 5002, 100_000), 100_000);
    let arrived = hosts.arrived();
    println!("arrived at the server: {arrived:?}");
    assert!(arrived.listed > 100 && arrived.unlisted > 30, "{arrived:?}");

    let stats = cli.run(&["stats", "--json"]).ok().json();
    assert_eq!(packets(&stats, "classes.listed.packets"), arrived.listed);
    assert_eq!(packets(&stats, "classes.normal.packets"), arrived.unlisted);
    assert_eq!(packets(&stats, "lists.apple.packets"), arrived.listed);
    assert_eq!(packets(&stats, "actions.marked.packets"), arrived.listed);
    assert_eq!(
        arrived.listed_le, arrived.listed,
        "every listed packet arrived as LE"
    );
    assert_eq!(arrived.listed_not_le, 0);
    assert_eq!(
        packets(&stats, "total.packets"),
        arrived.listed + arrived.unlisted
    );
    assert_eq!(
        packets(&stats, "transport.tcp.packets"),
        arrived.listed + arrived.unlisted
    );
    assert_eq!(packets(&stats, "flows.created.packets"), 2);

    let flows = cli.run(&["flows", "--json"]).ok().json();
    let flows = flows.as_array().unwrap();
    assert_eq!(flows.len(), 2, "{flows:?}");
    let flow = |source: &str| flow_from(flows, source);
    let (listed, unlisted) = (flow(LISTED), flow(UNLISTED));
    assert_eq!(listed["server"], "198.51.100.10:5001");
    assert_eq!(listed["protocol"], "tcp");
    assert_eq!(listed["lists"], serde_json::json!(["apple"]));
    assert_eq!(listed["dscp"], "LE");
    assert_eq!(listed["packets"].as_u64(), Some(arrived.listed));
    assert_eq!(unlisted["lists"], serde_json::json!([]));
    assert_eq!(unlisted["dscp"], serde_json::Value::Null);
    assert_eq!(unlisted["packets"].as_u64(), Some(arrived.unlisted));
    // Sorted by bytes: the bigger transfer first.
    assert_eq!(flows[0]["client"], listed["client"]);
}

/// Two lists that both cover 17.253.0.10, through different prefixes: replacing one with
/// the other deletes every prefix that matched it and inserts others.
fn two_lists(cli: &Cli) -> [std::path::PathBuf; 2] {
    let dir = tempdir(cli);
    let files = [
        (dir.join("a.txt"), "17.0.0.0/8\n2620:149::/32\n"),
        (
            dir.join("b.txt"),
            "17.253.0.0/16\n17.128.0.0/9\n2a01:b740::/32\n203.0.113.0/24\n",
        ),
    ];
    for (path, text) in &files {
        std::fs::write(path, text).unwrap();
    }
    files.map(|(path, _)| path)
}

/// What `replace_while_sending` did: the replaces, those during which the sender was seen
/// sending, and the packets it sent.
#[derive(Debug)]
struct Replaced {
    replaces: usize,
    under_traffic: usize,
    sent: u64,
}

/// Sets the flag when dropped, also by a panic: the sender stops, and the scope that waits
/// for it ends with the panic instead of hanging.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Starts `send` (which sends until its flag is set, counting what it sent), and once it has
/// sent its first packet replaces the apple list with each of `files` in turn until both
/// REPLACES_UNDER_TRAFFIC replaces have run and `packets` packets were sent; then stops it.
/// The work is counted, not timed: a slow machine sends and replaces for longer. Fails if
/// the replaces take longer than REPLACES_WITHIN.
fn replace_while_sending(
    cli: &Cli,
    files: &[std::path::PathBuf; 2],
    packets: u64,
    send: impl FnOnce(&AtomicBool, &AtomicU64) + Send,
) -> Replaced {
    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let (replaces, under_traffic) = std::thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        scope.spawn(|| send(&stop, &sent));
        wait_until(Duration::from_secs(10), "the first packet sent", || {
            sent.load(Ordering::Relaxed) > 0
        });
        let started = Instant::now();
        let (mut replaces, mut under_traffic) = (0, 0);
        while replaces < REPLACES_UNDER_TRAFFIC || sent.load(Ordering::Relaxed) < packets {
            assert!(
                started.elapsed() < REPLACES_WITHIN,
                "only {replaces} replaces ran in {REPLACES_WITHIN:?} (and {} packets were sent)",
                sent.load(Ordering::Relaxed)
            );
            let before = sent.load(Ordering::Relaxed);
            let path = &files[replaces % 2];
            cli.run(&["prefixes", "replace", path.to_str().unwrap()])
                .ok();
            replaces += 1;
            if sent.load(Ordering::Relaxed) > before {
                under_traffic += 1;
            }
        }
        (replaces, under_traffic)
    });
    Replaced {
        replaces,
        under_traffic,
        sent: sent.into_inner(),
    }
}

/// What both replace tests require: the replaces ran while packets were on their way (the
/// sender is seen sending during most of them; a replace takes milliseconds, a datagram goes
/// every 50 µs), and every listed packet arrived LE.
fn assert_replaced_under_traffic_and_all_marked(replaced: &Replaced, arrived: &Arrived) {
    assert!(
        replaced.under_traffic >= replaced.replaces / 2,
        "the sender was seen sending during only {} of {} replaces",
        replaced.under_traffic,
        replaced.replaces
    );
    assert_eq!(
        arrived.listed_not_le, 0,
        "packets that left the router unmarked"
    );
    assert_eq!(arrived.listed_le, arrived.listed);
}

/// A flow cached before the replaces keeps its decision (docs/design.md, 'Hitless replace'):
/// the same flow, every packet marked, while the list is replaced at least 100 times under it.
/// A replace that moved the generation before its writes were done would make the flow look
/// again at half-written tries: made to, and to delete before it inserts, it let 58 of 15,038
/// packets through unmarked.
#[test]
fn replacing_a_list_under_a_running_flow_leaves_no_packet_unmarked() {
    let hosts = TwoHosts::new();
    let cli = Cli::new();
    attach(&cli, &hosts);
    let files = two_lists(&cli);
    let replaced = replace_while_sending(&cli, &files, 15_000, |stop, sent| {
        hosts.udp_stream_until(LISTED, 6000, Duration::from_micros(50), stop, sent)
    });
    let arrived = hosts.arrived();
    println!("{replaced:?}; arrived: {arrived:?}");
    assert!(
        arrived.listed >= replaced.sent * 2 / 3,
        "{arrived:?} of {} sent",
        replaced.sent
    );
    assert_replaced_under_traffic_and_all_marked(&replaced, &arrived);
}

/// Every packet a new flow (a new source port each), so every one is looked up in the tries
/// while the list is replaced: an address in both lists must match at every moment
/// (docs/design.md, 'Hitless replace'). A replace that deleted before it inserted would let
/// packets through unmarked: made to, 66 of 20,002 were.
#[test]
fn replacing_a_list_under_new_flows_leaves_no_packet_unmarked() {
    let hosts = TwoHosts::new();
    let cli = Cli::new();
    attach(&cli, &hosts);
    let files = two_lists(&cli);
    let replaced = replace_while_sending(&cli, &files, 20_000, |stop, sent| {
        hosts.udp_new_flows_until(LISTED, 6001, Duration::from_micros(50), stop, sent)
    });
    let arrived = hosts.arrived();
    let stats = cli.run(&["stats", "--json"]).ok().json();
    let created = packets(&stats, "flows.created.packets");
    println!("{replaced:?}; {created} flows created; arrived: {arrived:?}");
    assert!(
        arrived.listed >= replaced.sent * 95 / 100,
        "{arrived:?} of {} sent",
        replaced.sent
    );
    assert!(
        created >= arrived.listed,
        "every packet was a new flow: {created} created for {} packets",
        arrived.listed
    );
    assert_replaced_under_traffic_and_all_marked(&replaced, &arrived);
}

#[test]
fn detach_leaves_no_program_on_the_interface_and_keeps_the_state() {
    let hosts = TwoHosts::new();
    let cli = Cli::new();
    attach(&cli, &hosts);
    assert!(hosts.server.has_xdp("s0").unwrap());
    cli.run(&["--netns", hosts.server.name(), "detach", "s0"])
        .ok();
    assert!(
        !hosts.server.has_xdp("s0").unwrap(),
        "an XDP program is still on s0"
    );
    let status = cli.run(&["status", "--json"]).ok().json();
    assert_eq!(status["interfaces"], serde_json::json!([]));
    assert_eq!(
        packets(&status, "prefixes.ipv4"),
        1,
        "the apple list is still there"
    );

    // Attach again, replace in place, then remove everything.
    attach(&cli, &hosts);
    let before = cli.run(&["status", "--json"]).ok().json();
    cli.run(&["--netns", hosts.server.name(), "attach", "s0", "--replace"])
        .ok();
    let after = cli.run(&["status", "--json"]).ok().json();
    assert_eq!(
        after["interfaces"][0]["link_id"],
        before["interfaces"][0]["link_id"]
    );
    assert_ne!(
        after["interfaces"][0]["program_id"],
        before["interfaces"][0]["program_id"]
    );
    assert!(hosts.server.has_xdp("s0").unwrap());
    cli.run(&["detach", "--all", "--purge"]).ok();
    assert!(!hosts.server.has_xdp("s0").unwrap());
    assert!(!cli.pin_dir().exists(), "purge removes the pin directory");
}

fn tempdir(cli: &Cli) -> std::path::PathBuf {
    let name = cli
        .pin_dir()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let dir = std::env::temp_dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `nsenter --net` (only the network namespace changes, the host's bpffs stays visible) is
/// the other way to reach an interface in a namespace.
#[test]
fn nsenter_works_like_netns() {
    let hosts = TwoHosts::new();
    let cli = Cli::new();
    let netns = format!("--net={}", hosts.server.path().display());
    let via_nsenter = |args: &[&str]| -> support::cli::Ran {
        std::process::Command::new("nsenter")
            .arg(&netns)
            .arg(support::cli::binary())
            .args(["--config", "/dev/null", "--pin-dir"])
            .arg(cli.pin_dir())
            .args(args)
            .output()
            .expect("nsenter")
            .into()
    };
    via_nsenter(&["attach", "s0"]).ok();
    assert!(hosts.server.has_xdp("s0").unwrap());
    let status = cli.run(&["status", "--json"]).ok().json();
    assert_eq!(status["interfaces"][0]["interface"], "s0");
    via_nsenter(&["detach", "s0"]).ok();
    assert!(!hosts.server.has_xdp("s0").unwrap());
}
