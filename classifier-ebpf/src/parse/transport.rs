//! TCP (data offset honoured, options walked) and UDP.

use classifier_common::ParseError;
use network_types::{tcp::TcpHdr, udp::UdpHdr};

use crate::maps::OPTION_SCRATCH;

use super::{
    Cursor, MptcpSeen,
    tcp_options::{OptionBytes, copy_tcp_options, walk_tcp_options},
};

const TCP_MIN_HEADER: usize = 20;
/// Offset of the data-offset nibble in the TCP header.
const TCP_DATA_OFFSET_BYTE: usize = 12;
/// NOP, NOP, then a timestamps option (kind 8, length 10): the 12 bytes of options nearly
/// every segment from Linux, macOS, iOS and Android carries once the handshake is done.
const TIMESTAMPS_ONLY: [u8; 4] = [1, 1, 8, 10];

/// Ports (network byte order) and what the TCP options said.
pub struct Transport {
    pub src_port: [u8; 2],
    pub dst_port: [u8; 2],
    pub mptcp: MptcpSeen,
}

#[inline(always)]
pub fn parse_tcp(cursor: &mut Cursor) -> Result<Transport, ParseError> {
    let tcp: *const TcpHdr = cursor.take(ParseError::TcpTruncated)?;
    let data_offset = unsafe { *(tcp as *const u8).add(TCP_DATA_OFFSET_BYTE) } >> 4;
    let header_len = (data_offset as usize) * 4;
    if header_len < TCP_MIN_HEADER {
        return Err(ParseError::TcpHeaderTooShort);
    }
    let options = cursor.pos;
    let options_len = header_len - TCP_MIN_HEADER;
    cursor.skip(options_len, ParseError::TcpHeaderPastPacket)?;
    // NOP, NOP, timestamps first (the usual segment, and most MPTCP ones before their DSS):
    // a well-formed option that ends at byte 12, so the walk can start after it and conclude
    // the same, 12 positions and 3 copied words sooner (`cargo xtask bench`).
    let skip = if options_len >= 12 && starts_with(options, cursor.end, TIMESTAMPS_ONLY) {
        12
    } else {
        0
    };
    let rest = options_len - skip;
    let mptcp = if rest == 0 {
        MptcpSeen::NONE
    } else {
        // The copy lives in a per-CPU scratch map rather than on the 512-byte stack.
        let copy = OPTION_SCRATCH
            .get_ptr_mut(0)
            .ok_or(ParseError::TcpOptionPastHeader)?;
        // Not cleared: the walk reads no byte at or past `rest`, and those before it are all
        // written by the copy.
        let copy: &mut OptionBytes = unsafe { &mut *copy };
        copy_tcp_options(options + skip, rest, cursor.end, copy)?;
        walk_tcp_options(copy, rest)?
    };
    Ok(Transport {
        src_port: unsafe { (*tcp).source },
        dst_port: unsafe { (*tcp).dest },
        mptcp,
    })
}

/// Whether the packet holds `bytes` at `at`.
#[inline(always)]
fn starts_with(at: usize, end: usize, bytes: [u8; 4]) -> bool {
    at + 4 <= end && unsafe { *(at as *const [u8; 4]) } == bytes
}

#[inline(always)]
pub fn parse_udp(cursor: &mut Cursor) -> Result<Transport, ParseError> {
    let udp: *const UdpHdr = cursor.take(ParseError::UdpTruncated)?;
    Ok(Transport {
        src_port: unsafe { (*udp).src },
        dst_port: unsafe { (*udp).dst },
        mptcp: MptcpSeen::NONE,
    })
}
