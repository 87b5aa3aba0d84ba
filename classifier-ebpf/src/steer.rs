//! The deprioritizer's half in the kernel: on an interface's egress (tc), packets whose DSCP
//! is one of the configured bulk DSCPs go to the HTB bulk class, all others to the normal
//! class. With fairness between devices on, a bulk packet goes to one of the bulk class's
//! leaves instead, chosen by the device's address (docs/design.md, 'Fairness between
//! devices'); with flows in the normal class on, every other packet goes to one of the normal
//! class's leaves, chosen by a hash of its flow (docs/design.md, 'Flows in the normal
//! class'). HTB reads skb->priority as a class id when it names one of its classes, so
//! setting it is all the steering there is. Nothing in the packet changes, and every packet
//! passes.

use aya_ebpf::programs::TcContext;
use classifier_common::{
    ShapeConfig,
    control::SIDE_WAN,
    flow_hash::{FlowWords, flow_leaf},
    protocol::{ETH_P_IP, ETH_P_IPV6, IPPROTO_TCP, IPPROTO_UDP},
};

use crate::{
    maps::SHAPING,
    parse::{
        ETHER_TYPE, IPV4_DESTINATION, IPV4_FRAGMENT, IPV4_PROTOCOL, IPV4_SOURCE, IPV4_TOS,
        IPV6_DESTINATION, IPV6_HEADER_LEN, IPV6_NEXT_HEADER, IPV6_SOURCE, SkbCursor, ipv4_dscp,
        ipv4_header_len, ipv4_is_fragment, ipv6_dscp, parse_ethernet,
    },
};

/// In-band VLAN tags the IP header is read behind (docs/design.md, 'Fairness between
/// devices'): a packet with more is steered as a frame that is not IP.
const VLAN_TAGS: usize = 1;

#[inline(always)]
pub fn steer(ctx: &TcContext) {
    let skb = ctx.skb.skb;
    let ifindex = unsafe { (*skb).ifindex };
    let Some(shaping) = (unsafe { SHAPING.get(ifindex) }) else {
        return;
    };
    let mut packet = SkbCursor::new(ctx);
    let ip = ip_header(&mut packet);
    let class = match &ip {
        Some(ip) if shaping.bulk_dscp & (1u64 << ip.dscp) != 0 => bulk_class(&packet, shaping, ip),
        _ => normal_class(&packet, shaping, ip.as_ref()),
    };
    unsafe { (*skb).priority = class };
}

/// What steering needs of an IP header: its DSCP, where it starts and its version.
struct IpHeader {
    dscp: u8,
    offset: usize,
    v6: bool,
}

/// The DSCP and place of an IPv4 or IPv6 header. Every read of the egress program goes
/// through an `SkbCursor`, so that non-linear skbs work too.
#[inline(always)]
fn ip_header(packet: &mut SkbCursor) -> Option<IpHeader> {
    // Truncated, or more tags: a frame that is not IP, as 0 is.
    let ether_type = parse_ethernet(packet, VLAN_TAGS).unwrap_or(0);
    let offset = packet.pos;
    match ether_type {
        ETH_P_IP => Some(IpHeader {
            dscp: ipv4_dscp(packet.at::<u8>(offset + IPV4_TOS)?),
            offset,
            v6: false,
        }),
        ETH_P_IPV6 => Some(IpHeader {
            dscp: ipv6_dscp(packet.at::<[u8; 2]>(offset)?),
            offset,
            v6: true,
        }),
        _ => None,
    }
}

/// The normal class itself, or with flows on the leaf of the packet's flow. Every packet goes
/// to a leaf then, IP or not: the normal class is an inner class, and HTB would send a packet
/// steered to it past the shaping (its direct queue). A packet that is not IP, or too short
/// to hold what the hash reads, hashes by what it has.
#[inline(always)]
fn normal_class(packet: &SkbCursor, shaping: &ShapeConfig, ip: Option<&IpHeader>) -> u32 {
    if shaping.flow_leaves == 0 {
        return shaping.normal_class;
    }
    let flow = match ip {
        Some(ip) => flow_words(packet, ip),
        None => FlowWords {
            protocol: u32::from(u16::from_be(packet.at::<u16>(ETHER_TYPE).unwrap_or(0))),
            ..FlowWords::default()
        },
    };
    // flow_leaves is a power of two (`shape` refuses others); were it not, the mask would
    // still keep the leaf below it.
    shaping.first_flow_leaf + flow_leaf(&flow, shaping.flow_leaves)
}

