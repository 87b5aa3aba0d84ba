//! Ethernet and up to `MAX_VLAN_DEPTH` VLAN tags (802.1ad outer, 802.1Q inner).

use classifier_common::{ParseError, limits::MAX_VLAN_DEPTH};
use network_types::{eth::EthHdr, vlan::VlanHdr};

use super::Cursor;

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;

#[inline(always)]
pub fn is_vlan(ether_type: u16) -> bool {
    ether_type == ETH_P_8021Q || ether_type == ETH_P_8021AD
}

/// Returns the EtherType of what follows the Ethernet header and its VLAN tags (host order).
#[inline(always)]
pub fn parse_ethernet(cursor: &mut Cursor) -> Result<u16, ParseError> {
    let eth: *const EthHdr = cursor.take(ParseError::EthTruncated)?;
    let mut ether_type = u16::from_be(unsafe { (*eth).ether_type });
    for _ in 0..MAX_VLAN_DEPTH {
        if !is_vlan(ether_type) {
            return Ok(ether_type);
        }
        let vlan: *const VlanHdr = cursor.take(ParseError::VlanTruncated)?;
        ether_type = u16::from_be(unsafe { (*vlan).ether_type });
    }
    if is_vlan(ether_type) {
        return Err(ParseError::VlanTooDeep);
    }
    Ok(ether_type)
}
