//! Structure-aware random packets for the differential fuzzer: valid Ethernet with up to two
//! VLAN tags (sometimes three), IPv4 (options, fragments) or IPv6 (chains of extension headers,
//! atomic fragments), TCP with random option lists (every MPTCP subtype built to fit the
//! segment it is in, as Linux checks it, or deliberately not, or with a random body; unknown
//! kinds, malformed lengths) or UDP or another protocol; IP length fields that end the
//! datagram before the frame (Ethernet padding, lengths that cut the payload or the transport
//! header) or defer to it (0); then, some of the time, corruption aimed at the fields a parser
//! trusts: truncation, byte flips, length and type fields that lie.
//!
//! Flows repeat (a packet reuses a recent flow, in either direction, about a third of the
//! time) so that the kernel's flow memory is exercised, and addresses fall inside, beside and
//! outside the prefixes the fuzzer installs.
//!
//! Its other parts: the reference model the kernel is compared with (`reference`), the
//! model's flow table beside the kernel's (`flows`), the configuration changes made as the
//! CLI makes them (`config`) and the mix a run must have built and seen (`mix`).

pub mod config;
pub mod flows;
pub mod mix;
pub mod reference;

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use etherparse::Ipv4HeaderSlice;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};

use reference::{SegmentKind, ipv4_header_checksum};

use crate::packet::{
    AUTH, DEST_OPTIONS, ETH_LEN, FRAGMENT, HOP_BY_HOP, Ipv6Extension, ROUTING, Segment,
    TPID_8021AD, TPID_8021Q, Transport, insert_ipv6_extensions,
};

/// Addresses in, at the edges of, and outside the prefixes of `classifier-user/tests/fuzz_differential.rs`.
const V4_ADDRESSES: [&str; 10] = [
    "17.253.0.10",
    "17.1.2.3",
    "17.0.0.0",
    "17.255.255.255",
    "16.255.255.255",
    "23.40.1.1",
    "23.64.0.1",
    "192.0.2.10",
    "198.51.100.10",
    "10.0.0.1",
];
const V6_ADDRESSES: [&str; 8] = [
    "2620:149:a44::10",
    "2620:149:a45::1",
    "2620:149::1",
    "2620:148:ffff::1",
    "2a02:26f0::1",
    "2001:db8::10",
    "2001:db8:1::10",
    "fe80::1",
];
const PORTS: [u16; 8] = [443, 80, 5223, 7000, 53, 46000, 50000, 61000];

/// Protocols other than TCP and UDP: ICMP, ICMPv6, GRE, ESP, SCTP, no next header, mobility,
/// experimental.
const OTHER_PROTOCOLS: [u8; 8] = [1, 58, 47, 50, 132, 59, 135, 253];

/// The share of packets corrupted after they are built.
const CORRUPTION: f64 = 0.4;

/// How many recent flows a packet may reuse.
const RECENT_FLOWS: usize = 64;

/// A generated packet.
pub struct Generated {
    pub packet: Vec<u8>,
    pub corrupted: bool,
    /// An IPv6 atomic fragment header was built in (the chain may hide it, or corruption
    /// undo it).
    pub atomic_fragment: bool,
    /// Bytes follow the IP datagram in the frame: Ethernet padding, or a length field that
    /// ends the datagram early.
    pub padded: bool,
}

/// Where the generator put the fields that corruption aims at.
#[derive(Default)]
struct Layout {
    /// The EtherType fields: Ethernet's, then each tag's.
    ether_types: Vec<usize>,
    l3: Option<usize>,
    ipv4: bool,
    /// The IPv6 extension headers.
    extensions: Vec<usize>,
    l4: Option<usize>,
    tcp: bool,
    udp: bool,
    /// The kind bytes of the TCP options.
    options: Vec<usize>,
    /// Where the headers end: corruption mostly lands before it.
    headers_end: usize,
    atomic_fragment: bool,
    padded: bool,
}

