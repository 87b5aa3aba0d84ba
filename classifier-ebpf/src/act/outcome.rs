//! Everything the pipeline learned about one packet; `record` turns it into counters.
//!
//! Plain integers in a C layout, because `record` is a global BPF function and receives it
//! by pointer: counter slots are `Counter` indices, `NO_COUNTER` where nothing applies.

use classifier_common::{Counter, flow::NO_RULE, mptcp::MPTCP_VERSION_NONE, report::DSCP_UNKNOWN};

/// An `Outcome` counter field that names no counter.
pub const NO_COUNTER: u32 = u32::MAX;

#[repr(C)]
pub struct Outcome {
    /// One of the `Class*` counters.
    pub class: u32,
    /// `Ipv4` or `Ipv6`.
    pub network: u32,
    /// `Tcp`, `Udp` or `OtherTransport`.
    pub transport: u32,
    /// `Ipv4Fragment` or `Ipv6Fragment`.
    pub fragment: u32,
    /// `Marked`, `AlreadyMarked`, `DryRunWouldMark` or `KeptByRule`.
    pub action: u32,
    /// `FlowCreated` or `FlowInsertFailed`.
    pub flow_event: u32,
    /// `DnsForwarded` or `DnsLost`.
    pub dns: u32,
    pub lists: u32,
    /// Bit n: an option with MPTCP subtype n is in this packet's header.
    pub mptcp_subtypes: u16,
    /// MP_CAPABLE version in this packet, or `MPTCP_VERSION_NONE`.
    pub mptcp_version: u8,
    /// `ParseError` code, 0 for none.
    pub error: u8,
    pub mptcp_flow: u8,
    pub rule: u8,
    /// DSCP before and after; `DSCP_UNKNOWN` until an IP header was parsed.
    pub dscp_in: u8,
    pub dscp_out: u8,
}

impl Outcome {
    #[inline(always)]
    pub fn new() -> Self {
        Self {
            class: Counter::ClassMalformed.index(),
            network: NO_COUNTER,
            transport: NO_COUNTER,
            fragment: NO_COUNTER,
            action: NO_COUNTER,
            flow_event: NO_COUNTER,
            dns: NO_COUNTER,
            lists: 0,
            mptcp_subtypes: 0,
            mptcp_version: MPTCP_VERSION_NONE,
            error: 0,
            mptcp_flow: 0,
            rule: NO_RULE,
            dscp_in: DSCP_UNKNOWN,
            dscp_out: DSCP_UNKNOWN,
        }
    }
}
