//! The flow table: one entry per connection, shared by both directions.

/// Canonical 5-tuple: endpoint A is the lesser (address, port) pair, so a packet and its reply
/// produce the same key. IPv4 addresses sit in the first 4 bytes, the rest zero.
/// Aligned to 8 so that the kernel side can compare addresses a word at a time.
#[repr(C, align(8))]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub addr_a: [u8; 16],
    pub addr_b: [u8; 16],
    /// Ports in network byte order, exactly as on the wire.
    pub port_a: [u8; 2],
    pub port_b: [u8; 2],
    /// IP protocol number (6 TCP, 17 UDP).
    pub protocol: u8,
    /// 4 or 6.
    pub ip_version: u8,
    pub _pad: [u8; 2],
}

/// `FlowEntry::flags`: the flow is MPTCP (saw option 30 in any packet of it).
pub const FLOW_MPTCP: u8 = 1;
/// `FlowEntry::flags`: the flow's first packet came from endpoint B (B is the initiator).
pub const FLOW_INITIATOR_IS_B: u8 = 2;

/// `FlowEntry::action` / `PacketReport::dscp_out` when no rule matched.
pub const ACTION_NONE: u8 = 0xff;

/// `FlowEntry::rule` when no rule matched.
pub const NO_RULE: u8 = 0xff;

#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowEntry {
    pub packets: u64,
    pub bytes: u64,
    /// `bpf_ktime_get_coarse_ns` (CLOCK_MONOTONIC_COARSE) of the first and latest packet.
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    /// Lists matched by either address, as of `generation`.
    pub lists: u32,
    /// The `Config::generation` that `lists`, `rule` and `action` were computed under.
    pub generation: u32,
    /// Bit n set: MPTCP subtype n was seen in this flow.
    pub mptcp_subtypes: u16,
    pub flags: u8,
    /// MP_CAPABLE version seen, or `MPTCP_VERSION_NONE`.
    pub mptcp_version: u8,
    /// Cached policy action: a DSCP, `ACTION_KEEP`, or `ACTION_NONE`.
    pub action: u8,
    /// Index of the rule that matched, or `NO_RULE`.
    pub rule: u8,
    pub _pad: [u8; 2],
}
