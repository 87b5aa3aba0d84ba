//! The per-CPU counter array's layout: fixed counters, then ranges indexed by MPTCP subtype,
//! parse error kind and prefix list.
//!
//! Every packet lands in exactly one class (`ClassNonIp`, `ClassMalformed`, `ClassMptcp`,
//! `ClassListed`, `ClassNormal`), so the classes add up to `Packets`. The other counters are
//! breakdowns that may overlap.

use crate::{limits::MAX_LISTS, parse_error::ParseError};

/// One counter slot: packets and bytes (whole frames, as seen by XDP). The user side reports
/// every packets-and-bytes pair with this type.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "user", derive(serde::Serialize))]
pub struct CounterValue {
    pub packets: u64,
    pub bytes: u64,
}

impl CounterValue {
    /// Both amounts added (wrapping, like the kernel's counters).
    pub const fn add(self, other: Self) -> Self {
        Self {
            packets: self.packets.wrapping_add(other.packets),
            bytes: self.bytes.wrapping_add(other.bytes),
        }
    }

    /// Both amounts since `earlier` (zero where a counter went backwards).
    pub const fn since(self, earlier: Self) -> Self {
        Self {
            packets: self.packets.saturating_sub(earlier.packets),
            bytes: self.bytes.saturating_sub(earlier.bytes),
        }
    }

    /// The sum of `values`, e.g. one counter's per-CPU values.
    pub fn sum(values: &[Self]) -> Self {
        values
            .iter()
            .fold(Self::default(), |sum, value| sum.add(*value))
    }
}

/// Every counter of one interface: the value of one `COUNTERS` entry, per CPU. A packet finds
/// all the counters it moves in this one value, with one map lookup (docs/design.md,
/// 'Counters').
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CounterBlock {
    /// Indexed by `Counter` and the ranges below.
    pub slots: [CounterValue; COUNTER_SLOTS as usize],
}

impl Default for CounterBlock {
    fn default() -> Self {
        Self {
            slots: [CounterValue {
                packets: 0,
                bytes: 0,
            }; COUNTER_SLOTS as usize],
        }
    }
}

