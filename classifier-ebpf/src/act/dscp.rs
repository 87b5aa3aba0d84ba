//! DSCP rewrite. The two ECN bits are kept; IPv4's header checksum is updated incrementally
//! (RFC 1624, eqn. 3); IPv6's version and flow label are untouched. The writes here are XDP's
//! direct ones; tc writes through the kernel's helpers (`hook::tc`).

use classifier_common::{
    Config, Counter,
    config::{ACTION_KEEP, CONFIG_DRY_RUN, DSCP_MAX},
    flow::ACTION_NONE,
};
use network_types::ip::{Ipv4Hdr, Ipv6Hdr};

use super::{Outcome, slot};
use crate::{
    hook::PacketAccess,
    parse::{IpKind, ipv4_dscp, ipv6_dscp},
};

#[inline(always)]
pub fn read_dscp(ip: &IpKind) -> u8 {
    match *ip {
        IpKind::V4(hdr) => ipv4_dscp(unsafe { (*hdr).tos }),
        IpKind::V6(hdr) => {
            let vcf = unsafe { (*hdr).vcf };
            ipv6_dscp([vcf[0], vcf[1]])
        }
    }
}

/// Carries out the policy's action and notes what it did in `out`.
#[inline(always)]
pub fn apply_action<H: PacketAccess>(
    ctx: &H,
    ip: &IpKind,
    action: u8,
    config: &Config,
    out: &mut Outcome,
) {
    if action == ACTION_NONE {
        return;
    }
    if action == ACTION_KEEP {
        out.action = slot(Counter::KeptByRule);
        return;
    }
    let dscp = action & DSCP_MAX;
    if out.dscp_in == dscp {
        out.action = slot(Counter::AlreadyMarked);
    } else if config.flags & CONFIG_DRY_RUN != 0 {
        out.action = slot(Counter::DryRunWouldMark);
    } else {
        ctx.write_dscp(ip, dscp);
        out.dscp_out = dscp;
        out.action = slot(Counter::Marked);
    }
}

#[inline(always)]
pub fn set_dscp_v4(hdr: *mut Ipv4Hdr, dscp: u8) {
    unsafe {
        let old_tos = (*hdr).tos;
        let new_tos = (dscp << 2) | (old_tos & 0x03);
        // HC' = ~(~HC + ~m + m'), m being the 16-bit word holding version/IHL and TOS.
        let vihl = (*hdr).vihl;
        let old_word = u16::from_be_bytes([vihl, old_tos]);
        let new_word = u16::from_be_bytes([vihl, new_tos]);
        let checksum = u16::from_be_bytes((*hdr).check);
        let mut sum = u32::from(!checksum) + u32::from(!old_word) + u32::from(new_word);
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        (*hdr).check = (!(sum as u16)).to_be_bytes();
        (*hdr).tos = new_tos;
    }
}

#[inline(always)]
pub fn set_dscp_v6(hdr: *mut Ipv6Hdr, dscp: u8) {
    unsafe {
        let [b0, b1, _, _] = (*hdr).vcf;
        let ecn = (b1 >> 4) & 0x03;
        let traffic_class = (dscp << 2) | ecn;
        (*hdr).vcf[0] = (b0 & 0xf0) | (traffic_class >> 4);
        (*hdr).vcf[1] = (traffic_class << 4) | (b1 & 0x0f);
    }
}
