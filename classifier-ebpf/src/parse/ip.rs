//! IPv4 (IHL honoured, fragments recognised) and IPv6 (extension-header chain walked), and
//! where their fields lie.

use core::mem::{offset_of, size_of};

use classifier_common::{ParseError, limits::MAX_IPV6_EXT_DEPTH};
use network_types::ip::{Ipv4Hdr, Ipv6Hdr};

use super::Cursor;

/// Where the fields the walks read lie in the IPv4 header.
pub const IPV4_TOS: usize = offset_of!(Ipv4Hdr, tos);
/// The flags and fragment offset.
pub const IPV4_FRAGMENT: usize = offset_of!(Ipv4Hdr, frags);
pub const IPV4_PROTOCOL: usize = offset_of!(Ipv4Hdr, proto);
pub const IPV4_CHECKSUM: usize = offset_of!(Ipv4Hdr, check);
pub const IPV4_SOURCE: usize = offset_of!(Ipv4Hdr, src_addr);
pub const IPV4_DESTINATION: usize = offset_of!(Ipv4Hdr, dst_addr);
pub const IPV4_ADDRESS_LEN: usize = 4;
const IPV4_MIN_HEADER: usize = size_of::<Ipv4Hdr>();
const IPV4_MORE_FRAGMENTS_AND_OFFSET: u16 = 0x3fff;

/// The same of the IPv6 header.
pub const IPV6_NEXT_HEADER: usize = offset_of!(Ipv6Hdr, next_hdr);
pub const IPV6_SOURCE: usize = offset_of!(Ipv6Hdr, src_addr);
pub const IPV6_DESTINATION: usize = offset_of!(Ipv6Hdr, dst_addr);
pub const IPV6_ADDRESS_LEN: usize = 16;
pub const IPV6_HEADER_LEN: usize = size_of::<Ipv6Hdr>();

/// IPv6 extension headers, the next-header values the walk goes past.
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_AUTH: u8 = 51;
const IPV6_DEST_OPTIONS: u8 = 60;
const IPV6_FRAGMENT_HEADER_LEN: usize = 8;
/// The fragment offset and M flag in the fragment header's third and fourth bytes: all zero
/// makes an atomic fragment (RFC 6946), a whole datagram that only carries the header.
const IPV6_FRAGMENT_OFFSET_AND_MORE: u16 = 0xfff9;

/// The IPv4 header's length, from its first byte (version and IHL).
#[inline(always)]
pub fn ipv4_header_len(vihl: u8) -> usize {
    usize::from(vihl & 0x0f) * 4
}

/// Whether an IPv4 header's flags and fragment offset (host order) make it a fragment: MF
/// set or a non-zero offset.
#[inline(always)]
pub fn ipv4_is_fragment(frags: u16) -> bool {
    frags & IPV4_MORE_FRAGMENTS_AND_OFFSET != 0
}

/// The DSCP of an IPv4 TOS byte.
#[inline(always)]
pub fn ipv4_dscp(tos: u8) -> u8 {
    tos >> 2
}

/// The DSCP of an IPv6 header, from its first two bytes: the traffic class is the low nibble
/// of the first and the high nibble of the second, the DSCP its top six bits.
#[inline(always)]
pub fn ipv6_dscp(first: [u8; 2]) -> u8 {
    ((first[0] & 0x0f) << 2) | (first[1] >> 6)
}

/// The network header of a packet, with what follows it.
pub struct IpHeader {
    pub kind: IpKind,
    /// The transport protocol (IPPROTO_*) after all extension headers.
    pub protocol: u8,
    /// A fragment: the transport header is absent or incomplete, so it is not inspected.
    pub fragment: bool,
    /// The extension chain goes on where the walk stops (past `MAX_IPV6_EXT_DEPTH` headers,
    /// or after a fragment header): the transport header is not reached, and the packet is
    /// classified by its addresses, which the fixed header holds.
    pub transport_unreachable: bool,
    /// How many bytes follow the IP headers according to their length fields (or, where a
    /// length field is 0 and defers to the frame, as BIG TCP and jumbograms do, what the frame
    /// holds). What lies past them is Ethernet padding, never to be read as headers or TCP
    /// options (docs/design.md, 'Parsing and its bounds').
    ///
    /// A plain count that no branch tests against a constant: the verifier then never needs
    /// it exact, and states that differ only in it prune as one. A second end pointer, or a
    /// sentinel value, made it split every later state and exhaust its budget.
    pub payload_len: u32,
}

pub enum IpKind {
    V4(*mut Ipv4Hdr),
    V6(*mut Ipv6Hdr),
}

#[inline(always)]
pub fn parse_ipv4(cursor: &mut Cursor) -> Result<IpHeader, ParseError> {
    let hdr: *mut Ipv4Hdr = cursor.take(ParseError::Ipv4Truncated)?;
    let vihl = unsafe { (*hdr).vihl };
    if vihl >> 4 != 4 {
        return Err(ParseError::Ipv4BadVersion);
    }
    let header_len = ipv4_header_len(vihl);
    if header_len < IPV4_MIN_HEADER {
        return Err(ParseError::Ipv4HeaderTooShort);
    }
    // 0 is a GSO packet's "see the frame" (BIG TCP); anything else bounds the datagram.
    let total_len = u16::from_be_bytes(unsafe { (*hdr).tot_len }) as usize;
    cursor.skip(
        header_len - IPV4_MIN_HEADER,
        ParseError::Ipv4HeaderPastPacket,
    )?;
    let payload_len = if total_len == 0 {
        (cursor.end - cursor.pos) as u32
    } else if total_len < header_len {
        return Err(ParseError::Ipv4BadTotalLength);
    } else {
        (total_len - header_len) as u32
    };
    let frags = u16::from_be_bytes(unsafe { (*hdr).frags });
    Ok(IpHeader {
        kind: IpKind::V4(hdr),
        protocol: unsafe { (*hdr).proto },
        fragment: ipv4_is_fragment(frags),
        transport_unreachable: false,
        payload_len,
    })
}

