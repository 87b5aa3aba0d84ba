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
    /// `MptcpFallback`.
    pub mptcp_event: u32,
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
}

impl Outcome {
    /// Makes this the outcome of a packet not looked at yet.
    ///
    /// Field by field, with volatile stores: a struct assignment becomes a `memset` of the
    /// seven `NO_COUNTER` fields, which on BPF is a call to a byte-at-a-time loop: 24 rounds of
    /// it on every packet (measured by `cargo xtask bench`).
    #[inline(always)]
    pub fn reset(&mut self) {
        let set = |field: &mut u32, value: u32| unsafe { core::ptr::write_volatile(field, value) };
        set(&mut self.class, Counter::ClassMalformed.index());
        set(&mut self.network, NO_COUNTER);
        set(&mut self.transport, NO_COUNTER);
        set(&mut self.fragment, NO_COUNTER);
        set(&mut self.action, NO_COUNTER);
        set(&mut self.flow_event, NO_COUNTER);
        set(&mut self.dns, NO_COUNTER);
        set(&mut self.mptcp_event, NO_COUNTER);
        set(&mut self.lists, 0);
        self.mptcp_subtypes = 0;
        self.mptcp_version = MPTCP_VERSION_NONE;
        self.error = 0;
        self.mptcp_flow = 0;
        self.rule = NO_RULE;
        self.flow_flags = 0;
        self.dscp_in = DSCP_UNKNOWN;
        self.dscp_out = DSCP_UNKNOWN;
    }
}
