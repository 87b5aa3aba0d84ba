//! What the program did with the last packet, written only when `CONFIG_REPORT` is set.
//! `classifier analyze` and the tests read it after each BPF_PROG_TEST_RUN.

/// `PacketReport::flags`: the TCP header carries option 30.
pub const REPORT_MPTCP_OPTION: u8 = 1;
/// The packet belongs to a flow known to be MPTCP.
pub const REPORT_MPTCP_FLOW: u8 = 2;
/// An IPv4 or IPv6 fragment (classified by address only).
pub const REPORT_FRAGMENT: u8 = 4;
/// The DSCP was rewritten.
pub const REPORT_MARKED: u8 = 8;
/// Dry-run: it would have been rewritten.
pub const REPORT_DRY_RUN: u8 = 16;
/// The packet is IP (v4 or v6) and was classified (an error in its TCP options does not
/// prevent that: `error` then names it).
pub const REPORT_CLASSIFIED: u8 = 32;

/// `PacketReport::dscp_in`/`dscp_out` when no IP header was parsed.
pub const DSCP_UNKNOWN: u8 = 0xff;

#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PacketReport {
    /// Incremented for every reported packet, so a reader can tell a stale report.
    pub sequence: u64,
    /// Lists matched by either address.
    pub lists: u32,
    /// Bit n: an option with MPTCP subtype n is in this packet's header.
    pub mptcp_subtypes: u16,
    pub flags: u8,
    /// `ParseError` code, 0 for none.
    pub error: u8,
    /// MP_CAPABLE version in this packet, or `MPTCP_VERSION_NONE`.
    pub mptcp_version: u8,
    /// DSCP before and after the program (equal unless marked), or `DSCP_UNKNOWN`.
    pub dscp_in: u8,
    pub dscp_out: u8,
    /// Index of the matching rule, or `NO_RULE`.
    pub rule: u8,
    /// The flow's `FlowEntry::flags` after this packet (0 for packets without a flow).
    pub flow_flags: u8,
    pub _pad: [u8; 3],
}
