//! The usual packets are counted inline, without the call to `classifier_record`
//! (docs/design.md, 'Counters'). Every other kernel test runs with report mode on, which
//! always takes the call; here the same packets also run through a second pair of programs
//! with report mode off, which count the usual ones inline, and each packet must move exactly
//! the counters it moves with the report on, and those the test names.

use classifier_testkit as support;

use classifier_common::config::CONFIG_REPORT;
use support::{
    DSCP_LISTED, DSCP_MPTCP, Kernel, LIST_APPLE, LIST_CDN,
    mptcp::{self, NOP},
    packet::{Segment, with_dscp},
};

/// NOP, NOP, timestamps: the usual segment's options.
const TIMESTAMPS: [u8; 12] = [NOP, NOP, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];

struct Case {
    name: &'static str,
    packet: Vec<u8>,
    /// What the flow's later packets (served by the flow cache) rewrite the DSCP to.
    dscp_out: Option<u8>,
    /// The counters each of them moves.
    moved: &'static [&'static str],
    /// Sent once before: the other direction's DSS that makes an MPTCP flow first seen
    /// mid-stream MPTCP (docs/design.md, 'MPTCP state of a flow').
    answered_by: Option<Vec<u8>>,
}

fn case(
    name: &'static str,
    segment: Segment,
    dscp_out: Option<u8>,
    moved: &'static [&'static str],
) -> Case {
    Case {
        name,
        packet: segment.build(),
        dscp_out,
        moved,
        answered_by: None,
    }
}

/// `case` of a segment carrying a DSS, whose flow the other direction's DSS made MPTCP.
fn mptcp_case(
    name: &'static str,
    segment: Segment,
    dscp_out: Option<u8>,
    moved: &'static [&'static str],
) -> Case {
    let dss = [&TIMESTAMPS[..], &mptcp::dss(false)].concat();
    Case {
        answered_by: Some(segment.reply().ack().options(&dss).build()),
        ..case(name, segment, dscp_out, moved)
    }
}

