//! Fairness between devices in the bulk class (docs/design.md, 'Fairness between devices'),
//! with real TCP through the lab's router, whose client-side interface r0 is shaped. Two
//! devices behind it download from the Apple server at once, so both downloads are bulk: a
//! "heavy" device (192.0.2.10) over 8 connections, a "light" one (192.0.2.11) over 1. With
//! fairness on (`--fair 256`), HTB serves each device's leaf in turn and they get about half
//! each; with `--fair off` the bulk class is one queue, TCP shares it per connection, and the
//! heavy device takes about 8 of 9 parts.
//!
//! The tolerances, for a 2-core machine that other work shares: a device's share of the bulk
//! bytes is measured over a 6 s window after a 2 s warm-up. With fairness on, the light device
//! must get 35–65 % (an exact round robin gives 50 %; a device's one connection can leave
//! its leaf empty for a moment after a loss, and the other takes that time; measured 48–50 %
//! in 13 runs). With fairness off it must get under a third, the heavy device more than twice
//! as much (1 in 9 is 11 %; in a drop-tail FIFO shared by 9 connections the lone one's share
//! swings with its window, hence the least of three windows). That check is of the setup: with a
//! FIFO too deep to drop (see the txqueuelen below) the light device got half without
//! fairness too, and the first check would have proved nothing.
//! A program that ignores the device (one leaf for all, or a hash of the ports) gives about
//! the off figure in the on run, and fails (a hash of the ports, tried: 13 %, and 9 busy
//! leaves where there must be 2). The two windows are measured on the same link, fairness changed in place
//! by `shape` between them, which also checks that `--fair off` takes the leaves away.
//! Both with the classifier at either hook, XDP or tc (docs/design.md, 'The tc hook').

use classifier_testkit as support;

