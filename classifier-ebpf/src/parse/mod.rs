//! Every walk over a packet's headers, and what the headers' numbers and places are.
//!
//! One cursor API, two ways to the bytes. `Cursor` reads the packet directly (XDP's frame,
//! an skb's linear part) and hands out pointers the verifier has bounded: the pipeline at XDP
//! and at tc ingress walks with it, and so does tc's look at where the headers end before it
//! pulls them (`headers_end`). `SkbCursor` reads through bpf_skb_load_bytes, which reaches an
//! skb's paged part without changing the skb, and hands out copies: the egress program's. Both
//! are `Walk`s, so the parsers that only read (`parse_ethernet`) serve both.
//!
//! Every parser has the same shape: check bounds, advance, return what comes next. Every
//! failure is a `ParseError`, which the caller counts.

mod ethernet;
mod headers_end;
mod ip;
mod tcp_options;
mod transport;

use core::mem::size_of;

use aya_ebpf::programs::TcContext;
use classifier_common::ParseError;
pub use ethernet::{ETHER_TYPE, parse_ethernet};
pub use headers_end::headers_end;
pub use ip::{
    IPV4_ADDRESS_LEN, IPV4_CHECKSUM, IPV4_DESTINATION, IPV4_FRAGMENT, IPV4_PROTOCOL, IPV4_SOURCE,
    IPV4_TOS, IPV6_ADDRESS_LEN, IPV6_DESTINATION, IPV6_HEADER_LEN, IPV6_NEXT_HEADER, IPV6_SOURCE,
    IpHeader, IpKind, ipv4_dscp, ipv4_header_len, ipv4_is_fragment, ipv6_dscp, parse_ipv4,
    parse_ipv6,
};
pub use tcp_options::{MptcpSeen, SEGMENT_ACK, SEGMENT_SYN};
pub use transport::{Transport, UDP_HEADER_LEN, UDP_LENGTH, parse_tcp, parse_udp};

/// A cursor over a packet's headers, whichever way it reaches them.
pub trait Walk {
    /// A copy of the `T` at the cursor, which then moves past it; `error` when the packet
    /// does not hold it.
    fn read<T: Copy>(&mut self, error: ParseError) -> Result<T, ParseError>;
}

/// A position in the packet and its end, both absolute addresses as the verifier sees them.
pub struct Cursor {
    pub pos: usize,
    pub end: usize,
}

impl Cursor {
    #[inline(always)]
    pub fn new(data: usize, data_end: usize) -> Self {
        Self {
            pos: data,
            end: data_end,
        }
    }

    /// A pointer to a `T` at the cursor, which then moves past it.
    #[inline(always)]
    pub fn take<T>(&mut self, error: ParseError) -> Result<*mut T, ParseError> {
        let at = self.pos;
        if at + size_of::<T>() > self.end {
            return Err(error);
        }
        self.pos = at + size_of::<T>();
        Ok(at as *mut T)
    }

    /// A copy of the `T` at the cursor, which stays where it is; None when the packet does
    /// not hold it.
    #[inline(always)]
    pub fn peek<T: Copy>(&self) -> Option<T> {
        if self.pos + size_of::<T>() > self.end {
            return None;
        }
        Some(unsafe { *(self.pos as *const T) })
    }

    /// Moves the cursor `len` bytes on; `len` comes from a header and is bounded by its caller.
    #[inline(always)]
    pub fn skip(&mut self, len: usize, error: ParseError) -> Result<(), ParseError> {
        if self.pos + len > self.end {
            return Err(error);
        }
        self.pos += len;
        Ok(())
    }
}

impl Walk for Cursor {
    #[inline(always)]
    fn read<T: Copy>(&mut self, error: ParseError) -> Result<T, ParseError> {
        let at: *const T = self.take(error)?;
        Ok(unsafe { *at })
    }
}

/// A cursor over an skb read through bpf_skb_load_bytes, from its first byte: it reaches the
/// paged part too, and leaves the skb as it is (making the headers linear would copy every
/// cloned skb, as every TCP segment this host sends is). `pos` is an offset.
pub struct SkbCursor<'a> {
    ctx: &'a TcContext,
    pub pos: usize,
}

impl<'a> SkbCursor<'a> {
    #[inline(always)]
    pub fn new(ctx: &'a TcContext) -> Self {
        Self { ctx, pos: 0 }
    }

    /// A copy of the `T` at offset `at` of the skb; None when the skb does not hold it.
    #[inline(always)]
    pub fn at<T: Copy>(&self, at: usize) -> Option<T> {
        self.ctx.load::<T>(at).ok()
    }
}

impl Walk for SkbCursor<'_> {
    #[inline(always)]
    fn read<T: Copy>(&mut self, error: ParseError) -> Result<T, ParseError> {
        let value = self.ctx.load::<T>(self.pos).map_err(|_| error)?;
        self.pos += size_of::<T>();
        Ok(value)
    }
}
