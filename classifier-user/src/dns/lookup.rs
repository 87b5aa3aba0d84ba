//! Active learning: `classifier run` resolves the lists' host names itself, through the
//! router's resolver, and learns what the answers' CNAME chains lead to. It works where
//! passive learning cannot: behind NAT, with no resolver named, and when the phones use
//! encrypted DNS, which no router can read.
//!
//! The client is a small stub on `simple_dns`, the crate that already parses every answer
//! here, over a blocking UDP socket (TCP when the answer is truncated). hickory's resolver
//! was the alternative; it was not taken because its lookup API returns records without the
//! message they came in, where the chain rule (`answers::answer_of`) needs the whole answer
//! section, and because it brings an async runtime into a daemon that has none. What a stub
//! must get right is here: a random id, a connected socket (only the resolver's datagrams
//! arrive), the id and question checked on the answer, a deadline on every wait.
//!
//! The lookups run on a thread of their own, so a slow resolver never delays the ring
//! buffer; each finished lookup goes to `run`'s loop (`LookupDone`), which teaches it under
//! the writer lock, and wakes the loop through a socket pair it polls.

use std::{
    collections::{BTreeMap, VecDeque},
    io::{Read as _, Write as _},
    net::{IpAddr, SocketAddr, TcpStream, UdpSocket},
    os::unix::net::UnixStream,
    sync::{
        Arc, Mutex,
        mpsc::{self, Receiver, RecvTimeoutError, Sender},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use classifier_common::dns::DNS_PORT;
use simple_dns::{CLASS, Name, Packet, PacketFlag, QTYPE, Question, TYPE};

use super::answers::{Answer, DomainLists, answer_of};

/// The `apple` list's host names as shipped.
pub const SHIPPED_APPLE_HOSTS: &str = include_str!("../../data/apple-hosts.txt");

/// How long one lookup waits for its answer.
const TIMEOUT: Duration = Duration::from_secs(3);
/// After a failure, the next try waits this long, doubling up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long the id and port of a finished lookup are remembered, so that its answer, which
/// the classifier also sees arriving, is not counted as an unmatched one.
const OWN_ANSWER_WINDOW: Duration = Duration::from_secs(10);

/// Host names to resolve, each with the lists (bits) it teaches.
#[derive(Clone, Debug, Default)]
pub struct HostLists {
    hosts: Vec<(String, u32)>,
}

impl HostLists {
    pub fn add(&mut self, list: u32, host: &str) {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() {
            return;
        }
        match self.hosts.iter_mut().find(|(name, _)| *name == host) {
            Some((_, lists)) => *lists |= 1 << list,
            None => self.hosts.push((host, 1 << list)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }
}

/// `ADDRESS` (port 53) or `ADDRESS:PORT` / `[ADDRESS]:PORT`.
pub fn parse_resolver(text: &str) -> Option<SocketAddr> {
    text.parse::<SocketAddr>().ok().or_else(|| {
        text.parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, DNS_PORT))
    })
}

/// The first `nameserver` of /etc/resolv.conf, as the C library would ask it.
pub fn system_resolver() -> Option<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next()? == "nameserver")
            .then(|| words.next())
            .flatten()
            .and_then(|address| address.split('%').next())
            .and_then(parse_resolver)
    })
}

/// A finished lookup: its answer, read by the chain rule, or why there is none.
#[derive(Debug)]
pub struct LookupDone {
    pub host: String,
    pub resolver: SocketAddr,
    pub answer: Result<Answer, String>,
}

/// The ids and local ports of `run`'s own lookups, recent ones included.
#[derive(Debug, Default)]
pub struct OwnLookups {
    recent: Mutex<VecDeque<(Instant, u16, u16)>>,
}

impl OwnLookups {
    fn note(&self, port: u16, id: u16) {
        if let Ok(mut recent) = self.recent.lock() {
            let now = Instant::now();
            while recent
                .front()
                .is_some_and(|(at, _, _)| now.duration_since(*at) > OWN_ANSWER_WINDOW)
            {
                recent.pop_front();
            }
            recent.push_back((now, port, id));
        }
    }

    /// Whether an answer to `port` with `id` answers one of `run`'s own lookups.
    pub fn answers(&self, port: u16, id: u16) -> bool {
        self.recent
            .lock()
            .is_ok_and(|recent| recent.iter().any(|(_, p, i)| *p == port && *i == id))
    }
}

