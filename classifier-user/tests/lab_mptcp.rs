//! Real kernel MPTCP through the lab's router: a client with two paths, a server speaking
//! MPTCP, the classifier on the router's ingress interfaces, at either hook (XDP or tc:
//! docs/design.md, 'The tc hook').

use classifier_testkit as support;

use std::net::SocketAddr;

use classifier::Hook;
use classifier_lab::{self as lab, Lab, traffic};
use support::{
    cli::{Cli, flow_from},
    nft::nft_counters,
    router::{assert_attached_at, attach_at},
};

/// Counts, in the server, TCP packets from each client address to port 7000, those among
/// them not carrying DSCP CS1 (8) after each subflow's SYN (a SYN only offers MPTCP: the
/// flow is MPTCP from the SYN/ACK on, docs/design.md 'MPTCP state of a flow'), and the SYNs
/// that did carry it (none may).
const SERVER_RULES: &str = "table inet verify {
    chain pre {
        type filter hook prerouting priority -300; policy accept;
        ip saddr 192.0.2.10 tcp dport 7000 counter
        ip saddr 198.18.1.10 tcp dport 7000 counter
        ip saddr { 192.0.2.10, 198.18.1.10 } tcp dport 7000 tcp flags & (syn | ack) != syn ip dscp != 8 counter
        ip saddr { 192.0.2.10, 198.18.1.10 } tcp dport 7000 tcp flags & (syn | ack) == syn ip dscp 8 counter
    }
}";

#[test]
fn an_mptcp_connection_through_the_router_is_seen_on_both_subflows_and_marked() {
    mptcp_through_the_router(Hook::Xdp);
}

#[test]
fn an_mptcp_connection_is_seen_on_both_subflows_and_marked_with_the_tc_hook() {
    mptcp_through_the_router(Hook::Tc);
}

fn mptcp_through_the_router(hook: Hook) {
    let lab = Lab::new().expect("lab");
    let cli = Cli::new();
    attach_at(&cli, &lab, hook);
    cli.run(&["policy", "set", "mptcp=CS1", "list:apple=LE"])
        .ok();
    let counters = nft_counters(&lab.server, SERVER_RULES);

    let server: SocketAddr = format!("{}:7000", lab::SERVER_OTHER_V4).parse().unwrap();
    let client = lab::CLIENT_V4.parse().unwrap();
    let sent = 8 * 1024 * 1024;
    let received = traffic::transfer(&lab.client, client, &lab.server, server, sent, true, 2)
        .expect("MPTCP transfer");
    assert_eq!(received, sent);

    let flows = cli.run(&["flows", "--mptcp", "--json"]).ok().json();
    let flows = flows.as_array().unwrap();
    println!(
        "MPTCP flows: {}",
        serde_json::to_string_pretty(flows).unwrap()
    );
    let from = |source: &str| flow_from(flows, source);
    let (first, second) = (from(lab::CLIENT_V4), from(lab::CLIENT_V4_SECOND));
    for subflow in [first, second] {
        assert_eq!(subflow["mptcp"], "yes");
        assert_eq!(subflow["dscp"], "CS1");
        assert_eq!(subflow["server"], "198.51.100.10:7000");
    }
    assert!(
        first["mptcp_subtypes"]
            .as_array()
            .unwrap()
            .contains(&"mp_capable".into())
    );
    assert_eq!(first["mptcp_version"], 1, "Linux speaks RFC 8684");
    assert!(
        second["mptcp_subtypes"]
            .as_array()
            .unwrap()
            .contains(&"mp_join".into())
    );

    let stats = cli.run(&["stats", "--json"]).ok().json();
    for subtype in ["mp_capable", "mp_join", "dss"] {
        let moved = stats["mptcp"]["subtypes"][subtype]["packets"]
            .as_u64()
            .unwrap();
        assert!(moved > 0, "{subtype} counter did not move");
    }
    assert!(
        stats["mptcp"]["mp_capable_versions"]["v1"]["packets"]
            .as_u64()
            .unwrap()
            > 0
    );

    assert_attached_at(&cli, hook);
    let [first_path, second_path, not_cs1, marked_syns] = counters()[..] else {
        panic!("four counters expected");
    };
    println!(
        "server received: {first_path} packets via c0, {second_path} via c1, {not_cs1} not CS1 \
         after the SYNs, {marked_syns} SYNs marked"
    );
    assert_eq!(
        marked_syns, 0,
        "a SYN only offers MPTCP: not marked as MPTCP"
    );
    assert!(
        first_path > 0 && second_path > 0,
        "both subflows carried packets"
    );
    assert_eq!(
        not_cs1, 0,
        "the receiver must see the policy's DSCP on every packet"
    );
}
