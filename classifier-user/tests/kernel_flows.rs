//! Flow memory: a flow seen as MPTCP stays MPTCP in both directions, and only that flow.

mod support;

use classifier_common::report::{REPORT_MPTCP_FLOW, REPORT_MPTCP_OPTION};
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
        kernel.run(&syn.build());

        // The server's plain ACK (no option 30), the reverse direction of the same flow.
        let reply = syn.reply().build();
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

/// A flow that turns out to be MPTCP after its first packet (the option first appears
/// later) is classed MPTCP from then on, and the flow entry remembers what was seen.
#[test]
fn a_flow_becomes_mptcp_when_option_30_first_appears() {
    let kernel = Kernel::load();
    let plain = Segment::tcp("192.0.2.10", "198.51.100.10", 50010, 443);
    kernel.run(&plain.build()).assert_untouched();
    let with_dss = plain.clone().options(&mptcp::dss(true)).build();
    kernel
        .run(&with_dss)
        .assert_output(&with_dscp(&with_dss, DSCP_MPTCP));
    let later = plain.reply().build();
    kernel
        .run(&later)
        .assert_output(&with_dscp(&later, DSCP_MPTCP));

    let flows = kernel.classifier.maps.flows().expect("reading flows");
    assert_eq!(flows.len(), 1, "one entry for both directions");
    let (_, entry) = flows[0];
    assert_eq!(entry.packets, 3);
    assert_eq!(entry.mptcp_subtypes, 1 << 2, "DSS seen");
}