/// The lookup thread and what it hands back.
pub struct Lookups {
    done: Receiver<LookupDone>,
    /// Readable when a lookup has finished; `run` polls it.
    wake: UnixStream,
    own: Arc<OwnLookups>,
    /// Dropped to stop the thread.
    _stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl Lookups {
    /// Starts resolving `hosts` through `resolver`, each again when its answer's least TTL,
    /// bounded by `min_ttl` and `max_ttl`, is three quarters gone (so the renewal lands
    /// before the expiry), or after a backoff when it failed.
    pub fn start(
        hosts: HostLists,
        domains: DomainLists,
        resolver: SocketAddr,
        min_ttl: Duration,
        max_ttl: Duration,
    ) -> std::io::Result<Self> {
        let (wake, wake_thread) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        let (done_tx, done) = mpsc::channel();
        let (stop, stop_rx) = mpsc::channel::<()>();
        let own = Arc::new(OwnLookups::default());
        let own_thread = own.clone();
        // Each host's A and AAAA on schedules of their own: one failing (a resolver that
        // answers AAAA with SERVFAIL) does not hold the other's renewals back.
        let questions: Vec<(String, u32, TYPE)> = hosts
            .hosts
            .iter()
            .flat_map(|(host, lists)| {
                [TYPE::A, TYPE::AAAA].map(|qtype| (host.clone(), *lists, qtype))
            })
            .collect();
        let thread = std::thread::Builder::new()
            .name("dns-lookups".to_owned())
            .spawn(move || {
                let mut next: BTreeMap<(Instant, usize), ()> = (0..questions.len())
                    .map(|index| ((Instant::now(), index), ()))
                    .collect();
                let mut backoff = vec![FIRST_BACKOFF; questions.len()];
                let mut wake = wake_thread;
                while let Some(((due, index), ())) = next.pop_first() {
                    match stop_rx.recv_timeout(due.saturating_duration_since(Instant::now())) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return, // `Lookups` dropped
                    }
                    let (host, lists, qtype) = &questions[index];
                    let answer = lookup(resolver, host, *qtype, &own_thread).and_then(|message| {
                        answer_of(&message, &domains, *lists)
                            .ok_or_else(|| "a malformed answer".to_owned())
                    });
                    let again =
                        match &answer {
                            Ok(answer) => {
                                backoff[index] = FIRST_BACKOFF;
                                // No address (NXDOMAIN, an empty answer): ask again after the
                                // longest.
                                let ttl = answer.learned.iter().map(|l| l.ttl).min().map_or(
                                    max_ttl,
                                    |ttl| {
                                        Duration::from_secs(u64::from(ttl)).clamp(min_ttl, max_ttl)
                                    },
                                );
                                (ttl * 3 / 4).max(Duration::from_secs(1))
                            }
                            Err(_) => {
                                let wait = backoff[index];
                                backoff[index] = (wait * 2).min(MAX_BACKOFF);
                                wait
                            }
                        };
                    let done = LookupDone {
                        host: host.clone(),
                        resolver,
                        answer,
                    };
                    if done_tx.send(done).is_err() {
                        return;
                    }
                    let _ = wake.write(&[1]);
                    next.insert((Instant::now() + again, index), ());
                }
            })?;
        Ok(Self {
            done,
            wake,
            own,
            _stop: stop,
            thread,
        })
    }

    /// Whether the lookup thread has ended (it only does on a panic while `run` runs).
    pub fn stopped(&self) -> bool {
        self.thread.is_finished()
    }

    /// The descriptor `run` polls: readable when `finished` has something.
    pub fn wake_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd as _;
        self.wake.as_raw_fd()
    }

    /// The lookups finished since the last call.
    pub fn finished(&mut self) -> Vec<LookupDone> {
        let mut drain = [0u8; 64];
        while matches!(self.wake.read(&mut drain), Ok(n) if n > 0) {}
        self.done.try_iter().collect()
    }

    /// The lookups' ids and ports, for the learner to recognise their answers.
    pub fn own(&self) -> Arc<OwnLookups> {
        self.own.clone()
    }
}

/// One question to `resolver`: the answer's message once its id and question check out.
fn lookup(
    resolver: SocketAddr,
    host: &str,
    qtype: TYPE,
    own: &OwnLookups,
) -> Result<Vec<u8>, String> {
    let id = random_id();
    let mut query = Packet::new_query(id);
    query.set_flags(PacketFlag::RECURSION_DESIRED);
    let name = Name::new(host).map_err(|error| format!("{host}: {error}"))?;
    query.questions.push(Question::new(
        name,
        QTYPE::TYPE(qtype),
        CLASS::IN.into(),
        false,
    ));
    let query = query
        .build_bytes_vec()
        .map_err(|error| format!("building the query: {error}"))?;
    let local: SocketAddr = match resolver {
        SocketAddr::V4(_) => "0.0.0.0:0".parse().unwrap_or(resolver),
        SocketAddr::V6(_) => "[::]:0".parse().unwrap_or(resolver),
    };
    let failed = |what: &'static str| io_failed(what, resolver);
    let socket = UdpSocket::bind(local).map_err(failed("binding a socket for"))?;
    socket.connect(resolver).map_err(failed("connecting to"))?;
    own.note(socket.local_addr().map_or(0, |a| a.port()), id);
    socket.send(&query).map_err(failed("asking"))?;
    let deadline = Instant::now() + TIMEOUT;
    let mut buffer = vec![0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no answer from {resolver} within {TIMEOUT:?}"));
        }
        socket
            .set_read_timeout(Some(left))
            .map_err(failed("waiting for"))?;
        let n = match socket.recv(&mut buffer) {
            Ok(n) => n,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(error) if error.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(error) => return Err(failed("reading from")(error)),
        };
        let message = &buffer[..n];
        let Ok(packet) = Packet::parse(message) else {
            continue; // not DNS: keep waiting for the answer
        };
        if packet.id() != id || !answers(&packet, host, qtype) {
            continue; // not ours: a late answer to an earlier try, or a forgery
        }
        if packet.has_flags(PacketFlag::TRUNCATION) {
            return lookup_tcp(resolver, &query, id, host, qtype);
        }
        return rcode_ok(&packet).map(|()| message.to_vec());
    }
}

