//! The packets the per-packet benchmarks run, built with the test suite's builders.

use std::net::{IpAddr, Ipv4Addr};

use classifier_testkit::{
    mptcp,
    packet::{DEST_OPTIONS, HOP_BY_HOP, Ipv6Extension, Segment, insert_ipv6_extensions},
};

/// Addresses of the lab: a client, a server in no list, and Apple servers (17.0.0.0/8 and
/// 2620:149::/32 are in the shipped `apple` list).
pub const CLIENT_V4: &str = "192.0.2.10";
pub const OTHER_V4: &str = "198.51.100.10";
pub const APPLE_V4: &str = "17.253.0.10";
pub const CLIENT_V6: &str = "2001:db8:c0::10";
pub const OTHER_V6: &str = "2001:db8::10";
pub const APPLE_V6: &str = "2620:149:a44::10";

/// DSCP LE (RFC 8622), what the default policy marks listed traffic with.
const DSCP_LE: u8 = 1;

/// A full-size TCP segment's worth of payload is not needed: the program never reads it.
const PAYLOAD: &[u8] = &[0x5a; 64];

/// 40 bytes of options as a Linux MPTCP data segment can carry them: NOP, NOP, timestamps,
/// one SACK block, then the DSS (18 bytes).
pub fn forty_bytes_ending_in_dss() -> Vec<u8> {
    let mut options = vec![mptcp::NOP, mptcp::NOP, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
    options.extend_from_slice(&[5, 10, 0, 0, 0x10, 0, 0, 0, 0x20, 0]);
    options.extend_from_slice(&mptcp::dss(false));
    assert_eq!(options.len(), 40);
    options
}

fn tcp(src: &str, dst: &str) -> Segment {
    Segment::tcp(src, dst, 50_000, 443).payload(PAYLOAD)
}

pub fn non_ip() -> Vec<u8> {
    // An ARP request: Ethernet, then 28 bytes the program never parses.
    let mut frame = vec![0xff; 6];
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x08, 0x06]);
    frame.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    frame.extend_from_slice(&[0; 20]);
    frame
}

pub fn ipv4_tcp_no_match() -> Vec<u8> {
    tcp(CLIENT_V4, OTHER_V4).build()
}

/// NOP, NOP, timestamps: what a Linux, macOS or iOS data segment carries.
pub fn ipv4_tcp_timestamps() -> Vec<u8> {
    tcp(CLIENT_V4, OTHER_V4)
        .options(&[mptcp::NOP, mptcp::NOP, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2])
        .build()
}

pub fn ipv4_tcp_mptcp_dss() -> Vec<u8> {
    tcp(CLIENT_V4, OTHER_V4)
        .options(&forty_bytes_ending_in_dss())
        .build()
}

fn two_extensions(mut packet: Vec<u8>) -> Vec<u8> {
    let extensions = [
        Ipv6Extension {
            kind: HOP_BY_HOP,
            len: 8,
        },
        Ipv6Extension {
            kind: DEST_OPTIONS,
            len: 16,
        },
    ];
    insert_ipv6_extensions(&mut packet, &extensions);
    packet
}

pub fn ipv6_tcp_two_extensions() -> Vec<u8> {
    two_extensions(tcp(CLIENT_V6, OTHER_V6).build())
}

pub fn apple_v4() -> Vec<u8> {
    tcp(CLIENT_V4, APPLE_V4).build()
}

/// The plain IPv4 TCP packet from Apple to the client, as the classifier leaves it: DSCP LE
/// (a bulk DSCP at egress, `shape`'s default).
pub fn apple_v4_marked() -> Vec<u8> {
    tcp(APPLE_V4, CLIENT_V4).tos(DSCP_LE << 2).build()
}

pub fn ipv6_tcp_no_match() -> Vec<u8> {
    tcp(CLIENT_V6, OTHER_V6).build()
}

pub fn apple_v6() -> Vec<u8> {
    tcp(CLIENT_V6, APPLE_V6).build()
}

pub fn udp() -> Vec<u8> {
    Segment::udp(CLIENT_V4, OTHER_V4, 50_000, 443)
        .payload(PAYLOAD)
        .build()
}

/// TCP whose header is cut after 10 of its 20 bytes: counted as malformed, passed.
pub fn malformed() -> Vec<u8> {
    let mut packet = Segment::tcp(CLIENT_V4, OTHER_V4, 50_000, 443)
        .payload(&[])
        .build();
    packet.truncate(14 + 20 + 10);
    packet
}

/// Every costly step at once: IPv6 with two extension headers, 40 bytes of options ending
/// in MPTCP, a flow update, an Apple destination whose DSCP is rewritten to LE.
pub fn worst_case() -> Vec<u8> {
    two_extensions(
        tcp(CLIENT_V6, APPLE_V6)
            .options(&forty_bytes_ending_in_dss())
            .build(),
    )
}

/// `count` first packets (SYNs) of distinct flows from distinct clients to `destination`.
pub fn first_packets(destination: IpAddr, count: usize, salt: u32) -> Vec<Vec<u8>> {
    (0..count as u32)
        .map(|i| {
            let n = i.wrapping_add(salt.wrapping_mul(0x9e37_79b9));
            let port = 1024 + (n % 60_000) as u16;
            let source = match destination {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (n & 0x00ff_ffff))),
                IpAddr::V6(_) => IpAddr::V6(
                    format!("2001:db8:f::{:x}:{:x}", n >> 16, n & 0xffff)
                        .parse()
                        .expect("an address"),
                ),
            };
            Segment::tcp(&source.to_string(), &destination.to_string(), port, 443)
                .syn()
                .options(&mptcp::syn_options())
                .payload(&[])
                .build()
        })
        .collect()
}

/// A data segment of flow `index` of many established ones: distinct clients in 10.0.0.0/8
/// to the server in no list, otherwise the plain IPv4 TCP packet.
pub fn flow_packet(index: u32) -> Vec<u8> {
    let client = Ipv4Addr::from(0x0a00_0000 | (index & 0x00ff_ffff));
    tcp(&client.to_string(), OTHER_V4).build()
}