use std::{
    io::{Read as _, Write as _},
    net::{IpAddr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use classifier::Hook;
use classifier_lab::{CLIENT_V4, Lab, SERVER_APPLE_V4, htb, traffic};
use support::{
    cli::Cli,
    router::{assert_attached_at, attach_at},
    wait::wait_until,
};

const RATE: &str = "20mbit";
const HEAVY_CONNECTIONS: u16 = 8;
/// The second device, on the client's link beside CLIENT_V4.
const LIGHT: &str = "192.0.2.11";
const WARM_UP: Duration = Duration::from_secs(2);
const WINDOW: Duration = Duration::from_secs(6);

/// Bytes each device received, counted as they arrive.
#[derive(Default)]
struct Received {
    heavy: AtomicU64,
    light: AtomicU64,
}

/// Adds LIGHT to the client's link, with a static neighbour on the router as the lab has.
fn add_light_device(lab: &Lab) {
    lab.client
        .ip(&["addr", "add", &format!("{LIGHT}/24"), "dev", "c0"])
        .expect("second address");
    let mac = lab.client.mac("c0").expect("c0's MAC");
    lab.router
        .ip(&[
            "neigh",
            "add",
            LIGHT,
            "lladdr",
            &mac,
            "dev",
            "r0",
            "nud",
            "permanent",
        ])
        .expect("neighbour");
}

/// Runs 8 downloads to the heavy device and 1 to the light one from the Apple server (ports
/// from `first_port`), and returns the light device's share of what both received in the
/// window.
fn light_share(lab: &Lab, first_port: u16) -> f64 {
    let received = Arc::new(Received::default());
    let stop = Arc::new(AtomicBool::new(false));
    let heavy: IpAddr = CLIENT_V4.parse().unwrap();
    let light: IpAddr = LIGHT.parse().unwrap();
    let devices = (0..HEAVY_CONNECTIONS)
        .map(|_| heavy)
        .chain([light])
        .zip(first_port..);
    thread::scope(|scope| {
        for (device, port) in devices {
            let server = SocketAddr::new(SERVER_APPLE_V4.parse().unwrap(), port);
            let listener = traffic::listen(&lab.server, server, false).expect("listener");
            let stop_sending = Arc::clone(&stop);
            scope.spawn(move || {
                let (mut stream, _) = listener.accept().expect("accept");
                let chunk = vec![0xa5; 64 * 1024];
                while !stop_sending.load(Ordering::Relaxed) && stream.write_all(&chunk).is_ok() {}
            });
            let mut stream =
                traffic::connect(&lab.client, device, server, false).expect("connecting");
            stream
                .set_read_timeout(Some(Duration::from_millis(100)))
                .expect("timeout");
            let (received, stop) = (Arc::clone(&received), Arc::clone(&stop));
            scope.spawn(move || {
                let counter = if device == heavy {
                    &received.heavy
                } else {
                    &received.light
                };
                let mut buffer = vec![0u8; 256 * 1024];
                while !stop.load(Ordering::Relaxed) {
                    match stream.read(&mut buffer) {
                        Ok(0) => break,
                        Ok(n) => {
                            counter.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        Err(_) => {}
                    }
                }
            });
        }
        let both = || {
            (
                received.heavy.load(Ordering::Relaxed),
                received.light.load(Ordering::Relaxed),
            )
        };
        wait_until(Duration::from_secs(5), "both devices receiving", || {
            let (heavy, light) = both();
            heavy > 0 && light > 0
        });
        // The window is timed; its edges are where the counters are read.
        let started = Instant::now();
        thread::sleep(WARM_UP);
        let before = both();
        thread::sleep(WINDOW);
        let after = both();
        let seconds = started.elapsed().as_secs_f64() - WARM_UP.as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        let (heavy_bytes, light_bytes) = (after.0 - before.0, after.1 - before.1);
        let mbit = |bytes: u64| bytes as f64 * 8.0 / seconds / 1e6;
        let share = light_bytes as f64 / (heavy_bytes + light_bytes) as f64;
        println!(
            "heavy (8 connections) {:5.1} Mbit/s, light (1 connection) {:5.1} Mbit/s: light's \
             share {:.0} %",
            mbit(heavy_bytes),
            mbit(light_bytes),
            share * 100.0
        );
        share
    })
}

/// The leaves under r0's bulk class that sent something: (class id, bytes).
fn busy_leaves(lab: &Lab) -> Vec<(String, u64)> {
    let classes = htb::classes(&lab.router, "r0").expect("r0's classes");
    htb::busy_children(&classes, htb::BULK)
        .into_iter()
        .map(|leaf| (leaf.id.to_string(), leaf.sent_bytes))
        .collect()
}

#[test]
fn a_device_with_8_connections_and_one_with_1_share_the_bulk_class_with_the_xdp_hook() {
    devices_share_the_bulk_class(Hook::Xdp);
}

#[test]
fn a_device_with_8_connections_and_one_with_1_share_the_bulk_class_with_the_tc_hook() {
    devices_share_the_bulk_class(Hook::Tc);
}

/// With fairness on they share it equally, with it off the heavy device takes more.
fn devices_share_the_bulk_class(hook: Hook) {
    let lab = Lab::new().expect("lab");
    add_light_device(&lab);
    // The bulk class's FIFO with fairness off takes r0's txqueuelen as its limit: 100
    // packets, 60 ms at 20 Mbit/s, what a router's 1,000 packets are at about 200 Mbit/s.
    // With 1,000 packets at 20 Mbit/s (600 ms) nothing is dropped within the window, and the
    // connections' receive windows, not the queue, set the shares: the light device got
    // 47-50 % with fairness off as well.
    lab.router
        .ip(&["link", "set", "r0", "txqueuelen", "100"])
        .expect("txqueuelen");
    // The server sends frames at either hook, as it does with XDP on r2: attaching XDP to a
    // veth turns its peer's TSO off, tc leaves it on. With TSO on, r0's leaves (pfifo, 64
    // packets) hold skbs of up to 64 KB and one drop loses dozens of segments: at tc the light
    // device got 74-83 % with fairness on (4 runs), the heavy one's 8 connections backing
    // off. GRO on a real router's ingress makes such skbs at either hook: that is the
    // shaper's, not what this test checks.
    lab.server
        .exec("ethtool", &["-K", "s0", "tso", "off"])
        .expect("the server's TSO off");
    let cli = Cli::new();
    attach_at(&cli, &lab, hook);
    let router = lab.router.name();
    let shape = |fair: &str| {
        cli.run(&[
            "--netns", router, "shape", "r0", "--rate", RATE, "--fair", fair,
        ])
        .ok()
    };

    shape("256");
    let fair = light_share(&lab, 8200);
    assert!(
        (0.35..=0.65).contains(&fair),
        "with fairness on the light device got {:.0} % of the bulk class",
        fair * 100.0
    );
    let leaves = busy_leaves(&lab);
    println!("busy leaves with fairness on: {leaves:?}");
    assert_eq!(
        leaves.len(),
        2,
        "each device's packets in one leaf of its own: {leaves:?}"
    );

    shape("off");
    assert_eq!(busy_leaves(&lab), [], "--fair off left leaves");
    // The least of three windows of fresh connections. A kernel that still shared by device
    // gives about half in every window; a shared FIFO gives the lone connection its window's
    // luck: a window where the 8 connections lose together and back off gave it 42 % once in
    // about twenty runs, and under a CPU hog, when the senders rather than the link set the
    // pace, two windows of three near 36 % (the third 9 %). One window under a third is what a
    // per-device kernel or a FIFO too deep to drop cannot give.
    let mut windows = [8220, 8240, 8260].map(|port| light_share(&lab, port));
    windows.sort_by(f64::total_cmp);
    println!("light device's share with fairness off, by window: {windows:?}");
    let unfair = windows[0];

    assert!(
        unfair < 1.0 / 3.0,
        "with fairness off the light device got {:.0} % of the bulk class",
        unfair * 100.0
    );
    assert_attached_at(&cli, hook);
    cli.run(&["--netns", router, "shape", "r0", "--off"]).ok();
}
