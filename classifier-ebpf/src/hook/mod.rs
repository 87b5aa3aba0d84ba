//! The two places the pipeline runs: XDP (in the driver, before the kernel builds an skb) and
//! tc at TCX ingress (after it did, for interfaces without native XDP). The pipeline is generic
//! over `PacketAccess`, how a hook reaches the packet and rewrites it; each hook implements it
//! (docs/design.md, 'The tc hook'). The user side's `Hook` names which of the two runs.

mod tc;
mod xdp;

use crate::parse::IpKind;

pub use tc::make_headers_direct;

/// How the pipeline reaches the packet at one hook, and rewrites it.
pub trait PacketAccess {
    /// The packet's first byte (the Ethernet header) and the end of what direct packet
    /// access may read.
    fn data(&self) -> usize;
    fn data_end(&self) -> usize;
    /// The packet's length, as the byte counters count it.
    fn packet_len(&self) -> u64;
    /// Whether direct access ends before the packet does, so that a header found truncated
    /// may only be out of reach (tc: an skb whose headers run past its linear part).
    fn headers_cut(&self) -> bool;
    /// The interface the packet arrived on.
    fn ifindex(&self) -> u32;
    /// Copies `len` bytes at `offset` from the packet start to `to`; None when the packet
    /// does not hold them. The helper checks the bounds itself.
    fn load_bytes(&self, offset: u32, to: *mut u8, len: u32) -> Option<()>;
    /// Writes the DSCP `dscp` into the IP header `ip` points to, keeping ECN and, for IPv4,
    /// the header checksum right. Packet pointers are not to be used after it.
    fn write_dscp(&self, ip: &IpKind, dscp: u8);
    /// A line in the operator's log for a rare trouble (`classifier run` forwards it).
    fn log_trouble(&self, flow_event: u32);
}
