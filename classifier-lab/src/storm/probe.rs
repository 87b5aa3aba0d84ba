//! The interactive user: a small TCP request and its response every 100 ms over one
//! connection (what a web page or a terminal does), and an ICMP echo every 100 ms, each round
//! trip recorded. A round trip that takes longer than `LOST_AFTER` counts as lost.

use std::{
    io::{Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use socket2::{Domain, Protocol, Socket, Type};

use super::download;
use crate::{Netns, io_error};
use classifier::Error;

pub const INTERVAL: Duration = Duration::from_millis(100);
pub const LOST_AFTER: Duration = Duration::from_secs(2);
const REQUEST: usize = 64;
const RESPONSE: usize = 512;

/// The round trips of one probe: `None` for one lost.
pub type RoundTrips = Vec<Option<Duration>>;

/// The interactive server: answers each request of `REQUEST` bytes with `RESPONSE` bytes that
/// start with the request's sequence number, until `stop`.
pub fn serve(listener: &TcpListener, stop: &AtomicBool) {
    download::serve(listener, stop, |mut stream, stop| {
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
        let mut request = [0u8; REQUEST];
        let mut response = [0x33u8; RESPONSE];
        while !stop.load(Ordering::Relaxed) {
            match stream.read_exact(&mut request) {
                Ok(()) => {
                    response[..8].copy_from_slice(&request[..8]);
                    if stream.write_all(&response).is_err() {
                        return;
                    }
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return,
            }
        }
    });
}

/// Sleeps until `INTERVAL` after the previous probe was sent: pacing, not synchronisation.
fn pace(next: &mut Instant) {
    *next += INTERVAL;
    let now = Instant::now();
    if *next > now {
        thread::sleep(*next - now);
    } else {
        *next = now;
    }
}

/// TCP request/response round trips from `source` to `server` until `until`, over one
/// connection, and a fresh one after a round trip is lost. A connection that cannot be opened
/// within `LOST_AFTER` (its SYN or SYN-ACK dropped by a full queue: the SYN goes again after
/// 1 s, then 3 s) counts as a lost probe, and the next one tries again.
pub fn tcp(
    client: &Netns,
    source: Ipv4Addr,
    server: SocketAddr,
    until: Instant,
) -> Result<RoundTrips, Error> {
    let mut trips = Vec::new();
    while Instant::now() < until {
        match connect(client, source, server) {
            Ok(mut stream) => trips.extend(round_trips(&mut stream, until)?),
            Err(Error::Io { source, .. })
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) =>
            {
                trips.push(None);
            }
            Err(error) => return Err(error),
        }
    }
    Ok(trips)
}

/// The probe's connection from `source` (a port the kernel picks) to `server`.
pub fn connect(client: &Netns, source: Ipv4Addr, server: SocketAddr) -> Result<TcpStream, Error> {
    let what = format!("the TCP probe to {server}");
    let socket = download::socket_from(client, source)?;
    socket
        .connect_timeout(&server.into(), LOST_AFTER)
        .map_err(io_error(what.clone()))?;
    let stream: TcpStream = socket.into();
    stream.set_nodelay(true).map_err(io_error(what))?;
    Ok(stream)
}

/// Request/response round trips over `stream`, one every `INTERVAL`, until `until` or until
/// one is lost (the last then is `None`, and the stream is of no further use).
pub fn round_trips(stream: &mut TcpStream, until: Instant) -> Result<RoundTrips, Error> {
    let what = format!(
        "the TCP probe to {}",
        stream
            .peer_addr()
            .map_or_else(|_| "?".to_owned(), |peer| peer.to_string())
    );
    let mut trips = Vec::new();
    let mut next = Instant::now();
    let mut response = [0u8; RESPONSE];
    for sequence in 0u64.. {
        if Instant::now() >= until {
            break;
        }
        let sent = Instant::now();
        let mut request = [0u8; REQUEST];
        request[..8].copy_from_slice(&sequence.to_be_bytes());
        stream.write_all(&request).map_err(io_error(what.clone()))?;
        // Responses to earlier, lost probes may still come first: skip them.
        let trip = loop {
            let left = LOST_AFTER.saturating_sub(sent.elapsed());
            if left.is_zero() {
                break None;
            }
            stream
                .set_read_timeout(Some(left))
                .map_err(io_error(what.clone()))?;
            match stream.read_exact(&mut response) {
                Ok(()) if response[..8] == sequence.to_be_bytes() => break Some(sent.elapsed()),
                Ok(()) => {}
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    // A partial response would desynchronise the stream: the probe's end.
                    break None;
                }
                Err(error) => return Err(io_error(what)(error)),
            }
        };
        trips.push(trip);
        if trip.is_none() {
            break;
        }
        pace(&mut next);
    }
    Ok(trips)
}

/// ICMP echo round trips from `source` to `server` until `until`, over a raw socket (which
/// receives every ICMP message in the namespace, so replies are matched by id and sequence).
pub fn icmp(
    client: &Netns,
    source: Ipv4Addr,
    server: Ipv4Addr,
    until: Instant,
) -> Result<RoundTrips, Error> {
    let what = format!("the ICMP probe to {server}");
    let socket = client
        .enter(|| -> std::io::Result<Socket> {
            let socket = Socket::new(
                Domain::IPV4,
                Type::from(libc::SOCK_RAW),
                Some(Protocol::ICMPV4),
            )?;
            socket.bind(&SocketAddr::from((source, 0)).into())?;
            Ok(socket)
        })?
        .map_err(io_error(what.clone()))?;
    let id = (std::process::id() as u16) ^ u16::from(source.octets()[3]);
    let destination = SocketAddr::from((server, 0)).into();
    let mut trips = Vec::new();
    let mut next = Instant::now();
    let mut buffer = [std::mem::MaybeUninit::<u8>::uninit(); 1500];
    for sequence in 0u16.. {
        if Instant::now() >= until {
            break;
        }
        let sent = Instant::now();
        socket
            .send_to(&echo_request(id, sequence), &destination)
            .map_err(io_error(what.clone()))?;
        let trip = loop {
            let left = LOST_AFTER.saturating_sub(sent.elapsed());
            if left.is_zero() {
                break None;
            }
            socket
                .set_read_timeout(Some(left))
                .map_err(io_error(what.clone()))?;
            match socket.recv(&mut buffer) {
                Ok(n) => {
                    // SAFETY: recv initialised the first n bytes.
                    let packet: Vec<u8> = buffer[..n]
                        .iter()
                        .map(|b| unsafe { b.assume_init() })
                        .collect();
                    if is_echo_reply(&packet, id, sequence) {
                        break Some(sent.elapsed());
                    }
                }
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break None;
                }
                Err(error) => return Err(io_error(what)(error)),
            }
        };
        trips.push(trip);
        pace(&mut next);
    }
    Ok(trips)
}

