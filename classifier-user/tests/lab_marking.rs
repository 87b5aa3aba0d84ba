//! Downloads through the lab's router, in IPv4 and IPv6: from an Apple address they arrive
//! marked (LE, the default policy), from another address untouched; TCP and UDP alike; with
//! the classifier at either hook, XDP or tc (docs/design.md, 'The tc hook').

use classifier_testkit as support;

use std::{net::SocketAddr, time::Duration};

use classifier::Hook;
use classifier_lab::{self as lab, Lab, traffic};
use support::{
    cli::Cli,
    nft::nft_counters,
    router::{assert_attached_at, attach_at},
};

const CLIENT_RULES: &str = "table inet verify {
    chain pre {
        type filter hook prerouting priority -300; policy accept;
        ip saddr 17.253.0.10 meta l4proto tcp counter
        ip saddr 17.253.0.10 meta l4proto tcp ip dscp != 1 counter
        ip saddr 17.253.0.10 meta l4proto udp counter
        ip saddr 17.253.0.10 meta l4proto udp ip dscp != 1 counter
        ip saddr 198.51.100.10 counter
        ip saddr 198.51.100.10 ip dscp != 0 counter
        ip6 saddr 2620:149:a44::10 meta l4proto tcp counter
        ip6 saddr 2620:149:a44::10 meta l4proto tcp ip6 dscp != 1 counter
        ip6 saddr 2620:149:a44::10 meta l4proto udp counter
        ip6 saddr 2620:149:a44::10 meta l4proto udp ip6 dscp != 1 counter
        ip6 saddr 2001:db8::10 counter
        ip6 saddr 2001:db8::10 ip6 dscp != 0 counter
    }
}";

#[test]
fn apple_downloads_arrive_marked_and_others_untouched_in_ipv4_and_ipv6() {
    downloads_through_the_router(Hook::Xdp);
}

#[test]
fn apple_downloads_arrive_marked_and_others_untouched_with_the_tc_hook() {
    downloads_through_the_router(Hook::Tc);
}

fn downloads_through_the_router(hook: Hook) {
    let lab = Lab::new().expect("lab");
    let cli = Cli::new();
    attach_at(&cli, &lab, hook);
    let counters = nft_counters(&lab.client, CLIENT_RULES);

    let cases = [
        (lab::CLIENT_V4, lab::SERVER_APPLE_V4),
        (lab::CLIENT_V4, lab::SERVER_OTHER_V4),
        (lab::CLIENT_V6, lab::SERVER_APPLE_V6),
        (lab::CLIENT_V6, lab::SERVER_OTHER_V6),
    ];
    for (port, (client, server)) in (8000u16..).zip(cases) {
        let server_addr = SocketAddr::new(server.parse().unwrap(), port);
        let client_addr = client.parse().unwrap();
        let bytes = traffic::download(
            &lab.client,
            client_addr,
            &lab.server,
            server_addr,
            Duration::from_millis(300),
        )
        .expect("download");
        assert!(
            bytes > 100_000,
            "download from {server}: only {bytes} bytes"
        );
        traffic::udp_stream(
            &lab.server,
            server.parse().unwrap(),
            SocketAddr::new(client_addr, 9000),
            200,
            1000,
        )
        .expect("UDP stream");
    }

    assert_attached_at(&cli, hook);
    let c = counters();
    println!("client counters: {c:?}");
    let named = [
        ("IPv4 Apple TCP", c[0], c[1]),
        ("IPv4 Apple UDP", c[2], c[3]),
        ("IPv4 other", c[4], c[5]),
        ("IPv6 Apple TCP", c[6], c[7]),
        ("IPv6 Apple UDP", c[8], c[9]),
        ("IPv6 other", c[10], c[11]),
    ];
    for (name, arrived, wrong) in named {
        assert!(arrived > 100, "{name}: only {arrived} packets arrived");
        assert_eq!(
            wrong, 0,
            "{name}: {wrong} of {arrived} packets arrived with the wrong DSCP"
        );
    }
}