/// Whether `next`, a next-header value, is an extension header the walk goes past.
#[inline(always)]
pub fn is_ipv6_extension(next: u8) -> bool {
    matches!(
        next,
        IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_FRAGMENT | IPV6_AUTH | IPV6_DEST_OPTIONS
    )
}

/// `headers_cut` says whether the readable part ends before the packet (tc): a chain cut
/// there is out of reach, not truncated.
#[inline(always)]
pub fn parse_ipv6(
    cursor: &mut Cursor,
    headers_cut: impl Fn() -> bool,
) -> Result<IpHeader, ParseError> {
    let hdr: *mut Ipv6Hdr = cursor.take(ParseError::Ipv6Truncated)?;
    if unsafe { (*hdr).vcf[0] } >> 4 != 6 {
        return Err(ParseError::Ipv6BadVersion);
    }
    // 0 is a jumbogram's or a BIG TCP packet's "see the frame"; anything else bounds it.
    let payload_len = u32::from(u16::from_be_bytes(unsafe { (*hdr).payload_len }));
    let chain_start = cursor.pos;
    // Most IPv6 packets carry no extension header: they make no call (a call's return is
    // expensive on hosts with AMD's "Safe RET"); the walk would conclude the same at once.
    let next_hdr = unsafe { (*hdr).next_hdr };
    let next = if is_ipv6_extension(next_hdr) {
        match walk_ipv6_extensions(cursor, next_hdr) {
            // Past what the hook may read, not past the packet: the addresses still count.
            Err(ParseError::Ipv6ExtTruncated) if headers_cut() => {
                return Ok(IpHeader {
                    kind: IpKind::V6(hdr),
                    protocol: IPV6_DEST_OPTIONS,
                    fragment: false,
                    transport_unreachable: true,
                    payload_len: 0,
                });
            }
            next => next?,
        }
    } else {
        Ipv6Next {
            protocol: next_hdr,
            fragment: false,
        }
    };
    // Computed here rather than returned by the walk: a wider result from it took the
    // verifier past its budget.
    let chain_len = (cursor.pos - chain_start) as u32;
    let payload_len = if payload_len == 0 {
        (cursor.end - cursor.pos) as u32
    } else if chain_len > payload_len {
        return Err(ParseError::Ipv6ExtTruncated);
    } else {
        payload_len - chain_len
    };
    Ok(IpHeader {
        kind: IpKind::V6(hdr),
        protocol: next.protocol,
        fragment: next.fragment,
        transport_unreachable: is_ipv6_extension(next.protocol),
        payload_len,
    })
}

/// Where an IPv6 extension-header chain ends.
#[derive(Copy, Clone)]
pub struct Ipv6Next {
    pub protocol: u8,
    pub fragment: bool,
}

/// Walks the extension-header chain from `next` and leaves the cursor after it, or after
/// the last header it walked when the chain goes on (its `protocol` is then an extension).
///
/// Not inlined: the walk is a loop the verifier checks once, in its own stack frame. It returns
/// only scalars: a result carrying a packet pointer back through memory can be read back
/// partially by LLVM, which the verifier rejects ("invalid size of register fill").
#[inline(never)]
fn walk_ipv6_extensions(cursor: &mut Cursor, mut next: u8) -> Result<Ipv6Next, ParseError> {
    for _ in 0..MAX_IPV6_EXT_DEPTH {
        if !is_ipv6_extension(next) {
            break;
        }
        // Every extension header starts with (next header, length); the length's unit
        // differs. AH counts 4-byte words minus 2, so its length 0 makes 8 bytes.
        let at = cursor.pos;
        let ext: *const [u8; 2] = cursor.take(ParseError::Ipv6ExtTruncated)?;
        let (ext_next, ext_len) = unsafe { ((*ext)[0], (*ext)[1] as usize) };
        let len = match next {
            IPV6_FRAGMENT => IPV6_FRAGMENT_HEADER_LEN,
            IPV6_AUTH => (ext_len + 2) * 4,
            _ => (ext_len + 1) * 8,
        };
        cursor.pos = at;
        cursor.skip(len, ParseError::Ipv6ExtTruncated)?;
        if next == IPV6_FRAGMENT {
            // A fragment header ends the walk. An atomic fragment (offset 0, no more
            // fragments) is the whole datagram, so what follows is parsed as the transport
            // (RFC 6946 §4); an extension header after it is not walked, and the packet is
            // then classified by address only. Walking on would make every chain shape
            // reach the transport parser twice over, which the verifier cannot afford.
            if at + 4 > cursor.end {
                return Err(ParseError::Ipv6ExtTruncated);
            }
            let offset_and_more = u16::from_be_bytes(unsafe { *((at + 2) as *const [u8; 2]) });
            return Ok(Ipv6Next {
                protocol: ext_next,
                fragment: offset_and_more & IPV6_FRAGMENT_OFFSET_AND_MORE != 0,
            });
        }
        next = ext_next;
    }
    // A longer chain is legal, and the receiver walks it: the packet is not malformed, its
    // transport is only out of reach (`IpHeader::transport_unreachable`).
    Ok(Ipv6Next {
        protocol: next,
        fragment: false,
    })
}
