//! Packet parsing with one cursor. Every parser has the same shape: check bounds, advance,
//! return what comes next. Every failure is a `ParseError`, which the caller counts.

mod ethernet;
mod ip;
mod tcp_options;
mod transport;

use core::mem::size_of;

use classifier_common::ParseError;
pub use ethernet::{ETH_P_IP, ETH_P_IPV6, is_vlan, parse_ethernet};
pub use ip::{IpHeader, IpKind, parse_ipv4, parse_ipv6};
pub use tcp_options::{MptcpSeen, SEGMENT_ACK, SEGMENT_SYN};
pub use transport::{Transport, parse_tcp, parse_udp};

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
