//! Everything the pipeline learned about one packet; `record` turns it into counters.
//!
//! Plain integers in a C layout, because `record` is a global BPF function and receives it
//! by pointer (to the pipeline's stack): counter slots are `Counter` indices in one byte each,
//! `NO_SLOT` where nothing applies.

use classifier_common::{Counter, flow::NO_RULE, mptcp::MPTCP_VERSION_NONE, report::DSCP_UNKNOWN};

/// A counter index that names no counter (`Decision`'s events).
pub const NO_COUNTER: u32 = u32::MAX;

/// An `Outcome` counter field that names no counter.
pub const NO_SLOT: u8 = u8::MAX;

/// A counter's index as an `Outcome` field: one byte, so that the outcome fits the stack.
#[inline(always)]
pub const fn slot(counter: Counter) -> u8 {
    counter.index() as u8
}

const _: () = assert!(classifier_common::counter::COUNTER_SLOTS < NO_SLOT as u32);

#[repr(C, align(8))]
pub struct Outcome {
    /// One of the `Class*` counters.
    pub class: u8,
    /// `Ipv4` or `Ipv6`.
    pub network: u8,
    /// `Tcp`, `Udp` or `OtherTransport`.
    pub transport: u8,
    /// Why the packet was classified by its addresses alone: `Ipv4Fragment`,
    /// `Ipv6Fragment` or `TransportUnreachable`.
    pub address_only: u8,
    /// `Marked`, `AlreadyMarked`, `DryRunWouldMark` or `KeptByRule`.
    pub action: u8,
    /// `FlowCreated` or `FlowInsertFailed`.
    pub flow_event: u8,
    /// `DnsForwarded` or `DnsLost`.
    pub dns: u8,
    /// `MptcpFallback`.
    pub mptcp_event: u8,
    pub lists: u32,
    /// Bit n: an option with MPTCP subtype n is in this packet's header.
    pub mptcp_subtypes: u16,
    /// MP_CAPABLE version in this packet, or `MPTCP_VERSION_NONE`.
    pub mptcp_version: u8,
    /// `ParseError` code, 0 for none.
    pub error: u8,
    pub mptcp_flow: u8,
    pub rule: u8,
    /// The flow entry's flags after this packet; 0 without a flow.
    pub flow_flags: u8,
    /// DSCP before and after; `DSCP_UNKNOWN` until an IP header was parsed.
    pub dscp_in: u8,
    pub dscp_out: u8,
    pub _pad: [u8; 3],
}

impl Outcome {
    /// The outcome of a packet not looked at yet. Every byte is written, padding included:
    /// the verifier refuses to pass uninitialised stack to a global function.
    pub const NEW: Self = Self {
        class: slot(Counter::ClassMalformed),
        network: NO_SLOT,
        transport: NO_SLOT,
        address_only: NO_SLOT,
        action: NO_SLOT,
        flow_event: NO_SLOT,
        dns: NO_SLOT,
        mptcp_event: NO_SLOT,
        lists: 0,
        mptcp_subtypes: 0,
        mptcp_version: MPTCP_VERSION_NONE,
        error: 0,
        mptcp_flow: 0,
        rule: NO_RULE,
        flow_flags: 0,
        dscp_in: DSCP_UNKNOWN,
        dscp_out: DSCP_UNKNOWN,
        _pad: [0; 3],
    };
}
