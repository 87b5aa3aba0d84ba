//! `classifier run` in the lab learns only from sources it trusts (docs/design.md, 'DNS
//! learning'): a resolver the operator named, by its answers arriving on its interface (r2)
//! to a query the router saw, and the router's own lookups. Never from an asker: a LAN host
//! that asks its own resolver, or pairs a query with a forged answer, teaches nothing, and each
//! refusal is counted by reason. Learned addresses live between the minimum and maximum TTL,
//! a list stops at its cap, `prefixes forget` and `clear` take records and prefixes together,
//! and behind NAT both the router's lookups and a named upstream resolver teach.
//!
//! Forged and replayed answers are crafted UDP datagrams sent from a raw socket inside the
//! test's own namespaces.

use classifier_testkit as support;

use std::{
    fs::File,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, UdpSocket},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use classifier_lab::{self as lab, Lab};
use simple_dns::{CLASS, Name, Packet, Question, ResourceRecord, TYPE, rdata::RData};
use support::cli::Cli;

const CDN: &str = "198.18.77.77";
const CDN_V6: &str = "2001:db8:77::77";
/// What the forged and replayed answers try to teach.
const FORGED: &str = "203.0.113.99";
const REPLAYED: &str = "198.18.77.79";
const SHORT_LIVED: &str = "198.18.77.80";
/// What a LAN host's own resolver answers for Apple's update host: another service.
const VICTIM: &str = "198.18.50.50";
/// Asked only by the client, so that only a passing answer can teach it.
const PASSIVE_ONLY: &str = "198.18.77.90";
/// Answered with a TTL of a day.
const LONG_LIVED: &str = "198.18.77.91";
const METRICS_PORT: u16 = 9417;
const DEADLINE: Duration = Duration::from_secs(10);

/// The lab's resolver: the answers it gives, by question.
fn records(name: &str, qtype: TYPE) -> Vec<(RData<'static>, u32)> {
    let a = |addr: &str| RData::A(addr.parse::<Ipv4Addr>().unwrap().into());
    match (name, qtype) {
        // TTL 600: far above the minimum, so the expiry shows which one counted.
        ("updates.cdn-apple.com", TYPE::A) => vec![(a(CDN), 600)],
        ("updates.cdn-apple.com", TYPE::AAAA) => {
            vec![(RData::AAAA(CDN_V6.parse::<Ipv6Addr>().unwrap().into()), 600)]
        }
        // TTL 1: lives for the minimum only.
        ("swdist.apple.com", TYPE::A) => vec![(a(SHORT_LIVED), 1)],
        ("swcdn.apple.com", TYPE::A) => vec![(a("198.18.77.81"), 600), (a("198.18.77.82"), 600)],
        ("passive.apple.com", TYPE::A) => vec![(a(PASSIVE_ONLY), 600)],
        ("long.apple.com", TYPE::A) => vec![(a(LONG_LIVED), 86_400)],
        _ => Vec::new(),
    }
}