fn io_failed(what: &'static str, resolver: SocketAddr) -> impl Fn(std::io::Error) -> String {
    move |error| format!("{what} {resolver}: {error}")
}

/// The same question over TCP, for an answer too long for UDP.
fn lookup_tcp(
    resolver: SocketAddr,
    query: &[u8],
    id: u16,
    host: &str,
    qtype: TYPE,
) -> Result<Vec<u8>, String> {
    let failed = |error: std::io::Error| format!("asking {resolver} over TCP: {error}");
    // One deadline for the whole exchange: a peer that trickles a byte at a time must not
    // hold the only lookup thread for longer.
    let deadline = Instant::now() + TIMEOUT;
    let mut stream = TcpStream::connect_timeout(&resolver, TIMEOUT).map_err(failed)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(failed)?;
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed).map_err(failed)?;
    let mut length = [0u8; 2];
    read_by(&mut stream, &mut length, deadline).map_err(failed)?;
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(length))];
    read_by(&mut stream, &mut message, deadline).map_err(failed)?;
    let packet = Packet::parse(&message).map_err(|error| format!("{resolver}: {error}"))?;
    if packet.id() != id || !answers(&packet, host, qtype) {
        return Err(format!("{resolver} answered another question over TCP"));
    }
    rcode_ok(&packet)?;
    Ok(message)
}

/// Fills `buffer` from `stream` before `deadline`.
fn read_by(stream: &mut TcpStream, buffer: &mut [u8], deadline: Instant) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buffer.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buffer[filled..])? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => filled += n,
        }
    }
    Ok(())
}

/// Whether `packet` is a response to exactly the question asked (name ignoring case).
fn answers(packet: &Packet<'_>, host: &str, qtype: TYPE) -> bool {
    packet.has_flags(PacketFlag::RESPONSE)
        && matches!(&packet.questions[..], [question]
            if question.qname.to_string().trim_end_matches('.').eq_ignore_ascii_case(host)
                && question.qtype == QTYPE::TYPE(qtype))
}

/// No error, or a name that does not exist (an answer, with nothing to learn).
fn rcode_ok(packet: &Packet<'_>) -> Result<(), String> {
    match packet.rcode() {
        simple_dns::RCODE::NoError | simple_dns::RCODE::NameError => Ok(()),
        other => Err(format!("the resolver answered {other:?}")),
    }
}

/// A transaction id nobody off the path can predict.
fn random_id() -> u16 {
    let mut id = [0u8; 2];
    // SAFETY: getrandom writes at most `id.len()` bytes into `id`.
    let n = unsafe { libc::getrandom(id.as_mut_ptr().cast(), id.len(), 0) };
    if n != 2 {
        // Never seen on Linux ≥ 3.17; the clock's nanoseconds are a poor but working id.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        return nanos as u16;
    }
    u16::from_ne_bytes(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolvers_are_addresses_with_an_optional_port() {
        assert_eq!(parse_resolver("192.0.2.53"), "192.0.2.53:53".parse().ok());
        assert_eq!(
            parse_resolver("192.0.2.53:5353"),
            "192.0.2.53:5353".parse().ok()
        );
        assert_eq!(
            parse_resolver("2001:db8::53"),
            "[2001:db8::53]:53".parse().ok()
        );
        assert_eq!(
            parse_resolver("[2001:db8::53]:54"),
            "[2001:db8::53]:54".parse().ok()
        );
        assert_eq!(parse_resolver("dns.example"), None);
    }

    #[test]
    fn a_host_named_twice_teaches_both_lists() {
        let mut hosts = HostLists::default();
        hosts.add(0, "mesu.apple.com.");
        hosts.add(2, "MESU.apple.com");
        assert_eq!(hosts.hosts, vec![("mesu.apple.com".to_owned(), 0b101)]);
    }
}
