//! Malformed packets: every one must pass unchanged, and the right parse-error counter must
//! move. Also the layers that are walked but not errors: VLAN tags, IPv6 extension chains,
//! fragments.

mod support;

use support::{
    DSCP_MPTCP, Kernel, mptcp,
    packet::{
        AUTH, DEST_OPTIONS, ETH_LEN, FRAGMENT, HOP_BY_HOP, Ipv6Extension, ROUTING, Segment,
        TPID_8021AD, TPID_8021Q, insert_ipv6_extensions, make_ipv4_fragment,
        recompute_ipv4_checksum, with_dscp,
    },
};

fn malformed(error: &str, layers: &[&'static str]) -> Vec<String> {
    let mut labels = vec![
        "packets".to_owned(),
        "class_malformed".to_owned(),
        format!("error_{error}"),
    ];
    labels.extend(layers.iter().map(|l| (*l).to_owned()));
    labels
}

fn assert_malformed(
    kernel: &Kernel,
    name: &str,
    packet: &[u8],
    error: &str,
    layers: &[&'static str],
) {
    let expected = malformed(error, layers);
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    let run = kernel.run(packet);
    assert_eq!(run.output, run.input, "{name}: must pass unchanged");
    run.assert_untouched().assert_moved(&expected);
}

/// A VLAN-tagged IPv4 packet with IP options and TCP options, cut at every length inside its
/// headers: each cut lands in one layer, and that layer's error is counted.
#[test]
fn ipv4_truncated_at_every_header_boundary() {
    let kernel = Kernel::load();
    let mut packet = Segment::tcp("192.0.2.10", "198.51.100.10", 46000, 443)
        .vlan(TPID_8021Q, 10)
        .options(&mptcp::dss(true))
        .build();
    // 4 bytes of IP options (IHL 6).
    let l3 = ETH_LEN + 4;
    packet.splice(l3 + 20..l3 + 20, [1u8, 1, 1, 0]);
    packet[l3] = 0x46;
    let total = u16::try_from(packet.len() - l3).unwrap();
    packet[l3 + 2..l3 + 4].copy_from_slice(&total.to_be_bytes());
    recompute_ipv4_checksum(&mut packet);
    let (ip_options, tcp, tcp_options, end) = (l3 + 20, l3 + 24, l3 + 44, l3 + 64);
    for cut in ETH_LEN..end {
        let (error, layers): (&str, &[&str]) = match cut {
            c if c < l3 => ("vlan_truncated", &[]),
            c if c < ip_options => ("ipv4_truncated", &["ipv4"]),
            c if c < tcp => ("ipv4_header_past_packet", &["ipv4"]),
            c if c < tcp_options => ("tcp_truncated", &["ipv4", "tcp"]),
            _ => ("tcp_header_past_packet", &["ipv4", "tcp"]),
        };
        assert_malformed(
            &kernel,
            &format!("cut at {cut}"),
            &packet[..cut],
            error,
            layers,
        );
    }
    // Whole headers, payload cut: nothing wrong, and the MPTCP flow is marked.
    let whole = &packet[..end];
    kernel
        .run(whole)
        .assert_output(&with_dscp(whole, DSCP_MPTCP));
}

#[test]
fn ipv6_truncated_at_every_header_boundary() {
    let kernel = Kernel::load();
    let mut packet = Segment::tcp("2001:db8:1::10", "2001:db8::10", 46100, 443)
        .options(&mptcp::mp_capable_v1_syn())
        .build();
    insert_ipv6_extensions(
        &mut packet,
        &[
            Ipv6Extension {
                kind: HOP_BY_HOP,
                len: 8,
            },
            Ipv6Extension {
                kind: ROUTING,
                len: 24,
            },
        ],
    );
    let (ext, tcp) = (ETH_LEN + 40, ETH_LEN + 72);
    let end = tcp + 24;
    for cut in ETH_LEN..end {
        let (error, layers): (&str, &[&str]) = match cut {
            c if c < ext => ("ipv6_truncated", &["ipv6"]),
            c if c < tcp => ("ipv6_ext_truncated", &["ipv6"]),
            c if c < tcp + 20 => ("tcp_truncated", &["ipv6", "tcp"]),
            _ => ("tcp_header_past_packet", &["ipv6", "tcp"]),
        };
        assert_malformed(
            &kernel,
            &format!("cut at {cut}"),
            &packet[..cut],
            error,
            layers,
        );
    }
}

/// Frames shorter than an Ethernet header never reach XDP from a NIC, and
/// BPF_PROG_TEST_RUN refuses them too: the kernel guarantees the program 14 bytes.
#[test]
fn runt_frames_are_refused_before_the_program() {
    let kernel = Kernel::load();
    let packet = Segment::tcp("192.0.2.10", "198.51.100.10", 46200, 443).build();
    for len in [0, 1, 13] {
        assert!(
            kernel.classifier.test_run(&packet[..len]).is_err(),
            "a {len}-byte frame must be refused"
        );
    }
    // 14 bytes saying IPv4, and nothing after: counted as a truncated IPv4 header.
    assert_malformed(
        &kernel,
        "14-byte frame",
        &packet[..ETH_LEN],
        "ipv4_truncated",
        &["ipv4"],
    );
}

#[test]
fn bad_ipv4_header_lengths_and_versions() {
    let kernel = Kernel::load();
    let good = Segment::tcp("192.0.2.10", "198.51.100.10", 46300, 443).build();
    for ihl in 0..5u8 {
        let mut packet = good.clone();
        packet[ETH_LEN] = 0x40 | ihl;
        assert_malformed(
            &kernel,
            &format!("IHL {ihl}"),
            &packet,
            "ipv4_header_too_short",
            &["ipv4"],
        );
    }
    let mut packet = good.clone();
    packet[ETH_LEN] = 0x4f; // 60 bytes of header in a packet with 47 after the IP start
    assert_malformed(
        &kernel,
        "IHL 15",
        &packet,
        "ipv4_header_past_packet",
        &["ipv4"],
    );
    let mut packet = good.clone();
    packet[ETH_LEN] = 0x65;
    assert_malformed(
        &kernel,
        "version 6 in IPv4",
        &packet,
        "ipv4_bad_version",
        &["ipv4"],
    );
}

#[test]
fn bad_tcp_data_offsets() {
    let kernel = Kernel::load();
    let good = Segment::tcp("192.0.2.10", "198.51.100.10", 46400, 443).build();
    let offset_byte = ETH_LEN + 20 + 12;
    for data_offset in 0..5u8 {
        let mut packet = good.clone();
        packet[offset_byte] = data_offset << 4;
        let name = format!("data offset {data_offset}");
        assert_malformed(
            &kernel,
            &name,
            &packet,
            "tcp_header_too_short",
            &["ipv4", "tcp"],
        );
    }
    let mut packet = good.clone();
    packet[offset_byte] = 15 << 4; // 60 bytes of TCP header; the packet has 27 after it
    assert_malformed(
        &kernel,
        "data offset 15",
        &packet,
        "tcp_header_past_packet",
        &["ipv4", "tcp"],
    );
}

#[test]
fn bad_tcp_option_lengths() {
    let kernel = Kernel::load();
    let cases: [(&str, &[u8], &str); 6] = [
        ("length 0", &[2, 0, 1, 1], "tcp_option_bad_length"),
        ("length 1", &[2, 1, 1, 1], "tcp_option_bad_length"),
        (
            "MPTCP length 0",
            &[mptcp::KIND, 0, 1, 1],
            "tcp_option_bad_length",
        ),
        (
            "length past the header",
            &[8, 10, 0, 0],
            "tcp_option_past_header",
        ),
        (
            "kind in the last byte, no room for a length",
            &[1, 1, 1, 8],
            "tcp_option_past_header",
        ),
        (
            "kind 30 with length 2",
            &[mptcp::KIND, 2, 1, 1],
            "mptcp_option_too_short",
        ),
    ];
    // Each alone, and after NOP, NOP, timestamps, where the walk starts past those 12 bytes.
    let timestamps: &[u8] = &[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
    for (port, (name, options, error)) in (46500..).zip(cases) {
        for (prefix, first) in [("", &[][..]), ("after timestamps: ", timestamps)] {
            let packet = Segment::tcp("192.0.2.10", "198.51.100.10", port, 443)
                .options(&[first, options].concat())
                .build();
            let name = format!("{prefix}{name}");
            assert_malformed(&kernel, &name, &packet, error, &["ipv4", "tcp"]);
        }
    }
}

/// Fragments: the transport header is absent or partial, so nothing in the payload may be
/// taken for TCP options. They are classified by address only, like every fragment of the
/// same datagram.
#[test]
fn fragments_are_not_inspected_past_the_ip_header() {
    let kernel = Kernel::load();
    let looks_mptcp = Segment::tcp("192.0.2.10", "198.51.100.10", 46600, 443)
        .options(&mptcp::mp_capable_v1_syn())
        .build();
    for (name, offset, more) in [
        ("non-first fragment", 185, false),
        ("first fragment", 0, true),
    ] {
        let mut packet = looks_mptcp.clone();
        make_ipv4_fragment(&mut packet, offset, more);
        let run = kernel.run(&packet);
        assert_eq!(run.report.mptcp_subtypes, 0, "{name}: not MPTCP");
        run.assert_untouched().assert_moved(&[
            "packets",
            "class_normal",
            "ipv4",
            "other_transport",
            "ipv4_fragment",
        ]);
    }
    let mut packet = Segment::tcp("2001:db8:1::10", "2001:db8::10", 46601, 443)
        .options(&mptcp::mp_capable_v1_syn())
        .build();
    insert_ipv6_extensions(
        &mut packet,
        &[Ipv6Extension {
            kind: FRAGMENT,
            len: 8,
        }],
    );
    let run = kernel.run(&packet);
    assert_eq!(run.report.mptcp_subtypes, 0, "IPv6 fragment: not MPTCP");
    run.assert_untouched().assert_moved(&[
        "packets",
        "class_normal",
        "ipv6",
        "other_transport",
        "ipv6_fragment",
    ]);
}

#[test]
fn ipv6_extension_chains_up_to_the_limit_are_walked() {
    let kernel = Kernel::load();
    let mixed = [
        Ipv6Extension {
            kind: HOP_BY_HOP,
            len: 8,
        },
        Ipv6Extension {
            kind: ROUTING,
            len: 24,
        },
        Ipv6Extension {
            kind: AUTH,
            len: 16,
        },
        Ipv6Extension {
            kind: DEST_OPTIONS,
            len: 8,
        },
    ];
    let six = [Ipv6Extension {
        kind: DEST_OPTIONS,
        len: 16,
    }; 6];
    for (port, chain) in (46700..).zip([&mixed[..], &six[..]]) {
        let mut packet = Segment::tcp("2001:db8:1::10", "2001:db8::10", port, 443)
            .options(&mptcp::dss(false))
            .build();
        insert_ipv6_extensions(&mut packet, chain);
        let run = kernel.run(&packet);
        assert_eq!(
            run.report.mptcp_subtypes,
            1 << 2,
            "{} headers: DSS found",
            chain.len()
        );
        run.assert_output(&with_dscp(&packet, DSCP_MPTCP));
    }
    let mut too_deep = Segment::tcp("2001:db8:1::10", "2001:db8::10", 46710, 443).build();
    insert_ipv6_extensions(
        &mut too_deep,
        &[Ipv6Extension {
            kind: DEST_OPTIONS,
            len: 8,
        }; 7],
    );
    assert_malformed(
        &kernel,
        "7 extension headers",
        &too_deep,
        "ipv6_ext_too_deep",
        &["ipv6"],
    );
}

#[test]
fn vlan_tags_up_to_two_are_walked_and_a_third_is_an_error() {
    let kernel = Kernel::load();
    let one = Segment::tcp("192.0.2.10", "198.51.100.10", 46800, 443)
        .vlan(TPID_8021Q, 10)
        .options(&mptcp::mp_capable_v1_syn())
        .build();
    let two = Segment::tcp("192.0.2.10", "198.51.100.10", 46801, 443)
        .vlan(TPID_8021AD, 100)
        .vlan(TPID_8021Q, 10)
        .options(&mptcp::mp_capable_v1_syn())
        .build();
    for packet in [one, two] {
        kernel
            .run(&packet)
            .assert_output(&with_dscp(&packet, DSCP_MPTCP));
    }
    let three = Segment::tcp("192.0.2.10", "198.51.100.10", 46802, 443)
        .vlan(TPID_8021AD, 100)
        .vlan(TPID_8021Q, 10)
        .vlan(TPID_8021Q, 20)
        .build();
    assert_malformed(&kernel, "three VLAN tags", &three, "vlan_too_deep", &[]);
}

#[test]
fn non_ip_frames_are_counted_and_passed() {
    let kernel = Kernel::load();
    let mut arp = vec![0xffu8; 6];
    arp.extend_from_slice(&support::packet::MAC_CLIENT);
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0u8; 28]);
    kernel
        .run(&arp)
        .assert_untouched()
        .assert_moved(&["packets", "class_non_ip"]);
}