fn cases() -> Vec<Case> {
    let plain = Segment::tcp("192.0.2.10", "198.51.100.10", 50000, 443);
    let dss = [&TIMESTAMPS[..], &mptcp::dss(false)].concat();
    let mptcp_flow = Segment::tcp("192.0.2.10", "198.51.100.20", 50001, 443).options(&dss);
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x08, 0x06]);
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&[0; 20]);
    let mut cases = vec![
        case(
            "plain IPv4 TCP",
            plain.clone(),
            None,
            &["packets", "class_normal", "ipv4", "tcp"],
        ),
        // The source is endpoint B: the key is swapped before the cache is looked at.
        case(
            "its reply",
            plain.reply(),
            None,
            &["packets", "class_normal", "ipv4", "tcp"],
        ),
        case(
            "timestamps",
            Segment::tcp("192.0.2.10", "198.51.100.10", 50002, 443).options(&TIMESTAMPS),
            None,
            &["packets", "class_normal", "ipv4", "tcp"],
        ),
        case(
            "UDP",
            Segment::udp("192.0.2.10", "198.51.100.10", 50003, 4433),
            None,
            &["packets", "class_normal", "ipv4", "udp"],
        ),
        case(
            "IPv6 TCP",
            Segment::tcp("2001:db8:c0::10", "2001:db8::10", 50004, 443),
            None,
            &["packets", "class_normal", "ipv6", "tcp"],
        ),
        // A DSS and no other option 30: an MPTCP flow's data segment, marked by the policy.
        mptcp_case(
            "MPTCP data segment",
            mptcp_flow.clone(),
            Some(DSCP_MPTCP),
            &[
                "packets",
                "class_mptcp",
                "ipv4",
                "tcp",
                "marked",
                "mptcp_option",
                "mptcp_dss",
            ],
        ),
        mptcp_case(
            "MPTCP data segment already marked",
            mptcp_flow.tos(DSCP_MPTCP << 2),
            None,
            &[
                "packets",
                "class_mptcp",
                "ipv4",
                "tcp",
                "already_marked",
                "mptcp_option",
                "mptcp_dss",
            ],
        ),
        // One list: its counter found without a loop. List 5 only: the shipped test policy
        // has no rule for it.
        case(
            "listed",
            Segment::tcp("192.0.2.10", "17.253.0.10", 50005, 443),
            Some(DSCP_LISTED),
            &["packets", "class_listed", "ipv4", "tcp", "marked", "list_0"],
        ),
        case(
            "in list 5",
            Segment::tcp("192.0.2.10", "203.0.113.10", 50006, 443),
            None,
            &["packets", "class_listed", "ipv4", "tcp", "list_5"],
        ),
        mptcp_case(
            "listed MPTCP data segment",
            Segment::tcp("192.0.2.10", "17.253.0.20", 50007, 443).options(&dss),
            Some(DSCP_MPTCP),
            &[
                "packets",
                "class_mptcp",
                "ipv4",
                "tcp",
                "marked",
                "mptcp_option",
                "mptcp_dss",
                "list_0",
            ],
        ),
        // A connection's SYN with MP_CAPABLE, to a listed address: its first packet counts
        // the flow it creates, each counted inline, as the version's counter.
        case(
            "listed MPTCP SYN, version 1",
            Segment::tcp("192.0.2.10", "17.253.0.30", 50009, 443)
                .syn()
                .options(&mptcp::mp_capable_v1_syn()),
            Some(DSCP_LISTED),
            &[
                "packets",
                "class_listed",
                "ipv4",
                "tcp",
                "marked",
                "mptcp_option",
                "mptcp_mp_capable",
                "mp_capable_v1",
                "list_0",
            ],
        ),
        case(
            "MPTCP SYN, version 0",
            Segment::tcp("192.0.2.10", "198.51.100.30", 50010, 443)
                .syn()
                .options(&mptcp::mp_capable_v0_syn()),
            None,
            &[
                "packets",
                "class_normal",
                "ipv4",
                "tcp",
                "mptcp_option",
                "mptcp_mp_capable",
                "mp_capable_v0",
            ],
        ),
        // Not usual: two lists, so the call counts them with report mode off too.
        case(
            "in two lists",
            Segment::tcp("192.0.2.10", "17.1.0.10", 50008, 443),
            Some(DSCP_LISTED),
            &[
                "packets",
                "class_listed",
                "ipv4",
                "tcp",
                "marked",
                "list_0",
                "list_1",
            ],
        ),
    ];
    cases.push(Case {
        name: "ARP",
        packet: arp,
        dscp_out: None,
        moved: &["packets", "class_non_ip"],
        answered_by: None,
    });
    cases
}

#[test]
fn usual_packets_move_the_same_counters_with_report_mode_off() {
    let mut reporting = Kernel::load();
    let mut quiet = Kernel::load();
    quiet.set_flag(CONFIG_REPORT, false);
    for kernel in [&mut reporting, &mut quiet] {
        kernel.add_prefix("17.0.0.0/8", LIST_APPLE);
        kernel.add_prefix("17.1.0.0/16", LIST_APPLE | LIST_CDN);
        kernel.add_prefix("203.0.113.0/24", 1 << 5);
    }
    for case in cases() {
        if let Some(answer) = &case.answered_by {
            reporting.run(answer);
            quiet.run(answer);
        }
        // The first packet creates the flow (an event, counted inline too); the later ones
        // are served by the flow cache, or for a SYN by the flow's entry.
        for n in 0..4 {
            let with = reporting.run(&case.packet);
            let without = quiet.run(&case.packet);
            assert_eq!(
                without.moved, with.moved,
                "{}, packet {n}: report mode off counted otherwise than on",
                case.name
            );
            assert_eq!(
                without.output, with.output,
                "{}, packet {n}: report mode off left other bytes than on",
                case.name
            );
            if n > 0 {
                without.assert_moved(case.moved);
                match case.dscp_out {
                    Some(dscp) => without.assert_output(&with_dscp(&case.packet, dscp)),
                    None => without.assert_untouched(),
                };
            }
        }
    }
}
