//! The TCP options walk in the kernel: every MPTCP subtype, both protocol versions as real
//! stacks send them, each on the segment it belongs to, options in awkward places, and what
//! must not count (docs/design.md, 'TCP options and MPTCP' and 'MPTCP state of a flow').

mod support;

use std::cell::Cell;

use classifier_common::{mptcp::MPTCP_VERSION_NONE, report::REPORT_MPTCP_OPTION};
use support::{
    DSCP_MPTCP, Kernel,
    mptcp::{self, EOL, NOP},
    packet::{Segment, with_dscp},
};

/// The segment an option travels on: MP_CAPABLE's length depends on it, MP_TCPRST needs a
/// reset, and only a SYN's MP_CAPABLE or MP_JOIN leaves the flow merely attempted.
#[derive(Copy, Clone, PartialEq, Debug)]
enum On {
    Syn,
    SynAck,
    Ack,
    Rst,
}

struct Case {
    name: &'static str,
    options: Vec<u8>,
    subtypes: &'static [u8],
    version: Option<u8>,
    on: On,
}

fn case(
    name: &'static str,
    options: Vec<u8>,
    subtypes: &'static [u8],
    version: Option<u8>,
    on: On,
) -> Case {
    Case {
        name,
        options,
        subtypes,
        version,
        on,
    }
}

const SUBTYPE_NAMES: [&str; 9] = [
    "mptcp_mp_capable",
    "mptcp_mp_join",
    "mptcp_dss",
    "mptcp_add_addr",
    "mptcp_remove_addr",
    "mptcp_mp_prio",
    "mptcp_mp_fail",
    "mptcp_mp_fastclose",
    "mptcp_mp_tcprst",
];

fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = mptcp::one_of_each_subtype()
        .into_iter()
        .map(|(subtype, options)| {
            let version = (subtype == 0).then_some(1);
            let subtypes: &'static [u8] =
                &[0, 1, 2, 3, 4, 5, 6, 7, 8][subtype as usize..=subtype as usize];
            let on = match subtype {
                0 | 1 => On::Syn,
                8 => On::Rst,
                _ => On::Ack,
            };
            case(
                SUBTYPE_NAMES[subtype as usize],
                options,
                subtypes,
                version,
                on,
            )
        })
        .collect();
    let long_prefix = [
        &[NOP, NOP, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2][..], // timestamps
        &[NOP, NOP, 5, 18][..],                         // SACK, two blocks
        &[0u8; 16][..],
    ]
    .concat();
    cases.extend([
        case(
            "v0 SYN (iOS 7)",
            mptcp::mp_capable_v0_syn(),
            &[0],
            Some(0),
            On::Syn,
        ),
        case(
            "v0 third ACK (iOS 7)",
            mptcp::mp_capable_v0_ack(),
            &[0],
            Some(0),
            On::Ack,
        ),
        case(
            "v1 SYN (Linux)",
            mptcp::mp_capable_v1_syn(),
            &[0],
            Some(1),
            On::Syn,
        ),
        case(
            "v1 SYN-ACK",
            mptcp::mp_capable_v1_syn_ack(),
            &[0],
            Some(1),
            On::SynAck,
        ),
        case(
            "v1 ACK with data",
            mptcp::mp_capable_v1_ack_with_data(),
            &[0],
            Some(1),
            On::Ack,
        ),
        case("MP_JOIN SYN", mptcp::mp_join_syn(), &[1], None, On::Syn),
        case(
            "DSS without checksum",
            mptcp::dss(false),
            &[2],
            None,
            On::Ack,
        ),
        case("DSS with checksum", mptcp::dss(true), &[2], None, On::Ack),
        case(
            "DSS after 32 bytes of NOP/timestamps/SACK",
            [&long_prefix[..], &[mptcp::KIND, 8, 0x20, 0x01, 0, 0, 0, 9]].concat(),
            &[2],
            None,
            On::Ack,
        ),
        case(
            "two MPTCP options in one header",
            [mptcp::dss(false), mptcp::mp_prio()].concat(),
            &[2, 5],
            None,
            On::Ack,
        ),
        case(
            "MSS, SACK-permitted, timestamps, window scale, then MP_CAPABLE",
            [mptcp::syn_options(), mptcp::mp_capable_v1_syn()].concat(),
            &[0],
            Some(1),
            On::Syn,
        ),
    ]);
    cases
}

