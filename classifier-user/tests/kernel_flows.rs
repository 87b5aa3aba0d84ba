//! Flow memory: a flow seen as MPTCP stays MPTCP in both directions, and only that flow; a
//! SYN's offer is only an attempt, and a SYN/ACK without MPTCP is a fallback
//! (docs/design.md, 'MPTCP state of a flow').

use classifier_testkit as support;

use classifier_common::{
    flow::MptcpState,
    report::{REPORT_MPTCP_FLOW, REPORT_MPTCP_OPTION},
};
use support::{
    DSCP_MPTCP, Kernel, mptcp,
    packet::{Segment, with_dscp},
};

#[test]
fn a_later_plain_packet_of_an_mptcp_flow_is_mptcp_in_either_direction() {
    for (client, server) in [
        ("192.0.2.10", "198.51.100.10"),
        ("2001:db8:1::10", "2001:db8::10"),
    ] {
        let kernel = Kernel::load();
        let network = if client.contains(':') { "ipv6" } else { "ipv4" };
        let syn = Segment::tcp(client, server, 50000, 443)
            .syn()
            .options(&mptcp::mp_capable_v1_syn());
        let run = kernel.run(&syn.build());
        assert_eq!(
            MptcpState::from_flags(run.report.flow_flags),
            MptcpState::Attempted,
            "a SYN only offers MPTCP"
        );
        assert_eq!(run.report.flags & REPORT_MPTCP_FLOW, 0);
        let syn_ack = syn
            .reply()
            .syn_ack()
            .options(&mptcp::mp_capable_v1_syn_ack());
        let run = kernel.run(&syn_ack.build());
        assert_eq!(
            MptcpState::from_flags(run.report.flow_flags),
            MptcpState::Yes,
            "the SYN/ACK accepted it"
        );

        // The server's plain ACK (no option 30), the reverse direction of the same flow. (Not
        // `syn.reply()`, which is a SYN: a new connection.)
        let reply = Segment::tcp(server, client, 443, 50000).build();
        let run = kernel.run(&reply);
        assert_eq!(
            run.report.flags & REPORT_MPTCP_OPTION,
            0,
            "no option in the reply"
        );
        assert_ne!(
            run.report.flags & REPORT_MPTCP_FLOW,
            0,
            "the flow is known as MPTCP"
        );
        run.assert_output(&with_dscp(&reply, DSCP_MPTCP))
            .assert_moved(&["packets", "class_mptcp", network, "tcp", "marked"]);

        // The client's next plain packet, same direction as the SYN.
        let again = Segment::tcp(client, server, 50000, 443).build();
        kernel
            .run(&again)
            .assert_output(&with_dscp(&again, DSCP_MPTCP))
            .assert_moved(&["packets", "class_mptcp", network, "tcp", "marked"]);

        // Another flow between the same hosts (another port) is not MPTCP.
        let unrelated = Segment::tcp(client, server, 50001, 443).build();
        let run = kernel.run(&unrelated);
        assert_eq!(run.report.flags & REPORT_MPTCP_FLOW, 0);
        run.assert_untouched().assert_moved(&[
            "packets",
            "class_normal",
            network,
            "tcp",
            "flow_created",
        ]);
    }
}

