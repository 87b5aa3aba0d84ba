//! TCP (data offset honoured, options walked) and UDP.

use classifier_common::{ParseError, mptcp::TCP_OPTION_MPTCP};
use network_types::{tcp::TcpHdr, udp::UdpHdr};

use core::mem::{offset_of, size_of};

use crate::maps::OPTION_SCRATCH;

use super::{
    Cursor, MptcpSeen,
    tcp_options::{
        OptionBytes, SEGMENT_ACK, SEGMENT_PAYLOAD, SEGMENT_RST, SEGMENT_SYN, TCP_OPTION_NOP,
        copy_tcp_options, walk_tcp_options,
    },
};

const TCP_MIN_HEADER: usize = 20;
/// Offset of the data-offset nibble in the TCP header.
pub const TCP_DATA_OFFSET: usize = 12;
/// Offset of the flags byte in the TCP header, and its bits.
const TCP_FLAGS_BYTE: usize = 13;
const TCP_FLAG_SYN: u8 = 0x02;
const TCP_FLAG_RST: u8 = 0x04;
const TCP_FLAG_ACK: u8 = 0x10;
/// NOP, NOP, then a timestamps option (kind 8, length 10): the 12 bytes of options nearly
/// every segment from Linux, macOS, iOS and Android carries once the handshake is done.
const TIMESTAMPS_ONLY: [u8; 4] = [1, 1, 8, 10];

pub const UDP_HEADER_LEN: usize = size_of::<UdpHdr>();
/// Offset of the length field in the UDP header.
pub const UDP_LENGTH: usize = offset_of!(UdpHdr, len);

/// The TCP header's length, from the byte at `TCP_DATA_OFFSET`.
#[inline(always)]
pub fn tcp_header_len(data_offset: u8) -> usize {
    usize::from(data_offset >> 4) * 4
}

/// Ports (network byte order) and what the TCP options said.
pub struct Transport {
    pub src_port: [u8; 2],
    pub dst_port: [u8; 2],
    /// Valid MPTCP options, with the segment's `SEGMENT_*` bits (0 for UDP).
    pub mptcp: MptcpSeen,
    /// The `ParseError` code that stopped the options walk, or 0: the packet is still
    /// classified, by its addresses and the options before the bad one.
    pub option_error: u8,
}

#[inline(always)]
/// Parses the TCP header at the cursor; `payload_len` is what the IP header says follows it.
pub fn parse_tcp(cursor: &mut Cursor, payload_len: u32) -> Result<Transport, ParseError> {
    let tcp: *const TcpHdr = cursor.take(ParseError::TcpTruncated)?;
    let data_offset = unsafe { *(tcp as *const u8).add(TCP_DATA_OFFSET) };
    let tcp_flags = unsafe { *(tcp as *const u8).add(TCP_FLAGS_BYTE) };
    let header_len = tcp_header_len(data_offset);
    if header_len < TCP_MIN_HEADER {
        return Err(ParseError::TcpHeaderTooShort);
    }
    // One comparison with the datagram's length, and one below: a second test that an
    // earlier one had already decided would make the verifier track `payload_len` exactly,
    // and split every later state by it.
    if header_len as u32 > payload_len {
        return Err(ParseError::TcpHeaderPastPacket);
    }
    let options = cursor.pos;
    let options_len = header_len - TCP_MIN_HEADER;
    cursor.skip(options_len, ParseError::TcpHeaderPastPacket)?;
    let mut segment = 0;
    if tcp_flags & TCP_FLAG_SYN != 0 {
        segment |= SEGMENT_SYN;
    }
    if tcp_flags & TCP_FLAG_ACK != 0 {
        segment |= SEGMENT_ACK;
    }
    if tcp_flags & TCP_FLAG_RST != 0 {
        segment |= SEGMENT_RST;
    }
    if payload_len > header_len as u32 {
        segment |= SEGMENT_PAYLOAD;
    }
    // NOP, NOP, timestamps first (the usual segment, and most MPTCP ones before their DSS):
    // a well-formed option that ends at byte 12, so the walk can start after it and conclude
    // the same, three rounds and 3 copied words sooner (`cargo xtask bench`).
    let skip = if options_len >= 12 && starts_with(options, cursor.end, TIMESTAMPS_ONLY) {
        12
    } else {
        0
    };
    let rest = options_len - skip;
    // NOP, NOP and one option that ends the options (SACK blocks, usually) leave nothing to
    // walk either.
    let rest = if cfg!(feature = "ablate-options")
        || one_option_not_mptcp(options + skip, cursor.end, rest)
    {
        0
    } else {
        rest
    };
    let (mptcp, option_error) = if rest == 0 {
        (MptcpSeen::NONE, 0)
    } else {
        // The copy lives in a per-CPU scratch map rather than on the 512-byte stack.
        let copy = OPTION_SCRATCH
            .get_ptr_mut(0)
            .ok_or(ParseError::TcpOptionPastHeader)?;
        // Not cleared: the walk reads no byte at or past `rest`, and those before it are all
        // written by the copy.
        let copy: &mut OptionBytes = unsafe { &mut *copy };
        copy_tcp_options(options + skip, rest, cursor.end, copy)?;
        let walked = walk_tcp_options(copy, rest, segment);
        (walked.seen, walked.error)
    };
    let mptcp = MptcpSeen {
        segment: segment as u8,
        ..mptcp
    };
    Ok(Transport {
        src_port: unsafe { (*tcp).source },
        dst_port: unsafe { (*tcp).dest },
        mptcp,
        option_error,
    })
}

/// Whether the `rest` option bytes at `at` are NOP, NOP and one option that is not MPTCP and
/// ends exactly where the options end: the walk would find nothing and no error there, so it
/// is skipped. This is the usual segment with SACK blocks after its timestamps. Decided by
/// the kind and length bytes only, never by what the option carries: a byte 30 inside a SACK
/// block is not a kind, and a test of "no byte is 30" alone would skip malformed layouts the
/// walk reports (`tcp_option_bad_length`, `tcp_option_past_header`).
#[inline(always)]
fn one_option_not_mptcp(at: usize, end: usize, rest: usize) -> bool {
    if at + 4 > end {
        return false;
    }
    let [first, second, kind, len] = unsafe { *(at as *const [u8; 4]) };
    first == TCP_OPTION_NOP
        && second == TCP_OPTION_NOP
        && kind > TCP_OPTION_NOP
        && kind != TCP_OPTION_MPTCP
        && len as usize + 2 == rest
}

/// Whether the packet holds `bytes` at `at`.
#[inline(always)]
fn starts_with(at: usize, end: usize, bytes: [u8; 4]) -> bool {
    at + 4 <= end && unsafe { *(at as *const [u8; 4]) } == bytes
}

#[inline(always)]
pub fn parse_udp(cursor: &mut Cursor, payload_len: u32) -> Result<Transport, ParseError> {
    let udp: *const UdpHdr = cursor.take(ParseError::UdpTruncated)?;
    if UDP_HEADER_LEN as u32 > payload_len {
        return Err(ParseError::UdpTruncated);
    }
    Ok(Transport {
        src_port: unsafe { (*udp).src },
        dst_port: unsafe { (*udp).dst },
        mptcp: MptcpSeen::NONE,
        option_error: 0,
    })
}
