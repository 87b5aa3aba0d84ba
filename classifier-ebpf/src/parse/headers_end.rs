//! Where the headers end, for tc's decision to make them linear: read from what direct
//! access reaches, and only the bytes that say so, so that it answers for a linear part that
//! ends inside the headers, where the parse itself would stop.

use classifier_common::{
    ParseError,
    limits::MAX_VLAN_DEPTH,
    protocol::{ETH_P_IP, ETH_P_IPV6, IPPROTO_TCP, IPPROTO_UDP},
};

use super::{
    Cursor,
    ethernet::parse_ethernet,
    ip::{IPV4_PROTOCOL, IPV6_HEADER_LEN, IPV6_NEXT_HEADER, ipv4_header_len, is_ipv6_extension},
    transport::{TCP_DATA_OFFSET, UDP_HEADER_LEN, tcp_header_len},
};

/// Where the Ethernet, VLAN, IP and TCP or UDP headers end, as an offset from `data`, read
/// from `data..end`; None when `end` comes before that shows, or at an IPv6 extension header.
/// Past `MAX_VLAN_DEPTH` tags it is where the tags end, as for a frame that is not IP: the
/// parse stops there too.
#[inline(always)]
pub fn headers_end(data: usize, end: usize) -> Option<usize> {
    let mut cursor = Cursor::new(data, end);
    let ether_type = match parse_ethernet(&mut cursor, MAX_VLAN_DEPTH) {
        Ok(ether_type) => ether_type,
        Err(ParseError::VlanTooDeep) => return Some(cursor.pos - data),
        Err(_) => return None,
    };
    let l3 = cursor.pos;
    let (l4, protocol) = match ether_type {
        ETH_P_IP => {
            let head: [u8; IPV4_PROTOCOL + 1] = cursor.peek()?;
            (l3 + ipv4_header_len(head[0]), head[IPV4_PROTOCOL])
        }
        ETH_P_IPV6 => {
            let head: [u8; IPV6_NEXT_HEADER + 1] = cursor.peek()?;
            if is_ipv6_extension(head[IPV6_NEXT_HEADER]) {
                return None;
            }
            (l3 + IPV6_HEADER_LEN, head[IPV6_NEXT_HEADER])
        }
        _ => return Some(l3 - data),
    };
    let transport_len = match protocol {
        IPPROTO_TCP => {
            let head: [u8; TCP_DATA_OFFSET + 1] = Cursor::new(l4, end).peek()?;
            tcp_header_len(head[TCP_DATA_OFFSET])
        }
        IPPROTO_UDP => UDP_HEADER_LEN,
        _ => 0,
    };
    Some(l4 + transport_len - data)
}