pub struct Generator {
    rng: StdRng,
    recent: Vec<Segment>,
    /// What was built and how it was corrupted (packets; options for the two option counts):
    /// the mix, for the report.
    pub mix: BTreeMap<&'static str, u64>,
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            recent: Vec::with_capacity(RECENT_FLOWS),
            mix: BTreeMap::new(),
        }
    }

    fn note(&mut self, what: &'static str) {
        *self.mix.entry(what).or_default() += 1;
    }

    pub fn packet(&mut self) -> Generated {
        let (mut packet, layout) = if self.rng.random_bool(0.06) {
            self.non_ip()
        } else {
            self.ip_packet()
        };
        let corrupted = self.rng.random_bool(CORRUPTION);
        if corrupted {
            self.corrupt(&mut packet, &layout);
        }
        Generated {
            packet,
            corrupted,
            atomic_fragment: layout.atomic_fragment,
            padded: layout.padded,
        }
    }

    fn vlan_count(&mut self) -> usize {
        let (count, name) = match self.rng.random_range(0..100) {
            0..60 => return 0,
            60..85 => (1, "1 VLAN tag"),
            85..97 => (2, "2 VLAN tags"),
            _ => (3, "3 VLAN tags"),
        };
        self.note(name);
        count
    }

    fn vlan_tags(&mut self, count: usize) -> Vec<(u16, u16)> {
        (0..count)
            .map(|_| {
                let tpid = *[TPID_8021Q, TPID_8021AD].choose(&mut self.rng).unwrap();
                (tpid, self.rng.random_range(0..4096))
            })
            .collect()
    }

    /// ARP, LLDP, MACsec, MPLS, old QinQ, Wake-on-LAN, an 802.3 length or anything, maybe
    /// behind tags.
    fn non_ip(&mut self) -> (Vec<u8>, Layout) {
        self.note("non-IP");
        let ether_type = match self.rng.random_range(0..8) {
            0 => 0x0806,
            1 => 0x88cc,
            2 => 0x88e5,
            3 => 0x8847,
            4 => 0x9100,
            5 => 0x0842,
            6 => self.rng.random_range(0..0x600),
            _ => self.rng.random(),
        };
        let mut packet: Vec<u8> = (0..12).map(|_| self.rng.random()).collect();
        let tags = self.vlan_count();
        let mut layout = Layout::default();
        for (tpid, id) in self.vlan_tags(tags) {
            layout.ether_types.push(packet.len());
            packet.extend_from_slice(&tpid.to_be_bytes());
            packet.extend_from_slice(&id.to_be_bytes());
        }
        layout.ether_types.push(packet.len());
        packet.extend_from_slice(&u16::to_be_bytes(ether_type));
        layout.headers_end = packet.len();
        let len = self.rng.random_range(0..=60);
        packet.extend((0..len).map(|_| self.rng.random::<u8>()));
        (packet, layout)
    }

    fn address(&mut self, v6: bool) -> IpAddr {
        let random = self.rng.random_bool(0.15);
        match (v6, random) {
            (false, false) => V4_ADDRESSES.choose(&mut self.rng).unwrap().parse().unwrap(),
            (true, false) => V6_ADDRESSES.choose(&mut self.rng).unwrap().parse().unwrap(),
            (false, true) => IpAddr::V4(Ipv4Addr::from(self.rng.random::<u32>())),
            (true, true) => IpAddr::V6(Ipv6Addr::from(self.rng.random::<u128>())),
        }
    }

    fn port(&mut self) -> u16 {
        if self.rng.random_bool(0.6) {
            *PORTS.choose(&mut self.rng).unwrap()
        } else {
            self.rng.random()
        }
    }

    /// A flow: a recent one (either direction) about a third of the time, else a new one.
    fn flow(&mut self) -> Segment {
        if !self.recent.is_empty() && self.rng.random_bool(0.35) {
            let flow = self.recent.choose(&mut self.rng).unwrap().clone();
            return if self.rng.random_bool(0.5) {
                flow.reply()
            } else {
                flow
            };
        }
        let v6 = self.rng.random_bool(0.5);
        let (src, dst) = (self.address(v6), self.address(v6));
        let (src_port, dst_port) = (self.port(), self.port());
        let transport = if self.rng.random_bool(0.72) {
            Transport::Tcp {
                syn: false,
                ack: true,
                rst: false,
                options: Vec::new(),
            }
        } else {
            Transport::Udp
        };
        let flow = Segment {
            src,
            dst,
            src_port,
            dst_port,
            transport,
            vlans: Vec::new(),
            tos: 0,
            flow_label: 0,
            payload: Vec::new(),
        };
        if self.recent.len() == RECENT_FLOWS {
            let index = self.rng.random_range(0..RECENT_FLOWS);
            self.recent[index] = flow.clone();
        } else {
            self.recent.push(flow.clone());
        }
        flow
    }

    fn ip_packet(&mut self) -> (Vec<u8>, Layout) {
        let mut segment = self.flow();
        // Now and then a full-size segment: the headers are what is read, wherever they end.
        // Often none, as in handshakes and pure ACKs (MP_CAPABLE's length depends on it).
        let payload_len = match self.rng.random_range(0..100) {
            0..2 => self.rng.random_range(100..=1400),
            2..40 => 0,
            _ => self.rng.random_range(1..=40),
        };
        segment.payload = (0..payload_len).map(|_| self.rng.random()).collect();
        let mut option_starts = Vec::new();
        if let Transport::Tcp {
            syn,
            ack,
            rst,
            options,
        } = &mut segment.transport
        {
            (*syn, *ack) = (self.rng.random(), self.rng.random());
            *rst = self.rng.random_bool(0.08);
            let kind = SegmentKind {
                syn: *syn,
                ack: *ack,
                rst: *rst,
                payload: payload_len > 0,
            };
            (*options, option_starts) = self.tcp_options(kind);
        }
        let tags = self.vlan_count();
        segment.vlans = self.vlan_tags(tags);
        segment.tos = self.rng.random();
        segment.flow_label = self.rng.random_range(0..1 << 20);
        // Some UDP flows carry another protocol instead: the header stays, the number changes.
        let other = matches!(segment.transport, Transport::Udp) && self.rng.random_bool(0.25);
        self.note(if segment.src.is_ipv4() {
            "IPv4"
        } else {
            "IPv6"
        });
        self.note(match segment.transport {
            _ if other => "other protocol",
            Transport::Tcp { .. } => "TCP",
            Transport::Udp => "UDP",
        });

        let mut packet = segment.build();
        let l3 = ETH_LEN + 4 * tags;
        let mut layout = Layout {
            ether_types: (0..=tags).map(|tag| 12 + 4 * tag).collect(),
            l3: Some(l3),
            ipv4: segment.src.is_ipv4(),
            ..Layout::default()
        };
        let l4 = if layout.ipv4 {
            self.finish_ipv4(&mut packet, l3, other)
        } else {
            self.finish_ipv6(&mut packet, l3, other, &mut layout)
        };
        layout.l4 = Some(l4);
        layout.headers_end = match &segment.transport {
            _ if other => l4,
            Transport::Tcp { options, .. } => {
                layout.tcp = true;
                layout.options = option_starts.iter().map(|at| l4 + 20 + at).collect();
                l4 + 20 + options.len()
            }
            Transport::Udp => {
                layout.udp = true;
                l4 + 8
            }
        };
        self.bound_datagram(&mut packet, &mut layout);
        (packet, layout)
    }

    /// Sometimes an IP length field that ends the datagram before the frame does: Ethernet
    /// padding after it (a short datagram padded to the 60-byte minimum, or a trailer), a
    /// length that leaves out the payload or cuts into the transport header; or a length of
    /// 0, which defers to the frame (docs/design.md, 'Parsing and its bounds').
    fn bound_datagram(&mut self, packet: &mut Vec<u8>, layout: &mut Layout) {
        let (Some(l3), Some(l4)) = (layout.l3, layout.l4) else {
            return;
        };
        // The length field, and the bytes before the part of the datagram it counts.
        let (field, counted_from) = if layout.ipv4 {
            (l3 + 2, l3)
        } else {
            (l3 + 4, l3 + 40)
        };
        let length = match self.rng.random_range(0..100) {
            0..12 => {
                self.note("Ethernet padding after the datagram");
                let padding = if packet.len() < 60 && self.rng.random_bool(0.7) {
                    60 - packet.len()
                } else {
                    self.rng.random_range(1..=24)
                };
                let zeros = self.rng.random_bool(0.5);
                packet.extend((0..padding).map(|_| if zeros { 0 } else { self.rng.random() }));
                layout.padded = true;
                return;
            }
            12..16 if layout.headers_end < packet.len() => {
                self.note("IP length ends at the transport header");
                layout.headers_end - counted_from
            }
            16..19 if layout.headers_end > l4 => {
                self.note("IP length cuts the transport header");
                self.rng.random_range(l4..layout.headers_end) - counted_from
            }
            19..22 => {
                self.note("IP length 0 (the frame's)");
                0
            }
            22..24 if layout.ipv4 => {
                self.note("IPv4 total length below its header");
                self.rng.random_range(1..l4 - l3)
            }
            _ => return,
        };
        layout.padded = length != 0;
        packet[field..field + 2].copy_from_slice(&(length as u16).to_be_bytes());
        if layout.ipv4 {
            fix_ipv4_checksum(packet, l3);
        }
    }

    /// IPv4 options, fragments, another protocol; returns where the transport header starts.
    fn finish_ipv4(&mut self, packet: &mut Vec<u8>, l3: usize, other: bool) -> usize {
        if other {
            packet[l3 + 9] = *OTHER_PROTOCOLS.choose(&mut self.rng).unwrap();
        }
        let mut header_len = 20;
        if self.rng.random_bool(0.12) {
            self.note("IPv4 options");
            let options = self.ipv4_options();
            header_len += options.len();
            packet.splice(l3 + 20..l3 + 20, options);
            packet[l3] = 0x40 | (header_len / 4) as u8;
            let total = u16::try_from(packet.len() - l3).unwrap();
            packet[l3 + 2..l3 + 4].copy_from_slice(&total.to_be_bytes());
        }
        let dont_fragment = if self.rng.random_bool(0.3) { 0x4000 } else { 0 };
        let fragment = match self.rng.random_range(0..10) {
            // First fragment, a middle or last one.
            0 => 0x2000,
            1 => self.rng.random_range(1..0x2000) | (self.rng.random_range(0..2) << 13),
            _ => 0,
        };
        if fragment != 0 {
            self.note("IPv4 fragment");
        }
        packet[l3 + 6..l3 + 8].copy_from_slice(&u16::to_be_bytes(dont_fragment | fragment));
        fix_ipv4_checksum(packet, l3);
        l3 + header_len
    }

    /// 4 to 40 bytes of IPv4 options (NOP, EOL, record route, anything): the classifier skips
    /// them by IHL and reads none.
    fn ipv4_options(&mut self) -> Vec<u8> {
        let len = 4 * self.rng.random_range(1..=10);
        let mut options = Vec::with_capacity(len);
        while options.len() < len {
            match self.rng.random_range(0..4) {
                0 => options.push(1),
                1 => options.push(0),
                2 if len - options.len() >= 7 => options.extend_from_slice(&[7, 7, 4, 0, 0, 0, 0]),
                _ => options.push(self.rng.random()),
            }
        }
        options.truncate(len);
        options
    }

    /// Another protocol, a chain of extension headers; returns where the transport starts.
    fn finish_ipv6(
        &mut self,
        packet: &mut Vec<u8>,
        l3: usize,
        other: bool,
        layout: &mut Layout,
    ) -> usize {
        if other {
            packet[l3 + 6] = *OTHER_PROTOCOLS.choose(&mut self.rng).unwrap();
        }
        if !self.rng.random_bool(0.3) {
            return l3 + 40;
        }
        let depth = match self.rng.random_range(0..100) {
            0..5 => 7,
            5..7 => 8,
            // A fragment header alone, atomic half the time: what some stacks send.
            7..30 => 0,
            _ => self.rng.random_range(1..=6),
        };
        if depth == 0 {
            return self.ipv6_fragment_only(packet, l3, layout);
        }
        self.note(if depth > 6 {
            "IPv6 extension chain deeper than 6"
        } else {
            "IPv6 extension chain of 1-6"
        });
        let chain: Vec<Ipv6Extension> = (0..depth)
            .map(|_| {
                let (kind, len) = match self.rng.random_range(0..10) {
                    // Up to 800 bytes of options, rarely: lengths are a byte in 8-byte units.
                    0..3 if self.rng.random_bool(0.03) => {
                        (DEST_OPTIONS, 8 * self.rng.random_range(5..=100))
                    }
                    0..3 => (DEST_OPTIONS, 8 * self.rng.random_range(1..=4)),
                    3..5 => (HOP_BY_HOP, 8 * self.rng.random_range(1..=3)),
                    5..7 => (ROUTING, 8 * self.rng.random_range(1..=5)),
                    7..9 if self.rng.random_bool(0.1) => (AUTH, 8),
                    7..9 => (AUTH, 4 * self.rng.random_range(3..=6)),
                    _ => (FRAGMENT, 8),
                };
                Ipv6Extension { kind, len }
            })
            .collect();
        insert_ipv6_extensions(packet, &chain);
        let mut at = l3 + 40;
        for extension in &chain {
            layout.extensions.push(at);
            // Random bodies: options, routing data, fragment offsets and M flags, SPIs.
            for byte in &mut packet[at + 2..at + extension.len] {
                *byte = self.rng.random();
            }
            if extension.kind == FRAGMENT && self.rng.random_bool(0.5) {
                self.make_atomic(packet, at, layout);
            }
            at += extension.len;
        }
        at
    }

    /// A fragment header as the whole chain: atomic (docs/design.md, 'Fragments': then the
    /// transport after it is parsed) or a real fragment.
    fn ipv6_fragment_only(
        &mut self,
        packet: &mut Vec<u8>,
        l3: usize,
        layout: &mut Layout,
    ) -> usize {
        insert_ipv6_extensions(
            packet,
            &[Ipv6Extension {
                kind: FRAGMENT,
                len: 8,
            }],
        );
        let at = l3 + 40;
        layout.extensions.push(at);
        for byte in &mut packet[at + 2..at + 8] {
            *byte = self.rng.random();
        }
        if self.rng.random_bool(0.6) {
            self.make_atomic(packet, at, layout);
        } else {
            self.note("IPv6 fragment header alone, a real fragment");
        }
        at + 8
    }

    /// Offset 0 and M clear in the fragment header at `at`; the two reserved bits and the
    /// identification stay random.
    fn make_atomic(&mut self, packet: &mut [u8], at: usize, layout: &mut Layout) {
        self.note("IPv6 atomic fragment");
        packet[at + 2] = 0;
        packet[at + 3] &= 0x06;
        layout.atomic_fragment = true;
    }

    /// A TCP option list of at most 40 bytes, padded to a multiple of 4; and where each
    /// option starts.
    fn tcp_options(&mut self, segment: SegmentKind) -> (Vec<u8>, Vec<usize>) {
        let mut options = Vec::new();
        let mut starts = Vec::new();
        if self.rng.random_bool(0.15) {
            return (options, starts);
        }
        for _ in 0..self.rng.random_range(1..=6) {
            let option = self.tcp_option(segment);
            if options.len() + option.len() > 40 {
                continue;
            }
            starts.push(options.len());
            options.extend_from_slice(&option);
        }
        if options.len() < 40 && self.rng.random_bool(0.03) {
            // A kind in the header's last byte, with no room for its length.
            while options.len() % 4 != 3 {
                options.push(1);
            }
            starts.push(options.len());
            options.push(self.rng.random_range(2..=255));
        }
        let pad = if self.rng.random_bool(0.7) { 0 } else { 1 };
        while options.len() % 4 != 0 {
            options.push(pad);
        }
        (options, starts)
    }

    fn tcp_option(&mut self, segment: SegmentKind) -> Vec<u8> {
        match self.rng.random_range(0..100) {
            0..12 => vec![1],
            12..15 => vec![0],
            15..23 => vec![2, 4, 0x05, self.rng.random()],
            23..29 => vec![3, 3, self.rng.random_range(0..15)],
            29..35 => vec![4, 2],
            35..40 => {
                let blocks = self.rng.random_range(1..=4);
                self.with_body(5, 2 + 8 * blocks)
            }
            40..50 => self.with_body(8, 10),
            50..82 => {
                self.note("option 30 (TCP options built)");
                match self.rng.random_range(0..100) {
                    0..65 => {
                        self.note("option 30 fitting its segment (TCP options built)");
                        self.fitting_mptcp_option(segment)
                    }
                    65..85 => {
                        self.note("option 30 not fitting (TCP options built)");
                        self.unfitting_mptcp_option(segment)
                    }
                    _ => self.mptcp_option(),
                }
            }
            82..94 => {
                // Unknown kinds, experimental ones among them; one's body looks like MPTCP.
                let kind = *[6u8, 19, 27, 28, 29, 34, 69, 253, 254, 200]
                    .choose(&mut self.rng)
                    .unwrap();
                if self.rng.random_bool(0.2) {
                    vec![kind, 6, 30, 4, 0x01, 0x81]
                } else {
                    let len = self.rng.random_range(2..=12);
                    self.with_body(kind, len)
                }
            }
            _ => {
                self.note("malformed option (TCP options built)");
                self.malformed_option()
            }
        }
    }

    /// `kind`, `len`, and `len - 2` random bytes.
    fn with_body(&mut self, kind: u8, len: usize) -> Vec<u8> {
        let mut option = vec![kind, len as u8];
        option.extend((2..len).map(|_| self.rng.random::<u8>()));
        option
    }

    /// Option 30 of every subtype at the lengths RFC 8684 (and RFC 6824) give it, with a
    /// random body (flags and version mostly wrong for MP_CAPABLE, DSS flags that rarely
    /// match the length); rarely an unassigned subtype.
    fn mptcp_option(&mut self) -> Vec<u8> {
        let subtype: u8 = if self.rng.random_bool(0.05) {
            self.rng.random_range(9..16)
        } else {
            self.rng.random_range(0..9)
        };
        let lengths: &[usize] = match subtype {
            0 => &[4, 12, 20, 22, 24],
            1 => &[12, 16, 24],
            2 => &[4, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28],
            3 => &[8, 10, 16, 18, 20, 22, 28, 30],
            4 => &[4, 5, 6, 7, 8],
            5 => &[3, 4],
            6 | 7 => &[12],
            8 => &[4],
            _ => &[3, 4, 8, 12],
        };
        let len = *lengths.choose(&mut self.rng).unwrap();
        let low = if subtype == 0 {
            match self.rng.random_range(0..10) {
                0..4 => 0,
                4..9 => 1,
                _ => self.rng.random_range(0..16),
            }
        } else {
            self.rng.random_range(0..16)
        };
        let mut option = self.with_body(30, len);
        option[2] = (subtype << 4) | low;
        option
    }

    /// An option 30 that Linux accepts on `segment` (docs/design.md, 'TCP options and
    /// MPTCP'): mostly MP_CAPABLE and MP_JOIN on the handshake, MP_TCPRST on resets, and any
    /// subtype after the handshake, each at the length its step and flags call for.
    fn fitting_mptcp_option(&mut self, segment: SegmentKind) -> Vec<u8> {
        let subtype = match (segment.syn, segment.ack) {
            (true, false) if self.rng.random_bool(0.9) => {
                *[0, 0, 0, 1].choose(&mut self.rng).unwrap()
            }
            (true, true) if self.rng.random_bool(0.8) => {
                *[0, 0, 0, 1].choose(&mut self.rng).unwrap()
            }
            _ if segment.rst && self.rng.random_bool(0.4) => 8,
            _ => self.rng.random_range(0..8),
        };
        let (len, third, fourth) = match subtype {
            0 => self.fitting_mp_capable(segment),
            1 => {
                let len = match (segment.syn, segment.ack) {
                    (true, false) => 12,
                    (true, true) => 16,
                    _ => 24,
                };
                (len, 0x10 | self.rng.random_range(0..2), self.rng.random())
            }
            2 => {
                let flags: u8 = self.rng.random_range(0..32);
                let ack = match flags & 0x03 {
                    0 | 2 => 0,
                    1 => 4,
                    _ => 8,
                };
                let mapping = match flags & 0x0c {
                    0 | 8 => 0,
                    4 => 10,
                    _ => 14,
                };
                let checksum = if mapping != 0 && self.rng.random_bool(0.3) {
                    2
                } else {
                    0
                };
                (4 + ack + mapping + checksum, 0x20, flags)
            }
            3 => {
                let (low, lengths): (u8, &[usize]) = match self.rng.random_range(0..4) {
                    0 => (0, &[16, 18, 28, 30]),
                    1 => (1, &[8, 10, 20, 22]),
                    2 => (4, &[8, 10]),
                    _ => (6, &[20, 22]),
                };
                (
                    *lengths.choose(&mut self.rng).unwrap(),
                    0x30 | low,
                    self.rng.random(),
                )
            }
            4 => (self.rng.random_range(4..=11), 0x40, self.rng.random()),
            5 => (
                *[3, 4].choose(&mut self.rng).unwrap(),
                0x50 | self.rng.random_range(0..2),
                self.rng.random(),
            ),
            6 => (12, 0x60, 0),
            7 => (12, 0x70, 0),
            _ => (4, 0x80, self.rng.random()),
        };
        mptcp_bytes(&mut self.rng, len, third, fourth)
    }

    /// MP_CAPABLE for the handshake step of `segment`: its length, its third byte (subtype
    /// and version) and its flags.
    fn fitting_mp_capable(&mut self, segment: SegmentKind) -> (usize, u8, u8) {
        if self.rng.random_bool(0.15) {
            // RFC 6824 (version 0), as iOS still sends it: 12 bytes on the SYN and SYN/ACK.
            let len = if segment.syn { 12 } else { 20 };
            return (len, 0x00, self.rng.random());
        }
        // HMAC-SHA256, with or without checksums (A) and "no join to address 0" (C).
        let flags = 0x01 | *[0x00, 0x80, 0x20, 0xa0].choose(&mut self.rng).unwrap();
        match (segment.syn, segment.ack, segment.payload) {
            // A SYN may offer a later version.
            (true, false, _) if self.rng.random_bool(0.1) => {
                (4, self.rng.random_range(2..16), flags)
            }
            (true, false, _) => (4, 0x01, flags),
            (true, true, _) => (12, 0x01, flags),
            (false, _, false) => (20, 0x01, flags),
            (false, _, true) => (*[22, 24].choose(&mut self.rng).unwrap(), 0x01, flags),
        }
    }

    /// An option 30 that Linux would skip on `segment`: the wrong length for its subtype or
    /// handshake step, MP_CAPABLE with other crypto or the extensibility bit or a later
    /// version after the SYN, ADD_ADDR with an unknown version nibble, MP_TCPRST without a
    /// reset.
    fn unfitting_mptcp_option(&mut self, segment: SegmentKind) -> Vec<u8> {
        let (len, third, fourth) = match self.rng.random_range(0..10) {
            0 => {
                // MP_CAPABLE at the length of another step.
                let (len, third, flags) = self.fitting_mp_capable(segment);
                let other = *[4, 12, 20, 22, 24]
                    .iter()
                    .filter(|&&other| other != len && !(len >= 22 && other >= 22))
                    .collect::<Vec<_>>()
                    .choose(&mut self.rng)
                    .unwrap();
                (*other, third, flags)
            }
            1 => {
                let (len, third, flags) = self.fitting_mp_capable(segment);
                if third >> 4 == 0 && third & 0x0f == 0 {
                    // Version 0 has no flags to refuse: make it the wrong length instead.
                    (len + 4, third, flags)
                } else {
                    let bad = *[0x00, 0x02, 0x41, 0x03, 0x11]
                        .choose(&mut self.rng)
                        .unwrap();
                    (len, third, (flags & 0xa0) | bad)
                }
            }
            2 if !segment.syn => (20, 0x02, 0x01),
            2 => (*[8, 20].choose(&mut self.rng).unwrap(), 0x10, 0),
            3 => {
                // DSS one byte off what its flags call for.
                let flags: u8 = self.rng.random_range(0..16);
                let expected = 4
                    + [0, 4, 0, 8][usize::from(flags & 0x03)]
                    + [0, 10, 0, 14][usize::from((flags >> 2) & 0x03)];
                (expected + 1, 0x20, flags)
            }
            4 => (
                *[16, 18].choose(&mut self.rng).unwrap(),
                0x30 | *[2, 3, 5, 7, 8, 15].choose(&mut self.rng).unwrap(),
                0,
            ),
            5 => (*[3, 12].choose(&mut self.rng).unwrap(), 0x40, 0),
            6 => (5, 0x50, 0),
            7 => (
                *[8, 16].choose(&mut self.rng).unwrap(),
                0x60 | (self.rng.random_range(0..2) << 4),
                0,
            ),
            8 if !segment.rst => (4, 0x80, 0),
            _ => (*[3, 5, 6].choose(&mut self.rng).unwrap(), 0x80, 0),
        };
        mptcp_bytes(&mut self.rng, len, third, fourth)
    }

    /// Lengths 0 and 1, MPTCP without room for its subtype, lengths past the header.
    fn malformed_option(&mut self) -> Vec<u8> {
        let kind = if self.rng.random_bool(0.5) {
            30
        } else {
            self.rng.random_range(2..=255)
        };
        match self.rng.random_range(0..4) {
            0 => vec![kind, 0],
            1 => vec![kind, 1],
            2 => vec![30, 2],
            _ => vec![kind, self.rng.random_range(12..=255), 0, 0],
        }
    }

    /// One to three corruptions: truncation, byte flips, lying lengths, types and versions.
    fn corrupt(&mut self, packet: &mut Vec<u8>, layout: &Layout) {
        for _ in 0..self.rng.random_range(1..=3) {
            match self.rng.random_range(0..100) {
                0..25 => {
                    self.note("corruption: truncation");
                    let end = packet.len().min(layout.headers_end + 8).max(ETH_LEN);
                    let cut = if self.rng.random_bool(0.7) {
                        self.rng.random_range(ETH_LEN..=end)
                    } else {
                        self.rng.random_range(ETH_LEN..=packet.len())
                    };
                    packet.truncate(cut);
                }
                25..55 => {
                    self.note("corruption: byte flips");
                    for _ in 0..self.rng.random_range(1..=4) {
                        let end = if self.rng.random_bool(0.75) {
                            layout.headers_end.min(packet.len())
                        } else {
                            packet.len()
                        };
                        let at = self.rng.random_range(0..end.max(1));
                        set(packet, at, self.rng.random());
                    }
                }
                55..75 => {
                    self.note("corruption: a length lies");
                    self.lie_about_a_length(packet, layout);
                }
                75..90 => {
                    self.note("corruption: a type or version lies");
                    self.lie_about_a_type(packet, layout);
                }
                _ => {
                    self.note("corruption: an option lies");
                    self.lie_about_an_option(packet, layout);
                }
            }
        }
        // Half the time the IPv4 checksum is made right again, so that the "a valid checksum
        // stays valid" check sees odd headers too.
        if let (Some(l3), true) = (layout.l3, layout.ipv4) {
            if self.rng.random_bool(0.5) {
                fix_ipv4_checksum(packet, l3);
            }
        }
    }

    fn lie_about_a_length(&mut self, packet: &mut [u8], layout: &Layout) {
        let Some(l3) = layout.l3 else {
            return;
        };
        let nibble = self.rng.random_range(0..16u8);
        match self.rng.random_range(0..5) {
            0 if layout.ipv4 => update(packet, l3, |b| (b & 0xf0) | nibble),
            1 if layout.ipv4 => set(
                packet,
                l3 + 2 + self.rng.random_range(0..2),
                self.rng.random(),
            ),
            0 | 1 => set(
                packet,
                l3 + 4 + self.rng.random_range(0..2),
                self.rng.random(),
            ),
            2 if !layout.extensions.is_empty() => {
                let at = *layout.extensions.choose(&mut self.rng).unwrap();
                let len = if self.rng.random_bool(0.5) {
                    self.rng.random_range(0..4)
                } else {
                    self.rng.random()
                };
                set(packet, at + 1, len);
            }
            _ => match layout.l4 {
                Some(l4) if layout.tcp => update(packet, l4 + 12, |b| (nibble << 4) | (b & 0x0f)),
                Some(l4) if layout.udp => set(
                    packet,
                    l4 + 4 + self.rng.random_range(0..2),
                    self.rng.random(),
                ),
                _ => {}
            },
        }
    }

    fn lie_about_a_type(&mut self, packet: &mut [u8], layout: &Layout) {
        let protocol = *[0u8, 6, 17, 43, 44, 51, 60, 59, 58, self.rng.random()]
            .choose(&mut self.rng)
            .unwrap();
        match (self.rng.random_range(0..4), layout.l3) {
            (0, _) | (_, None) => {
                let at = *layout.ether_types.choose(&mut self.rng).unwrap();
                let ether_type: u16 = *[0x0800, 0x86dd, 0x8100, 0x88a8, 0x0806, self.rng.random()]
                    .choose(&mut self.rng)
                    .unwrap();
                let [high, low] = ether_type.to_be_bytes();
                set(packet, at, high);
                set(packet, at + 1, low);
            }
            (1, Some(l3)) => update(packet, l3, |b| {
                (self.rng.random_range(0..16) << 4) | (b & 0x0f)
            }),
            (2, Some(l3)) if layout.ipv4 => {
                // Fragment flags and offset.
                set(packet, l3 + 6, self.rng.random());
                set(packet, l3 + 7, self.rng.random());
            }
            (_, Some(l3)) => {
                let at = match layout.extensions.choose(&mut self.rng) {
                    Some(&extension) if self.rng.random_bool(0.5) => extension,
                    _ if layout.ipv4 => l3 + 9,
                    _ => l3 + 6,
                };
                set(packet, at, protocol);
            }
        }
    }

    fn lie_about_an_option(&mut self, packet: &mut [u8], layout: &Layout) {
        let Some(&at) = layout.options.choose(&mut self.rng) else {
            return self.lie_about_a_length(packet, layout);
        };
        match self.rng.random_range(0..4) {
            0 => set(packet, at, 30),
            1 => set(packet, at, self.rng.random()),
            2 => set(packet, at + 1, self.rng.random_range(0..4)),
            _ => update(packet, at + 1, |len| {
                len.wrapping_add(self.rng.random_range(1..=3))
                    .wrapping_sub(2)
            }),
        }
    }
}

