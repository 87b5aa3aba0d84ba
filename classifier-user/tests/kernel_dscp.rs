//! DSCP rewriting: ECN kept, the IPv4 checksum updated incrementally yet equal to a full
//! recomputation, IPv6 version and flow label untouched, and the cases that change nothing.

use classifier_testkit as support;

use classifier_common::{
    PolicyRule,
    config::ACTION_KEEP,
    report::{REPORT_DRY_RUN, REPORT_MARKED},
};
use etherparse::Ipv4HeaderSlice;
use support::{
    DSCP_LISTED, Kernel, LIST_APPLE,
    packet::{ETH_LEN, Segment, ipv4_checksum_ok, traffic_class, with_dscp},
};

fn listed_kernel() -> Kernel {
    let mut kernel = Kernel::load();
    kernel.add_prefix("17.0.0.0/8", LIST_APPLE);
    kernel.add_prefix("2620:149::/32", LIST_APPLE);
    kernel
}

const LISTED_MARKED: [&str; 7] = [
    "packets",
    "class_listed",
    "ipv4",
    "tcp",
    "flow_created",
    "list_0",
    "marked",
];

/// Every TOS byte a packet can arrive with (all 64 DSCPs × all 4 ECN values), in IPv4 with
/// and without IP options: the ECN bits survive, the checksum is right, and it equals the one
/// etherparse computes from scratch.
#[test]
fn ipv4_rewrite_keeps_ecn_and_a_correct_checksum_for_every_tos() {
    let kernel = listed_kernel();
    let mut port = 43000u16;
    for tos in 0..=255u8 {
        if tos >> 2 == DSCP_LISTED {
            continue; // already right: covered below
        }
        port += 1;
        let packet = Segment::tcp("192.0.2.10", "17.253.0.10", port, 443)
            .tos(tos)
            .build();
        let run = kernel.run(&packet);
        let out = &run.output;
        assert_eq!(
            traffic_class(out),
            (DSCP_LISTED << 2) | (tos & 0x03),
            "tos {tos:#04x}"
        );
        assert_eq!(ipv4_checksum_ok(out, ETH_LEN), Some(true), "tos {tos:#04x}");
        let full = Ipv4HeaderSlice::from_slice(&out[ETH_LEN..])
            .expect("IPv4 header")
            .to_header()
            .calc_header_checksum();
        assert_eq!(
            &out[ETH_LEN + 10..ETH_LEN + 12],
            &full.to_be_bytes(),
            "tos {tos:#04x}"
        );
        run.assert_output(&with_dscp(&packet, DSCP_LISTED))
            .assert_moved(&LISTED_MARKED);
        assert_ne!(run.report.flags & REPORT_MARKED, 0);
    }
}

/// A header with options (IHL 8) and unusual TTL/ID values: the incremental update still
/// matches a full recomputation.
#[test]
fn ipv4_rewrite_with_ip_options_matches_a_full_recomputation() {
    let kernel = listed_kernel();
    for (port, ecn) in (43500u16..).zip(0..4u8) {
        let mut packet = Segment::tcp("17.253.0.10", "192.0.2.10", 443, port)
            .tos(0xb8 | ecn) // EF
            .build();
        // Insert 12 bytes of IP options (NOP NOP ... EOL) and fix IHL, length, checksum.
        packet.splice(
            ETH_LEN + 20..ETH_LEN + 20,
            [1u8, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0],
        );
        packet[ETH_LEN] = 0x48;
        let total = u16::try_from(packet.len() - ETH_LEN).unwrap();
        packet[ETH_LEN + 2..ETH_LEN + 4].copy_from_slice(&total.to_be_bytes());
        packet[ETH_LEN + 4..ETH_LEN + 6].copy_from_slice(&[0xff, 0xfe]);
        support::packet::recompute_ipv4_checksum(&mut packet);
        let run = kernel.run(&packet);
        run.assert_output(&with_dscp(&packet, DSCP_LISTED))
            .assert_moved(&LISTED_MARKED);
    }
}

