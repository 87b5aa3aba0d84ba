//! `classifier run` in the lab learns only from DNS answers that match a query it saw (see
//! docs/design.md, 'DNS learning'): a forged answer sent from the LAN with the resolver's
//! address teaches nothing and is counted; a real lookup teaches, in IPv4 and IPv6, for its
//! TTL; a replay of its answer teaches nothing more; a restarted `run` adopts what was learned;
//! a trusted resolver teaches without a query, on its own interface only; a full list refuses.
//!
//! Forged and replayed answers are crafted UDP datagrams sent from a raw socket inside the
//! test's own namespaces.

mod support;

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
        _ => Vec::new(),
    }
}

fn message(id: u16, name: &str, qtype: TYPE, answers: &[(RData<'static>, u32)]) -> Vec<u8> {
    let mut packet = if answers.is_empty() {
        Packet::new_query(id)
    } else {
        Packet::new_reply(id)
    };
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
    fn start(lab: &Lab) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = [lab::SERVER_OTHER_V4, lab::SERVER_OTHER_V6]
            .into_iter()
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
                        let reply = message(query.id(), &name, qtype, &records(&name, qtype));
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
    let (client, resolver): (IpAddr, IpAddr) = if v6 {
        (
            lab::CLIENT_V6.parse().unwrap(),
            lab::SERVER_OTHER_V6.parse().unwrap(),
        )
    } else {
        (
            lab::CLIENT_V4.parse().unwrap(),
            lab::SERVER_OTHER_V4.parse().unwrap(),
        )
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

struct Daemon {
    child: Child,
    log: std::path::PathBuf,
}

impl Daemon {
    /// `classifier run` on the router's interfaces, once its metrics answer (learning is on
    /// by then).
    fn start(lab: &Lab, cli: &Cli, config: &std::path::Path, keep_attached: bool) -> Self {
        let log = config.with_extension("log");
        let mut command = Command::new(support::cli::BINARY);
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

#[test]
fn only_answers_to_queries_the_router_saw_teach() {
    let lab = Lab::new().expect("lab");
    let cli = Cli::new();
    // A minimum of 5 s: the short-lived address outlives the restart below.
    let config = write_config(&lab, "forgery", "dns_min_ttl = 5\n");
    let daemon = Daemon::start(&lab, &cli, &config, true);
    let _resolver = Resolver::start(&lab);

    // (a) A forged answer from the LAN, the resolver's address spoofed, no query before it.
    let forged = message(
        7,
        "updates.cdn-apple.com",
        TYPE::A,
        &[(RData::A(FORGED.parse::<Ipv4Addr>().unwrap().into()), 3600)],
    );
    send_spoofed(
        &lab.client,
        v4(lab::SERVER_OTHER_V4, 53),
        v4("203.0.113.10", 40000),
        &forged,
    );
    wait_for(
        "the forged answer counted unmatched",
        || refused(&cli, "unmatched") == 1,
        &daemon,
    );
    assert_eq!(expiry_of(&cli, FORGED), None, "a forged answer taught");

    // (b) A real lookup through the router teaches; (e) for its TTL of 600 s, not the minimum.
    let before = now();
    let (client, answer) = lookup(&lab, 0x4242, "updates.cdn-apple.com", TYPE::A, false);
    wait_for(
        "the real answer learned",
        || expiry_of(&cli, CDN).is_some(),
        &daemon,
    );
    let expires = expiry_of(&cli, CDN).unwrap();
    assert!(
        (before + 600..=now() + 600).contains(&expires),
        "expires at {expires}, the lookup was at {before}: the TTL of 600 s was not honoured"
    );

    // (c) The same answer again, from the WAN side as the original came: unmatched, as its
    // query is used up; a copy that carries another address teaches nothing either.
    let SocketAddr::V4(client) = client else {
        unreachable!()
    };
    send_spoofed(&lab.server, v4(lab::SERVER_OTHER_V4, 53), client, &answer);
    wait_for(
        "the replayed answer counted unmatched",
        || refused(&cli, "unmatched") == 2,
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
        || refused(&cli, "unmatched") == 3,
        &daemon,
    );
    assert_eq!(expiry_of(&cli, REPLAYED), None, "a replayed answer taught");
    assert_eq!(expiry_of(&cli, CDN), Some(expires), "a replay renewed");

    // (d) AAAA, asked over IPv6.
    lookup(&lab, 0x6666, "updates.cdn-apple.com", TYPE::AAAA, true);
    wait_for(
        "the AAAA answer learned",
        || expiry_of(&cli, CDN_V6).is_some(),
        &daemon,
    );

    // (f) A restarted run adopts what the earlier one learned: it expires the short-lived
    // address on time (an entry nobody adopted would stay for ever), keeps the others, and
    // adds to the refused counts rather than starting again.
    lookup(&lab, 0x5555, "swdist.apple.com", TYPE::A, false);
    wait_for(
        "the short-lived answer learned",
        || expiry_of(&cli, SHORT_LIVED).is_some(),
        &daemon,
    );
    daemon.stop();
    let daemon = Daemon::start(&lab, &cli, &config, false);
    assert!(
        expiry_of(&cli, SHORT_LIVED).is_some(),
        "the short-lived address expired before the restart: the test proves nothing"
    );
    wait_for(
        "the adopted short-lived address expired",
        || expiry_of(&cli, SHORT_LIVED).is_none(),
        &daemon,
    );
    assert!(expiry_of(&cli, CDN).is_some() && expiry_of(&cli, CDN_V6).is_some());
    send_spoofed(
        &lab.client,
        v4(lab::SERVER_OTHER_V4, 53),
        v4("203.0.113.10", 40001),
        &forged,
    );
    wait_for(
        "the count carried over the restart",
        || refused(&cli, "unmatched") == 4,
        &daemon,
    );

    // The counts are a metric too, and in the human `stats`.
    let metrics = scrape(&lab).expect("metrics");
    assert!(
        metrics.contains("classifier_dns_refused_answers_total{reason=\"unmatched\"} 4"),
        "{metrics}"
    );
    let human = cli.run(&["stats"]).ok().stdout;
    assert!(human.contains("dns refused unmatched"), "{human}");
    daemon.stop();
    let _ = std::fs::remove_file(config);
}

/// The opt-in for a router that is itself the resolver: answers from the trusted resolver on
/// its interface (r2) teach without a query; the same answer from the LAN (r0) does not.
#[test]
fn a_trusted_resolver_teaches_on_its_interface_only() {
    let lab = Lab::new().expect("lab");
    let cli = Cli::new();
    let config = write_config(
        &lab,
        "trusted",
        &format!(
            "[[dns.trusted_resolvers]]\naddress = \"{}\"\ninterfaces = [\"r2\"]\n",
            lab::SERVER_OTHER_V4
        ),
    );
    let daemon = Daemon::start(&lab, &cli, &config, false);
    let answer = message(
        9,
        "updates.cdn-apple.com",
        TYPE::A,
        &[(RData::A(FORGED.parse::<Ipv4Addr>().unwrap().into()), 600)],
    );
    send_spoofed(
        &lab.client,
        v4(lab::SERVER_OTHER_V4, 53),
        v4("203.0.113.10", 40000),
        &answer,
    );
    wait_for(
        "the answer from the LAN counted unmatched",
        || refused(&cli, "unmatched") == 1,
        &daemon,
    );
    assert_eq!(
        expiry_of(&cli, FORGED),
        None,
        "trusted on the wrong interface"
    );
    send_spoofed(
        &lab.server,
        v4(lab::SERVER_OTHER_V4, 53),
        v4(lab::CLIENT_V4, 40000),
        &answer,
    );
    wait_for(
        "the trusted resolver's answer learned",
        || expiry_of(&cli, FORGED).is_some(),
        &daemon,
    );
    assert_eq!(refused(&cli, "unmatched"), 1);
    daemon.stop();
    let _ = std::fs::remove_file(config);
}

/// A list at its cap learns no new address: of an answer with two, the first is learned, the
/// second refused and the answer counted `over_cap`.
#[test]
fn a_full_list_refuses_new_addresses() {
    let lab = Lab::new().expect("lab");
    let cli = Cli::new();
    let config = write_config(&lab, "cap", "[dns]\nmax_learned_per_list = 1\n");
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
    daemon.stop();
    let _ = std::fs::remove_file(config);
}
