//! Everything the pipeline learned about one packet; `record` turns it into counters.

use classifier_common::{Counter, ParseError, flow::NO_RULE};

use crate::parse::MptcpSeen;

pub struct Outcome {
    /// One of the `Class*` counters.
    pub class: Counter,
    pub error: Option<ParseError>,
    /// `Ipv4` or `Ipv6`.
    pub network: Option<Counter>,
    /// `Tcp`, `Udp` or `OtherTransport`.
    pub transport: Option<Counter>,
    /// `Ipv4Fragment` or `Ipv6Fragment`.
    pub fragment: Option<Counter>,
    pub mptcp: MptcpSeen,
    pub mptcp_flow: bool,
    pub lists: u32,
    pub rule: u8,
    /// `Marked`, `AlreadyMarked`, `DryRunWouldMark` or `KeptByRule`.
    pub action: Option<Counter>,
    /// `FlowCreated` or `FlowInsertFailed`.
    pub flow_event: Option<Counter>,
    pub dscp_in: u8,
    pub dscp_out: u8,
}

impl Outcome {
    #[inline(always)]
    pub fn new() -> Self {
        Self {
            class: Counter::ClassMalformed,
            error: None,
            network: None,
            transport: None,
            fragment: None,
            mptcp: MptcpSeen::NONE,
            mptcp_flow: false,
            lists: 0,
            rule: NO_RULE,
            action: None,
            flow_event: None,
            dscp_in: 0,
            dscp_out: 0,
        }
    }
}