/// The words of the packet's flow that `flow_hash` mixes: addresses, protocol and, for TCP
/// and UDP right after the IP header (no IPv6 extension headers, not an IPv4 fragment), the
/// ports. Every packet of a flow reads the same: a fragmented datagram's fragments all hash
/// by addresses, the first one too. What cannot be read stays 0.
#[inline(always)]
fn flow_words(packet: &SkbCursor, ip: &IpHeader) -> FlowWords {
    let word = |at: usize| packet.at::<u32>(at).map_or(0, u32::from_be);
    let mut flow = FlowWords::default();
    let (protocol, ports_at) = if ip.v6 {
        let source = ip.offset + IPV6_SOURCE;
        let destination = ip.offset + IPV6_DESTINATION;
        flow.source = [
            word(source),
            word(source + 4),
            word(source + 8),
            word(source + 12),
        ];
        flow.destination = [
            word(destination),
            word(destination + 4),
            word(destination + 8),
            word(destination + 12),
        ];
        let next_header = packet.at::<u8>(ip.offset + IPV6_NEXT_HEADER).unwrap_or(0);
        (next_header, ip.offset + IPV6_HEADER_LEN)
    } else {
        flow.source[0] = word(ip.offset + IPV4_SOURCE);
        flow.destination[0] = word(ip.offset + IPV4_DESTINATION);
        let protocol = packet.at::<u8>(ip.offset + IPV4_PROTOCOL).unwrap_or(0);
        let fragment = u16::from_be(packet.at::<u16>(ip.offset + IPV4_FRAGMENT).unwrap_or(0));
        let header_len = ipv4_header_len(packet.at::<u8>(ip.offset).unwrap_or(0));
        // A fragment hashes without ports (0 as the protocol's offset means none).
        let ports_at = if ipv4_is_fragment(fragment) {
            0
        } else {
            ip.offset + header_len
        };
        (protocol, ports_at)
    };
    flow.protocol = u32::from(protocol);
    if ports_at != 0 && (protocol == IPPROTO_TCP || protocol == IPPROTO_UDP) {
        flow.ports = word(ports_at);
    }
    flow
}

/// The bulk class itself, or with fairness on the leaf of the packet's device. A packet
/// too short to hold its addresses goes to leaf 0: it stays in the bulk class.
#[inline(always)]
fn bulk_class(packet: &SkbCursor, shaping: &ShapeConfig, ip: &IpHeader) -> u32 {
    if shaping.fair_leaves == 0 {
        return shaping.bulk_class;
    }
    let device = device_address(packet, ip, shaping.side == SIDE_WAN).unwrap_or(0);
    // fair_leaves is a power of two (`shape` refuses others); were it not, the mask would
    // still keep the leaf below it.
    shaping.first_leaf + (spread(device) & (shaping.fair_leaves - 1))
}

/// The device's address folded to 32 bits: the destination on a LAN egress, the source on a
/// WAN egress. An IPv6 address's four words are XORed together, so addresses that differ only
/// in the last word stay as far apart as IPv4 addresses do.
#[inline(always)]
fn device_address(packet: &SkbCursor, ip: &IpHeader, wan: bool) -> Option<u32> {
    let word = |at: usize| packet.at::<u32>(at).map(u32::from_be);
    if ip.v6 {
        let at = ip.offset + if wan { IPV6_SOURCE } else { IPV6_DESTINATION };
        Some(word(at)? ^ word(at + 4)? ^ word(at + 8)? ^ word(at + 12)?)
    } else {
        word(ip.offset + if wan { IPV4_SOURCE } else { IPV4_DESTINATION })
    }
}

/// Mixes the bits above the 12th into the low ones: K ≤ 4096 consecutive addresses inside
/// one aligned block of 4,096 keep K different low bits (XOR with a constant is a
/// bijection), and blocks land at different offsets.
#[inline(always)]
fn spread(address: u32) -> u32 {
    address ^ (address >> 12) ^ (address >> 24)
}
