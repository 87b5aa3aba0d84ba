//! DNS queries and answers handed to user space: only while learning is on, only UDP to or
//! from port 53, with their addresses, ports and interface, the message byte for byte, as
//! long as the UDP length says (not the frame), in IPv4 and IPv6; the packet itself passes
//! untouched. See docs/design.md, 'DNS learning'.

use classifier_testkit as support;

use classifier::dns::{Direction, DnsDatagram};
use classifier_common::{config::CONFIG_LEARN_DNS, dns::DNS_CAPTURE_LEN};
use support::{Kernel, packet::Segment};

fn drain(kernel: &mut Kernel) -> Vec<DnsDatagram> {
    let mut datagrams = Vec::new();
    for event in kernel.take_dns_events() {
        datagrams.push(DnsDatagram::decode(&event).expect("a whole DnsEvent"));
    }
    datagrams
}

fn datagram(direction: Direction, src: &str, dst: &str, message: &[u8]) -> DnsDatagram {
    DnsDatagram {
        direction,
        // BPF_PROG_TEST_RUN runs the program as if the packet came in on the loopback.
        ifindex: 1,
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        message: message.to_vec(),
    }
}

#[test]
fn dns_queries_and_answers_reach_the_ring_buffer_only_while_learning() {
    let mut kernel = Kernel::load();
    let message: Vec<u8> = (0..=255u8).cycle().take(700).collect();
    let response = Segment::udp("198.51.100.53", "192.0.2.10", 53, 40000)
        .payload(&message)
        .build();
    let response_v6 = Segment::udp("2001:db8::53", "2001:db8:1::10", 53, 40000)
        .payload(&message)
        .build();
    let query = Segment::udp("192.0.2.10", "198.51.100.53", 40000, 53)
        .payload(&message[..40])
        .build();
    let other = Segment::udp("192.0.2.10", "198.51.100.53", 40000, 5353)
        .payload(&message)
        .build();

    kernel.run(&response).assert_untouched();
    kernel.run(&query).assert_untouched();
    assert!(
        drain(&mut kernel).is_empty(),
        "learning is off: nothing handed over"
    );

    kernel.set_flag(CONFIG_LEARN_DNS, true);
    // The same flow as before: no new flow entry this time.
    kernel.run(&response).assert_untouched().assert_moved(&[
        "packets",
        "class_normal",
        "ipv4",
        "udp",
        "dns_forwarded",
    ]);
    kernel.run(&response_v6).assert_untouched();
    kernel.run(&query).assert_untouched();
    kernel.run(&other).assert_untouched();
    assert_eq!(
        drain(&mut kernel),
        vec![
            datagram(
                Direction::Answer,
                "198.51.100.53:53",
                "192.0.2.10:40000",
                &message
            ),
            datagram(
                Direction::Answer,
                "[2001:db8::53]:53",
                "[2001:db8:1::10]:40000",
                &message
            ),
            datagram(
                Direction::Query,
                "192.0.2.10:40000",
                "198.51.100.53:53",
                &message[..40]
            ),
        ],
        "two answers and a query, nothing to port 5353"
    );
}

/// The handed-over length comes from the UDP header, clamped to the buffer: a 2,100-byte
/// answer is cut at `DNS_CAPTURE_LEN` (a mask applied before the clamp made it 52 bytes),
/// and bytes after the UDP datagram (Ethernet padding, trailing junk) are never handed over.
#[test]
fn the_udp_length_says_how_much_of_the_message_is_handed_over() {
    let mut kernel = Kernel::load();
    kernel.set_flag(CONFIG_LEARN_DNS, true);
    let long: Vec<u8> = (0..2100u32).map(|i| (i % 251) as u8).collect();
    let answer = Segment::udp("198.51.100.53", "192.0.2.10", 53, 40000)
        .payload(&long)
        .build();
    kernel.run(&answer).assert_untouched();
    let handed = drain(&mut kernel);
    assert_eq!(handed.len(), 1);
    assert_eq!(handed[0].message.len(), DNS_CAPTURE_LEN);
    assert_eq!(handed[0].message, long[..DNS_CAPTURE_LEN]);

    let short: Vec<u8> = (0..60u8).collect();
    let mut padded = Segment::udp("198.51.100.53", "192.0.2.10", 53, 40001)
        .payload(&short)
        .build();
    padded.extend_from_slice(&[0xee; 40]);
    kernel.run(&padded).assert_untouched();
    let handed = drain(&mut kernel);
    assert_eq!(handed.len(), 1);
    assert_eq!(
        handed[0].message, short,
        "the frame's trailing bytes are not DNS"
    );
}

/// Kernel log records (aya-log) for the rare troubles: a full DNS ring buffer here. They
/// reach whatever `log` implementation user space gives them, at their own level.
#[test]
fn a_full_ring_buffer_is_logged_by_the_kernel() {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Records(Arc<Mutex<Vec<(log::Level, String)>>>);

    impl log::Log for Records {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &log::Record<'_>) {
            let entry = (record.level(), record.args().to_string());
            self.0.lock().unwrap().push(entry);
        }
        fn flush(&self) {}
    }

    let mut kernel = Kernel::load();
    kernel.set_flag(CONFIG_LEARN_DNS, true);
    let records = Records::default();
    let id = kernel.classifier.xdp().unwrap().info().unwrap().id();
    let mut logger = aya_log::EbpfLogger::init_from_id_with_logger(id, records.clone())
        .expect("the program carries aya-log records");
    let response = Segment::udp("198.51.100.53", "192.0.2.10", 53, 40000)
        .payload(&[0u8; 1400])
        .build();
    // 1 MiB of ring buffer holds fewer than 700 events of 1.5 KB: the rest are lost.
    for _ in 0..800 {
        kernel.classifier.test_run(&response).unwrap();
    }
    logger.flush();
    let records = records.0.lock().unwrap();
    assert!(
        records
            .iter()
            .any(|(level, text)| *level == log::Level::Debug
                && text.contains("DNS ring buffer full")),
        "{records:?}"
    );
    let lost = kernel.classifier.maps().counters_of_slot(0).unwrap();
    let lost = lost
        .get(classifier_common::Counter::DnsLost.index())
        .packets;
    assert!(lost > 0, "no DNS response was lost");
}
