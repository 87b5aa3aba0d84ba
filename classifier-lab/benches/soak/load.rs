//! The soak's mixed load, each kind on its own thread until the soak ends: MPTCP transfers,
//! Apple and normal downloads, DNS answers to learn from, and a flood of malformed frames.
//! Every transfer and download has its deadline (`traffic::Link`): a stalled one is a load
//! error naming its flow, never a thread blocked past the end of the run.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket},
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use classifier_lab::{
    CLIENT_V4, Lab, SERVER_APPLE_V4, SERVER_OTHER_V4,
    traffic::{self, InFlight, Link},
};
use classifier_testkit::packet::{ETH_LEN, Segment};
use simple_dns::{CLASS, Name, Packet, Question, ResourceRecord, rdata};

/// What each kind of load did, and the flow each is in now.
#[derive(Default)]
pub struct Done {
    pub mptcp_transfers: AtomicU64,
    pub apple_downloads: AtomicU64,
    pub normal_downloads: AtomicU64,
    pub dns_answers: AtomicU64,
    /// DNS queries or answers lost on the way (UDP under the flood), not errors.
    pub dns_lost: AtomicU64,
    pub malformed_frames: AtomicU64,
    pub errors: AtomicU64,
    /// MPTCP transfers the kernel carried as plain TCP.
    pub mptcp_fallbacks: AtomicU64,
    /// The first load errors, as they were reported.
    pub first_errors: Mutex<Vec<String>>,
    pub mptcp_flow: InFlight,
    pub apple_flow: InFlight,
    pub normal_flow: InFlight,
}

/// The server ports each load cycles through, first and last.
pub const MPTCP_PORTS: (u16, u16) = (7000, 7000 + PORTS - 1);
pub const APPLE_PORTS: (u16, u16) = (8000, 8000 + PORTS - 1);
pub const NORMAL_PORTS: (u16, u16) = (9000, 9000 + PORTS - 1);
const PORTS: u16 = 500;

/// How long a DNS query or answer may take before it counts as lost.
const DNS_DEADLINE: Duration = Duration::from_millis(500);

/// Load errors the report quotes; the count goes on past them.
const ERRORS_KEPT: usize = 10;

impl Done {
    fn error(&self, error: &anyhow::Error) {
        // The chain, each cause once (a library error already quotes its source).
        let mut text = String::new();
        for cause in error.chain().map(ToString::to_string) {
            if !text.contains(&cause) {
                text = if text.is_empty() {
                    cause
                } else {
                    format!("{text}: {cause}")
                };
            }
        }
        let error = text;
        eprintln!("  soak load: {error}");
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut kept = self.first_errors.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() < ERRORS_KEPT {
            kept.push(error);
        }
    }
}

/// When the loads stop: at the end of the run, or at once when it has failed.
pub struct Until {
    pub deadline: Instant,
    pub stopped: AtomicBool,
}

impl Until {
    pub fn new(deadline: Instant) -> Self {
        Self {
            deadline,
            stopped: AtomicBool::new(false),
        }
    }

    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    pub fn going(&self) -> bool {
        Instant::now() < self.deadline && !self.stopped.load(Ordering::Relaxed)
    }
}

fn client() -> IpAddr {
    CLIENT_V4.parse().expect("an address")
}