/// A flow first seen mid-stream (the classifier came after its SYN) becomes MPTCP once valid
/// option 30s came both ways, each from its own side (here, in the tests' default, its own
/// direction): one way alone is what a spoofer can send. The entry remembers what was seen.
#[test]
fn a_flow_first_seen_mid_stream_becomes_mptcp_when_option_30_comes_both_ways() {
    let kernel = Kernel::load();
    let plain = Segment::tcp("192.0.2.10", "198.51.100.10", 50010, 443);
    kernel.run(&plain.build()).assert_untouched();
    let with_dss = plain.clone().options(&mptcp::dss(true)).build();
    let run = kernel.run(&with_dss);
    run.assert_untouched();
    assert_eq!(
        MptcpState::from_flags(run.report.flow_flags),
        MptcpState::No,
        "one way only"
    );
    // The same way again changes nothing.
    kernel.run(&with_dss).assert_untouched();
    let answer = plain.reply().options(&mptcp::dss(false)).build();
    kernel
        .run(&answer)
        .assert_output(&with_dscp(&answer, DSCP_MPTCP));
    let later = plain.reply().build();
    kernel
        .run(&later)
        .assert_output(&with_dscp(&later, DSCP_MPTCP));

    let flows = kernel.classifier.maps().flows().expect("reading flows");
    assert_eq!(flows.len(), 1, "one entry for both directions");
    let (_, entry) = flows[0];
    assert_eq!(entry.packets, 5);
    assert_eq!(entry.mptcp_subtypes, 1 << 2, "DSS seen");
}

/// A SYN that offers MPTCP answered by a SYN/ACK without it: the connection fell back to
/// plain TCP (something on the path, or the server, refused it). Counted once, on that
/// SYN/ACK; the flow is not MPTCP and is not marked as such.
#[test]
fn a_syn_ack_without_mptcp_after_an_offer_is_a_fallback() {
    for (client, server) in [
        ("192.0.2.10", "198.51.100.10"),
        ("2001:db8:1::10", "2001:db8::10"),
    ] {
        let kernel = Kernel::load();
        let network = if client.contains(':') { "ipv6" } else { "ipv4" };
        let syn = Segment::tcp(client, server, 50100, 443)
            .syn()
            .options(&mptcp::mp_capable_v1_syn());
        kernel.run(&syn.build()).assert_untouched().assert_moved(&[
            "packets",
            "class_normal",
            network,
            "tcp",
            "flow_created",
            "mptcp_option",
            "mptcp_mp_capable",
            "mp_capable_v1",
        ]);
        let plain_syn_ack = syn.reply().syn_ack().build();
        let run = kernel.run(&plain_syn_ack);
        assert_eq!(
            MptcpState::from_flags(run.report.flow_flags),
            MptcpState::Fallback
        );
        run.assert_untouched().assert_moved(&[
            "packets",
            "class_normal",
            network,
            "tcp",
            "mptcp_fallback",
        ]);
        // A retransmitted SYN/ACK is not a second fallback.
        kernel
            .run(&plain_syn_ack)
            .assert_untouched()
            .assert_moved(&["packets", "class_normal", network, "tcp"]);
        let data = Segment::tcp(client, server, 50100, 443).build();
        kernel.run(&data).assert_untouched().assert_moved(&[
            "packets",
            "class_normal",
            network,
            "tcp",
        ]);
        let flows = kernel.classifier.maps().flows().expect("reading flows");
        assert_eq!(flows.len(), 1);
        assert_eq!(
            MptcpState::from_flags(flows[0].1.flags),
            MptcpState::Fallback
        );
    }
}

/// An MP_JOIN subflow: attempted on its SYN, MPTCP once the SYN/ACK carries MP_JOIN.
#[test]
fn an_mp_join_subflow_is_mptcp_once_answered() {
    let kernel = Kernel::load();
    let syn = Segment::tcp("198.18.1.10", "198.51.100.10", 50200, 443)
        .syn()
        .options(&mptcp::mp_join_syn());
    let run = kernel.run(&syn.build());
    assert_eq!(
        MptcpState::from_flags(run.report.flow_flags),
        MptcpState::Attempted
    );
    let syn_ack = syn
        .reply()
        .syn_ack()
        .options(&mptcp::mp_join_syn_ack())
        .build();
    let run = kernel.run(&syn_ack);
    assert_eq!(
        MptcpState::from_flags(run.report.flow_flags),
        MptcpState::Yes
    );
    run.assert_output(&with_dscp(&syn_ack, DSCP_MPTCP));
}
