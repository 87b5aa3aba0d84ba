//! The `DnsEvent`s of the `DNS_EVENTS` ring buffer, decoded: which it is, where it came from
//! and went to (as the kernel read the IP and UDP headers), and the message.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use classifier_common::dns::{DNS_ANSWER, DNS_EVENT_HEADER, DNS_QUERY, DnsEvent};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Direction {
    /// To port 53.
    Query,
    /// From port 53.
    Answer,
}

/// One DNS datagram the classifier saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsDatagram {
    pub direction: Direction,
    /// Interface it arrived on.
    pub ifindex: u32,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub message: Vec<u8>,
}

fn address(bytes: [u8; 16], ip_version: u8) -> IpAddr {
    if ip_version == 6 {
        IpAddr::V6(Ipv6Addr::from(bytes))
    } else {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    }
}

impl DnsDatagram {
    /// Decodes one ring buffer record; None when it is not a whole `DnsEvent`.
    pub fn decode(record: &[u8]) -> Option<Self> {
        if record.len() < size_of::<DnsEvent>() {
            return None;
        }
        // SAFETY: `record` holds a whole DnsEvent (checked above), a plain-old-data struct
        // every bit pattern of which is valid; it may be unaligned.
        let event: DnsEvent = unsafe { std::ptr::read_unaligned(record.as_ptr().cast()) };
        let direction = match event.kind {
            DNS_QUERY => Direction::Query,
            DNS_ANSWER => Direction::Answer,
            _ => return None,
        };
        let len = (event.len as usize).min(event.message.len());
        Some(Self {
            direction,
            ifindex: event.ifindex,
            src: SocketAddr::new(
                address(event.src_addr, event.ip_version),
                u16::from_be_bytes(event.src_port),
            ),
            dst: SocketAddr::new(
                address(event.dst_addr, event.ip_version),
                u16::from_be_bytes(event.dst_port),
            ),
            message: record[DNS_EVENT_HEADER..DNS_EVENT_HEADER + len].to_vec(),
        })
    }
}