/// Option 30 of `len` bytes: its third and fourth bytes given (the fourth if it has one),
/// the rest random.
fn mptcp_bytes(rng: &mut StdRng, len: usize, third: u8, fourth: u8) -> Vec<u8> {
    let mut option = vec![30, len as u8, third];
    if len > 3 {
        option.push(fourth);
    }
    option.extend((option.len()..len).map(|_| rng.random::<u8>()));
    option
}

/// Sets a byte, if the packet (maybe truncated already) still has it.
fn set(packet: &mut [u8], at: usize, value: u8) {
    if let Some(byte) = packet.get_mut(at) {
        *byte = value;
    }
}

fn update(packet: &mut [u8], at: usize, change: impl FnOnce(u8) -> u8) {
    if let Some(byte) = packet.get_mut(at) {
        *byte = change(*byte);
    }
}

/// Recomputes the IPv4 header checksum, when there is a whole header to sum.
fn fix_ipv4_checksum(packet: &mut [u8], l3: usize) {
    let Some(header_len) = packet
        .get(l3..)
        .and_then(|header| Ipv4HeaderSlice::from_slice(header).ok())
        .map(|header| header.slice().len())
    else {
        return;
    };
    let checksum = ipv4_header_checksum(&packet[l3..l3 + header_len]);
    packet[l3 + 10..l3 + 12].copy_from_slice(&checksum.to_be_bytes());
}
