//! The four flow tables (docs/design.md, 'Flows'): IPv4 flows keyed in 16 bytes, IPv6 in 40,
//! and UDP apart from TCP, so that a flood of UDP flows (DNS alone makes one per query)
//! never evicts a TCP flow. Readers see one table with full keys.

use classifier_testkit as support;

use classifier_common::{
    Counter, FlowKey,
    limits::{FLOW_TABLE_ENTRIES, UDP_FLOW_TABLE_ENTRIES},
};
use support::{
    Kernel,
    packet::{Segment, recompute_ipv4_checksum},
};

const TCP_FLOWS: usize = 1_000;
/// More UDP flows than all of TCP's and UDP's entries together: in one shared table they
/// would push every TCP flow out.
const UDP_FLOOD: u32 = FLOW_TABLE_ENTRIES + 2 * UDP_FLOW_TABLE_ENTRIES;

fn tcp_flow(index: usize) -> Segment {
    let client = format!("100.64.{}.{}", index >> 8, index & 0xff);
    Segment::tcp(&client, "198.51.100.10", 50_000, 443)
}

fn key_of(index: usize) -> FlowKey {
    let mut key = FlowKey {
        port_a: 50_000u16.to_be_bytes(),
        port_b: 443u16.to_be_bytes(),
        protocol: 6,
        ip_version: 4,
        ..FlowKey::default()
    };
    // The canonical key: the client's (address, port) is the lesser, so it is endpoint A.
    key.addr_a[..4].copy_from_slice(&[100, 64, (index >> 8) as u8, (index & 0xff) as u8]);
    key.addr_b[..4].copy_from_slice(&[198, 51, 100, 10]);
    key
}

#[test]
fn a_udp_flood_does_not_evict_tcp_flows() {
    let kernel = Kernel::load();
    // One packet each: the kernel's LRU keeps an entry that was looked up again through a
    // flood of new ones (`fault_flow_table.rs`), so only a flow never seen again since its
    // first packet would be evicted from a shared table. This one must not be.
    for index in 0..TCP_FLOWS {
        kernel
            .classifier
            .test_run(&tcp_flow(index).build())
            .expect("BPF_PROG_TEST_RUN");
    }
    let mut udp = Segment::udp("10.0.0.0", "203.0.113.53", 40_000, 5353).build();
    for n in 0..UDP_FLOOD {
        udp[26..30].copy_from_slice(&(0x0a00_0000 + n).to_be_bytes());
        recompute_ipv4_checksum(&mut udp);
        kernel.classifier.test_run(&udp).expect("BPF_PROG_TEST_RUN");
    }
    let counters = kernel.classifier.maps().counters().expect("counters");
    assert_eq!(
        counters.get(Counter::FlowInsertFailed.index()).packets,
        0,
        "an LRU table evicts rather than refuse an insert"
    );
    let kept = (0..TCP_FLOWS)
        .filter(|&index| {
            let entry = kernel
                .classifier
                .maps()
                .flow(&key_of(index))
                .expect("reading a flow");
            entry.is_some_and(|entry| entry.packets == 1)
        })
        .count();
    assert_eq!(
        kept, TCP_FLOWS,
        "{UDP_FLOOD} UDP flows evicted TCP flows (or their counts moved)"
    );
    // The UDP table holds what it can, and no more.
    let flows = kernel.classifier.maps().flows().expect("reading the flows");
    let udp_flows = flows.iter().filter(|(key, _)| key.protocol == 17).count();
    let tcp_flows = flows.iter().filter(|(key, _)| key.protocol == 6).count();
    assert_eq!(tcp_flows, TCP_FLOWS);
    assert!(
        udp_flows <= UDP_FLOW_TABLE_ENTRIES as usize
            && udp_flows >= UDP_FLOW_TABLE_ENTRIES as usize * 9 / 10,
        "the UDP table is full and no fuller: {udp_flows}"
    );
}

#[test]
fn ipv4_and_ipv6_flows_read_back_with_their_full_keys() {
    let kernel = Kernel::load();
    let cases = [
        Segment::tcp("192.0.2.10", "198.51.100.10", 50_000, 443),
        Segment::udp("192.0.2.10", "198.51.100.10", 50_001, 443),
        Segment::tcp("2001:db8:1::10", "2001:db8::10", 50_002, 443),
        Segment::udp("2001:db8:1::10", "2001:db8::10", 50_003, 443),
    ];
    for segment in &cases {
        kernel
            .classifier
            .test_run(&segment.build())
            .expect("BPF_PROG_TEST_RUN");
    }
    let mut flows = kernel.classifier.maps().flows().expect("reading the flows");
    // The client's port, on whichever endpoint the canonical order put it.
    let client_port =
        |key: &FlowKey| u16::from_be_bytes(key.port_a).max(u16::from_be_bytes(key.port_b));
    flows.sort_by_key(|(key, _)| client_port(key));
    let seen: Vec<(u8, u8, u16)> = flows
        .iter()
        .map(|(key, _)| (key.ip_version, key.protocol, client_port(key)))
        .collect();
    assert_eq!(
        seen,
        [
            (4, 6, 50_000),
            (4, 17, 50_001),
            (6, 6, 50_002),
            (6, 17, 50_003)
        ],
        "one flow in each table, read back as it was keyed"
    );
    let (v4, _) = flows[0];
    // 192.0.2.10 is the lesser address: the client is endpoint A.
    assert_eq!(&v4.addr_a[..4], &[192, 0, 2, 10]);
    assert_eq!(&v4.addr_b[..4], &[198, 51, 100, 10]);
    assert_eq!(u16::from_be_bytes(v4.port_b), 443);
    assert!(
        v4.addr_a[4..]
            .iter()
            .chain(&v4.addr_b[4..])
            .all(|b| *b == 0)
    );
    for (key, entry) in &flows {
        assert_eq!(
            kernel.classifier.maps().flow(key).expect("reading a flow"),
            Some(*entry),
            "a flow is found again by the key the reader gave"
        );
    }
}
