//! IPv4 (IHL honoured, fragments recognised) and IPv6 (extension-header chain walked).

use classifier_common::{ParseError, limits::MAX_IPV6_EXT_DEPTH};
use network_types::ip::{Ipv4Hdr, Ipv6Hdr};

use super::Cursor;

const IPV4_MIN_HEADER: usize = 20;
const IPV4_MORE_FRAGMENTS_AND_OFFSET: u16 = 0x3fff;

const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_AUTH: u8 = 51;
const IPV6_DEST_OPTIONS: u8 = 60;
const IPV6_FRAGMENT_HEADER_LEN: usize = 8;

/// The network header of a packet, with what follows it.
pub struct IpHeader {
    pub kind: IpKind,
    /// The transport protocol (IPPROTO_*) after all extension headers.
    pub protocol: u8,
    /// A fragment: the transport header is absent or incomplete, so it is not inspected.
    pub fragment: bool,
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
    let header_len = ((vihl & 0x0f) as usize) * 4;
    if header_len < IPV4_MIN_HEADER {
        return Err(ParseError::Ipv4HeaderTooShort);
    }
    cursor.skip(
        header_len - IPV4_MIN_HEADER,
        ParseError::Ipv4HeaderPastPacket,
    )?;
    let frags = u16::from_be_bytes(unsafe { (*hdr).frags });
    Ok(IpHeader {
        kind: IpKind::V4(hdr),
        protocol: unsafe { (*hdr).proto },
        fragment: frags & IPV4_MORE_FRAGMENTS_AND_OFFSET != 0,
    })
}

#[inline(always)]
fn is_extension(next: u8) -> bool {
    matches!(
        next,
        IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_FRAGMENT | IPV6_AUTH | IPV6_DEST_OPTIONS
    )
}

#[inline(always)]
pub fn parse_ipv6(cursor: &mut Cursor) -> Result<IpHeader, ParseError> {
    let hdr: *mut Ipv6Hdr = cursor.take(ParseError::Ipv6Truncated)?;
    if unsafe { (*hdr).vcf[0] } >> 4 != 6 {
        return Err(ParseError::Ipv6BadVersion);
    }
    let next = walk_ipv6_extensions(cursor, unsafe { (*hdr).next_hdr })?;
    Ok(IpHeader {
        kind: IpKind::V6(hdr),
        protocol: next.protocol,
        fragment: next.fragment,
    })
}

/// Where an IPv6 extension-header chain ends.
#[derive(Copy, Clone)]
pub struct Ipv6Next {
    pub protocol: u8,
    pub fragment: bool,
}

/// Walks the extension-header chain from `next` and leaves the cursor after it.
///
/// Not inlined: the walk is a loop the verifier checks once, in its own stack frame. It returns
/// only scalars: a result carrying a packet pointer back through memory can be read back
/// partially by LLVM, which the verifier rejects ("invalid size of register fill").
#[inline(never)]
fn walk_ipv6_extensions(cursor: &mut Cursor, mut next: u8) -> Result<Ipv6Next, ParseError> {
    for _ in 0..MAX_IPV6_EXT_DEPTH {
        if !is_extension(next) {
            break;
        }
        // Every extension header starts with (next header, length); the length's unit differs.
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
            // What follows a fragment header may be a piece of a transport header: stop here.
            return Ok(Ipv6Next {
                protocol: ext_next,
                fragment: true,
            });
        }
        next = ext_next;
    }
    if is_extension(next) {
        return Err(ParseError::Ipv6ExtTooDeep);
    }
    Ok(Ipv6Next {
        protocol: next,
        fragment: false,
    })
}
