//! The tc hook on an skb whose headers are not in its linear part: direct access reaches only
//! that part, and `make_headers_direct` pulls `HEADERS_DIRECT` (192) bytes when it cannot see
//! where the headers end. An IPv6 extension chain that goes on past them is out of the
//! program's reach, not truncated: the packet is classified by its addresses, marked, and
//! counted `transport_unreachable` (docs/design.md, 'The tc hook' and 'IPv6 extension
//! headers').
//!
//! BPF_PROG_TEST_RUN builds only linear skbs, so the skbs are made by the kernel itself: a
//! packet socket with `PACKET_VNET_HDR` puts only the Ethernet header in the linear part of a
//! frame larger than a page (`packet_alloc_skb`), and a veth hands that skb to its peer as
//! it is.

use classifier_testkit as support;

use std::{mem::size_of, os::fd::AsRawFd as _, time::Duration};

use classifier_lab::{Netns, veth};
use socket2::{Domain, Protocol, Socket, Type};
use support::{
    cli::Cli,
    packet::{DEST_OPTIONS, ETH_LEN, Ipv6Extension, Segment, insert_ipv6_extensions},
    wait::wait_until,
};

const ETH_P_IPV6: u16 = 0x86dd;
const SOL_PACKET: libc::c_int = 263;
const PACKET_VNET_HDR: libc::c_int = 15;
/// `struct virtio_net_hdr`: no checksum offload, no GSO, `hdr_len` 0 (so the linear part is
/// the device's hard header length, 14).
const VNET_HDR: [u8; 10] = [0; 10];
const FRAMES: u64 = 5;

/// Sends `frame` `count` times out of `device` in `ns`, each skb holding only the Ethernet
/// header in its linear part.
fn send_paged(ns: &Netns, device: &str, frame: &[u8], count: u64) {
    ns.enter(|| {
        let socket = Socket::new(
            Domain::from(libc::AF_PACKET),
            Type::from(libc::SOCK_RAW),
            Some(Protocol::from(i32::from(ETH_P_IPV6.to_be()))),
        )
        .expect("a packet socket");
        let on: libc::c_int = 1;
        // SAFETY: a valid socket and an int option.
        let set = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                SOL_PACKET,
                PACKET_VNET_HDR,
                (&raw const on).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(
            set,
            0,
            "PACKET_VNET_HDR: {}",
            std::io::Error::last_os_error()
        );
        let name = std::ffi::CString::new(device).unwrap();
        // SAFETY: a NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        assert_ne!(ifindex, 0, "{device}'s index");
        // SAFETY: sockaddr_ll is plain data; every field the kernel reads is set below.
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_protocol = ETH_P_IPV6.to_be();
        address.sll_ifindex = ifindex as i32;
        // SAFETY: `address` is a sockaddr_ll of the size given.
        let bound = unsafe {
            libc::bind(
                socket.as_raw_fd(),
                (&raw const address).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        assert_eq!(bound, 0, "bind: {}", std::io::Error::last_os_error());
        let message = [&VNET_HDR[..], frame].concat();
        for _ in 0..count {
            let sent = socket.send(&message).expect("sending a frame");
            assert_eq!(sent, message.len());
        }
    })
    .expect("entering the client namespace");
}

fn count(stats: &serde_json::Value, path: &str) -> u64 {
    path.split('.')
        .fold(stats, |value, key| &value[key])
        .as_u64()
        .unwrap_or_else(|| panic!("no number at {path} in {stats}"))
}

#[test]
fn an_extension_chain_past_the_pulled_headers_is_classified_by_address_at_tc() {
    let client = Netns::create("clpg-c").expect("client namespace");
    let server = Netns::create("clpg-s").expect("server namespace");
    veth(&client, "c0", &server, "s0").expect("veth pair");
    for (ns, device) in [(&client, "c0"), (&server, "s0")] {
        ns.plain_frames(device).expect("offloads off");
        // Frames larger than a page, or the packet socket makes the skb linear.
        ns.ip(&["link", "set", device, "mtu", "9000"])
            .expect("jumbo MTU");
    }
    let cli = Cli::new();
    let netns = server.name();
    cli.run(&["--netns", netns, "attach", "s0", "--hook", "tc"])
        .ok();
    cli.run(&["prefixes", "add", "2a01:b740::/32"]).ok();

    // Three 64-byte destination-options headers: the chain ends at byte 14 + 40 + 192 = 246,
    // past the 192 bytes tc pulls; then TCP and 4,000 bytes of payload.
    let mut frame = Segment::tcp("2001:db8:1::10", "2a01:b740:a42::1", 47900, 443)
        .payload(&[0x5a; 4000])
        .build();
    insert_ipv6_extensions(
        &mut frame,
        &[Ipv6Extension {
            kind: DEST_OPTIONS,
            len: 64,
        }; 3],
    );
    assert!(ETH_LEN + 40 + 3 * 64 > 192 && frame.len() > 4096);
    send_paged(&client, "c0", &frame, FRAMES);

    let mut stats = serde_json::Value::Null;
    wait_until(
        Duration::from_secs(5),
        format_args!("{FRAMES} frames counted at s0"),
        || {
            stats = cli.run(&["stats", "--json"]).ok().json();
            count(&stats, "network.ipv6.packets") >= FRAMES
        },
    );
    assert_eq!(count(&stats, "network.ipv6.packets"), FRAMES, "{stats}");
    assert_eq!(
        count(&stats, "transport.unreachable.packets"),
        FRAMES,
        "{stats}"
    );
    assert_eq!(count(&stats, "transport.other.packets"), FRAMES, "{stats}");
    assert_eq!(count(&stats, "classes.listed.packets"), FRAMES, "{stats}");
    assert_eq!(count(&stats, "actions.marked.packets"), FRAMES, "{stats}");
    assert_eq!(count(&stats, "classes.malformed.packets"), 0, "{stats}");
    assert_eq!(
        count(&stats, "errors.ipv6_ext_truncated.packets"),
        0,
        "{stats}"
    );
    assert_eq!(count(&stats, "flows.created.packets"), 0, "{stats}");
}