/// Repeats `work` while `until` says so, counting successes in `count` and failures in
/// `done`.
fn repeat(until: &Until, count: &AtomicU64, done: &Done, mut work: impl FnMut(u64) -> Result<()>) {
    let mut n = 0;
    while until.going() {
        match work(n) {
            Ok(()) => {
                count.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => done.error(&error),
        }
        n += 1;
    }
}

pub fn mptcp(lab: &Lab, until: &Until, done: &Done) {
    repeat(until, &done.mptcp_transfers, done, |n| {
        let server = SocketAddr::new(
            SERVER_OTHER_V4.parse()?,
            MPTCP_PORTS.0 + (n % u64::from(PORTS)) as u16,
        );
        traffic::Transfer {
            client: &lab.client,
            source: client(),
            server: &lab.server,
            destination: server,
            bytes: 4 << 20,
            mptcp: true,
            subflows: 1,
        }
        .run(&Link::LAB, &done.mptcp_flow)?;
        if done.mptcp_flow.fell_back() {
            done.mptcp_fallbacks.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
}

pub fn downloads(
    lab: &Lab,
    until: &Until,
    (server, port): (&str, u16),
    (count, in_flight): (&AtomicU64, &InFlight),
    done: &Done,
) {
    repeat(until, count, done, |n| {
        let server = SocketAddr::new(server.parse()?, port + (n % u64::from(PORTS)) as u16);
        traffic::Download {
            client: &lab.client,
            client_addr: client(),
            server: &lab.server,
            server_addr: server,
            duration: Duration::from_secs(2),
        }
        .run(&Link::LAB, in_flight)?;
        Ok(())
    });
}

/// DNS lookups from the client, answered by the server (port 53) for an Apple CDN host, each
/// with a new address in 100.64.0.0/10 and the minimum TTL: `classifier run` matches each
/// answer to its query, learns and expires the addresses all the time, so that its
/// bookkeeping (pending queries, learned addresses) would grow if it leaked.
pub fn dns(lab: &Lab, until: &Until, done: &Done) {
    let sockets = (
        lab.server.enter(|| UdpSocket::bind((SERVER_OTHER_V4, 53))),
        lab.client.enter(|| UdpSocket::bind((CLIENT_V4, 0))),
    );
    let (Ok(Ok(server)), Ok(Ok(client))) = sockets else {
        done.error(&anyhow::anyhow!("DNS: binding the sockets"));
        return;
    };
    for socket in [&server, &client] {
        // The probe's deadline: a datagram crosses this unshaped link in well under a
        // millisecond. Each loss costs the DNS load this long, so it is kept short: with 2 s,
        // a burst of a dozen lost datagrams under the flood took a 30 s sample's DNS rate to
        // 43 % of its median, too near the stall fraction.
        if let Err(error) = socket.set_read_timeout(Some(DNS_DEADLINE)) {
            done.error(&anyhow::anyhow!("DNS: setting a timeout: {error}"));
            return;
        }
    }
    repeat(until, &done.dns_answers, done, |n| {
        let question = Question::new(
            Name::new_unchecked("swcdn.apple.com"),
            simple_dns::TYPE::A.into(),
            CLASS::IN.into(),
            false,
        );
        let mut query = Packet::new_query(n as u16);
        query.questions.push(question.clone());
        client.send_to(&query.build_bytes_vec()?, (SERVER_OTHER_V4, 53))?;
        let mut buffer = [0u8; 512];
        // Under the soak's flood a query or an answer may be dropped on the way, as on a busy
        // link: a datagram's loss is counted, not an error; a DNS load that stops is a stall
        // the rate watch sees.
        let peer = match server.recv_from(&mut buffer) {
            Ok((_, peer)) => peer,
            Err(error) if timed_out(&error) => {
                done.dns_lost.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            Err(error) => {
                return Err(error).with_context(|| {
                    format!(
                        "DNS query {CLIENT_V4}:{} → {SERVER_OTHER_V4}:53",
                        client_port(&client)
                    )
                });
            }
        };
        let address = Ipv4Addr::from(0x6440_0000 | (n as u32 & 0x003f_ffff));
        let mut reply = Packet::new_reply(n as u16);
        reply.questions.push(question);
        reply.answers.push(ResourceRecord::new(
            Name::new_unchecked("swcdn.apple.com"),
            CLASS::IN,
            60,
            rdata::RData::A(rdata::A::from(address)),
        ));
        server.send_to(&reply.build_bytes_vec()?, peer)?;
        match client.recv_from(&mut buffer) {
            Ok(_) => {}
            Err(error) if timed_out(&error) => {
                done.dns_lost.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => return Err(error).context("DNS answer"),
        }
        thread::sleep(Duration::from_millis(20));
        Ok(())
    });
}

/// Frames the parser must count as malformed and pass: cut headers, bad lengths, options
/// that lie, garbage after an Ethernet header.
fn malformed_frames(router_mac: [u8; 6]) -> Vec<Vec<u8>> {
    let base = Segment::tcp(CLIENT_V4, SERVER_APPLE_V4, 40_000, 443)
        .options(&[30, 20, 0x20, 1, 2])
        .build();
    let mut frames = vec![
        base[..ETH_LEN + 10].to_vec(),
        base[..ETH_LEN + 20 + 8].to_vec(),
    ];
    let mut bad_ihl = base.clone();
    bad_ihl[ETH_LEN] = 0x4f;
    frames.push(bad_ihl);
    let mut bad_option = base.clone();
    bad_option[ETH_LEN + 20 + 20 + 1] = 0;
    frames.push(bad_option);
    let mut garbage = base[..ETH_LEN].to_vec();
    garbage.extend((0..60u8).map(|b| b.wrapping_mul(37)));
    frames.push(garbage);
    for frame in &mut frames {
        frame[..6].copy_from_slice(&router_mac);
    }
    frames
}

fn parse_mac(text: &str) -> Result<[u8; 6]> {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()?;
    bytes.try_into().ok().context("a MAC address of 6 bytes")
}

/// Malformed frames sent raw (AF_PACKET) from the client's c0 to the router, about
/// 10,000 a second.
pub fn malformed(lab: &Lab, until: &Until, done: &Done) {
    let result = (|| -> Result<()> {
        let frames = malformed_frames(parse_mac(&lab.router.mac("r0")?)?);
        let ifindex = lab
            .client
            .enter(|| unsafe { libc::if_nametoindex(c"c0".as_ptr()) })?;
        let fd = lab
            .client
            .enter(|| unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) })?;
        anyhow::ensure!(
            fd >= 0,
            "an AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        );
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_ifindex = ifindex as i32;
        address.sll_halen = 6;
        let batches = AtomicU64::new(0);
        repeat(until, &batches, done, |n| {
            for frame in &frames {
                // SAFETY: a valid socket, frame and address of the right size.
                let sent = unsafe {
                    libc::sendto(
                        fd,
                        frame.as_ptr().cast(),
                        frame.len(),
                        0,
                        (&raw const address).cast(),
                        size_of::<libc::sockaddr_ll>() as u32,
                    )
                };
                if sent < 0 {
                    let error = std::io::Error::last_os_error();
                    // The device queue is full: back off, as a flood source would not.
                    anyhow::ensure!(
                        error.raw_os_error() == Some(libc::ENOBUFS),
                        "sending: {error}"
                    );
                    thread::sleep(Duration::from_millis(1));
                }
            }
            done.malformed_frames
                .fetch_add(frames.len() as u64, Ordering::Relaxed);
            if n % 20 == 0 {
                thread::sleep(Duration::from_millis(10));
            }
            Ok(())
        });
        // SAFETY: our own socket.
        unsafe { libc::close(fd) };
        Ok(())
    })();
    if let Err(error) = result {
        done.error(&error.context("malformed frames"));
    }
}

fn timed_out(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn client_port(socket: &UdpSocket) -> u16 {
    socket.local_addr().map(|a| a.port()).unwrap_or(0)
}
