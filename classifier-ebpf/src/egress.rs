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
};

use crate::{
    maps::SHAPING,
    parse::{ETH_P_IP, ETH_P_IPV6, is_vlan},
};

const ETHER_TYPE_OFFSET: usize = 12;
const VLAN_TAG_LEN: usize = 4;
/// Where the source address starts in each IP header; the destination follows it.
const IPV4_SOURCE: usize = 12;
const IPV6_SOURCE: usize = 8;
const IPV6_ADDRESS_LEN: usize = 16;
const IPV6_HEADER_LEN: usize = 40;
const IPV4_PROTOCOL: usize = 9;
const IPV4_FRAGMENT: usize = 6;
/// IPv4's MF flag and fragment offset: a packet with either set is a fragment.
const IPV4_MORE_FRAGMENTS_OR_OFFSET: u16 = 0x3fff;
const IPV6_NEXT_HEADER: usize = 6;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

#[inline(always)]
pub fn steer(ctx: &TcContext) {
    let skb = ctx.skb.skb;
    let ifindex = unsafe { (*skb).ifindex };
    let Some(shaping) = (unsafe { SHAPING.get(ifindex) }) else {
        return;
    };
    let ip = ip_header(ctx);
    let class = match &ip {
        Some(ip) if shaping.bulk_dscp & (1u64 << ip.dscp) != 0 => bulk_class(ctx, shaping, ip),
        _ => normal_class(ctx, shaping, ip.as_ref()),
    };
    unsafe { (*skb).priority = class };
}

/// What steering needs of an IP header: its DSCP, where it starts and its version.
struct IpHeader {
    dscp: u8,
    offset: usize,
    v6: bool,
}

/// The DSCP and place of an IPv4 or IPv6 header (one in-band VLAN tag allowed), read with
/// bpf_skb_load_bytes so that non-linear skbs work too.
#[inline(always)]
fn ip_header(ctx: &TcContext) -> Option<IpHeader> {
    let mut ether_type_at = ETHER_TYPE_OFFSET;
    let mut ether_type = u16::from_be(ctx.load::<u16>(ether_type_at).ok()?);
    if is_vlan(ether_type) {
        ether_type_at += VLAN_TAG_LEN;
        ether_type = u16::from_be(ctx.load::<u16>(ether_type_at).ok()?);
    }
    let offset = ether_type_at + 2;
    match ether_type {
        ETH_P_IP => Some(IpHeader {
            dscp: ctx.load::<u8>(offset + 1).ok()? >> 2,
            offset,
            v6: false,
        }),
        // Version (4 bits), traffic class (8), flow label: DSCP is bits 6..12 of the first word.
        ETH_P_IPV6 => Some(IpHeader {
            dscp: ((u16::from_be(ctx.load::<u16>(offset).ok()?) >> 6) & 0x3f) as u8,
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
fn normal_class(ctx: &TcContext, shaping: &ShapeConfig, ip: Option<&IpHeader>) -> u32 {
    if shaping.flow_leaves == 0 {
        return shaping.normal_class;
    }
    let flow = match ip {
        Some(ip) => flow_words(ctx, ip),
        None => FlowWords {
            protocol: u32::from(u16::from_be(
                ctx.load::<u16>(ETHER_TYPE_OFFSET).unwrap_or(0),
            )),
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
fn flow_words(ctx: &TcContext, ip: &IpHeader) -> FlowWords {
    let word = |at: usize| ctx.load::<u32>(at).map(u32::from_be).unwrap_or(0);
    let mut flow = FlowWords::default();
    let (protocol, ports_at) = if ip.v6 {
        let source = ip.offset + IPV6_SOURCE;
        let destination = source + IPV6_ADDRESS_LEN;
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
        let next_header = ctx.load::<u8>(ip.offset + IPV6_NEXT_HEADER).unwrap_or(0);
        (next_header, ip.offset + IPV6_HEADER_LEN)
    } else {
        flow.source[0] = word(ip.offset + IPV4_SOURCE);
        flow.destination[0] = word(ip.offset + IPV4_SOURCE + 4);
        let protocol = ctx.load::<u8>(ip.offset + IPV4_PROTOCOL).unwrap_or(0);
        let fragment = u16::from_be(ctx.load::<u16>(ip.offset + IPV4_FRAGMENT).unwrap_or(0));
        let header_len = usize::from(ctx.load::<u8>(ip.offset).unwrap_or(0) & 0x0f) * 4;
        // A fragment hashes without ports (0 as the protocol's offset means none).
        let ports_at = if fragment & IPV4_MORE_FRAGMENTS_OR_OFFSET != 0 {
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
fn bulk_class(ctx: &TcContext, shaping: &ShapeConfig, ip: &IpHeader) -> u32 {
    if shaping.fair_leaves == 0 {
        return shaping.bulk_class;
    }
    let device = device_address(ctx, ip, shaping.side == SIDE_WAN).unwrap_or(0);
    // fair_leaves is a power of two (`shape` refuses others); were it not, the mask would
    // still keep the leaf below it.
    shaping.first_leaf + (spread(device) & (shaping.fair_leaves - 1))
}

/// The device's address folded to 32 bits: the destination on a LAN egress, the source on a
/// WAN egress. An IPv6 address's four words are XORed together, so addresses that differ only
/// in the last word stay as far apart as IPv4 addresses do.
#[inline(always)]
fn device_address(ctx: &TcContext, ip: &IpHeader, wan: bool) -> Option<u32> {
    let word = |at: usize| ctx.load::<u32>(at).ok().map(u32::from_be);
    if ip.v6 {
        let at = ip.offset + IPV6_SOURCE + if wan { 0 } else { IPV6_ADDRESS_LEN };
        Some(word(at)? ^ word(at + 4)? ^ word(at + 8)? ^ word(at + 12)?)
    } else {
        word(ip.offset + IPV4_SOURCE + if wan { 0 } else { 4 })
    }
}

/// Mixes the bits above the 12th into the low ones: K ≤ 4096 consecutive addresses inside
/// one aligned block of 4,096 keep K different low bits (XOR with a constant is a
/// bijection), and blocks land at different offsets.
#[inline(always)]
fn spread(address: u32) -> u32 {
    address ^ (address >> 12) ^ (address >> 24)
}
