//! Malformed packets: every one must pass unchanged, and the right parse-error counter must
//! move. Errors in the TCP options stop (or skip) the walk but not the classification. Also
//! the layers that are walked but not errors: VLAN tags, IPv6 extension chains, fragments.
//! The decisions are in docs/design.md, 'Parsing and its bounds' and 'TCP options and MPTCP'.

use classifier_testkit as support;

use classifier_common::report::REPORT_CLASSIFIED;
use support::{
    DSCP_LISTED, DSCP_MPTCP, Kernel, LIST_APPLE, mptcp,
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

/// The server's DSS, sent first: a flow first seen mid-stream is MPTCP once option 30 came
/// both ways (docs/design.md, 'MPTCP state of a flow'), so the client's DSS after it, the
/// packet under test, makes the flow MPTCP and is marked.
fn server_answers(kernel: &Kernel, client: &str, server: &str, port: u16) {
    let answer = Segment::tcp(server, client, 443, port)
        .options(&mptcp::dss(false))
        .build();
    kernel.run(&answer);
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
    server_answers(&kernel, "192.0.2.10", "198.51.100.10", 46000);
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
fn bad_tcp_options_stop_the_walk_but_not_the_classification() {
    let mut kernel = Kernel::load();
    kernel.add_prefix("17.0.0.0/8", LIST_APPLE);
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
    // A listed sender that appends a bad option is still marked (docs/design.md, 'TCP
    // options and MPTCP'): Linux accepts such a segment, so must the classifier's policy.
    let timestamps: &[u8] = &[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
    for (port, (name, options, error)) in (46500..).step_by(2).zip(cases) {
        for (port, (prefix, first)) in
            (port..).zip([("", &[][..]), ("after timestamps: ", timestamps)])
        {
            let packet = Segment::tcp("17.253.0.10", "198.51.100.10", port, 443)
                .options(&[first, options].concat())
                .build();
            let name = format!("{prefix}{name}");
            let error_counter = format!("error_{error}");
            let run = kernel.run(&packet);
            assert_ne!(
                run.report.flags & REPORT_CLASSIFIED,
                0,
                "{name}: classified"
            );
            run.assert_output(&with_dscp(&packet, DSCP_LISTED))
                .assert_moved(&[
                    "packets",
                    "class_listed",
                    "ipv4",
                    "tcp",
                    "flow_created",
                    "list_0",
                    "marked",
                    &error_counter,
                ]);
        }
    }
    // A valid option 30 before the bad option stands: the flow is MPTCP.
    let dss_then_bad = Segment::tcp("192.0.2.10", "198.51.100.10", 46590, 443)
        .options(&[&mptcp::dss(false)[..], &[2, 0]].concat())
        .build();
    server_answers(&kernel, "192.0.2.10", "198.51.100.10", 46590);
    let run = kernel.run(&dss_then_bad);
    assert_eq!(
        run.report.mptcp_subtypes,
        1 << 2,
        "the DSS before the bad option"
    );
    run.assert_output(&with_dscp(&dss_then_bad, DSCP_MPTCP))
        .assert_moved(&[
            "packets",
            "class_mptcp",
            "ipv4",
            "tcp",
            "mptcp_option",
            "mptcp_dss",
            "marked",
            "error_tcp_option_bad_length",
        ]);
}

/// An option 30 whose length does not fit its subtype (as Linux's parser reads it) counts
/// for nothing: no subtype, no MPTCP flow, and `mptcp_option_malformed`. It is skipped, as
/// Linux skips it, so a valid option after it still counts.
#[test]
fn option_30_that_does_not_fit_its_subtype_is_malformed() {
    let kernel = Kernel::load();
    let option = |subtype_version: u8, len: usize| {
        let mut bytes = vec![mptcp::KIND, len as u8, subtype_version];
        bytes.resize(len, 0x01);
        bytes
    };
    // (name, option, on a SYN): tcpdump's mptcp-dss-oobr carries the 3-byte DSS.
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("3-byte DSS", option(0x20, 3), false),
        (
            "DSS whose flags want 18 bytes, in 8",
            {
                let mut dss = option(0x20, 8);
                dss[3] = 0x05;
                dss
            },
            false,
        ),
        (
            "MP_CAPABLE v1 of 4 bytes on a non-SYN",
            mptcp::mp_capable_v1_syn(),
            false,
        ),
        (
            "MP_CAPABLE v1 of 12 bytes on a SYN",
            mptcp::mp_capable_v1_syn_ack(),
            true,
        ),
        (
            "MP_CAPABLE v1 with the extensibility bit",
            {
                let mut syn = mptcp::mp_capable_v1_syn();
                syn[3] = 0xc1;
                syn
            },
            true,
        ),
        ("MP_CAPABLE v0 of 4 bytes", option(0x00, 4), true),
        ("MP_JOIN of 13 bytes", option(0x10, 13), true),
        ("ADD_ADDR of 12 bytes", option(0x30, 12), false),
        ("REMOVE_ADDR of 3 bytes", option(0x40, 3), false),
        ("REMOVE_ADDR of 12 bytes", option(0x40, 12), false),
        ("MP_PRIO of 5 bytes", option(0x50, 5), false),
        ("MP_FAIL of 8 bytes", option(0x60, 8), false),
        ("MP_FASTCLOSE of 16 bytes", option(0x70, 16), false),
        (
            "MP_TCPRST on a segment without RST",
            mptcp::mp_tcprst(),
            false,
        ),
    ];
    for (port, (name, bad, syn)) in (46700..).zip(cases) {
        let segment = Segment::tcp("192.0.2.10", "198.51.100.10", port, 443).options(&bad);
        let packet = if syn { segment.syn() } else { segment }.build();
        let run = kernel.run(&packet);
        assert_eq!(run.report.mptcp_subtypes, 0, "{name}: no subtype");
        assert_eq!(run.report.flow_flags & 0b1101, 0, "{name}: no MPTCP state");
        run.assert_untouched().assert_moved(&[
            "packets",
            "class_normal",
            "ipv4",
            "tcp",
            "flow_created",
            "error_mptcp_option_malformed",
        ]);
    }
    // Skipped, not the end of the walk: the DSS after a malformed option still counts.
    let packet = Segment::tcp("192.0.2.10", "198.51.100.10", 46799, 443)
        .options(&[option(0x20, 3), mptcp::dss(false)].concat())
        .build();
    server_answers(&kernel, "192.0.2.10", "198.51.100.10", 46799);
    let run = kernel.run(&packet);
    assert_eq!(run.report.mptcp_subtypes, 1 << 2);
    run.assert_output(&with_dscp(&packet, DSCP_MPTCP))
        .assert_moved(&[
            "packets",
            "class_mptcp",
            "ipv4",
            "tcp",
            "mptcp_option",
            "mptcp_dss",
            "marked",
            "error_mptcp_option_malformed",
        ]);
    // Unassigned subtypes (9..=15) are ignored, as Linux ignores them: no error either.
    let packet = Segment::tcp("192.0.2.10", "198.51.100.10", 46798, 443)
        .options(&option(0xf0, 4))
        .build();
    kernel.run(&packet).assert_untouched().assert_moved(&[
        "packets",
        "class_normal",
        "ipv4",
        "tcp",
        "flow_created",
    ]);
}

/// The IP length fields bound the parse: bytes after the datagram (Ethernet padding) are
/// never read as TCP options, and a total length shorter than the header is an error
/// (docs/design.md, 'Parsing and its bounds').
#[test]
fn ip_lengths_bound_the_parse() {
    let kernel = Kernel::load();
    for (port, (src, dst, network)) in (46900..).zip([
        ("192.0.2.10", "198.51.100.10", "ipv4"),
        ("2001:db8:1::10", "2001:db8::10", "ipv6"),
    ]) {
        // A TCP header of 20 bytes whose data offset claims 24, with what looks like an
        // MPTCP option in the 4 bytes of padding after the datagram.
        let mut packet = Segment::tcp(src, dst, port, 443).payload(&[]).build();
        let l4 = packet.len() - 20;
        packet[l4 + 12] = 6 << 4;
        packet.extend_from_slice(&[mptcp::KIND, 4, 0x01, 0x81]);
        let run = kernel.run(&packet);
        assert_eq!(run.output, run.input, "{network}: passed unchanged");
        assert_eq!(
            run.report.mptcp_subtypes, 0,
            "{network}: padding is not options"
        );
        run.assert_moved(&[
            "packets",
            "class_malformed",
            network,
            "tcp",
            "error_tcp_header_past_packet",
        ]);
        // The same 4 bytes after a complete segment: padding, ignored.
        let mut padded = Segment::tcp(src, dst, port + 10, 443).payload(&[]).build();
        padded.extend_from_slice(&[mptcp::KIND, 4, 0x01, 0x81]);
        kernel.run(&padded).assert_untouched().assert_moved(&[
            "packets",
            "class_normal",
            network,
            "tcp",
            "flow_created",
        ]);
    }
    let mut short = Segment::tcp("192.0.2.10", "198.51.100.10", 46950, 443).build();
    short[ETH_LEN + 2..ETH_LEN + 4].copy_from_slice(&16u16.to_be_bytes());
    recompute_ipv4_checksum(&mut short);
    assert_malformed(
        &kernel,
        "total length below the header",
        &short,
        "ipv4_bad_total_length",
        &["ipv4"],
    );
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
        .options(&mptcp::dss(false))
        .build();
    insert_ipv6_extensions(
        &mut packet,
        &[Ipv6Extension {
            kind: FRAGMENT,
            len: 8,
        }],
    );
    let atomic = packet.clone();
    // M set: the first fragment of several.
    let fragment_header = ETH_LEN + 40;
    packet[fragment_header + 3] = 1;
    let run = kernel.run(&packet);
    assert_eq!(run.report.mptcp_subtypes, 0, "IPv6 fragment: not MPTCP");
    run.assert_untouched().assert_moved(&[
        "packets",
        "class_normal",
        "ipv6",
        "other_transport",
        "ipv6_fragment",
    ]);
    // Offset 0 and M clear: an atomic fragment is a whole datagram (RFC 6946), parsed on.
    server_answers(&kernel, "2001:db8:1::10", "2001:db8::10", 46601);
    let run = kernel.run(&atomic);
    assert_eq!(
        run.report.mptcp_subtypes,
        1 << 2,
        "atomic fragment: the DSS counts"
    );
    run.assert_output(&with_dscp(&atomic, DSCP_MPTCP))
        .assert_moved(&[
            "packets",
            "class_mptcp",
            "ipv6",
            "tcp",
            "mptcp_option",
            "mptcp_dss",
            "marked",
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
        server_answers(&kernel, "2001:db8:1::10", "2001:db8::10", port);
        let run = kernel.run(&packet);
        assert_eq!(
            run.report.mptcp_subtypes,
            1 << 2,
            "{} headers: DSS found",
            chain.len()
        );
        run.assert_output(&with_dscp(&packet, DSCP_MPTCP));
    }
    // Seven: the transport is out of the walk's reach, the addresses are not. Classified by
    // them, not remembered, not malformed (docs/design.md, 'IPv6 extension headers').
    let mut too_deep = Segment::tcp("2001:db8:1::10", "2001:db8::10", 46710, 443)
        .options(&mptcp::dss(false))
        .build();
    insert_ipv6_extensions(
        &mut too_deep,
        &[Ipv6Extension {
            kind: DEST_OPTIONS,
            len: 8,
        }; 7],
    );
    let run = kernel.run(&too_deep);
    assert_eq!(
        run.report.mptcp_subtypes, 0,
        "7 headers: the DSS is not reached"
    );
    assert_ne!(
        run.report.flags & REPORT_CLASSIFIED,
        0,
        "7 headers: classified"
    );
    run.assert_untouched().assert_moved(&[
        "packets",
        "class_normal",
        "ipv6",
        "other_transport",
        "transport_unreachable",
    ]);
}

/// A chain longer than the walk hides the transport, never the addresses: a listed address
/// behind seven, or sixteen, extension headers is marked like any listed packet, at both
/// hooks, with only its DSCP changed (docs/design.md, 'IPv6 extension headers'). An MPTCP
/// option it carries is not seen: MPTCP detection alone needs the transport header.
#[test]
fn an_extension_chain_longer_than_the_walk_is_still_classified_by_address() {
    let mut kernel = Kernel::load();
    kernel.add_prefix("2a01:b740::/32", LIST_APPLE);
    for (port, depth) in (46720..).zip([7, 16]) {
        let mut packet = Segment::tcp("2001:db8:1::10", "2a01:b740:a42::1", port, 443)
            .options(&mptcp::dss(false))
            .tos(0x02) // ECN ECT(0), kept
            .flow_label(0x5_4321)
            .build();
        let chain: Vec<Ipv6Extension> = (0..depth)
            .map(|n| Ipv6Extension {
                kind: [HOP_BY_HOP, DEST_OPTIONS, ROUTING][n % 3],
                len: 8,
            })
            .collect();
        insert_ipv6_extensions(&mut packet, &chain);
        let name = format!("{depth} extension headers");
        let run = kernel.run(&packet);
        assert_eq!(run.report.lists, LIST_APPLE, "{name}: listed");
        assert_eq!(run.report.mptcp_subtypes, 0, "{name}: no MPTCP seen");
        run.assert_output(&with_dscp(&packet, DSCP_LISTED))
            .assert_moved(&[
                "packets",
                "class_listed",
                "ipv6",
                "other_transport",
                "transport_unreachable",
                "list_0",
                "marked",
            ]);
    }
    // Not remembered: a packet without reachable ports has no flow.
    kernel.assert_hooks_remember_the_same_flows();
    assert_eq!(
        kernel
            .classifier
            .maps()
            .flows()
            .expect("reading the flow table")
            .len(),
        0,
        "no flow entry"
    );
}

#[test]
fn vlan_tags_up_to_two_are_walked_and_a_third_is_an_error() {
    let kernel = Kernel::load();
    let one = Segment::tcp("192.0.2.10", "198.51.100.10", 46800, 443)
        .vlan(TPID_8021Q, 10)
        .options(&mptcp::dss(false))
        .build();
    let two = Segment::tcp("192.0.2.10", "198.51.100.10", 46801, 443)
        .vlan(TPID_8021AD, 100)
        .vlan(TPID_8021Q, 10)
        .options(&mptcp::dss(false))
        .build();
    for (port, packet) in [(46800, one), (46801, two)] {
        server_answers(&kernel, "192.0.2.10", "198.51.100.10", port);
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