/// An ICMP echo request with 56 bytes of payload (ping's default).
fn echo_request(id: u16, sequence: u16) -> Vec<u8> {
    let mut message = vec![8, 0, 0, 0];
    message.extend(id.to_be_bytes());
    message.extend(sequence.to_be_bytes());
    message.extend([0x61; 56]);
    let checksum = internet_checksum(&message);
    message[2..4].copy_from_slice(&checksum.to_be_bytes());
    message
}

/// RFC 1071.
fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum::<u32>();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Whether `packet` (an IPv4 packet, as a raw socket gives it) is the echo reply to `id`,
/// `sequence`.
fn is_echo_reply(packet: &[u8], id: u16, sequence: u16) -> bool {
    let Some(header) = packet.first().map(|b| usize::from(b & 0x0f) * 4) else {
        return false;
    };
    let Some(icmp) = packet.get(header..header + 8) else {
        return false;
    };
    icmp[0] == 0 && icmp[4..6] == id.to_be_bytes() && icmp[6..8] == sequence.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_request_sums_to_zero_with_its_checksum() {
        assert_eq!(internet_checksum(&echo_request(0x1234, 7)), 0);
    }

    #[test]
    fn only_the_matching_echo_reply_counts() {
        let mut reply = vec![0x45; 20];
        reply.extend([0, 0, 0, 0, 0x12, 0x34, 0, 7]);
        assert!(is_echo_reply(&reply, 0x1234, 7));
        assert!(!is_echo_reply(&reply, 0x1234, 8));
        reply[20] = 8;
        assert!(!is_echo_reply(&reply, 0x1234, 7));
    }
}
