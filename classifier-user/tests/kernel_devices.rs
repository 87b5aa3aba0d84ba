//! The flow table aggregated by device (docs/design.md, 'Devices'), over flows the kernel
//! program created from packets run through it: each device is the client of its flows,
//! whichever of the flow key's endpoints it is; its flows, packets, bytes, MPTCP states and
//! lists add up; `--list` keeps only the flows in the list; the rate is the bytes between two
//! readings; a device is active while one of its flows had a packet in the last minute.

use classifier_testkit as support;

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use classifier::{
    load::ListNames,
    report::{
        devices::{DeviceView, MptcpCounts, Reading, devices, devices_per_list},
        flows::monotonic_coarse_ns,
    },
};
use support::{Kernel, LIST_APPLE, LIST_CDN, mptcp, packet::Segment};

const APPLE_SERVER: &str = "17.253.0.10";
const CDN_SERVER: &str = "198.18.0.10";
const OTHER_SERVER: &str = "198.51.100.10";
/// Greater than every server: the client is endpoint B of its flow keys.
const PHONE: &str = "203.0.113.10";
const TABLET: &str = "203.0.113.11";
/// Less than the servers: the client is endpoint A.
const LAPTOP: &str = "10.1.0.5";
const DESKTOP: &str = "2001:db8:1::10";

/// The kernel with lists apple (17.253.0.0/16) and cdn (198.18.0.0/16), and what was sent.
struct Table {
    kernel: Kernel,
    /// Per device: packets and bytes sent, all flows and those in apple.
    sent: Vec<(IpAddr, u64, u64)>,
}

impl Table {
    fn new() -> Self {
        let mut kernel = Kernel::load();
        let maps = &mut kernel.classifier.writer();
        maps.set_list_name(0, "apple").unwrap();
        maps.set_list_name(1, "cdn").unwrap();
        kernel.add_prefix("17.253.0.0/16", LIST_APPLE);
        kernel.add_prefix("198.18.0.0/16", LIST_CDN);
        Self {
            kernel,
            sent: Vec::new(),
        }
    }

    fn send(&mut self, segment: &Segment, device: &str) {
        let packet = segment.build();
        self.kernel.run(&packet);
        let device: IpAddr = device.parse().unwrap();
        match self.sent.iter_mut().find(|(d, ..)| *d == device) {
            Some((_, packets, bytes)) => {
                *packets += 1;
                *bytes += packet.len() as u64;
            }
            None => self.sent.push((device, 1, packet.len() as u64)),
        }
    }

    fn sent(&self, device: &str) -> (u64, u64) {
        let device: IpAddr = device.parse().unwrap();
        let (_, packets, bytes) = self.sent.iter().find(|(d, ..)| *d == device).unwrap();
        (*packets, *bytes)
    }

    /// An MPTCP connection from `client`: offered, then accepted, refused, or not answered.
    fn mptcp_flow(&mut self, client: &str, server: &str, port: u16, answer: Option<bool>) {
        let syn = Segment::tcp(client, server, port, 443)
            .syn()
            .options(&mptcp::mp_capable_v1_syn());
        self.send(&syn, client);
        match answer {
            Some(true) => self.send(
                &syn.reply()
                    .syn_ack()
                    .options(&mptcp::mp_capable_v1_syn_ack()),
                client,
            ),
            Some(false) => self.send(&syn.reply().syn_ack(), client),
            None => {}
        }
    }

    /// A plain TCP flow from `client`: its first packet, then `replies` from the server.
    fn tcp_flow(&mut self, client: &str, server: &str, port: u16, replies: usize) {
        let first = Segment::tcp(client, server, port, 443).syn();
        self.send(&first, client);
        for _ in 0..replies {
            self.send(&first.reply().ack().payload(&[7; 1000]), client);
        }
    }

    fn flows(&self) -> Vec<(classifier_common::FlowKey, classifier_common::FlowEntry)> {
        self.kernel.classifier.maps().flows().unwrap()
    }

    fn names(&self) -> ListNames {
        ListNames::read(self.kernel.classifier.maps()).unwrap()
    }
}

fn find<'a>(views: &'a [DeviceView], device: &str) -> &'a DeviceView {
    let device: IpAddr = device.parse().unwrap();
    views
        .iter()
        .find(|v| v.address == device)
        .unwrap_or_else(|| panic!("no device {device} in {views:#?}"))
}

/// Four devices: a phone with MPTCP flows in every state to apple and a UDP flow elsewhere, a
/// tablet with two apple downloads, a laptop (endpoint A of its keys) with one apple and one
/// cdn download, and an IPv6 desktop with one unlisted flow.
fn storm() -> Table {
    let mut table = Table::new();
    table.mptcp_flow(PHONE, APPLE_SERVER, 40001, Some(true));
    table.mptcp_flow(PHONE, APPLE_SERVER, 40002, Some(false));
    table.mptcp_flow(PHONE, APPLE_SERVER, 40003, None);
    let udp = Segment::udp(PHONE, OTHER_SERVER, 40004, 53);
    table.send(&udp, PHONE);
    table.tcp_flow(TABLET, APPLE_SERVER, 41001, 3);
    table.tcp_flow(TABLET, "17.253.0.11", 41002, 5);
    table.tcp_flow(LAPTOP, APPLE_SERVER, 42001, 2);
    table.tcp_flow(LAPTOP, CDN_SERVER, 42002, 4);
    table.tcp_flow(DESKTOP, "2001:db8::10", 43001, 1);
    table
}

