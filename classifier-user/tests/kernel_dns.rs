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