/// Fixed counter slots. The discriminant is the array index.
#[repr(u32)]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Every packet the program saw.
    Packets = 0,
    /// Class: neither IPv4 nor IPv6 (ARP, LLDP, ...).
    ClassNonIp = 1,
    /// Class: a parse error stopped classification (see the parse error counters).
    ClassMalformed = 2,
    /// Class: belongs to a flow known to be MPTCP.
    ClassMptcp = 3,
    /// Class: not MPTCP, but an address is in at least one prefix list.
    ClassListed = 4,
    /// Class: IP traffic that matched nothing.
    ClassNormal = 5,
    Ipv4 = 6,
    Ipv6 = 7,
    Tcp = 8,
    Udp = 9,
    /// IP packets whose transport is neither TCP nor UDP, or not inspected (fragments, ESP).
    OtherTransport = 10,
    /// Packets carrying at least one option 30 (the per-subtype counters say which).
    MptcpOption = 11,
    MpCapableV0 = 12,
    MpCapableV1 = 13,
    /// MP_CAPABLE with a version other than 0 or 1.
    MpCapableOtherVersion = 14,
    /// The DSCP was rewritten.
    Marked = 15,
    /// A rule matched and the packet already carried its DSCP: nothing to rewrite.
    AlreadyMarked = 16,
    /// Dry-run: a rule matched and the packet would have been rewritten.
    DryRunWouldMark = 17,
    /// A rule matched whose action is `keep` (count only).
    KeptByRule = 18,
    /// New flow-table entries.
    FlowCreated = 19,
    /// The flow table refused an insert (the packet is still classified, just not cached).
    FlowInsertFailed = 20,
    /// IPv4 fragments: transport not inspected, classified by address only.
    Ipv4Fragment = 21,
    /// IPv6 fragments: transport not inspected, classified by address only.
    Ipv6Fragment = 22,
    /// DNS queries and answers handed to user space for learning (only while learning is on).
    DnsForwarded = 23,
    /// DNS queries and answers that could not be handed over (ring buffer full).
    DnsLost = 24,
    /// User space only (`classifier run`): answers from a named resolver that requires a
    /// query, to which no query was seen (forged from the internet, replayed, or late).
    DnsRefusedUnmatched = 25,
    /// User space only: DNS answers refused because a list they would teach is at its cap.
    DnsRefusedOverCap = 26,
    /// User space only: DNS answers that do not parse, or are no answer.
    DnsRefusedMalformed = 27,
    /// MPTCP connections that fell back to plain TCP: a SYN offered MP_CAPABLE (or MP_JOIN)
    /// and the SYN/ACK came back without it (RFC 8684 §3.7). Counted on that SYN/ACK.
    MptcpFallback = 28,
    /// IP packets whose transport header the program cannot reach: an IPv6 extension chain
    /// longer than the walk, or one that goes on after a fragment header, or (tc) headers
    /// past the skb's linear part. Classified by their addresses alone (docs/design.md,
    /// 'Parsing and its bounds'), and counted as `OtherTransport` too.
    TransportUnreachable = 29,
    /// User space only: DNS answers from a source that is not a named resolver, or from one
    /// on an interface its answers do not arrive on (a LAN host's own resolver, a forgery).
    DnsRefusedUntrusted = 30,
    /// User space only: answers that carried an address record off the CNAME chain that
    /// starts at the question (the record is not learned; the chain's are).
    DnsRefusedOffChain = 31,
    /// User space only: answers that named an address never learned (loopback, link-local,
    /// multicast, the router's or a resolver's own, `dns.never_learn`, private unless allowed).
    DnsRefusedForbidden = 32,
    /// User space only: answers an address of which did not fit the learned-address table or
    /// a prefix trie (the answer's other addresses may have been learned), and queries to a
    /// named resolver that did not fit the pending-query table.
    DnsRefusedTableFull = 33,
    /// User space only: the router's own lookups (active learning) that got no usable
    /// answer: a timeout, an error code, a malformed or mismatched reply.
    DnsLookupFailed = 34,
}

/// Slots `MPTCP_SUBTYPE_BASE + subtype` (0..=15; 9..=15 are unassigned subtypes).
pub const MPTCP_SUBTYPE_BASE: u32 = 48;
pub const MPTCP_SUBTYPE_SLOTS: u32 = 16;
/// Slots `PARSE_ERROR_BASE + code` (code 0 is unused).
pub const PARSE_ERROR_BASE: u32 = MPTCP_SUBTYPE_BASE + MPTCP_SUBTYPE_SLOTS;
pub const PARSE_ERROR_SLOTS: u32 = 24;
/// Slots `LIST_BASE + list index`: packets matching that list (they overlap).
pub const LIST_BASE: u32 = PARSE_ERROR_BASE + PARSE_ERROR_SLOTS;
/// Counters of one interface.
pub const COUNTER_SLOTS: u32 = LIST_BASE + MAX_LISTS;

/// Interfaces counted apart: slot 0 is "any other", slots 1.. are given to attached
/// interfaces. `COUNTERS` holds `INTERFACE_SLOTS` entries, one `CounterBlock` each.
pub const INTERFACE_SLOTS: u32 = 16;

/// Interface indexes `IFACE_SLOTS` covers; interfaces with higher indexes count in slot 0.
pub const MAX_IFINDEX: u32 = 4096;

const _: () = assert!((Counter::DnsLookupFailed as u32) < MPTCP_SUBTYPE_BASE);
const _: () = assert!((ParseError::Ipv4BadTotalLength as u32) < PARSE_ERROR_SLOTS);

