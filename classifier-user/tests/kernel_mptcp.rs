//! The TCP options walk in the kernel: every MPTCP subtype, both protocol versions as real
//! stacks send them, each on the segment it belongs to, options in awkward places, and what
//! must not count (docs/design.md, 'TCP options and MPTCP' and 'MPTCP state of a flow').
//!
//! Then what no spoofer can set: the last tests run as on a router, in a namespace of their
//! own with two veths standing for the LAN and the WAN interface, each packet run as come in
//! on one of them (BPF_PROG_TEST_RUN resolves the interface in the thread's namespace).

use classifier_testkit as support;

use std::cell::Cell;

use classifier::control::netns;
use classifier_common::{
    FlowEntry,
    flow::MptcpState,
    mptcp::MPTCP_VERSION_NONE,
    report::{REPORT_MPTCP_FLOW, REPORT_MPTCP_OPTION},
};
use classifier_lab::{Netns, veth};
use support::{
    DSCP_MPTCP, Kernel, Run,
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
                mptcp::SUBTYPE_COUNTERS[subtype as usize],
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

/// Each case on a fresh flow of its own (a new source port), in IPv4 and in IPv6. No option
/// alone makes a flow MPTCP: on a SYN it only offers MPTCP (the flow is attempted), on any
/// other segment of a flow first seen mid-stream it waits for the other direction (docs/
/// design.md, 'MPTCP state of a flow'). The packet is classed and treated as plain TCP.
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
            assert_eq!(
                MptcpState::from_flags(run.report.flow_flags),
                if case.on == On::Syn {
                    MptcpState::Attempted
                } else {
                    MptcpState::No
                },
                "{context}: MPTCP state"
            );
            run.assert_output(&packet);
            let mut expected = vec![
                "packets",
                network,
                "tcp",
                "flow_created",
                "mptcp_option",
                "class_normal",
            ];
            expected.extend(
                case.subtypes
                    .iter()
                    .map(|s| mptcp::SUBTYPE_COUNTERS[*s as usize]),
            );
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
        // The server's DSS first: then the client's makes the flow MPTCP, and is marked.
        let answer = Segment::tcp("198.51.100.10", "192.0.2.10", 443, port)
            .options(&mptcp::dss(false))
            .build();
        kernel.run(&answer);
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

/// The victim, a LAN host, and the server it talks to (in no list: its flows are normal).
const VICTIM: &str = "192.0.2.10";
const SERVER: &str = "198.51.100.10";

/// A DSS with nothing in it (no data ACK, no mapping): the cheapest valid option 30.
const BARE_DSS: [u8; 4] = [mptcp::KIND, 4, 0x20, 0x00];

/// The classifier as on a router whose LAN is `lan` and WAN `wan`: a packet's side is the
/// interface it came in on.
struct Router {
    kernel: Kernel,
    lan: u32,
    wan: u32,
}

/// Runs `test` inside a namespace of its own with the veths x0 (LAN) and x1 (WAN).
fn on_a_router(test: impl FnOnce(Router) + Send) {
    let ns = Netns::create("clst-mp").expect("a namespace");
    veth(&ns, "x0", &ns, "x1").expect("a veth pair");
    ns.enter(|| {
        let mut kernel = Kernel::load();
        kernel.sides_by_interface();
        let lan = netns::ifindex("x0").expect("x0");
        let wan = netns::ifindex("x1").expect("x1");
        test(Router { kernel, lan, wan });
    })
    .expect("entering the namespace");
}

impl Router {
    fn entry(&self, client_port: u16) -> FlowEntry {
        let flows = self
            .kernel
            .classifier
            .maps()
            .flows()
            .expect("reading flows");
        let port = client_port.to_be_bytes();
        flows
            .into_iter()
            .find(|(key, _)| key.port_a == port || key.port_b == port)
            .unwrap_or_else(|| panic!("no flow of port {client_port}"))
            .1
    }

    fn state(&self, client_port: u16) -> MptcpState {
        MptcpState::from_flags(self.entry(client_port).flags)
    }

    fn epoch(&self) -> u64 {
        self.kernel
            .classifier
            .maps()
            .flow_epoch()
            .expect("FLOW_EPOCH")
    }

    /// A plain packet each way on the flow of `port`, as it crosses the router: neither
    /// MPTCP nor marked.
    fn assert_plain_both_ways(&self, port: u16, context: &str) {
        let out = Segment::tcp(VICTIM, SERVER, port, 443).build();
        let back = Segment::tcp(SERVER, VICTIM, 443, port).build();
        for run in [
            self.kernel.run_at(&out, self.lan),
            self.kernel.run_at(&back, self.wan),
        ] {
            assert_eq!(
                run.report.flags & REPORT_MPTCP_FLOW,
                0,
                "{context}: port {port} is MPTCP"
            );
            run.assert_untouched()
                .assert_moved(&["packets", "class_normal", "ipv4", "tcp"]);
        }
    }
}

fn is_mptcp(run: &Run) -> bool {
    run.report.flags & REPORT_MPTCP_FLOW != 0
}

/// (a) A LAN host sprays ACKs with a bare DSS, spoofed from the victim's address over a range
/// of ports that holds the victim's live flows, and from the server's address back: on the
/// LAN interface, all of it. Neither the victim's connection (handshake seen) nor its flow
/// first seen mid-stream becomes MPTCP, both stay in the normal class, no flow the spray
/// creates is MPTCP, and the spray never moves FLOW_EPOCH (no CPU loses its cache).
#[test]
fn a_spoofed_option_30_spray_leaves_the_victims_flows_alone() {
    on_a_router(|router| {
        let kernel = &router.kernel;
        let (lan, wan) = (router.lan, router.wan);
        // The victim's connection, its plain handshake seen.
        let syn = Segment::tcp(VICTIM, SERVER, 50000, 443)
            .syn()
            .options(&mptcp::syn_options());
        kernel.run_at(&syn.build(), lan);
        kernel.run_at(&syn.reply().syn_ack().build(), wan);
        // And one the classifier first saw mid-stream.
        kernel.run_at(&Segment::tcp(VICTIM, SERVER, 50001, 443).build(), lan);
        router.assert_plain_both_ways(50001, "before the spray");

        let before = router.epoch();
        let (mut packets, mut marked, mut mptcp, mut moves, mut created) = (0, 0, 0, 0, 0);
        let mut epoch = before;
        for port in 49872..50128u16 {
            for spoofed in [
                Segment::tcp(VICTIM, SERVER, port, 443),
                Segment::tcp(SERVER, VICTIM, 443, port),
            ] {
                let packet = spoofed.options(&BARE_DSS).build();
                let run = kernel.run_at(&packet, lan);
                packets += 1;
                marked += usize::from(run.output != packet);
                mptcp += usize::from(is_mptcp(&run));
                created += usize::from(run.moved.contains_key("flow_created"));
                assert_eq!(
                    run.report.mptcp_subtypes,
                    1 << 2,
                    "the DSS counts as an option"
                );
                let now = router.epoch();
                moves += usize::from(now != epoch);
                epoch = now;
            }
        }
        println!(
            "spray: {packets} packets, {created} flows created, {mptcp} MPTCP, {marked} marked, \
             FLOW_EPOCH moved {moves} times"
        );
        assert_eq!(
            (mptcp, marked, moves),
            (0, 0, 0),
            "{packets} spoofed packets: MPTCP, marked, epoch moves"
        );
        for port in [50000, 50001] {
            assert_eq!(router.state(port), MptcpState::No, "port {port}");
            router.assert_plain_both_ways(port, "after the spray");
        }
    });
}

/// (b) A new SYN on a 5-tuple whose last connection was MPTCP starts the flow afresh: without
/// MP_CAPABLE the new connection is plain TCP, its packets unmarked (the flow cache, which
/// served the old connection's, learns it through FLOW_EPOCH), and what the old one showed
/// (subtypes, version) is gone.
#[test]
fn a_new_syn_without_mp_capable_makes_the_5_tuple_plain_tcp() {
    on_a_router(|router| {
        let kernel = &router.kernel;
        let (lan, wan) = (router.lan, router.wan);
        let syn = Segment::tcp(VICTIM, SERVER, 50100, 443).syn();
        kernel.run_at(
            &syn.clone().options(&mptcp::mp_capable_v1_syn()).build(),
            lan,
        );
        let run = kernel.run_at(
            &syn.reply()
                .syn_ack()
                .options(&mptcp::mp_capable_v1_syn_ack())
                .build(),
            wan,
        );
        assert!(is_mptcp(&run), "the MPTCP handshake, both ways");
        // Established: the flow cache serves these.
        for _ in 0..3 {
            let out = Segment::tcp(VICTIM, SERVER, 50100, 443)
                .options(&mptcp::dss(false))
                .build();
            kernel
                .run_at(&out, lan)
                .assert_output(&with_dscp(&out, DSCP_MPTCP));
            let back = Segment::tcp(SERVER, VICTIM, 443, 50100).build();
            kernel
                .run_at(&back, wan)
                .assert_output(&with_dscp(&back, DSCP_MPTCP));
        }

        let epoch = router.epoch();
        let run = kernel.run_at(&syn.options(&mptcp::syn_options()).build(), lan);
        assert!(!is_mptcp(&run), "the new SYN");
        run.assert_untouched();
        assert_ne!(
            router.epoch(),
            epoch,
            "the SYN changed the flags: the epoch moved"
        );
        let entry = router.entry(50100);
        assert_eq!(MptcpState::from_flags(entry.flags), MptcpState::No);
        assert_eq!(
            (entry.mptcp_subtypes, entry.mptcp_version),
            (0, MPTCP_VERSION_NONE),
            "the old connection's subtypes and version are gone"
        );
        kernel
            .run_at(
                &Segment::tcp(SERVER, VICTIM, 443, 50100).syn_ack().build(),
                wan,
            )
            .assert_untouched();
        router.assert_plain_both_ways(50100, "after the new SYN");
        assert_eq!(router.state(50100), MptcpState::No);
    });
}

/// (c) A connection whose SYN carried no MP_CAPABLE or MP_JOIN is plain TCP for life, as for
/// Linux: a SYN/ACK with MP_CAPABLE, MP_CAPABLE's third ACK and DSS both ways, each on its
/// own interface, are counted as options and change nothing.
#[test]
fn a_connection_opened_without_mptcp_never_becomes_mptcp() {
    on_a_router(|router| {
        let kernel = &router.kernel;
        let (lan, wan) = (router.lan, router.wan);
        let syn = Segment::tcp(VICTIM, SERVER, 50200, 443)
            .syn()
            .options(&mptcp::syn_options());
        kernel.run_at(&syn.build(), lan).assert_untouched();
        let later = [
            (
                syn.reply()
                    .syn_ack()
                    .options(&mptcp::mp_capable_v1_syn_ack()),
                wan,
            ),
            (
                Segment::tcp(VICTIM, SERVER, 50200, 443)
                    .options(&mptcp::mp_capable_v1_ack_with_data()),
                lan,
            ),
            (
                Segment::tcp(VICTIM, SERVER, 50200, 443).options(&mptcp::dss(false)),
                lan,
            ),
            (
                Segment::tcp(SERVER, VICTIM, 443, 50200).options(&mptcp::dss(true)),
                wan,
            ),
        ];
        for (n, (segment, side)) in later.into_iter().enumerate() {
            let run = kernel.run_at(&segment.build(), side);
            assert_ne!(run.report.mptcp_subtypes, 0, "segment {n}: options counted");
            assert!(run.moved.contains_key("mptcp_option"), "segment {n}");
            assert!(!is_mptcp(&run), "segment {n} made the flow MPTCP");
            run.assert_untouched();
        }
        assert_eq!(router.state(50200), MptcpState::No);
        router.assert_plain_both_ways(50200, "after the options");
    });
}

/// (d) A flow first seen mid-stream is picked up once valid option 30s came both ways, each
/// way on its own interface, as a forwarded flow crosses the router. One LAN host, spoofing
/// either address, sends on its own interface only; an internet host on the WAN only; and
/// one direction seen on both interfaces is still one direction.
#[test]
fn a_flow_first_seen_mid_stream_is_picked_up_only_across_two_interfaces() {
    on_a_router(|router| {
        let kernel = &router.kernel;
        let (lan, wan) = (router.lan, router.wan);
        let out = |port| Segment::tcp(VICTIM, SERVER, port, 443).options(&mptcp::dss(false));
        let back = |port| Segment::tcp(SERVER, VICTIM, 443, port).options(&mptcp::dss(false));
        let refused = [
            (
                "one LAN host, both addresses",
                [(out(50300), lan), (back(50300), lan)],
            ),
            (
                "an internet host, both addresses",
                [(back(50301), wan), (out(50301), wan)],
            ),
            (
                "one direction on both interfaces",
                [(out(50302), lan), (out(50302), wan)],
            ),
        ];
        for (name, packets) in refused {
            for _ in 0..2 {
                for (segment, side) in &packets {
                    let run = kernel.run_at(&segment.build(), *side);
                    assert!(!is_mptcp(&run), "{name}: picked up");
                    run.assert_untouched();
                }
            }
        }
        for port in [50300, 50301, 50302] {
            assert_eq!(router.state(port), MptcpState::No, "port {port}");
            router.assert_plain_both_ways(port, "refused");
        }
        // The real thing: the client's DSS on the LAN, the server's on the WAN, whichever
        // comes first.
        for (port, first, second) in [
            (50310, (out(50310), lan), (back(50310), wan)),
            (50311, (back(50311), wan), (out(50311), lan)),
        ] {
            let run = kernel.run_at(&first.0.build(), first.1);
            assert!(!is_mptcp(&run), "port {port}: one way only");
            let packet = second.0.build();
            let run = kernel.run_at(&packet, second.1);
            assert!(is_mptcp(&run), "port {port}: both ways, two interfaces");
            run.assert_output(&with_dscp(&packet, DSCP_MPTCP));
            assert_eq!(router.state(port), MptcpState::Yes);
            let plain = Segment::tcp(SERVER, VICTIM, 443, port).build();
            kernel
                .run_at(&plain, wan)
                .assert_output(&with_dscp(&plain, DSCP_MPTCP));
        }
    });
}

/// The handshake too must come in on two interfaces: a LAN host that forges a SYN with
/// MP_CAPABLE on a victim's 5-tuple (starting it afresh) and the SYN/ACK back, both on its
/// own interface, does not make it MPTCP; the real handshake does.
#[test]
fn a_handshake_counts_only_across_two_interfaces() {
    on_a_router(|router| {
        let kernel = &router.kernel;
        let (lan, wan) = (router.lan, router.wan);
        for (port, syn_ack_side, accepted) in [(50400, lan, false), (50401, wan, true)] {
            let syn = Segment::tcp(VICTIM, SERVER, port, 443).syn();
            kernel.run_at(
                &syn.clone().options(&mptcp::mp_capable_v1_syn()).build(),
                lan,
            );
            let syn_ack = syn
                .reply()
                .syn_ack()
                .options(&mptcp::mp_capable_v1_syn_ack())
                .build();
            let run = kernel.run_at(&syn_ack, syn_ack_side);
            assert_eq!(is_mptcp(&run), accepted, "port {port}");
            let expected = if accepted {
                MptcpState::Yes
            } else {
                MptcpState::Attempted
            };
            assert_eq!(router.state(port), expected, "port {port}");
        }
    });
}

/// What spoofed SYNs cost the flow caches. A SYN is a new connection and starts its flow
/// afresh, so it moves FLOW_EPOCH when it changes the flow's flags, subtypes or version: a
/// spray of the same SYN on a victim's 5-tuple moves it at most once, whatever its length;
/// SYNs that alternate what they say (an offer, then none) move it at each one, which costs
/// each CPU one trip to the table per cached flow and move (docs/design.md, 'MPTCP state of a
/// flow'). Neither makes the flow MPTCP.
#[test]
fn a_syn_spray_moves_the_epoch_only_when_it_changes_the_flow() {
    on_a_router(|router| {
        let kernel = &router.kernel;
        let (lan, wan) = (router.lan, router.wan);
        let syn = Segment::tcp(VICTIM, SERVER, 50500, 443).syn();
        kernel.run_at(&syn.build(), lan);
        kernel.run_at(&syn.reply().syn_ack().build(), wan);
        let spray = |packets: &[Vec<u8>], rounds: usize| {
            let mut epoch = router.epoch();
            let mut moves = 0;
            for _ in 0..rounds {
                for packet in packets {
                    let run = kernel.run_at(packet, lan);
                    assert!(!is_mptcp(&run), "a spoofed SYN made the flow MPTCP");
                    let now = router.epoch();
                    moves += usize::from(now != epoch);
                    epoch = now;
                }
            }
            moves
        };
        let offer = syn.clone().options(&mptcp::mp_capable_v1_syn()).build();
        let same = spray(std::slice::from_ref(&offer), 100);
        let alternating = spray(&[syn.build(), offer], 50);
        println!(
            "SYN spray on one 5-tuple: 100 identical SYNs moved FLOW_EPOCH {same} times, 100 \
             alternating an offer {alternating} times"
        );
        assert!(same <= 1, "identical SYNs moved the epoch {same} times");
        assert_ne!(router.state(50500), MptcpState::Yes);
    });
}
