//! Ethernet and the VLAN tags after it (802.1ad outer, 802.1Q inner).

use core::mem::offset_of;

use classifier_common::ParseError;
use network_types::{eth::EthHdr, vlan::VlanHdr};

use super::Walk;

const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;

/// Where the Ethernet header's EtherType is: what a frame that is not IP is known by.
pub const ETHER_TYPE: usize = offset_of!(EthHdr, ether_type);

#[inline(always)]
fn is_vlan(ether_type: u16) -> bool {
    ether_type == ETH_P_8021Q || ether_type == ETH_P_8021AD
}

/// Returns the EtherType (host order) of what follows the Ethernet header and at most
/// `max_tags` VLAN tags, with the cursor there; `VlanTooDeep`, with the cursor after
/// `max_tags` tags, when another follows.
#[inline(always)]
pub fn parse_ethernet<W: Walk>(cursor: &mut W, max_tags: usize) -> Result<u16, ParseError> {
    let eth: EthHdr = cursor.read(ParseError::EthTruncated)?;
    let mut ether_type = u16::from_be(eth.ether_type);
    for _ in 0..max_tags {
        if !is_vlan(ether_type) {
            return Ok(ether_type);
        }
        let vlan: VlanHdr = cursor.read(ParseError::VlanTruncated)?;
        ether_type = u16::from_be(vlan.ether_type);
    }
    if is_vlan(ether_type) {
        return Err(ParseError::VlanTooDeep);
    }
    Ok(ether_type)
}
