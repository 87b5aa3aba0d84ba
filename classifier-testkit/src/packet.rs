//! Test packets: etherparse builds them, and these helpers add what a builder does not
//! (VLAN tags of either TPID, IPv6 extension headers, IPv4 fragments, TOS) or compute the
//! output a test expects, independently of the kernel code.

use std::net::IpAddr;

use etherparse::{Ipv4HeaderSlice, PacketBuilder};

pub const ETH_LEN: usize = 14;
pub const TPID_8021Q: u16 = 0x8100;
pub const TPID_8021AD: u16 = 0x88a8;

pub const MAC_CLIENT: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const MAC_ROUTER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

#[derive(Clone, Debug)]
pub enum Transport {
    Tcp {
        syn: bool,
        ack: bool,
        rst: bool,
        options: Vec<u8>,
    },
    Udp,
}

/// One TCP or UDP packet, described field by field.
#[derive(Clone, Debug)]
pub struct Segment {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub transport: Transport,
    /// VLAN tags, outermost first, as (TPID, VLAN id).
    pub vlans: Vec<(u16, u16)>,
    /// IPv4 TOS byte or IPv6 traffic class: DSCP << 2 | ECN.
    pub tos: u8,
    pub flow_label: u32,
    pub payload: Vec<u8>,
}

impl Segment {
    pub fn tcp(src: &str, dst: &str, src_port: u16, dst_port: u16) -> Self {
        Self {
            src: src.parse().expect("test address"),
            dst: dst.parse().expect("test address"),
            src_port,
            dst_port,
            transport: Transport::Tcp {
                syn: false,
                ack: true,
                rst: false,
                options: Vec::new(),
            },
            vlans: Vec::new(),
            tos: 0,
            flow_label: 0,
            payload: b"payload".to_vec(),
        }
    }

    pub fn udp(src: &str, dst: &str, src_port: u16, dst_port: u16) -> Self {
        Self {
            transport: Transport::Udp,
            ..Self::tcp(src, dst, src_port, dst_port)
        }
    }

    /// TCP options, padded with zeros (EOL) to a multiple of 4.
    pub fn options(mut self, bytes: &[u8]) -> Self {
        let mut padded = bytes.to_vec();
        padded.resize(bytes.len().div_ceil(4) * 4, 0);
        if let Transport::Tcp { options, .. } = &mut self.transport {
            *options = padded;
        }
        self
    }

    pub fn syn(mut self) -> Self {
        if let Transport::Tcp { syn, ack, .. } = &mut self.transport {
            (*syn, *ack) = (true, false);
        }
        self
    }

    pub fn syn_ack(mut self) -> Self {
        if let Transport::Tcp { syn, ack, .. } = &mut self.transport {
            (*syn, *ack) = (true, true);
        }
        self
    }

    /// A plain ACK, as every segment after the handshake: `reply()` keeps the SYN bits, and
    /// a SYN is a new connection.
    pub fn ack(mut self) -> Self {
        if let Transport::Tcp { syn, ack, rst, .. } = &mut self.transport {
            (*syn, *ack, *rst) = (false, true, false);
        }
        self
    }

    /// A reset (with ACK), as MP_TCPRST travels.
    pub fn rst(mut self) -> Self {
        if let Transport::Tcp { syn, ack, rst, .. } = &mut self.transport {
            (*syn, *ack, *rst) = (false, true, true);
        }
        self
    }

    pub fn vlan(mut self, tpid: u16, id: u16) -> Self {
        self.vlans.push((tpid, id));
        self
    }

    pub fn tos(mut self, tos: u8) -> Self {
        self.tos = tos;
        self
    }

    pub fn flow_label(mut self, label: u32) -> Self {
        self.flow_label = label;
        self
    }

    pub fn payload(mut self, payload: &[u8]) -> Self {
        self.payload = payload.to_vec();
        self
    }

    /// The same flow in the other direction, with no options.
    pub fn reply(&self) -> Self {
        let mut reply = self.clone().options(&[]);
        (reply.src, reply.dst) = (self.dst, self.src);
        (reply.src_port, reply.dst_port) = (self.dst_port, self.src_port);
        reply
    }

    pub fn build(&self) -> Vec<u8> {
        let ip = match (self.src, self.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => PacketBuilder::ethernet2(MAC_CLIENT, MAC_ROUTER)
                .ipv4(src.octets(), dst.octets(), 64),
            (IpAddr::V6(src), IpAddr::V6(dst)) => PacketBuilder::ethernet2(MAC_CLIENT, MAC_ROUTER)
                .ipv6(src.octets(), dst.octets(), 64),
            _ => panic!("test segment mixes IPv4 and IPv6 addresses"),
        };
        let mut packet = Vec::new();
        match &self.transport {
            Transport::Tcp {
                syn,
                ack,
                rst,
                options,
            } => {
                let mut tcp = ip.tcp(self.src_port, self.dst_port, 1000, 64000);
                if *syn {
                    tcp = tcp.syn();
                }
                if *rst {
                    tcp = tcp.rst();
                }
                if *ack {
                    tcp = tcp.ack(2000);
                }
                tcp.options_raw(options)
                    .expect("test TCP options fit")
                    .write(&mut packet, &self.payload)
                    .expect("building a test packet");
            }
            Transport::Udp => ip
                .udp(self.src_port, self.dst_port)
                .write(&mut packet, &self.payload)
                .expect("building a test packet"),
        }
        set_traffic_class(&mut packet, self.tos);
        if self.flow_label != 0 {
            let word = u32::from_be_bytes(packet[ETH_LEN..ETH_LEN + 4].try_into().unwrap());
            let word = (word & 0xfff0_0000) | (self.flow_label & 0x000f_ffff);
            packet[ETH_LEN..ETH_LEN + 4].copy_from_slice(&word.to_be_bytes());
        }
        // Tags go in after the MAC addresses, innermost first so the outermost ends up first.
        for &(tpid, id) in self.vlans.iter().rev() {
            let mut tag = tpid.to_be_bytes().to_vec();
            tag.extend_from_slice(&(id & 0x0fff).to_be_bytes());
            packet.splice(12..12, tag);
        }
        packet
    }
}