/// Each case on a fresh flow of its own (a new source port), in IPv4 and in IPv6. An option
/// on a SYN only offers MPTCP: the flow is attempted, not MPTCP, and the packet is classed
/// and treated as plain TCP; on any other segment the flow is MPTCP at once.
#[test]
fn every_mptcp_option_is_seen_counted_and_marked() {
    let kernel = Kernel::load();
    let port = Cell::new(40000u16);
    let cases = cases();
    for (src, dst, network) in [
        ("192.0.2.10", "198.51.100.10", "ipv4"),
        ("2001:db8:1::10", "2001:db8::10", "ipv6"),
    ] {
        for case in &cases {
            port.set(port.get() + 1);
            let segment = Segment::tcp(src, dst, port.get(), 443).options(&case.options);
            let packet = match case.on {
                On::Syn => segment.syn(),
                On::SynAck => segment.syn_ack(),
                On::Ack => segment,
                On::Rst => segment.rst(),
            }
            .build();
            let attempted = case.on == On::Syn;
            let run = kernel.run(&packet);
            let context = format!("{} ({network})", case.name);
            let mask = case.subtypes.iter().fold(0u16, |mask, s| mask | (1 << s));
            assert_eq!(run.report.mptcp_subtypes, mask, "{context}: subtypes");
            assert_eq!(
                run.report.mptcp_version,
                case.version.unwrap_or(MPTCP_VERSION_NONE),
                "{context}: MP_CAPABLE version"
            );
            assert_ne!(
                run.report.flags & REPORT_MPTCP_OPTION,
                0,
                "{context}: option flag"
            );
            let mut expected = vec!["packets", network, "tcp", "flow_created", "mptcp_option"];
            if attempted {
                run.assert_output(&packet);
                expected.push("class_normal");
            } else {
                run.assert_output(&with_dscp(&packet, DSCP_MPTCP));
                expected.extend(["class_mptcp", "marked"]);
            }
            expected.extend(case.subtypes.iter().map(|s| SUBTYPE_NAMES[*s as usize]));
            match case.version {
                Some(0) => expected.push("mp_capable_v0"),
                Some(1) => expected.push("mp_capable_v1"),
                _ => {}
            }
            run.assert_moved(&expected);
        }
    }
}

/// Bytes that look like option 30 but are not options: they must not count.
#[test]
fn option_30_outside_the_options_does_not_count() {
    let kernel = Kernel::load();
    let in_payload = Segment::tcp("192.0.2.10", "198.51.100.10", 41000, 443)
        .payload(&mptcp::mp_capable_v1_syn())
        .build();
    let after_eol = Segment::tcp("192.0.2.10", "198.51.100.10", 41001, 443)
        .options(&[&[NOP, EOL][..], &mptcp::mp_capable_v1_syn()].concat())
        .build();
    let inside_another_option = Segment::tcp("192.0.2.10", "198.51.100.10", 41002, 443)
        // An unknown option (kind 253, experimental) whose body holds 30, 4, 0x01, 0x81.
        .options(&[253, 8, 0, 0, mptcp::KIND, 4, 0x01, 0x81])
        .build();
    for (name, packet) in [
        ("in the payload", in_payload),
        ("after EOL", after_eol),
        ("inside another option's body", inside_another_option),
    ] {
        let run = kernel.run(&packet);
        assert_eq!(run.report.mptcp_subtypes, 0, "{name}");
        run.assert_untouched().assert_moved(&[
            "packets",
            "class_normal",
            "ipv4",
            "tcp",
            "flow_created",
        ]);
    }
}

/// The usual segment's options (NOP, NOP, timestamps: 12 bytes) skip the walk; whatever the
/// timestamps' bytes hold, nothing is MPTCP, while a DSS right after them still counts.
#[test]
fn the_timestamps_shortcut_concludes_what_the_walk_would() {
    let kernel = Kernel::load();
    let timestamps = |value: u8| {
        [
            NOP,
            NOP,
            8,
            10,
            mptcp::KIND,
            20,
            0x20,
            value,
            mptcp::KIND,
            4,
            0,
            0,
        ]
    };
    for (port, value) in [(42000, 0), (42001, 0x1e), (42002, 0xff)] {
        let packet = Segment::tcp("192.0.2.10", "198.51.100.10", port, 443)
            .options(&timestamps(value))
            .build();
        let run = kernel.run(&packet);
        assert_eq!(
            run.report.mptcp_subtypes, 0,
            "timestamps holding {value:#x}"
        );
        run.assert_untouched().assert_moved(&[
            "packets",
            "class_normal",
            "ipv4",
            "tcp",
            "flow_created",
        ]);
    }
    let then_dss = Segment::tcp("192.0.2.10", "198.51.100.10", 42003, 443)
        .options(&[&timestamps(0)[..], &mptcp::dss(false), &[NOP, NOP]].concat())
        .build();
    let run = kernel.run(&then_dss);
    assert_eq!(
        run.report.mptcp_subtypes,
        1 << 2,
        "DSS after the timestamps"
    );
}