impl Counter {
    /// The classes, every packet in exactly one, with their names in reports and metrics.
    pub const CLASSES: [(&'static str, Counter); 5] = [
        ("non_ip", Self::ClassNonIp),
        ("malformed", Self::ClassMalformed),
        ("mptcp", Self::ClassMptcp),
        ("listed", Self::ClassListed),
        ("normal", Self::ClassNormal),
    ];

    pub const ALL: [Counter; 35] = [
        Self::Packets,
        Self::ClassNonIp,
        Self::ClassMalformed,
        Self::ClassMptcp,
        Self::ClassListed,
        Self::ClassNormal,
        Self::Ipv4,
        Self::Ipv6,
        Self::Tcp,
        Self::Udp,
        Self::OtherTransport,
        Self::MptcpOption,
        Self::MpCapableV0,
        Self::MpCapableV1,
        Self::MpCapableOtherVersion,
        Self::Marked,
        Self::AlreadyMarked,
        Self::DryRunWouldMark,
        Self::KeptByRule,
        Self::FlowCreated,
        Self::FlowInsertFailed,
        Self::Ipv4Fragment,
        Self::Ipv6Fragment,
        Self::DnsForwarded,
        Self::DnsLost,
        Self::DnsRefusedUnmatched,
        Self::DnsRefusedOverCap,
        Self::DnsRefusedMalformed,
        Self::MptcpFallback,
        Self::TransportUnreachable,
        Self::DnsRefusedUntrusted,
        Self::DnsRefusedOffChain,
        Self::DnsRefusedForbidden,
        Self::DnsRefusedTableFull,
        Self::DnsLookupFailed,
    ];

    pub const fn index(self) -> u32 {
        self as u32
    }

    /// Stable snake_case name, used in JSON output and metrics labels.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Packets => "packets",
            Self::ClassNonIp => "class_non_ip",
            Self::ClassMalformed => "class_malformed",
            Self::ClassMptcp => "class_mptcp",
            Self::ClassListed => "class_listed",
            Self::ClassNormal => "class_normal",
            Self::Ipv4 => "ipv4",
            Self::Ipv6 => "ipv6",
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::OtherTransport => "other_transport",
            Self::MptcpOption => "mptcp_option",
            Self::MpCapableV0 => "mp_capable_v0",
            Self::MpCapableV1 => "mp_capable_v1",
            Self::MpCapableOtherVersion => "mp_capable_other_version",
            Self::Marked => "marked",
            Self::AlreadyMarked => "already_marked",
            Self::DryRunWouldMark => "dry_run_would_mark",
            Self::KeptByRule => "kept_by_rule",
            Self::FlowCreated => "flow_created",
            Self::FlowInsertFailed => "flow_insert_failed",
            Self::Ipv4Fragment => "ipv4_fragment",
            Self::Ipv6Fragment => "ipv6_fragment",
            Self::DnsForwarded => "dns_forwarded",
            Self::DnsLost => "dns_lost",
            Self::DnsRefusedUnmatched => "dns_refused_unmatched",
            Self::DnsRefusedOverCap => "dns_refused_over_cap",
            Self::DnsRefusedMalformed => "dns_refused_malformed",
            Self::MptcpFallback => "mptcp_fallback",
            Self::TransportUnreachable => "transport_unreachable",
            Self::DnsRefusedUntrusted => "dns_refused_untrusted",
            Self::DnsRefusedOffChain => "dns_refused_off_chain",
            Self::DnsRefusedForbidden => "dns_refused_forbidden",
            Self::DnsRefusedTableFull => "dns_refused_table_full",
            Self::DnsLookupFailed => "dns_lookup_failed",
        }
    }

    pub const fn for_parse_error(error: ParseError) -> u32 {
        Self::for_parse_error_code(error as u8)
    }

    /// `code` is a `ParseError` code as stored in reports (1..).
    pub const fn for_parse_error_code(code: u8) -> u32 {
        PARSE_ERROR_BASE + (code as u32 % PARSE_ERROR_SLOTS)
    }

    /// `subtype` is the raw nibble (0..=15).
    pub const fn for_mptcp_subtype(subtype: u8) -> u32 {
        MPTCP_SUBTYPE_BASE + (subtype as u32 & 0x0f)
    }

    pub const fn for_list(list: u32) -> u32 {
        LIST_BASE + (list & (MAX_LISTS - 1))
    }
}
