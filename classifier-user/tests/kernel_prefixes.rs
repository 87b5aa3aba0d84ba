//! Prefix lists: LPM hits on either address, near misses, longest prefix wins, and a cached
//! flow looked up again after the generation moves.

use classifier_testkit as support;

use support::{
    DSCP_LISTED, Kernel, LIST_APPLE, LIST_CDN,
    packet::{Segment, with_dscp},
};

fn apple_kernel() -> Kernel {
    let mut kernel = Kernel::load();
    kernel.add_prefix("17.0.0.0/8", LIST_APPLE);
    kernel.add_prefix("2620:149::/32", LIST_APPLE);
    kernel
}

#[test]
fn listed_source_or_destination_matches_in_ipv4_and_ipv6() {
    let kernel = apple_kernel();
    let cases = [
        ("192.0.2.10", "17.253.0.10", "ipv4", "destination"),
        ("17.253.0.10", "192.0.2.10", "ipv4", "source"),
        ("2001:db8:1::10", "2620:149:a44::10", "ipv6", "destination"),
        ("2620:149::1", "2001:db8:1::10", "ipv6", "source"),
    ];
    for (port, (src, dst, network, side)) in (42000..).zip(cases) {
        let packet = Segment::tcp(src, dst, port, 443).build();
        let run = kernel.run(&packet);
        assert_eq!(
            run.report.lists, LIST_APPLE,
            "{src} -> {dst}: {side} listed"
        );
        run.assert_output(&with_dscp(&packet, DSCP_LISTED))
            .assert_moved(&[
                "packets",
                "class_listed",
                network,
                "tcp",
                "flow_created",
                "list_0",
                "marked",
            ]);
    }
}

#[test]
fn addresses_just_outside_a_prefix_do_not_match() {
    let kernel = apple_kernel();
    let near_misses = [
        ("16.255.255.255", "192.0.2.10", "ipv4"),
        ("18.0.0.0", "192.0.2.10", "ipv4"),
        ("2620:14a::1", "2001:db8:1::10", "ipv6"),
        (
            "2620:148:ffff:ffff:ffff:ffff:ffff:ffff",
            "2001:db8:1::10",
            "ipv6",
        ),
    ];
    for (port, (src, dst, network)) in (42100..).zip(near_misses) {
        let run = kernel.run(&Segment::tcp(src, dst, port, 443).build());
        assert_eq!(run.report.lists, 0, "{src} must not match");
        run.assert_untouched().assert_moved(&[
            "packets",
            "class_normal",
            network,
            "tcp",
            "flow_created",
        ]);
    }
}

#[test]
fn the_longest_prefix_decides_the_lists() {
    let mut kernel = apple_kernel();
    // 17.253.0.0/16 is in the cdn list only: the /16 hides the /8's tags.
    kernel.add_prefix("17.253.0.0/16", LIST_CDN);
    let in_16 = kernel.run(&Segment::tcp("192.0.2.10", "17.253.0.10", 42200, 443).build());
    assert_eq!(in_16.report.lists, LIST_CDN);
    // Only list apple has a rule: cdn traffic is counted under its list and left alone.
    in_16.assert_untouched().assert_moved(&[
        "packets",
        "class_listed",
        "ipv4",
        "tcp",
        "flow_created",
        "list_1",
    ]);
    let in_8 = kernel.run(&Segment::tcp("192.0.2.10", "17.1.0.10", 42201, 443).build());
    assert_eq!(in_8.report.lists, LIST_APPLE);
    // Both addresses listed: the tags of both lookups add up.
    let both = kernel.run(&Segment::tcp("17.1.0.10", "17.253.0.10", 42202, 443).build());
    assert_eq!(both.report.lists, LIST_APPLE | LIST_CDN);
}

