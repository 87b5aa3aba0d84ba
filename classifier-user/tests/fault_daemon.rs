//! `classifier run` killed with SIGKILL while traffic flows: nothing of it runs any more, but
//! the program stays attached through its pinned link, the counters keep counting, and a
//! restarted run takes the pinned state over (same link, its own program swapped in
//! atomically: no gap). Every packet that crossed the wire in the meantime is counted and
//! marked. Also: the metrics endpoint listens on loopback only unless told otherwise.

use classifier_testkit as support;

use std::{
    net::{TcpStream, UdpSocket},
    os::unix::process::ExitStatusExt as _,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::Duration,
};

use support::{
    cli::Cli,
    faults::{Daemon, assert_freed, link_ids},
    hosts::{LISTED, SERVER, TwoHosts},
    wait::{wait_for, wait_until},
};

const METRICS: &str = "metrics on http://127.0.0.1:9417/metrics";

fn total_packets(cli: &Cli) -> u64 {
    cli.run(&["stats", "--json"]).ok().json()["total"]["packets"]
        .as_u64()
        .expect("total.packets")
}

/// The sum of `classifier_packets_total` over the classes of interface s0, scraped inside the
/// server namespace.
fn scraped_packets(hosts: &TwoHosts) -> u64 {
    let response = support::metrics::scrape(&hosts.server, 9417).expect("scraping the metrics");
    response
        .lines()
        .filter(|l| l.starts_with("classifier_packets_total{interface=\"s0\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn a_killed_run_leaves_the_program_attached_and_a_restarted_run_takes_it_over() {
    let hosts = TwoHosts::new();
    let cli = Cli::new();
    let args = ["--netns", hosts.server.name(), "run", "s0"];
    let mut first = Daemon::start(&cli, &args);
    first.wait_for_log(METRICS, 20);

    // Loopback only by default: listening on 127.0.0.1, and the server's own address
    // refuses a connection from the client.
    let listening = hosts.server.exec("ss", &["-Htln"]).unwrap();
    let listening = String::from_utf8_lossy(&listening.stdout).into_owned();
    let sockets: Vec<&str> = listening
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .collect();
    assert_eq!(sockets, ["127.0.0.1:9417"], "{listening}");
    let from_client = hosts
        .client
        .enter(|| {
            TcpStream::connect_timeout(
                &format!("{SERVER}:9417").parse().unwrap(),
                Duration::from_secs(2),
            )
        })
        .unwrap();
    assert_eq!(
        from_client.map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::ConnectionRefused),
        "the metrics must not be reachable from the network"
    );

    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let socket = hosts
        .client
        .enter(|| UdpSocket::bind((LISTED, 0)))
        .unwrap()
        .expect("a socket in the client");
    std::thread::scope(|scope| {
        // A failed assertion below must stop the sender too, or the scope would wait for it
        // for ever.
        let _stop_on_exit = StopOnExit(&stop);
        let sender = scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                socket.send_to(b"flowing", (SERVER, 6100)).expect("sending");
                sent.fetch_add(1, Ordering::Relaxed);
                // A rate limit (about 2,000 datagrams a second), not a synchronisation.
                std::thread::sleep(Duration::from_micros(500));
            }
        });
        let before = wait_for(Duration::from_secs(5), "the traffic to be counted", || {
            Some(total_packets(&cli)).filter(|&n| n > 0)
        });
        let (links, program) = link_ids(&cli);

        first.signal(libc::SIGKILL);
        let status = first.wait();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
        assert!(hosts.server.has_xdp("s0").unwrap(), "still attached");
        let orphaned = wait_for(
            Duration::from_secs(5),
            format!("counting to go on with no run (counted {before} before the kill)"),
            || Some(total_packets(&cli)).filter(|&n| n > before),
        );
        assert_eq!(
            link_ids(&cli),
            (links.clone(), program),
            "same link and program"
        );

        let mut second = Daemon::start(&cli, &args);
        second.wait_for_log("its program is now this binary's", 20);
        second.wait_for_log(METRICS, 20);
        let (links_now, program_now) = link_ids(&cli);
        assert_eq!(links_now, links, "the same link, not attached again");
        assert_ne!(
            program_now, program,
            "the restarted run swapped its own program in (docs/design.md, 'Upgrades')"
        );
        let scraped = scraped_packets(&hosts);
        assert!(
            scraped >= orphaned,
            "the restarted run serves the counters kept meanwhile: {scraped} < {orphaned}"
        );
        wait_until(
            Duration::from_secs(5),
            "the traffic to be counted under the second run",
            || total_packets(&cli) > scraped,
        );
        stop.store(true, Ordering::Relaxed);
        sender.join().expect("the sender");
        let sent = sent.load(Ordering::Relaxed);
        // Every datagram arrives on a veth; waiting for them all is what lets the counts
        // below be compared exactly.
        let arrived = wait_for(
            Duration::from_secs(5),
            format!("the {sent} datagrams sent to arrive"),
            || Some(hosts.arrived()).filter(|arrived| arrived.listed >= sent),
        );
        let total = total_packets(&cli);
        println!(
            "sent {} datagrams; counted {before} before the kill, {orphaned} with no run, \
             {total} in all; the server received {arrived:?}",
            sent
        );
        assert_eq!(
            total,
            arrived.listed + arrived.unlisted,
            "every packet that arrived was counted, across the kill and the restart"
        );
        assert_eq!(arrived.listed_not_le, 0, "and every listed one marked");

        second.signal(libc::SIGTERM);
        let status = second.wait();
        assert!(status.success(), "{status}:\n{}", second.log());
        assert!(!hosts.server.has_xdp("s0").unwrap(), "detached on SIGTERM");
        assert_freed("link", links[0].1, "the link");
    });
}

/// Sets its flag when dropped, unwinding included.
struct StopOnExit<'a>(&'a AtomicBool);

impl Drop for StopOnExit<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
