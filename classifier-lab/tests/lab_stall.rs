//! The soak's stall detector fails a stalled load (RELIABILITY.md, 'Soak'): real MPTCP
//! transfers between the lab's namespaces, sampled every second as the soak samples every
//! 30 s; the router starts dropping what the client sends to the server (a silent link, as a
//! stalled connection sees it: no reset, no ICMP), and the detector must report the
//! transfers' rate below `stall::FRACTION` of its median for more than one sample, while the
//! transfer that was in flight misses its deadline with an error naming its flow. A detector
//! that never fires, or a transfer that waits forever (a stalled soak run), fails this test.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use classifier_lab::{
    CLIENT_V4, Lab, SERVER_OTHER_V4, stall,
    traffic::{InFlight, Link, Transfer},
};

/// The sampling period: the soak's 30 s, shortened.
const SAMPLE: Duration = Duration::from_secs(1);
/// Healthy samples before the link goes down: the median needs a history.
const HEALTHY: usize = 4;
/// A link for short transfers: a deadline of about 2 s.
const LINK: Link = Link {
    floor_bits_per_s: 8_000_000,
    setup: Duration::from_secs(2),
    silence: Duration::from_secs(2),
};

/// The router forwards nothing more to the transfers' ports.
const DROP_UPLOADS: &str = "table inet stall {
    chain forward {
        type filter hook forward priority 0;
        tcp dport 7000-7499 drop
    }
}
";

/// Transfers of 256 KiB one after another until `stop`, as the soak's MPTCP load.
fn load(lab: &Lab, stop: &AtomicBool, done: &AtomicU64, errors: &Mutex<Vec<String>>) {
    let client: IpAddr = CLIENT_V4.parse().unwrap();
    let in_flight = InFlight::default();
    let mut n = 0u16;
    while !stop.load(Ordering::Relaxed) {
        let server = SocketAddr::new(SERVER_OTHER_V4.parse().unwrap(), 7000 + n % 500);
        n += 1;
        let result = Transfer {
            client: &lab.client,
            source: client,
            server: &lab.server,
            destination: server,
            bytes: 256 << 10,
            mptcp: true,
            subflows: 1,
        }
        .run(&LINK, &in_flight);
        match result {
            Ok(_) => {
                done.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => errors.lock().unwrap().push(error.to_string()),
        }
    }
}

#[test]
fn the_stall_detector_fails_mptcp_transfers_whose_packets_stop_arriving() {
    let lab = Lab::new().expect("lab");
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let errors = Mutex::new(Vec::new());
    let mut detector = stall::Detector::new(stall::FRACTION);
    let mut samples = 0;
    let mut stall = None;
    thread::scope(|scope| {
        let loader = scope.spawn(|| load(&lab, &stop, &done, &errors));
        let mut last = Instant::now();
        detector.sample([("MPTCP transfers", 0)], Duration::ZERO);
        let give_up = Instant::now() + Duration::from_secs(60);
        let mut dropping = false;
        while stall.is_none() && Instant::now() < give_up {
            // The sampling period: the rate is counted over it.
            thread::sleep(SAMPLE);
            let count = done.load(Ordering::Relaxed);
            let slow = detector.sample([("MPTCP transfers", count)], last.elapsed());
            last = Instant::now();
            samples += 1;
            let stalled = slow.into_iter().find(stall::Slow::is_stall);
            if !dropping {
                assert!(stalled.is_none(), "a healthy load was failed: {stalled:?}");
                if samples >= HEALTHY {
                    lab.router.load_nft(DROP_UPLOADS).expect("nft rules");
                    dropping = true;
                }
            } else {
                stall = stalled;
            }
        }
        // Wait for the transfer in flight to miss its deadline, then stop the load.
        let until = Instant::now() + Duration::from_secs(30);
        while errors.lock().unwrap().is_empty() && Instant::now() < until {
            thread::sleep(Duration::from_millis(50));
        }
        stop.store(true, Ordering::Relaxed);
        loader.join().expect("the load thread");
    });
    assert!(done.load(Ordering::Relaxed) > 0, "no transfer completed");
    let stall = stall.expect("the detector reported no stall within 60 s of the drops");
    assert_eq!(stall.kind, "MPTCP transfers");
    assert!(stall.rate < stall::FRACTION * stall.median, "{stall}");
    let errors = errors.into_inner().unwrap();
    let first = errors
        .first()
        .expect("the stalled transfer reported no error");
    assert!(
        first.starts_with(&format!("MPTCP transfer {CLIENT_V4}:"))
            && first.contains(&format!("⇄ {SERVER_OTHER_V4}:7"))
            && first.contains("missed its deadline"),
        "the error names the flow and its deadline: {first}"
    );
}
