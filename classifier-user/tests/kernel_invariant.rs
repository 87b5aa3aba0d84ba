//! The data path's promise, checked on 10,000 random and mutated packets (seeded, so a
//! failure reproduces): XDP_PASS always, no byte changed but the DSCP bits and the IPv4
//! checksum, and a checksum that was valid stays valid.

use classifier_testkit as support;

use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use support::{
    Kernel, LIST_APPLE, XDP_PASS, mptcp,
    packet::{
        DEST_OPTIONS, HOP_BY_HOP, Ipv6Extension, ROUTING, Segment, TPID_8021AD, TPID_8021Q,
        insert_ipv6_extensions, ipv4_checksum_ok,
    },
};

const PACKETS: usize = 10_000;
const SEED: u64 = 0x5eed_c1a5_51f1_e400;

const V4: [&str; 4] = ["192.0.2.10", "17.253.0.10", "198.51.100.10", "17.0.0.1"];
const V6: [&str; 4] = [
    "2001:db8:1::10",
    "2620:149:a44::10",
    "2001:db8::10",
    "2620:149::1",
];

fn random_options(rng: &mut StdRng) -> Vec<u8> {
    let pieces: [Vec<u8>; 8] = [
        mptcp::mp_capable_v0_syn(),
        mptcp::mp_capable_v1_syn(),
        mptcp::mp_join_syn(),
        mptcp::dss(true),
        mptcp::mp_prio(),
        mptcp::syn_options(),
        vec![mptcp::NOP],
        vec![8, 10, 0, 0, 0, 1, 0, 0, 0, 2],
    ];
    let mut options = Vec::new();
    for _ in 0..rng.random_range(0..4) {
        let piece = pieces.choose(rng).expect("pieces");
        if options.len() + piece.len() <= 40 {
            options.extend_from_slice(piece);
        }
    }
    options
}

fn random_packet(rng: &mut StdRng) -> Vec<u8> {
    let v6 = rng.random_bool(0.4);
    let pool = if v6 { &V6 } else { &V4 };
    let (src, dst) = (*pool.choose(rng).unwrap(), *pool.choose(rng).unwrap());
    let ports = (rng.random_range(1..65535), rng.random_range(1..65535));
    let mut segment = if rng.random_bool(0.8) {
        Segment::tcp(src, dst, ports.0, ports.1).options(&random_options(rng))
    } else {
        Segment::udp(src, dst, ports.0, ports.1)
    };
    segment = segment
        .tos(rng.random())
        .payload(&vec![0xab; rng.random_range(0..64)]);
    for _ in 0..rng.random_range(0..=2) {
        segment = segment.vlan(*[TPID_8021Q, TPID_8021AD].choose(rng).unwrap(), 7);
    }
    let mut packet = segment.build();
    if v6 && rng.random_bool(0.3) {
        let kinds = [HOP_BY_HOP, ROUTING, DEST_OPTIONS];
        let chain: Vec<Ipv6Extension> = (0..rng.random_range(1..4))
            .map(|_| Ipv6Extension {
                kind: *kinds.choose(rng).unwrap(),
                len: 8,
            })
            .collect();
        insert_ipv6_extensions(&mut packet, &chain);
    }
    packet
}

/// Flips bytes, truncates, or both (never below the 14 bytes the kernel guarantees).
fn mutate(rng: &mut StdRng, packet: &mut Vec<u8>) {
    if rng.random_bool(0.6) {
        for _ in 0..rng.random_range(1..=4) {
            let index = rng.random_range(0..packet.len());
            packet[index] = rng.random();
        }
    }
    if rng.random_bool(0.3) {
        let len = rng.random_range(14..=packet.len());
        packet.truncate(len);
    }
}

/// Where the IP header is, by this test's own reading of Ethernet and VLAN tags (not the
/// kernel's), and its version; None when there is no IP header to speak of.
fn ip_header(packet: &[u8]) -> Option<(usize, u8)> {
    let mut offset = 12;
    for _ in 0..=2 {
        let ether_type = u16::from_be_bytes([*packet.get(offset)?, *packet.get(offset + 1)?]);
        match ether_type {
            TPID_8021Q | TPID_8021AD => offset += 4,
            0x0800 => return Some((offset + 2, 4)),
            0x86dd => return Some((offset + 2, 6)),
            _ => return None,
        }
    }
    None
}

/// Checks one run against the invariant; returns whether the packet was rewritten.
fn check(input: &[u8], verdict: u32, output: &[u8], case: usize) -> bool {
    assert_eq!(verdict, XDP_PASS, "packet {case}: verdict");
    assert_eq!(output.len(), input.len(), "packet {case}: length");
    // The bits that may change: DSCP (6 bits) and, for IPv4, the checksum.
    let mut may_change = vec![0u8; input.len()];
    if let Some((l3, ether_version)) = ip_header(input) {
        match ether_version {
            4 if input.len() >= l3 + 20 => {
                may_change[l3 + 1] = 0xfc;
                may_change[l3 + 10] = 0xff;
                may_change[l3 + 11] = 0xff;
            }
            6 if input.len() >= l3 + 40 => {
                may_change[l3] = 0x0f;
                may_change[l3 + 1] = 0xc0;
            }
            _ => {}
        }
        if ether_version == 4 && ipv4_checksum_ok(input, l3) == Some(true) {
            assert_eq!(
                ipv4_checksum_ok(output, l3),
                Some(true),
                "packet {case}: a valid checksum must stay valid\n in: {input:02x?}\nout: {output:02x?}"
            );
        }
    }
    for (index, ((a, b), mask)) in input.iter().zip(output).zip(&may_change).enumerate() {
        assert_eq!(
            (a ^ b) & !mask,
            0,
            "packet {case}: byte {index} changed outside DSCP/checksum\n in: {input:02x?}\nout: {output:02x?}"
        );
    }
    input != output
}

#[test]
fn ten_thousand_random_and_mutated_packets_pass_and_change_only_dscp() {
    let mut kernel = Kernel::load();
    kernel.add_prefix("17.0.0.0/8", LIST_APPLE);
    kernel.add_prefix("2620:149::/32", LIST_APPLE);
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut rewritten = 0;
    let mut mutated = 0;
    for case in 0..PACKETS {
        let mut packet = random_packet(&mut rng);
        if rng.random_bool(0.5) {
            mutate(&mut rng, &mut packet);
            mutated += 1;
        }
        let result = kernel
            .classifier
            .test_run(&packet)
            .unwrap_or_else(|error| panic!("packet {case}: BPF_PROG_TEST_RUN failed: {error}"));
        if check(&packet, result.verdict, &result.packet, case) {
            rewritten += 1;
        }
    }
    let counters = kernel.classifier.maps().counters().expect("counters");
    let total = counters
        .get(classifier_common::Counter::Packets.index())
        .packets;
    assert_eq!(total, PACKETS as u64, "every packet counted once");
    let classes: u64 = classifier_common::Counter::CLASSES
        .iter()
        .map(|(_, class)| counters.get(class.index()).packets)
        .sum();
    assert_eq!(classes, total, "the classes add up to the total");
    println!("{PACKETS} packets ({mutated} mutated): {rewritten} rewritten, all passed");
    // The generator must exercise both sides of the invariant.
    assert!(
        rewritten > PACKETS / 10,
        "too few rewrites ({rewritten}) to mean anything"
    );
    assert!(rewritten < PACKETS, "nothing was left alone?");
}
