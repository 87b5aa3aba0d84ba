//! Sizes and depths that both sides must agree on.

/// VLAN tags parsed (802.1ad outer + 802.1Q inner); a third tag is a parse error.
pub const MAX_VLAN_DEPTH: usize = 2;

/// IPv6 extension headers walked; a packet whose chain goes on is classified by its
/// addresses alone (`Counter::TransportUnreachable`).
pub const MAX_IPV6_EXT_DEPTH: usize = 6;

/// TCP options occupy at most 40 bytes (data offset 15 × 4 − 20).
pub const MAX_TCP_OPTIONS_LEN: usize = 40;

/// Named prefix lists; a prefix's value is a bit mask over them.
pub const MAX_LISTS: u32 = 32;

/// Policy rules, evaluated in order; first match wins.
pub const MAX_RULES: usize = 16;

/// Size of each TCP flow table (LRU; one for IPv4, one for IPv6). About 150 bytes per entry
/// in the kernel.
pub const FLOW_TABLE_ENTRIES: u32 = 131_072;

/// Size of each UDP flow table (IPv4, IPv6): apart from TCP's, so that UDP (DNS alone churns
/// through a flow per query) never evicts a TCP flow.
pub const UDP_FLOW_TABLE_ENTRIES: u32 = 32_768;

/// Flows the four tables hold at most together.
pub const FLOW_ENTRIES_TOTAL: u32 = 2 * (FLOW_TABLE_ENTRIES + UDP_FLOW_TABLE_ENTRIES);

/// LPM tries are created with BPF_F_NO_PREALLOC: these are limits, not allocations.
pub const PREFIX_V4_ENTRIES: u32 = 2_097_152;
pub const PREFIX_V6_ENTRIES: u32 = 524_288;

/// Each CPU's flow cache holds `1 << FLOW_CACHE_BITS` slots (docs/design.md, 'The flow cache').
pub const FLOW_CACHE_BITS: u32 = 12;
pub const FLOW_CACHE_SLOTS: u32 = 1 << FLOW_CACHE_BITS;

/// Packets a cache slot serves before its flow's entry is visited again (its counts added,
/// its place in the LRU refreshed, its removal noticed).
pub const FLOW_CACHE_REVISIT: u8 = 64;