#[test]
fn a_cached_flow_is_looked_up_again_only_after_the_generation_moves() {
    let mut kernel = Kernel::load();
    let packet = Segment::tcp("192.0.2.10", "203.0.113.10", 42300, 443).build();
    assert_eq!(
        kernel.run(&packet).report.lists,
        0,
        "first packet: nothing listed"
    );

    // A prefix added without a generation bump is not seen by the established flow: this
    // is the cache at work (no LPM lookup per packet)...
    kernel.add_prefix_quietly("203.0.113.0/24", LIST_APPLE);
    assert_eq!(kernel.run(&packet).report.lists, 0, "cached: no lookup");
    // ...while a new flow looks it up at once.
    let new_flow = Segment::tcp("192.0.2.10", "203.0.113.10", 42301, 443).build();
    assert_eq!(
        kernel.run(&new_flow).report.lists,
        LIST_APPLE,
        "a new flow sees it"
    );

    // After the bump, the established flow is classified again on its next packet.
    kernel.bump_generation();
    let run = kernel.run(&packet);
    assert_eq!(
        run.report.lists, LIST_APPLE,
        "generation moved: looked up again"
    );
    run.assert_output(&with_dscp(&packet, DSCP_LISTED))
        .assert_moved(&["packets", "class_listed", "ipv4", "tcp", "list_0", "marked"]);
}

#[test]
fn udp_and_other_protocols_match_by_address_too() {
    let kernel = apple_kernel();
    let udp = Segment::udp("17.253.0.10", "192.0.2.10", 443, 42400).build();
    kernel
        .run(&udp)
        .assert_output(&with_dscp(&udp, DSCP_LISTED))
        .assert_moved(&[
            "packets",
            "class_listed",
            "ipv4",
            "udp",
            "flow_created",
            "list_0",
            "marked",
        ]);
}

/// Learned host entries: they inherit the lists of the prefixes containing them, and
/// forgetting one gives its addresses back to those prefixes, or keeps what was added by hand.
#[test]
fn learned_hosts_inherit_and_forget_cleanly() {
    use classifier::control::prefixes::{forget_host, learn_host};

    let mut kernel = apple_kernel();
    // The library writes the XDP twin's maps only: the tc twin would not learn the hosts.
    kernel.tc = None;
    let inside: std::net::IpAddr = "17.253.0.77".parse().unwrap();
    let outside: std::net::IpAddr = "203.0.113.77".parse().unwrap();
    let lists_of = |kernel: &Kernel, dst: &str, port: u16| {
        kernel
            .run(&Segment::tcp("192.0.2.10", dst, port, 443).build())
            .report
            .lists
    };
    learn_host(&mut kernel.classifier.writer(), 1, inside).unwrap();
    learn_host(&mut kernel.classifier.writer(), 0, outside).unwrap();
    assert_eq!(
        lists_of(&kernel, "17.253.0.77", 42500),
        LIST_APPLE | LIST_CDN
    );
    assert_eq!(lists_of(&kernel, "203.0.113.77", 42501), LIST_APPLE);

    forget_host(&mut kernel.classifier.writer(), 1, inside).unwrap();
    forget_host(&mut kernel.classifier.writer(), 0, outside).unwrap();
    assert_eq!(
        lists_of(&kernel, "17.253.0.77", 42502),
        LIST_APPLE,
        "back to the /8"
    );
    assert_eq!(lists_of(&kernel, "203.0.113.77", 42503), 0);
    let prefixes = kernel.classifier.maps().prefixes().unwrap();
    assert_eq!(prefixes.len(), 2, "the host entries are gone: {prefixes:?}");

    // A host added by hand keeps its own list when what was learned on top of it expires.
    kernel.add_prefix("203.0.113.77/32", LIST_CDN);
    learn_host(&mut kernel.classifier.writer(), 0, outside).unwrap();
    assert_eq!(
        lists_of(&kernel, "203.0.113.77", 42504),
        LIST_APPLE | LIST_CDN
    );
    forget_host(&mut kernel.classifier.writer(), 0, outside).unwrap();
    assert_eq!(lists_of(&kernel, "203.0.113.77", 42505), LIST_CDN);
}