/// NOP, NOP and one option that is not 30 and ends the options (SACK blocks, after the
/// timestamps or alone) skip the walk too. The skip reads only kind and length bytes, so a
/// byte 30 in the SACK blocks counts for nothing; a layout it does not fit (option 30 in that
/// place, a shorter option followed by a DSS, a length past the header) is walked and
/// concludes as before (docs/design.md, 'TCP options and MPTCP').
#[test]
fn nop_nop_and_one_option_skip_the_walk_only_where_it_would_find_nothing() {
    let kernel = Kernel::load();
    let timestamps: &[u8] = &[NOP, NOP, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
    // Two SACK blocks whose edges hold byte 30, and even a whole DSS's first bytes.
    let sack: &[u8] = &[
        NOP,
        NOP,
        5,
        18,
        mptcp::KIND,
        20,
        0x20,
        0x05,
        0,
        mptcp::KIND,
        0,
        0,
        mptcp::KIND,
        mptcp::KIND,
        mptcp::KIND,
        mptcp::KIND,
        0,
        1,
        0,
        0,
    ];
    // A timestamp value holding byte 30 where the timestamps do not come first: walked.
    let walked_timestamps: &[u8] = &[NOP, 8, 10, mptcp::KIND, 4, 0, 1, mptcp::KIND, 4, 0, 0, NOP];
    // No byte 30, and EOL padding after a SACK-permitted option: walked, ends at the EOL.
    let padded: &[u8] = &[2, 4, 5, 0xb4, NOP, NOP, 4, 2, EOL, EOL, EOL, EOL];
    let nothing = [
        ("SACK blocks holding 30", sack.to_vec()),
        (
            "timestamps, then SACK blocks holding 30",
            [timestamps, sack].concat(),
        ),
        (
            "a timestamp value holding 30, walked",
            walked_timestamps.to_vec(),
        ),
        ("no 30, EOL padding", padded.to_vec()),
        (
            "NOP, NOP, a shorter SACK, EOL padding",
            [&[NOP, NOP, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2][..], &[EOL; 4]].concat(),
        ),
    ];
    for (port, (name, options)) in (43000..).zip(nothing) {
        let packet = Segment::tcp("192.0.2.10", "198.51.100.10", port, 443)
            .options(&options)
            .build();
        let run = kernel.run(&packet);
        assert_eq!(run.report.mptcp_subtypes, 0, "{name}");
        run.assert_untouched().assert_moved(&[
            "packets",
            "class_normal",
            "ipv4",
            "tcp",
            "flow_created",
        ]);
    }
    // Option 30 right after NOP, NOP, ending the options: a skip that let kind 30 through
    // would miss it.
    let nop_nop_dss = [&[NOP, NOP][..], &mptcp::dss(false)].concat();
    // A SACK that ends before the options do, then a DSS: a skip on "the first option is not
    // 30" would miss it.
    let sack_then_dss = [
        &[NOP, NOP, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2][..],
        &mptcp::dss(false),
        &[NOP, NOP],
    ]
    .concat();
    for (port, (name, options)) in (43100..).zip([
        ("NOP, NOP, DSS", nop_nop_dss.clone()),
        (
            "timestamps, NOP, NOP, DSS",
            [timestamps, &nop_nop_dss].concat(),
        ),
        ("SACK, then DSS", sack_then_dss),
    ]) {
        let packet = Segment::tcp("192.0.2.10", "198.51.100.10", port, 443)
            .options(&options)
            .build();
        let run = kernel.run(&packet);
        assert_eq!(run.report.mptcp_subtypes, 1 << 2, "{name}");
        run.assert_output(&with_dscp(&packet, DSCP_MPTCP));
    }
    // NOP, NOP and a SACK longer than what is left: the walk's error, not a skip.
    let past = Segment::tcp("192.0.2.10", "198.51.100.10", 43200, 443)
        .options(&[timestamps, &[NOP, NOP, 5, 10]].concat())
        .build();
    kernel.run(&past).assert_untouched().assert_moved(&[
        "packets",
        "class_normal",
        "ipv4",
        "tcp",
        "flow_created",
        "error_tcp_option_past_header",
    ]);
}
