//! Devices in the live state (docs/design.md, 'Devices'): `classifier devices` and the
//! `classifier_devices` metric of `classifier run` count the clients of the flows in a list,
//! and a scrape of a full flow table never holds up DNS learning.
//!
//! The flows are made by the kernel program itself: a second instance of it, loaded on the
//! state's pinned maps, runs packets with BPF_PROG_TEST_RUN, so they land in the flow table
//! `run` and the CLI read.

use classifier_testkit as support;

use std::{
    fs::File,
    net::{Ipv4Addr, UdpSocket},
    process::{Child, Command, Stdio},
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use classifier::{
    Classifier, ClassifierMaps, PinDir,
    config_file::ConfigFile,
    control::state::{self, InitialState},
    load::Pinned,
};
use classifier_common::dns::LearnedKey;
use classifier_lab::{self as lab, Lab};
use simple_dns::{CLASS, Name, Packet, Question, ResourceRecord, TYPE, rdata};
use support::{cli::Cli, packet::Segment, wait::wait_until};

const METRICS_PORT: u16 = 9417;
const APPLE_SERVER: &str = "17.253.0.10";
const OTHER_SERVER: &str = "198.51.100.10";

struct Daemon {
    child: Child,
    log: std::path::PathBuf,
}

impl Daemon {
    /// `classifier run` on the router's interfaces, once its metrics answer.
    fn start(lab: &Lab, cli: &Cli) -> Self {
        let log = std::env::temp_dir().join(format!("{}-devices.log", lab.router.name()));
        // The lab's resolver, beyond the uplink, named (docs/design.md, 'DNS learning').
        let config = log.with_extension("toml");
        std::fs::write(
            &config,
            format!(
                "[[dns.trusted_resolvers]]\naddress = \"{OTHER_SERVER}\"\n\
                 interfaces = [\"r2\"]\n[dns.lookup]\nenabled = false\n"
            ),
        )
        .unwrap();
        let child = Command::new(support::cli::binary())
            .env("CLASSIFIER_PIN_DIR", cli.pin_dir())
            .arg("--config")
            .arg(&config)
            .args(["--netns", lab.router.name(), "run", "r0", "r1", "r2"])
            .args(["--metrics", &format!("127.0.0.1:{METRICS_PORT}")])
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let daemon = Self { child, log };
        wait_until(Duration::from_secs(10), "the metrics endpoint", || {
            scrape(lab).is_some()
        });
        daemon
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
        let _ = std::fs::remove_file(self.log.with_extension("toml"));
    }
}

fn scrape(lab: &Lab) -> Option<String> {
    support::metrics::scrape(&lab.router, METRICS_PORT).ok()
}

/// The value of the sample `name{labels}` in a scrape.
fn sample(metrics: &str, name_and_labels: &str) -> Option<u64> {
    metrics.lines().find_map(|line| {
        let value = line.strip_prefix(name_and_labels)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

/// The kernel program on the state's own maps: its test runs fill the live flow table.
fn program_on(cli: &Cli) -> Classifier<Pinned> {
    let initial = InitialState::read(&ConfigFile::default()).expect("the initial state");
    state::load_pinned(&PinDir::new(cli.pin_dir()), &initial).expect("loading on the pinned maps")
}

/// One flow: the client's SYN to port 443 of `server`.
fn open_flow(classifier: &Classifier<Pinned>, client: &str, port: u16, server: &str) {
    let syn = Segment::tcp(client, server, port, 443).syn().build();
    assert_eq!(
        classifier.test_run(&syn).unwrap().verdict,
        support::XDP_PASS
    );
}

#[test]
fn devices_and_their_metric_count_the_clients_of_a_lists_flows() {
    let lab = Lab::new().expect("lab");
    let cli = Cli::new();
    let _daemon = Daemon::start(&lab, &cli);
    let classifier = program_on(&cli);
    // Six phones with three apple downloads each, the first two also with an unlisted flow;
    // two laptops with unlisted flows only.
    for phone in 1..=6 {
        let client = format!("10.20.0.{phone}");
        for port in 0..3 {
            open_flow(&classifier, &client, 50000 + port, APPLE_SERVER);
        }
        if phone <= 2 {
            open_flow(&classifier, &client, 50010, OTHER_SERVER);
        }
    }
    for laptop in 1..=2 {
        open_flow(
            &classifier,
            &format!("10.30.0.{laptop}"),
            50000,
            OTHER_SERVER,
        );
    }

    let metrics = scrape(&lab).expect("a scrape");
    assert_eq!(
        sample(&metrics, r#"classifier_devices{list="apple"}"#),
        Some(6),
        "six phones, not 18 flows, one server or eight devices:\n{metrics}"
    );
    assert_eq!(
        sample(&metrics, "classifier_flow_table_entries"),
        Some(22),
        "the batched read sees every flow"
    );

    let apple = cli
        .run(&["devices", "--list", "apple", "--json", "--interval", "0"])
        .ok()
        .json();
    let devices = apple["devices"].as_array().expect("a devices array");
    assert_eq!(devices.len(), 6, "{apple:#}");
    for device in devices {
        assert!(
            device["address"].as_str().unwrap().starts_with("10.20.0."),
            "a phone, never the server: {device}"
        );
        assert_eq!(device["flows"], 3, "only its apple flows: {device}");
        assert_eq!(device["lists"], serde_json::json!(["apple"]));
        assert_eq!(
            device["mptcp"],
            serde_json::json!({"yes": 0, "attempted": 0, "fallback": 0})
        );
    }
    assert_eq!(apple["total_devices"], 6);
    assert_eq!(apple["flows"], 18);

    let all = cli
        .run(&["devices", "--json", "--interval", "0"])
        .ok()
        .json();
    assert_eq!(all["total_devices"], 8, "{all:#}");
    assert_eq!(all["flows"], 22);
    let first_phone = all["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["address"] == "10.20.0.1")
        .expect("the first phone");
    assert_eq!(first_phone["flows"], 4, "all its flows without --list");

    let top = cli
        .run(&[
            "devices",
            "--list",
            "apple",
            "--top",
            "2",
            "--json",
            "--interval",
            "0",
        ])
        .ok()
        .json();
    assert_eq!(top["devices"].as_array().unwrap().len(), 2);
    assert_eq!(top["total_devices"], 6);

    let rated = cli
        .run(&["devices", "--json", "--interval", "0.2"])
        .ok()
        .json();
    assert!(
        rated["rate_interval_seconds"].as_f64().unwrap() >= 0.2,
        "two reads 0.2 s apart: {}",
        rated["rate_interval_seconds"]
    );

    let text = cli
        .run(&["devices", "--list", "apple", "--interval", "0"])
        .ok()
        .stdout;
    println!("{text}");
    assert!(text.starts_with("DEVICE"), "{text}");
    assert!(
        text.contains("6 of 6 devices shown (18 flows in list apple)"),
        "{text}"
    );

    cli.run(&["devices", "--list", "nosuch"])
        .fails(2, "no list named `nosuch`");
}

/// Answers every A query with its own name and the next address of 198.19.0.0/16, TTL 300.
fn resolver(lab: &Lab, stop: &AtomicBool) {
    let socket = lab
        .server
        .enter(|| UdpSocket::bind((lab::SERVER_OTHER_V4, 53)))
        .unwrap()
        .expect("binding the resolver");
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buffer = [0u8; 1500];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, peer)) = socket.recv_from(&mut buffer) else {
            continue;
        };
        let Ok(query) = Packet::parse(&buffer[..n]) else {
            continue;
        };
        let name = query.questions[0].qname.to_string();
        let mut reply = Packet::new_reply(query.id());
        reply.questions.push(Question::new(
            Name::new_unchecked(&name),
            TYPE::A.into(),
            CLASS::IN.into(),
            false,
        ));
        reply.answers.push(ResourceRecord::new(
            Name::new_unchecked(&name),
            CLASS::IN,
            300,
            rdata::RData::A(rdata::A::from(answer_for(query.id()))),
        ));
        let _ = socket.send_to(&reply.build_bytes_vec().unwrap(), peer);
    }
}

/// The address the lab's resolver answers lookup `id` with: in 198.19.0.0/16, on no lab
/// interface (198.18.1.1 is the router's own, which is never learned).
fn answer_for(id: u16) -> Ipv4Addr {
    Ipv4Addr::new(198, 19, (id >> 8) as u8, id as u8)
}

/// Sets the flag when dropped, also by a panic: the scrape thread stops, and the scope that
/// waits for it ends with the panic instead of hanging.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A lookup of an Apple CDN name from the lab's client, through the router.
fn lookup(lab: &Lab, id: u16) {
    support::dns_client::lookup(lab, &format!("u{id}.cdn-apple.com"), id);
}

fn is_learned(maps: &ClassifierMaps, address: Ipv4Addr) -> bool {
    let mut addr = [0u8; 16];
    addr[..4].copy_from_slice(&address.octets());
    let key = LearnedKey {
        addr,
        list: 0,
        ip_version: 4,
        _pad: [0; 3],
    };
    maps.learned_entry(&key).unwrap().is_some()
}

/// Flows in the table for the scrape test: as many as the benchmark's.
const FULL: u32 = 100_000;
/// Lookups at most; the test ends sooner once `INSIDE` are learned in the middle of a scrape.
const LOOKUPS: u16 = 2_000;
/// Scrapes at most: under a lock none of them would have a learn in its middle, so the bound
/// only stops a test that is failing.
const SCRAPES: usize = 60;
/// Learns required in the middle of a scrape.
const INSIDE: usize = 3;
/// How often the test looks whether a lookup was learned. A sleep between looks, not a spin:
/// a spinning test would take one of this machine's two cores from the run it measures. A
/// learn is then seen up to a poll (and a wake-up) late, which can only keep it out of a
/// scrape's middle, never put it in.
const POLL: Duration = Duration::from_micros(200);

/// Whether a lookup `sent` and learned at `learned` lies in the middle of one of `scrapes`:
/// sent after its first quarter, learned before its last. A scrape that held a lock learning
/// needs would hold it from its first milliseconds until it writes its answer, and the
/// client reads that answer within milliseconds: a lookup sent after a quarter of the scrape
/// would be learned only in its last moments, well after three quarters (made to take the
/// writer lock while it encodes, the metrics let no learn into the middle of any of 67 scrapes).
fn in_the_middle(scrapes: &[(Instant, Instant)], sent: Instant, learned: Instant) -> bool {
    scrapes.iter().any(|(start, end)| {
        let length = *end - *start;
        *start + length / 4 < sent && learned < *start + length * 3 / 4
    })
}

/// Learns that land in the middle of a scrape of the full table show that learning does not
/// wait for scrapes. Scrapes run back to back in one thread and lookups back to back in
/// another, each learned in a millisecond or so (tens on a busy machine; a scrape takes
/// hundreds), so many fall in the middle of a scrape; were learning held up by a scrape (a
/// lock the scrape holds while it reads the table, as the writer lock taken in the metrics'
/// `encode` would be), each lookup sent during a scrape would be learned as the scrape ends,
/// and none in its middle. The count of scrapes and lookups, not a time, bounds the test.
#[test]
fn learning_goes_on_while_a_scrape_reads_a_full_flow_table() {
    let lab = Lab::new().expect("lab");
    let cli = Cli::new();
    let _daemon = Daemon::start(&lab, &cli);
    let classifier = program_on(&cli);
    for i in 0..FULL {
        let client = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 64, 0, 0)) + i / 100);
        open_flow(
            &classifier,
            &client.to_string(),
            1024 + (i % 100) as u16,
            APPLE_SERVER,
        );
    }
    let maps = ClassifierMaps::open_pinned(&PinDir::new(cli.pin_dir())).unwrap();
    let entries = maps.flow_count();
    assert_eq!(
        entries, FULL as usize,
        "the batched read, dozens of calls, sees each flow once"
    );

    let stop = AtomicBool::new(false);
    let scrapes: Mutex<Vec<(Instant, Instant)>> = Mutex::new(Vec::new());
    let mut lookups: Vec<(Instant, Instant)> = Vec::new();
    std::thread::scope(|scope| {
        scope.spawn(|| resolver(&lab, &stop));
        scope.spawn(|| {
            lab.router
                .enter(|| {
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        let metrics =
                            support::metrics::scrape_here(METRICS_PORT).expect("a scrape");
                        let ended = Instant::now();
                        assert!(
                            sample(&metrics, r#"classifier_devices{list="apple"}"#)
                                == Some(u64::from(FULL / 100)),
                            "every client of the full table: {metrics}"
                        );
                        scrapes.lock().unwrap().push((started, ended));
                    }
                })
                .unwrap();
        });
        let _stop = StopOnDrop(&stop);
        wait_until(Duration::from_secs(30), "a first scrape", || {
            !scrapes.lock().unwrap().is_empty()
        });
        for id in 1..=LOOKUPS {
            let sent = Instant::now();
            lookup(&lab, id);
            let address = answer_for(id);
            let deadline = sent + Duration::from_secs(10);
            while !is_learned(&maps, address) {
                assert!(Instant::now() < deadline, "{address} never learned");
                std::thread::sleep(POLL);
            }
            lookups.push((sent, Instant::now()));
            let scrapes = scrapes.lock().unwrap();
            let inside = lookups
                .iter()
                .filter(|(sent, learned)| in_the_middle(&scrapes, *sent, *learned))
                .count();
            if inside >= INSIDE || scrapes.len() >= SCRAPES {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    let scrapes = scrapes.into_inner().unwrap();
    let longest = scrapes.iter().map(|(s, e)| *e - *s).max().unwrap();
    let inside: Vec<Duration> = lookups
        .iter()
        .filter(|(sent, learned)| in_the_middle(&scrapes, *sent, *learned))
        .map(|(sent, learned)| *learned - *sent)
        .collect();
    println!(
        "{} scrapes of {entries} flows, the longest {longest:?}; of {} lookups, {} learned in \
         the middle of a scrape, the slowest after {:?}",
        scrapes.len(),
        lookups.len(),
        inside.len(),
        inside.iter().max()
    );
    assert!(
        inside.len() >= INSIDE,
        "of {} lookups, {} were learned in the middle of a scrape (scrapes: {}, the longest \
         {longest:?})",
        lookups.len(),
        inside.len(),
        scrapes.len()
    );
}
