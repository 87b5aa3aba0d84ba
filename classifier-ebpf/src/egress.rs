//! The deprioritizer's half in the kernel: on an interface's egress (tc), packets whose DSCP
//! is one of the configured bulk DSCPs go to the HTB bulk class, all others to the normal
//! class. HTB reads skb->priority as a class id when it names one of its classes, so setting
//! it is all the steering there is. Nothing in the packet changes, and every packet passes.

use aya_ebpf::programs::TcContext;

use crate::{
    maps::SHAPING,
    parse::{ETH_P_IP, ETH_P_IPV6, is_vlan},
};

const ETHER_TYPE_OFFSET: usize = 12;
const VLAN_TAG_LEN: usize = 4;

#[inline(always)]
pub fn steer(ctx: &TcContext) {
    let skb = ctx.skb.skb;
    let ifindex = unsafe { (*skb).ifindex };
    let Some(shaping) = (unsafe { SHAPING.get(ifindex) }) else {
        return;
    };
    let class = match dscp_of(ctx) {
        Some(dscp) if shaping.bulk_dscp & (1u64 << dscp) != 0 => shaping.bulk_class,
        _ => shaping.normal_class,
    };
    unsafe { (*skb).priority = class };
}

/// The DSCP of an IPv4 or IPv6 packet (one in-band VLAN tag allowed), read with
/// bpf_skb_load_bytes so that non-linear skbs work too.
#[inline(always)]
fn dscp_of(ctx: &TcContext) -> Option<u8> {
    let mut ether_type_at = ETHER_TYPE_OFFSET;
    let mut ether_type = u16::from_be(ctx.load::<u16>(ether_type_at).ok()?);
    if is_vlan(ether_type) {
        ether_type_at += VLAN_TAG_LEN;
        ether_type = u16::from_be(ctx.load::<u16>(ether_type_at).ok()?);
    }
    let l3 = ether_type_at + 2;
    match ether_type {
        ETH_P_IP => Some(ctx.load::<u8>(l3 + 1).ok()? >> 2),
        // Version (4 bits), traffic class (8), flow label: DSCP is bits 6..12 of the first word.
        ETH_P_IPV6 => Some(((u16::from_be(ctx.load::<u16>(l3).ok()?) >> 6) & 0x3f) as u8),
        _ => None,
    }
}