#[test]
fn ipv6_rewrite_keeps_ecn_version_and_flow_label() {
    let kernel = listed_kernel();
    for (port, tc) in (44000u16..).zip(0..=255u8) {
        if tc >> 2 == DSCP_LISTED {
            continue;
        }
        let packet = Segment::tcp("2001:db8:1::10", "2620:149:a44::10", port, 443)
            .tos(tc)
            .flow_label(0xabcde)
            .build();
        let run = kernel.run(&packet);
        let out = &run.output;
        assert_eq!(out[ETH_LEN] >> 4, 6, "version");
        let word = u32::from_be_bytes(out[ETH_LEN..ETH_LEN + 4].try_into().unwrap());
        assert_eq!(word & 0x000f_ffff, 0xabcde, "flow label");
        assert_eq!(
            traffic_class(out),
            (DSCP_LISTED << 2) | (tc & 0x03),
            "tc {tc:#04x}"
        );
        run.assert_output(&with_dscp(&packet, DSCP_LISTED))
            .assert_moved(&[
                "packets",
                "class_listed",
                "ipv6",
                "tcp",
                "flow_created",
                "list_0",
                "marked",
            ]);
    }
}

#[test]
fn a_packet_already_carrying_the_dscp_is_counted_and_left_untouched() {
    let kernel = listed_kernel();
    for (port, ecn) in (45000u16..).zip(0..4u8) {
        let run = kernel.run(
            &Segment::tcp("192.0.2.10", "17.253.0.10", port, 443)
                .tos((DSCP_LISTED << 2) | ecn)
                .build(),
        );
        run.assert_untouched().assert_moved(&[
            "packets",
            "class_listed",
            "ipv4",
            "tcp",
            "flow_created",
            "list_0",
            "already_marked",
        ]);
    }
}

#[test]
fn dry_run_counts_what_it_would_mark_and_changes_nothing() {
    let mut kernel = listed_kernel();
    kernel.set_dry_run(true);
    for (port, dst) in (45100u16..).zip(["17.253.0.10", "2620:149::10"]) {
        let src = if dst.contains(':') {
            "2001:db8:1::10"
        } else {
            "192.0.2.10"
        };
        let network = if dst.contains(':') { "ipv6" } else { "ipv4" };
        let run = kernel.run(&Segment::tcp(src, dst, port, 443).build());
        assert_ne!(run.report.flags & REPORT_DRY_RUN, 0);
        assert_eq!(run.report.dscp_out, run.report.dscp_in);
        run.assert_untouched().assert_moved(&[
            "packets",
            "class_listed",
            network,
            "tcp",
            "flow_created",
            "list_0",
            "dry_run_would_mark",
        ]);
    }
    kernel.set_dry_run(false);
    let packet = Segment::tcp("192.0.2.10", "17.253.0.10", 45200, 443).build();
    kernel
        .run(&packet)
        .assert_output(&with_dscp(&packet, DSCP_LISTED));
}

#[test]
fn keep_counts_without_rewriting_and_the_first_matching_rule_wins() {
    let mut kernel = listed_kernel();
    kernel.set_rules(&[
        PolicyRule {
            lists: LIST_APPLE,
            action: ACTION_KEEP,
            ..PolicyRule::default()
        },
        PolicyRule {
            lists: LIST_APPLE,
            action: 46,
            ..PolicyRule::default()
        },
    ]);
    let run = kernel.run(&Segment::tcp("192.0.2.10", "17.253.0.10", 45300, 443).build());
    assert_eq!(run.report.rule, 0, "the first rule matched");
    run.assert_untouched().assert_moved(&[
        "packets",
        "class_listed",
        "ipv4",
        "tcp",
        "flow_created",
        "list_0",
        "kept_by_rule",
    ]);
}
