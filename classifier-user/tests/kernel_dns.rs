//! DNS responses handed to user space: only while learning is on, only responses (UDP from
//! port 53), the message byte for byte, in IPv4 and IPv6; the packet itself passes untouched.

mod support;

use classifier_common::config::CONFIG_LEARN_DNS;
use support::{Kernel, packet::Segment};

fn drain(kernel: &mut Kernel) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    while let Some(event) = kernel.classifier.maps.dns_events.next() {
        messages.push(classifier::dns::event_message(&event).to_vec());
    }
    messages
}

#[test]
fn dns_responses_reach_the_ring_buffer_only_while_learning() {
    let mut kernel = Kernel::load();
    let message: Vec<u8> = (0..=255u8).cycle().take(700).collect();
    let response = Segment::udp("198.51.100.53", "192.0.2.10", 53, 40000)
        .payload(&message)
        .build();
    let response_v6 = Segment::udp("2001:db8::53", "2001:db8:1::10", 53, 40000)
        .payload(&message)
        .build();
    let query = Segment::udp("192.0.2.10", "198.51.100.53", 40000, 53)
        .payload(&message)
        .build();

    kernel.run(&response).assert_untouched();
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
    assert_eq!(
        drain(&mut kernel),
        vec![message.clone(), message],
        "two responses, no query"
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
    let lost = kernel.classifier.maps.counters_of_slot(0).unwrap();
    let lost = lost
        .get(classifier_common::Counter::DnsLost.index())
        .packets;
    assert!(lost > 0, "no DNS response was lost");
}