/// Offset of the IP header: Ethernet plus however many VLAN tags precede it.
pub fn l3_offset(packet: &[u8]) -> usize {
    let mut offset = ETH_LEN;
    let mut ether_type = u16::from_be_bytes([packet[12], packet[13]]);
    while ether_type == TPID_8021Q || ether_type == TPID_8021AD {
        ether_type = u16::from_be_bytes([packet[offset + 2], packet[offset + 3]]);
        offset += 4;
    }
    offset
}

/// Sets the IPv4 TOS byte (and recomputes the checksum from scratch) or the IPv6 traffic
/// class, in a packet without VLAN tags or with them.
pub fn set_traffic_class(packet: &mut [u8], tos: u8) {
    let l3 = l3_offset(packet);
    match packet[l3] >> 4 {
        4 => {
            packet[l3 + 1] = tos;
            recompute_ipv4_checksum(packet);
        }
        6 => {
            packet[l3] = (packet[l3] & 0xf0) | (tos >> 4);
            packet[l3 + 1] = (tos << 4) | (packet[l3 + 1] & 0x0f);
        }
        version => panic!("not an IP packet (version {version})"),
    }
}

pub fn traffic_class(packet: &[u8]) -> u8 {
    let l3 = l3_offset(packet);
    match packet[l3] >> 4 {
        4 => packet[l3 + 1],
        _ => (packet[l3] << 4) | (packet[l3 + 1] >> 4),
    }
}

/// The packet the program should produce when it marks `packet` with `dscp`: ECN kept,
/// IPv4 checksum computed from scratch by etherparse (not incrementally, as the kernel does).
pub fn with_dscp(packet: &[u8], dscp: u8) -> Vec<u8> {
    let mut expected = packet.to_vec();
    let ecn = traffic_class(packet) & 0x03;
    set_traffic_class(&mut expected, (dscp << 2) | ecn);
    expected
}

pub fn recompute_ipv4_checksum(packet: &mut [u8]) {
    let l3 = l3_offset(packet);
    let checksum = Ipv4HeaderSlice::from_slice(&packet[l3..])
        .expect("a complete IPv4 header")
        .to_header()
        .calc_header_checksum();
    packet[l3 + 10..l3 + 12].copy_from_slice(&checksum.to_be_bytes());
}

/// Whether the IPv4 header checksum verifies (the one's complement sum is all ones).
pub fn ipv4_checksum_ok(packet: &[u8], l3: usize) -> Option<bool> {
    let header_len = usize::from(packet.get(l3)? & 0x0f) * 4;
    let header = packet.get(l3..l3 + header_len)?;
    if header_len < 20 {
        return None;
    }
    let mut sum: u32 = header
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], pair[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    Some(sum == 0xffff)
}

/// Marks an IPv4 packet as a fragment: `offset` in 8-byte units, `more` fragments to come.
pub fn make_ipv4_fragment(packet: &mut [u8], offset: u16, more: bool) {
    let l3 = l3_offset(packet);
    let flags_offset = (offset & 0x1fff) | if more { 0x2000 } else { 0 };
    packet[l3 + 6..l3 + 8].copy_from_slice(&flags_offset.to_be_bytes());
    recompute_ipv4_checksum(packet);
}

/// An IPv6 extension header to insert: its protocol number and its total length in bytes.
#[derive(Copy, Clone, Debug)]
pub struct Ipv6Extension {
    pub kind: u8,
    pub len: usize,
}

pub const HOP_BY_HOP: u8 = 0;
pub const ROUTING: u8 = 43;
pub const FRAGMENT: u8 = 44;
pub const AUTH: u8 = 51;
pub const DEST_OPTIONS: u8 = 60;

/// Inserts extension headers after the IPv6 header, chaining next-header fields and fixing
/// the payload length. Bodies are zero (Pad1 options are valid), lengths encoded per RFC 8200
/// (8-byte units) or RFC 4302 (AH: 4-byte units).
pub fn insert_ipv6_extensions(packet: &mut Vec<u8>, extensions: &[Ipv6Extension]) {
    let l3 = l3_offset(packet);
    let mut next = packet[l3 + 6];
    let mut bytes = Vec::new();
    for extension in extensions.iter().rev() {
        let mut header = vec![0u8; extension.len];
        header[0] = next;
        header[1] = match extension.kind {
            FRAGMENT => 0,
            AUTH => u8::try_from(extension.len / 4 - 2).expect("AH length"),
            _ => u8::try_from(extension.len / 8 - 1).expect("extension length"),
        };
        header.extend_from_slice(&bytes);
        bytes = header;
        next = extension.kind;
    }
    packet[l3 + 6] = next;
    packet.splice(l3 + 40..l3 + 40, bytes.iter().copied());
    let payload_len = u16::try_from(packet.len() - l3 - 40).expect("payload length");
    packet[l3 + 4..l3 + 6].copy_from_slice(&payload_len.to_be_bytes());
}