/// A query when `answers` is empty, else a response carrying them.
fn message(id: u16, name: &str, qtype: TYPE, answers: &[(RData<'static>, u32)]) -> Vec<u8> {
    if answers.is_empty() {
        lab::dns::query(id, name, qtype)
    } else {
        reply(id, name, qtype, answers)
    }
}

fn reply(id: u16, name: &str, qtype: TYPE, answers: &[(RData<'static>, u32)]) -> Vec<u8> {
    let mut packet = Packet::new_reply(id);
    packet.questions.push(Question::new(
        Name::new_unchecked(name),
        qtype.into(),
        CLASS::IN.into(),
        false,
    ));
    for (rdata, ttl) in answers {
        packet.answers.push(ResourceRecord::new(
            Name::new_unchecked(name),
            CLASS::IN,
            *ttl,
            rdata.clone(),
        ));
    }
    packet.build_bytes_vec().unwrap()
}

/// Answers on the resolver's IPv4 and IPv6 addresses until dropped.
struct Resolver {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Resolver {
    /// The campus's resolver, beyond the uplink: answers from `records`.
    fn start(lab: &Lab) -> Self {
        Self::answering(lab, &[lab::SERVER_OTHER_V4, lab::SERVER_OTHER_V6], records)
    }

    /// A resolver on `addresses` (the server's namespace) that answers with `answers`.
    fn answering(
        lab: &Lab,
        addresses: &[&str],
        answers: fn(&str, TYPE) -> Vec<(RData<'static>, u32)>,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = addresses
            .iter()
            .map(|address| {
                let address: IpAddr = address.parse().unwrap();
                let socket = lab
                    .server
                    .enter(|| UdpSocket::bind((address, 53)))
                    .unwrap()
                    .expect("binding the resolver");
                socket
                    .set_read_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut buffer = [0u8; 1500];
                    while !stop.load(Ordering::Relaxed) {
                        let Ok((n, peer)) = socket.recv_from(&mut buffer) else {
                            continue;
                        };
                        let Ok(query) = Packet::parse(&buffer[..n]) else {
                            continue;
                        };
                        let Some(question) = query.questions.first() else {
                            continue;
                        };
                        let name = question.qname.to_string();
                        let qtype = match u16::from(question.qtype) {
                            28 => TYPE::AAAA,
                            _ => TYPE::A,
                        };
                        let answers = answers(&name, qtype);
                        let reply = reply(query.id(), &name, qtype, &answers);
                        let _ = socket.send_to(&reply, peer);
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A lookup from the client through the router: the client's socket address and the answer.
fn lookup(lab: &Lab, id: u16, name: &str, qtype: TYPE, v6: bool) -> (SocketAddr, Vec<u8>) {
    let resolver = if v6 {
        lab::SERVER_OTHER_V6
    } else {
        lab::SERVER_OTHER_V4
    };
    lookup_through(lab, resolver.parse().unwrap(), id, name, qtype)
}

/// A lookup from the client through the router, asking `resolver`.
fn lookup_through(
    lab: &Lab,
    resolver: IpAddr,
    id: u16,
    name: &str,
    qtype: TYPE,
) -> (SocketAddr, Vec<u8>) {
    let client: IpAddr = if resolver.is_ipv6() {
        lab::CLIENT_V6.parse().unwrap()
    } else {
        lab::CLIENT_V4.parse().unwrap()
    };
    let socket = lab
        .client
        .enter(|| UdpSocket::bind((client, 0)))
        .unwrap()
        .unwrap();
    socket.set_read_timeout(Some(DEADLINE)).unwrap();
    socket
        .send_to(&message(id, name, qtype, &[]), (resolver, 53))
        .unwrap();
    let mut buffer = [0u8; 1500];
    let (n, _) = socket.recv_from(&mut buffer).expect("an answer");
    (socket.local_addr().unwrap(), buffer[..n].to_vec())
}

/// Sends a UDP datagram with any source address, from a raw socket in `netns`.
fn send_spoofed(netns: &lab::Netns, from: SocketAddrV4, to: SocketAddrV4, payload: &[u8]) {
    let mut packet = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0];
    packet.extend_from_slice(&from.ip().octets());
    packet.extend_from_slice(&to.ip().octets());
    packet.extend_from_slice(&from.port().to_be_bytes());
    packet.extend_from_slice(&to.port().to_be_bytes());
    packet.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
    packet.extend_from_slice(&[0, 0]); // no UDP checksum (allowed in IPv4)
    packet.extend_from_slice(payload);
    let sent = netns
        .enter(|| {
            // SAFETY: plain socket calls on a socket this closure owns and closes; the
            // address is a valid sockaddr_in. IPPROTO_RAW implies IP_HDRINCL: the kernel
            // fills in the total length and the checksum.
            unsafe {
                let fd = libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW);
                assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
                let address = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: 0,
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(to.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                let sent = libc::sendto(
                    fd,
                    packet.as_ptr().cast(),
                    packet.len(),
                    0,
                    (&address as *const libc::sockaddr_in).cast(),
                    size_of::<libc::sockaddr_in>() as libc::socklen_t,
                );
                libc::close(fd);
                sent
            }
        })
        .unwrap();
    assert_eq!(sent, packet.len() as isize, "sending a crafted datagram");
}

/// Sends a UDP datagram with any addresses as an Ethernet frame out of the client's c0, to
/// the router's r0: what a LAN host does to put a forged answer "to itself" on the wire.
fn send_spoofed_frame(lab: &Lab, from: SocketAddrV4, to: SocketAddrV4, payload: &[u8]) {
    let mac = |ns: &lab::Netns, dev: &str| -> [u8; 6] {
        let text = ns.mac(dev).unwrap();
        let bytes: Vec<u8> = text
            .split(':')
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect();
        bytes.try_into().unwrap()
    };
    let (router, client) = (mac(&lab.router, "r0"), mac(&lab.client, "c0"));
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0]);
    ip.extend_from_slice(&from.ip().octets());
    ip.extend_from_slice(&to.ip().octets());
    let sum = ip
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    let checksum = !(((sum & 0xffff) + (sum >> 16)) as u16);
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    let mut frame = router.to_vec();
    frame.extend_from_slice(&client);
    frame.extend_from_slice(&[0x08, 0x00]);
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(&from.port().to_be_bytes());
    frame.extend_from_slice(&to.port().to_be_bytes());
    frame.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(payload);
    let sent = lab
        .client
        .enter(|| {
            // SAFETY: plain socket calls on a socket this closure owns and closes; the
            // address is a valid sockaddr_ll naming c0 by its index.
            unsafe {
                let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
                assert!(
                    fd >= 0,
                    "packet socket: {}",
                    std::io::Error::last_os_error()
                );
                let mut address: libc::sockaddr_ll = std::mem::zeroed();
                address.sll_family = libc::AF_PACKET as u16;
                address.sll_ifindex = libc::if_nametoindex(c"c0".as_ptr()) as i32;
                address.sll_halen = 6;
                address.sll_addr[..6].copy_from_slice(&router);
                let sent = libc::sendto(
                    fd,
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    (&address as *const libc::sockaddr_ll).cast(),
                    size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                );
                libc::close(fd);
                sent
            }
        })
        .unwrap();
    assert_eq!(sent, frame.len() as isize, "sending a crafted frame");
}

struct Daemon {
    child: Child,
    log: std::path::PathBuf,
}

impl Daemon {
    /// `classifier run` on the router's interfaces, once its metrics answer (learning is on
    /// by then).
    fn start(lab: &Lab, cli: &Cli, config: &std::path::Path, keep_attached: bool) -> Self {
        let log = config.with_extension("log");
        let mut command = Command::new(support::cli::binary());
        command
            .env("CLASSIFIER_PIN_DIR", cli.pin_dir())
            .env("RUST_LOG", "debug")
            .arg("--config")
            .arg(config)
            .args(["--netns", lab.router.name(), "run", "r0", "r1", "r2"])
            .args(["--metrics", &format!("127.0.0.1:{METRICS_PORT}")])
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap());
        if keep_attached {
            command.arg("--keep-attached");
        }
        let daemon = Self {
            child: command.spawn().unwrap(),
            log,
        };
        wait_for("the metrics endpoint", || scrape(lab).is_some(), &daemon);
        daemon
    }

    /// SIGTERM, and the exit status.
    fn stop(mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        assert!(status.success(), "run exited with {status}: {}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn wait_for(what: &str, mut condition: impl FnMut() -> bool, daemon: &Daemon) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < DEADLINE,
            "{what}: not within {DEADLINE:?}; run's log:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn scrape(lab: &Lab) -> Option<String> {
    support::metrics::scrape(&lab.router, METRICS_PORT).ok()
}

/// Refused answers by reason, as `classifier stats --json` reports them.
fn refused(cli: &Cli, reason: &str) -> u64 {
    let stats = cli.run(&["stats", "--json"]).ok().json();
    stats["dns"]["refused"][reason]["packets"]
        .as_u64()
        .unwrap_or_else(|| panic!("no dns.refused.{reason} in {stats}"))
}

/// Learned addresses (host prefixes) with their expiry, Unix seconds.
fn learned(cli: &Cli) -> Vec<(String, u64)> {
    let rows = cli.run(&["prefixes", "list", "--json"]).ok().json();
    rows.as_array()
        .unwrap()
        .iter()
        .filter_map(|row| {
            let expires = row["learned"][0]["expires_at"].as_str()?;
            let expires = humantime::parse_rfc3339(expires).unwrap();
            let expires = expires.duration_since(UNIX_EPOCH).unwrap().as_secs();
            Some((row["prefix"].as_str().unwrap().to_owned(), expires))
        })
        .collect()
}

fn expiry_of(cli: &Cli, address: &str) -> Option<u64> {
    let prefix = if address.contains(':') {
        format!("{address}/128")
    } else {
        format!("{address}/32")
    };
    learned(cli)
        .into_iter()
        .find(|(p, _)| *p == prefix)
        .map(|(_, expires)| expires)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn v4(address: &str, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(address.parse().unwrap(), port)
}

fn write_config(lab: &Lab, name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("{}-{name}.toml", lab.router.name()));
    std::fs::write(&path, text).unwrap();
    path
}

/// The campus resolver (the lab's, beyond the uplink on r2), named as an operator would;
/// the router's own lookups off unless a test turns them on.
fn trusted_config(extra: &str) -> String {
    format!(
        "{extra}\n[[dns.trusted_resolvers]]\naddress = \"{}\"\ninterfaces = [\"r2\"]\n\
         [[dns.trusted_resolvers]]\naddress = \"{}\"\ninterfaces = [\"r2\"]\n",
        lab::SERVER_OTHER_V4,
        lab::SERVER_OTHER_V6
    )
}

const NO_LOOKUPS: &str = "[dns.lookup]\nenabled = false\n";

/// Learned rows of `prefixes list`: (prefix, list, source, resolver).
fn provenance(cli: &Cli) -> Vec<(String, String, String, String)> {
    let rows = cli.run(&["prefixes", "list", "--json"]).ok().json();
    let mut found = Vec::new();
    for row in rows.as_array().unwrap() {
        for learned in row["learned"].as_array().unwrap() {
            let text = |key: &str| learned[key].as_str().unwrap().to_owned();
            found.push((
                row["prefix"].as_str().unwrap().to_owned(),
                text("list"),
                text("source"),
                text("resolver"),
            ));
        }
    }
    found
}

/// The count per list always equals its records: every learned bit in the tries has its
/// record and every record its bit (`prefixes list`), and the metric counts the records.
fn assert_counts_match_records(lab: &Lab, cli: &Cli, what: &str) {
    let rows = cli.run(&["prefixes", "list", "--json"]).ok().json();
    let mut records = 0;
    for row in rows.as_array().unwrap() {
        let mut bits: Vec<&str> = row["learned_lists"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        let mut lists: Vec<&str> = row["learned"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["list"].as_str().unwrap())
            .collect();
        bits.sort_unstable();
        lists.sort_unstable();
        assert_eq!(bits, lists, "{what}: tries and records disagree on {row}");
        records += lists.iter().filter(|l| **l == "apple").count();
    }
    let metrics = scrape(lab).expect("metrics");
    let line = format!("classifier_learned_prefixes{{list=\"apple\"}} {records}");
    assert!(metrics.contains(&line), "{what}: no `{line}` in\n{metrics}");
}

/// Restarts at most this many times for a restart that beats the short-lived address's
/// minimum TTL.
const RESTARTS: u16 = 3;

/// Has `daemon` learn the short-lived address, then stops it and starts another run, which
/// finds the address still there: only that run can then expire it. The address lives the
/// minimum TTL, 5 s, from its learning; a restart that takes longer (a busy machine: each CLI
/// call and the new run's attach take their time) finds it expired already, by the run before
/// or at its own start, which cannot be told apart and proves nothing: the address is learned
/// and the run restarted again, at most RESTARTS times. A run that does not adopt fails the
/// wait for the expiry that follows, however many restarts it took (made not to adopt: the
/// address was still there after 10 s).
fn restart_with_short_lived_learned(
    lab: &Lab,
    cli: &Cli,
    config: &std::path::Path,
    mut daemon: Daemon,
) -> Daemon {
    for attempt in 1..=RESTARTS {
        lookup(lab, 0x5555 + attempt, "swdist.apple.com", TYPE::A, false);
        wait_for(
            "the short-lived answer learned",
            || expiry_of(cli, SHORT_LIVED).is_some(),
            &daemon,
        );
        let learned = Instant::now();
        assert_counts_match_records(lab, cli, "after learning");
        daemon.stop();
        daemon = Daemon::start(lab, cli, config, false);
        let adoptable = expiry_of(cli, SHORT_LIVED).is_some();
        println!(
            "restart {attempt}: done {:.1} s after the short-lived address was seen learned, \
             which was {}",
            learned.elapsed().as_secs_f64(),
            if adoptable { "still there" } else { "gone" }
        );
        if adoptable {
            return daemon;
        }
    }
    panic!("the short-lived address expired before each of {RESTARTS} restarts was done");
}

/// A forged answer from the LAN, the resolver's address spoofed, teaches nothing; nor does
/// one paired with a real query (the self-made pair); a real lookup through the router
/// teaches for its TTL, bounded by `max_ttl`; a replay teaches nothing; a restarted `run`
/// adopts what the earlier one learned.
#[test]
fn only_a_named_resolver_on_its_interface_teaches() {
    let lab = Lab::new().expect("lab");
    let cli = Cli::new();
    // A minimum of 5 s: the short-lived address outlives the restart below.
    let config = write_config(
        &lab,
        "forgery",
        &trusted_config(&format!(
            "dns_min_ttl = 5\n[dns]\nmax_ttl = 900\n{NO_LOOKUPS}"
        )),
    );
    let daemon = Daemon::start(&lab, &cli, &config, true);

    // (a) A forged answer from the LAN, the named resolver's address spoofed, no query.
    let forged = message(
        7,
        "updates.cdn-apple.com",
        TYPE::A,
        &[(RData::A(FORGED.parse::<Ipv4Addr>().unwrap().into()), 3600)],
    );
    send_spoofed_frame(
        &lab,
        v4(lab::SERVER_OTHER_V4, 53),
        v4(lab::CLIENT_V4, 40000),
        &forged,
    );
    wait_for(
        "the forged answer counted untrusted",
        || refused(&cli, "untrusted") == 1,
        &daemon,
    );
    // (b) The self-made pair: a real query to the named resolver, then the forged answer
    // "from" it to the asker, from the LAN. Both match in every field; the answer arrives on
    // the LAN's interface, where no resolver's answers arrive.
    let socket = lab
        .client
        .enter(|| UdpSocket::bind((lab::CLIENT_V4, 40001)))
        .unwrap()
        .unwrap();
    socket
        .send_to(
            &message(7, "updates.cdn-apple.com", TYPE::A, &[]),
            (lab::SERVER_OTHER_V4, 53),
        )
        .unwrap();
    send_spoofed_frame(
        &lab,
        v4(lab::SERVER_OTHER_V4, 53),
        v4(lab::CLIENT_V4, 40001),
        &forged,
    );
    wait_for(
        "the self-made pair counted untrusted",
        || refused(&cli, "untrusted") == 2,
        &daemon,
    );
    assert_eq!(expiry_of(&cli, FORGED), None, "a forged answer taught");

    // (c) A real lookup through the router teaches, for its TTL of 600 s, not the minimum.
    let _resolver = Resolver::start(&lab);
    let before = now();
    let (client, answer) = lookup(&lab, 0x4242, "updates.cdn-apple.com", TYPE::A, false);
    wait_for(
        "the real answer learned",
        || expiry_of(&cli, CDN).is_some(),
        &daemon,
    );
    let cdn_expires = expiry_of(&cli, CDN).unwrap();
    assert!(
        (before + 600..=now() + 600).contains(&cdn_expires),
        "expires at {cdn_expires}, the lookup was at {before}: the TTL of 600 s was not honoured"
    );
    assert!(
        provenance(&cli).contains(&(
            format!("{CDN}/32"),
            "apple".to_owned(),
            "answer".to_owned(),
            lab::SERVER_OTHER_V4.to_owned()
        )),
        "{:?}",
        provenance(&cli)
    );

    // (d) A TTL of a day lives `max_ttl` (900 s) at most.
    let before = now();
    lookup(&lab, 0x4343, "long.apple.com", TYPE::A, false);
    wait_for(
        "the long-lived answer learned",
        || expiry_of(&cli, LONG_LIVED).is_some(),
        &daemon,
    );
    let expires = expiry_of(&cli, LONG_LIVED).unwrap();
    assert!(
        (before + 900..=now() + 900).contains(&expires),
        "expires at {expires}, the lookup was at {before}: max_ttl = 900 was not applied"
    );

    // (e) The same answer again, from the WAN side as the original came: unmatched, as its
    // query is used up; a copy that carries another address teaches nothing either.
    let SocketAddr::V4(client) = client else {
        unreachable!()
    };
    send_spoofed(&lab.server, v4(lab::SERVER_OTHER_V4, 53), client, &answer);
    wait_for(
        "the replayed answer counted unmatched",
        || refused(&cli, "unmatched") == 1,
        &daemon,
    );
    let replayed = message(
        0x4242,
        "updates.cdn-apple.com",
        TYPE::A,
        &[(RData::A(REPLAYED.parse::<Ipv4Addr>().unwrap().into()), 3600)],
    );
    send_spoofed(&lab.server, v4(lab::SERVER_OTHER_V4, 53), client, &replayed);
    wait_for(
        "the altered replay counted unmatched",
        || refused(&cli, "unmatched") == 2,
        &daemon,
    );
    assert_eq!(expiry_of(&cli, REPLAYED), None, "a replayed answer taught");
    assert_eq!(expiry_of(&cli, CDN), Some(cdn_expires), "a replay renewed");

    // (f) AAAA, asked over IPv6.
    lookup(&lab, 0x6666, "updates.cdn-apple.com", TYPE::AAAA, true);
    wait_for(
        "the AAAA answer learned",
        || expiry_of(&cli, CDN_V6).is_some(),
        &daemon,
    );

    // (g) A restarted run adopts what the earlier one learned: it expires the short-lived
    // address on time (an entry nobody adopted would stay for ever), keeps the others, and
    // adds to the refused counts rather than starting again.
    let daemon = restart_with_short_lived_learned(&lab, &cli, &config, daemon);
    assert_counts_match_records(&lab, &cli, "after a restart that adopts");
    wait_for(
        "the adopted short-lived address expired",
        || expiry_of(&cli, SHORT_LIVED).is_none(),
        &daemon,
    );
    assert_counts_match_records(&lab, &cli, "after expiry");
    assert!(expiry_of(&cli, CDN).is_some() && expiry_of(&cli, CDN_V6).is_some());
    send_spoofed_frame(
        &lab,
        v4(lab::SERVER_OTHER_V4, 53),
        v4(lab::CLIENT_V4, 40002),
        &forged,
    );
    wait_for(
        "the count carried over the restart",
        || refused(&cli, "untrusted") == 3,
        &daemon,
    );

    // The counts are a metric too, and in the human `stats`.
    let metrics = scrape(&lab).expect("metrics");
    assert!(
        metrics.contains("classifier_dns_refused_answers_total{reason=\"untrusted\"} 3"),
        "{metrics}"
    );
    let human = cli.run(&["stats"]).ok().stdout;
    assert!(human.contains("dns refused untrusted"), "{human}");
    daemon.stop();
    let _ = std::fs::remove_file(config);
}

/// What a LAN host's own resolver says of Apple's update host: another service's address.
fn attacker_records(name: &str, qtype: TYPE) -> Vec<(RData<'static>, u32)> {
    match (name, qtype) {
        ("appldnld.apple.com", TYPE::A) => {
            vec![(RData::A(VICTIM.parse::<Ipv4Addr>().unwrap().into()), 86_400)]
        }
        _ => Vec::new(),
    }
}

/// The own-resolver attack: a LAN host asks a DNS server it runs out on the internet (the
/// server's own address, beyond r2, so the answer arrives on the right interface) for
/// Apple's update host and gets another service's address with a day-long TTL. The query is
/// real and the answer matches it; it still teaches nothing, as that server is not named.
#[test]
fn a_lan_host_s_own_resolver_teaches_nothing() {
    let lab = Lab::new().expect("lab");
    let cli = Cli::new();
    let config = write_config(&lab, "own", &trusted_config(NO_LOOKUPS));
    let daemon = Daemon::start(&lab, &cli, &config, false);
    let own_resolver = "203.0.113.10";
    let _attacker = Resolver::answering(&lab, &[own_resolver], attacker_records);
    let (_, answer) = lookup_through(
        &lab,
        own_resolver.parse().unwrap(),
        0x0bad,
        "appldnld.apple.com",
        TYPE::A,
    );
    assert!(
        !Packet::parse(&answer).unwrap().answers.is_empty(),
        "the attacker's resolver answered nothing: the test proves nothing"
    );
    wait_for(
        "the answer counted untrusted",
        || refused(&cli, "untrusted") == 1,
        &daemon,
    );
    assert_eq!(
        expiry_of(&cli, VICTIM),
        None,
        "the attacker's answer taught"
    );
    daemon.stop();
    let _ = std::fs::remove_file(config);
}

/// A list at its cap learns no new address: of an answer with two, the first is learned, the
/// second refused and the answer counted `over_cap`.
#[test]
fn a_full_list_refuses_new_addresses() {
    let lab = Lab::new().expect("lab");
    let cli = Cli::new();
    let config = write_config(
        &lab,
        "cap",
        &trusted_config(&format!("[dns]\nmax_learned_per_list = 1\n{NO_LOOKUPS}")),
    );
    let daemon = Daemon::start(&lab, &cli, &config, false);
    let _resolver = Resolver::start(&lab);
    lookup(&lab, 0x0c0c, "swcdn.apple.com", TYPE::A, false);
    wait_for(
        "the answer counted over the cap",
        || refused(&cli, "over_cap") == 1,
        &daemon,
    );
    assert!(expiry_of(&cli, "198.18.77.81").is_some());
    assert_eq!(
        expiry_of(&cli, "198.18.77.82"),
        None,
        "learned past the cap"
    );
    // Forgetting frees room: the cap counts the records (again at most once a second), not a
    // tally that drifts. Asked again until an address is back.
    cli.run(&["prefixes", "forget", "198.18.77.81"]).ok();
    let mut id = 0x0c0d;
    wait_for(
        "an address learned again after the forget",
        || {
            id += 1;
            lookup(&lab, id, "swcdn.apple.com", TYPE::A, false);
            expiry_of(&cli, "198.18.77.81").is_some() || expiry_of(&cli, "198.18.77.82").is_some()
        },
        &daemon,
    );
    daemon.stop();
    let _ = std::fs::remove_file(config);
}

/// `prefixes forget` by address, and `prefixes clear`, take the records and the prefixes
/// together: nothing comes back from a leftover record, and the count stays the records'.
#[test]
fn forget_and_clear_take_records_and_prefixes_together() {
    let lab = Lab::new().expect("lab");
    let cli = Cli::new();
    let config = write_config(&lab, "forget", &trusted_config(NO_LOOKUPS));
    let daemon = Daemon::start(&lab, &cli, &config, false);
    let _resolver = Resolver::start(&lab);
    lookup(&lab, 0x0f01, "swcdn.apple.com", TYPE::A, false);
    lookup(&lab, 0x0f02, "updates.cdn-apple.com", TYPE::A, false);
    wait_for(
        "three addresses learned",
        || provenance(&cli).len() == 3,
        &daemon,
    );
    assert_counts_match_records(&lab, &cli, "after learning");

    let forgotten = cli
        .run(&["prefixes", "forget", "198.18.77.81", "--json"])
        .ok()
        .json();
    assert_eq!(forgotten, serde_json::json!({"forgotten": {"apple": 1}}));
    assert_eq!(expiry_of(&cli, "198.18.77.81"), None);
    assert_counts_match_records(&lab, &cli, "after forget");
    // `remove` is for what was added by hand, and says where to go for the rest.
    cli.run(&["prefixes", "remove", "198.18.77.82"])
        .fails(2, "prefixes forget 198.18.77.82/32");

    let cleared = cli
        .run(&["prefixes", "clear", "--list", "apple", "--json"])
        .ok()
        .json();
    assert_eq!(cleared["forgotten"], 2, "{cleared}");
    assert!(provenance(&cli).is_empty(), "{:?}", provenance(&cli));
    assert_counts_match_records(&lab, &cli, "after clear");
    let human = cli.run(&["prefixes", "forget", "--all"]).ok().stdout;
    assert!(human.contains("nothing forgotten"), "{human}");
    daemon.stop();
    let _ = std::fs::remove_file(config);
}

/// Two learning lists whose caps together exceed the shared table: `run` refuses the config
/// at start (exit 2), with what to write, and attaches nothing.
#[test]
fn caps_that_cannot_fit_the_shared_table_are_refused_at_start() {
    let lab = Lab::new().expect("lab");
    let cli = Cli::new();
    let config = write_config(
        &lab,
        "two",
        "[dns]\nmax_learned_per_list = 65536\n[[lists]]\nname = \"cdn\"\n\
         domains = [\"cdn.example.net\"]\n",
    );
    let out = Command::new(support::cli::binary())
        .env("CLASSIFIER_PIN_DIR", cli.pin_dir())
        .arg("--config")
        .arg(&config)
        .args(["--netns", lab.router.name(), "run", "r0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("2 learning lists") && stderr.contains("32768 at most"),
        "{stderr}"
    );
    assert!(!lab.router.has_xdp("r0").unwrap(), "attached anyway");
    let _ = std::fs::remove_file(config);
}

/// Behind NAT: the router masquerades the LAN on r2. The router's own lookups teach with no
/// client asking, and a client's lookup through the named upstream resolver teaches too: the
/// query is seen from the private address, the answer to the public one.
#[test]
fn behind_nat_lookups_and_a_named_upstream_teach() {
    let lab = Lab::new().expect("lab");
    lab.router
        .load_nft(
            "table ip clab_nat {\n chain postrouting {\n  type nat hook postrouting priority \
             srcnat; policy accept;\n  oifname \"r2\" ip saddr 192.0.2.0/24 masquerade\n }\n}\n",
        )
        .expect("masquerade");
    let cli = Cli::new();
    let _resolver = Resolver::start(&lab);
    let config = write_config(
        &lab,
        "nat",
        &trusted_config(&format!(
            "[dns.lookup]\nresolver = \"{}\"\n",
            lab::SERVER_OTHER_V4
        )),
    );
    let daemon = Daemon::start(&lab, &cli, &config, false);
    // Active: updates.cdn-apple.com is one of the shipped update hosts.
    wait_for(
        "the router's own lookup learned",
        || expiry_of(&cli, CDN).is_some(),
        &daemon,
    );
    assert!(
        provenance(&cli).contains(&(
            format!("{CDN}/32"),
            "apple".to_owned(),
            "lookup".to_owned(),
            lab::SERVER_OTHER_V4.to_owned()
        )),
        "{:?}",
        provenance(&cli)
    );
    // Passive, through NAT: a name no shipped host leads to.
    lookup(&lab, 0x0a0a, "passive.apple.com", TYPE::A, false);
    wait_for(
        "the answer through NAT learned",
        || expiry_of(&cli, PASSIVE_ONLY).is_some(),
        &daemon,
    );
    assert_eq!(
        refused(&cli, "unmatched"),
        0,
        "own lookups' answers counted"
    );
    assert_eq!(refused(&cli, "lookup_failed"), 0);
    daemon.stop();
    let _ = std::fs::remove_file(config);
}
