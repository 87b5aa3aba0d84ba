//! Why the parser stopped. Each kind has its own counter (`Counter::for_parse_error`).

/// A parse error kind. Codes start at 1 so that 0 can mean "no error" in `PacketReport`.
#[repr(u8)]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    EthTruncated = 1,
    VlanTruncated = 2,
    /// More VLAN tags than `MAX_VLAN_DEPTH`.
    VlanTooDeep = 3,
    Ipv4Truncated = 4,
    /// EtherType says IPv4 but the version nibble does not.
    Ipv4BadVersion = 5,
    /// IHL below 5.
    Ipv4HeaderTooShort = 6,
    /// IHL × 4 reaches past the end of the packet.
    Ipv4HeaderPastPacket = 7,
    Ipv6Truncated = 8,
    Ipv6BadVersion = 9,
    Ipv6ExtTruncated = 10,
    /// More extension headers than `MAX_IPV6_EXT_DEPTH`. No longer reported: such a packet
    /// is classified by its addresses and counts `Counter::TransportUnreachable`. The code
    /// stays, so that the others keep theirs.
    Ipv6ExtTooDeep = 11,
    TcpTruncated = 12,
    /// Data offset below 5.
    TcpHeaderTooShort = 13,
    /// Data offset × 4 reaches past the end of the packet.
    TcpHeaderPastPacket = 14,
    /// An option other than EOL/NOP with length 0 or 1.
    TcpOptionBadLength = 15,
    /// An option whose length reaches past the TCP header.
    TcpOptionPastHeader = 16,
    /// Option 30 shorter than 3 bytes: no room for its subtype.
    MptcpOptionTooShort = 17,
    UdpTruncated = 18,
    /// Option 30 with a length (or, for MP_CAPABLE, a version or flags) that Linux's MPTCP
    /// stack does not accept for its subtype (docs/design.md, 'TCP options and MPTCP').
    MptcpOptionMalformed = 19,
    /// IPv4 total length shorter than the header it claims (IHL × 4).
    Ipv4BadTotalLength = 20,
}

impl ParseError {
    pub const ALL: [ParseError; 20] = [
        Self::EthTruncated,
        Self::VlanTruncated,
        Self::VlanTooDeep,
        Self::Ipv4Truncated,
        Self::Ipv4BadVersion,
        Self::Ipv4HeaderTooShort,
        Self::Ipv4HeaderPastPacket,
        Self::Ipv6Truncated,
        Self::Ipv6BadVersion,
        Self::Ipv6ExtTruncated,
        Self::Ipv6ExtTooDeep,
        Self::TcpTruncated,
        Self::TcpHeaderTooShort,
        Self::TcpHeaderPastPacket,
        Self::TcpOptionBadLength,
        Self::TcpOptionPastHeader,
        Self::MptcpOptionTooShort,
        Self::UdpTruncated,
        Self::MptcpOptionMalformed,
        Self::Ipv4BadTotalLength,
    ];

    /// Stable snake_case name, used in JSON output and metrics labels.
    pub const fn name(self) -> &'static str {
        match self {
            Self::EthTruncated => "eth_truncated",
            Self::VlanTruncated => "vlan_truncated",
            Self::VlanTooDeep => "vlan_too_deep",
            Self::Ipv4Truncated => "ipv4_truncated",
            Self::Ipv4BadVersion => "ipv4_bad_version",
            Self::Ipv4HeaderTooShort => "ipv4_header_too_short",
            Self::Ipv4HeaderPastPacket => "ipv4_header_past_packet",
            Self::Ipv6Truncated => "ipv6_truncated",
            Self::Ipv6BadVersion => "ipv6_bad_version",
            Self::Ipv6ExtTruncated => "ipv6_ext_truncated",
            Self::Ipv6ExtTooDeep => "ipv6_ext_too_deep",
            Self::TcpTruncated => "tcp_truncated",
            Self::TcpHeaderTooShort => "tcp_header_too_short",
            Self::TcpHeaderPastPacket => "tcp_header_past_packet",
            Self::TcpOptionBadLength => "tcp_option_bad_length",
            Self::TcpOptionPastHeader => "tcp_option_past_header",
            Self::MptcpOptionTooShort => "mptcp_option_too_short",
            Self::UdpTruncated => "udp_truncated",
            Self::MptcpOptionMalformed => "mptcp_option_malformed",
            Self::Ipv4BadTotalLength => "ipv4_bad_total_length",
        }
    }

    /// The kind for a code read from a `PacketReport`; `None` for 0 or an unknown code.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|e| *e as u8 == code)
    }
}
