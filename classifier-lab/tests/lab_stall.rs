//! The soak's stall detector fails a stalled load (RELIABILITY.md, 'Soak'): real MPTCP
//! transfers between the lab's namespaces, sampled every second as the soak samples every
//! 30 s; the router starts dropping what the client sends to the server (a silent link, as a
//! stalled connection sees it: no reset, no ICMP), and the detector must report the
//! transfers' rate below `stall::FRACTION` of its median for more than one sample, while the
//! transfer that was in flight misses its deadline with an error naming its flow.
//!
//! What fails it: a detector that never fires (made to need 1,000 slow samples in a row: no
//! stall within 60 s of the drops), one that fires on a healthy load (made to count a sample
//! slow when it is above the fraction: a stall in each healthy phase), or a transfer that
//! waits forever.
//!
//! The healthy samples are this shared 2-core machine's: one second of transfers done one
//! after another, so a pause of the machine or a lost SYN (sent again after 1 s) can take a
//! sample or two below a quarter of the median while nothing stalled. A healthy phase in which
//! the detector finds a stall is therefore started again with a new detector, at most
//! HEALTHY_PHASES times: a detector that fires on healthy load fires in every phase. Once the
//! router drops, the rate is 0 in every sample, whatever the machine's load.

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
/// Healthy phases at most, each of HEALTHY samples judged by a new detector.
const HEALTHY_PHASES: usize = 3;
const KIND: &str = "MPTCP transfers";
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

/// Sets the flag when dropped, also by a panic: the load stops, and the scope that waits for
/// it ends with the panic instead of hanging.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Transfers completed so far, and the moment they were counted.
struct Sampler<'a> {
    done: &'a AtomicU64,
    last: (Instant, u64),
}

impl Sampler<'_> {
    /// A new detector, its start set to now.
    fn start(&mut self) -> stall::Detector {
        let mut detector = stall::Detector::new(stall::FRACTION);
        self.last = (Instant::now(), self.done.load(Ordering::Relaxed));
        detector.sample([(KIND, self.last.1)], Duration::ZERO);
        detector
    }

    /// Waits a sampling period, then gives the count to `detector`; returns a stall if it
    /// found one.
    fn sample(&mut self, detector: &mut stall::Detector, what: &str) -> Option<stall::Slow> {
        // The sampling period: the rate is counted over it.
        thread::sleep(SAMPLE);
        let (count, now) = (self.done.load(Ordering::Relaxed), Instant::now());
        let elapsed = now - self.last.0;
        println!(
            "{what}: {:.1} transfers/s",
            (count - self.last.1) as f64 / elapsed.as_secs_f64()
        );
        self.last = (now, count);
        detector
            .sample([(KIND, count)], elapsed)
            .into_iter()
            .find(stall::Slow::is_stall)
    }
}

#[test]
fn the_stall_detector_fails_mptcp_transfers_whose_packets_stop_arriving() {
    let lab = Lab::new().expect("lab");
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let errors = Mutex::new(Vec::new());
    let mut stall = None;
    thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        let loader = scope.spawn(|| load(&lab, &stop, &done, &errors));
        let mut sampler = Sampler {
            done: &done,
            last: (Instant::now(), 0),
        };
        'healthy: for phase in 1..=HEALTHY_PHASES {
            let mut detector = sampler.start();
            for n in 1..=HEALTHY {
                let what = format!("healthy phase {phase}, sample {n}");
                if let Some(stalled) = sampler.sample(&mut detector, &what) {
                    println!("{what}: the detector found a stall: {stalled}");
                    assert!(
                        phase < HEALTHY_PHASES,
                        "a healthy load was failed in each of {HEALTHY_PHASES} phases: {stalled}"
                    );
                    continue 'healthy;
                }
            }
            lab.router.load_nft(DROP_UPLOADS).expect("nft rules");
            let give_up = Instant::now() + Duration::from_secs(60);
            for n in 1.. {
                if Instant::now() >= give_up {
                    break;
                }
                stall = sampler.sample(&mut detector, &format!("dropping, sample {n}"));
                if stall.is_some() {
                    break;
                }
            }
            break;
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
    assert_eq!(stall.kind, KIND);
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