#[test]
fn an_empty_table_has_no_devices() {
    let table = Table::new();
    let flows = table.flows();
    assert!(flows.is_empty(), "{flows:?}");
    let lists = devices_per_list(&flows, &table.names(), monotonic_coarse_ns());
    assert!(lists.iter().all(|l| l.devices == 0), "{lists:?}");
}

#[test]
fn each_device_is_the_client_of_its_flows_and_its_counts_add_up() {
    let table = storm();
    let flows = table.flows();
    assert_eq!(flows.len(), 9, "one entry per flow: {flows:#?}");
    let views = devices(
        &flows,
        None,
        Instant::now(),
        &table.names(),
        None,
        monotonic_coarse_ns(),
    );
    let addresses: Vec<String> = views.iter().map(|v| v.address.to_string()).collect();
    assert_eq!(
        addresses.len(),
        4,
        "the four clients and no server: {addresses:?}"
    );
    for (device, flows, lists) in [
        (PHONE, 4, vec!["apple"]),
        (TABLET, 2, vec!["apple"]),
        (LAPTOP, 2, vec!["apple", "cdn"]),
        (DESKTOP, 1, vec![]),
    ] {
        let view = find(&views, device);
        let (packets, bytes) = table.sent(device);
        assert_eq!(view.flows, flows, "{device}'s flows");
        assert_eq!(view.active_flows, flows, "{device}'s flows are all active");
        assert_eq!(
            (view.packets, view.bytes),
            (packets, bytes),
            "{device}: packets and bytes of its flows, both directions"
        );
        assert_eq!(view.lists, lists, "{device}'s lists");
        assert_eq!(view.rate_bps, 0, "one reading: no rate");
    }
    assert_eq!(
        find(&views, PHONE).mptcp,
        MptcpCounts {
            yes: 1,
            attempted: 1,
            fallback: 1
        }
    );
    assert_eq!(find(&views, TABLET).mptcp, MptcpCounts::default());
    // Biggest first: the tablet's 8 downloads of 1000 bytes lead.
    assert_eq!(views[0].address.to_string(), TABLET);
    let bytes: Vec<u64> = views.iter().map(|v| v.bytes).collect();
    assert!(bytes.is_sorted_by(|a, b| a >= b), "by bytes: {bytes:?}");
}

#[test]
fn a_list_keeps_only_its_flows_and_their_devices() {
    let table = storm();
    let flows = table.flows();
    let names = table.names();
    let apple = names.require("apple").unwrap();
    let views = devices(
        &flows,
        None,
        Instant::now(),
        &names,
        Some(apple),
        monotonic_coarse_ns(),
    );
    let mut addresses: Vec<String> = views.iter().map(|v| v.address.to_string()).collect();
    addresses.sort();
    assert_eq!(
        addresses,
        [LAPTOP, PHONE, TABLET],
        "devices with an apple flow"
    );
    // The phone's UDP flow and the laptop's cdn download are not apple's.
    assert_eq!(find(&views, PHONE).flows, 3);
    assert_eq!(find(&views, LAPTOP).flows, 1);
    assert_eq!(find(&views, LAPTOP).packets, 3);

    let lists = devices_per_list(&flows, &names, monotonic_coarse_ns());
    let count = |name: &str| {
        let list = lists.iter().find(|l| l.name == name).unwrap();
        (list.devices, list.active_devices)
    };
    assert_eq!(count("apple"), (3, 3));
    assert_eq!(count("cdn"), (1, 1));
    // A minute and a second later, with no packet since, nobody is active.
    let later = monotonic_coarse_ns() + Duration::from_secs(61).as_nanos() as u64;
    let lists = devices_per_list(&flows, &names, later);
    assert!(
        lists.iter().all(|l| l.active_devices == 0),
        "no flow active: {lists:?}"
    );
    assert!(lists.iter().any(|l| l.devices == 3), "still in the table");
}

#[test]
fn the_rate_is_the_bytes_between_two_readings() {
    let mut table = storm();
    let read_at = Instant::now();
    let reading = Reading::of(&table.flows(), read_at);
    let (_, before) = table.sent(TABLET);
    // 4 more replies on an existing flow, and a new flow of the tablet.
    let download = Segment::tcp(TABLET, APPLE_SERVER, 41001, 443);
    for _ in 0..4 {
        table.send(&download.reply().payload(&[7; 1000]), TABLET);
    }
    table.tcp_flow(TABLET, APPLE_SERVER, 41003, 1);
    let (_, after) = table.sent(TABLET);
    let views = devices(
        &table.flows(),
        Some(&reading),
        read_at + Duration::from_secs(2),
        &table.names(),
        None,
        monotonic_coarse_ns(),
    );
    assert_eq!(
        find(&views, TABLET).rate_bps,
        (after - before) * 8 / 2,
        "the tablet's bytes since the reading, over 2 s"
    );
    assert_eq!(find(&views, PHONE).rate_bps, 0, "the phone sent nothing");
}
