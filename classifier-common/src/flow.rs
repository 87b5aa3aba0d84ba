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
    /// IP protocol number (`IPPROTO_TCP`, `IPPROTO_UDP`).
    pub protocol: u8,
    /// 4 or 6.
    pub ip_version: u8,
    pub _pad: [u8; 2],
}

/// The key of an IPv4 flow: the same canonical 5-tuple in 16 bytes, which the kernel hashes
/// in a fraction of `FlowKey`'s time. IPv4 flows live in their own tables (docs/design.md,
/// 'Flows').
#[repr(C, align(8))]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKeyV4 {
    pub addr_a: [u8; 4],
    pub addr_b: [u8; 4],
    pub port_a: [u8; 2],
    pub port_b: [u8; 2],
    pub protocol: u8,
    pub _pad: [u8; 3],
}

impl FlowKeyV4 {
    /// The same flow as a `FlowKey`, as readers show every flow.
    pub fn widen(&self) -> FlowKey {
        let mut key = FlowKey {
            port_a: self.port_a,
            port_b: self.port_b,
            protocol: self.protocol,
            ip_version: 4,
            ..FlowKey::default()
        };
        key.addr_a[..4].copy_from_slice(&self.addr_a);
        key.addr_b[..4].copy_from_slice(&self.addr_b);
        key
    }

    /// The IPv4 key of an IPv4 `FlowKey`.
    pub fn narrow(key: &FlowKey) -> Self {
        Self {
            addr_a: [key.addr_a[0], key.addr_a[1], key.addr_a[2], key.addr_a[3]],
            addr_b: [key.addr_b[0], key.addr_b[1], key.addr_b[2], key.addr_b[3]],
            port_a: key.port_a,
            port_b: key.port_b,
            protocol: key.protocol,
            _pad: [0; 3],
        }
    }
}

/// Which of the four flow tables holds a flow: by IP version and protocol, so that IPv4
/// flows get the short key and UDP flows (DNS churns through thousands) never evict TCP ones.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FlowTable {
    TcpV4,
    TcpV6,
    UdpV4,
    UdpV6,
}

impl FlowTable {
    pub const ALL: [FlowTable; 4] = [Self::TcpV4, Self::TcpV6, Self::UdpV4, Self::UdpV6];

    /// The table of a flow with this IP version and protocol (6: TCP; anything else is UDP,
    /// the only other protocol with flows).
    pub const fn of(ip_version: u8, protocol: u8) -> Self {
        match (ip_version == 4, protocol == 6) {
            (true, true) => Self::TcpV4,
            (false, true) => Self::TcpV6,
            (true, false) => Self::UdpV4,
            (false, false) => Self::UdpV6,
        }
    }
}

/// `FlowEntry::flags`: the flow is MPTCP: the SYN/ACK answering its SYN's offer carried
/// MP_CAPABLE or MP_JOIN, or, first seen mid-stream, it carried valid option 30s both ways,
/// each way on its own interface (docs/design.md, 'MPTCP state of a flow'). Only such flows
/// are classed MPTCP and match `mptcp` rules.
pub const FLOW_MPTCP: u8 = 1;
/// `FlowEntry::flags`: the flow's first packet came from endpoint B (B is the initiator).
pub const FLOW_INITIATOR_IS_B: u8 = 2;
/// `FlowEntry::flags`: a SYN offered MP_CAPABLE or MP_JOIN.
pub const FLOW_MPTCP_ATTEMPTED: u8 = 4;
/// `FlowEntry::flags`: the SYN/ACK answering an attempt came back without MPTCP: the
/// connection fell back to plain TCP (RFC 8684 §3.7).
pub const FLOW_MPTCP_FALLBACK: u8 = 8;
/// `FlowEntry::flags`: the connection's SYN was seen: its MPTCP state follows its handshake
/// alone, and a SYN without MP_CAPABLE or MP_JOIN made it plain TCP for life.
pub const FLOW_OPENED: u8 = 16;

/// `FlowEntry::mptcp_side` of a packet: bit 0 says the packet's source is endpoint B, the
/// bits above say where it came in (`side`, never 0: a folded ifindex, or under
/// `CONFIG_SIDE_IS_DIRECTION` the direction again). Two sides that differ in both are the
/// two directions of a flow crossing the router, which one host cannot fake alone.
pub const fn mptcp_side(side: u16, source_is_b: bool) -> u16 {
    side << 1 | source_is_b as u16
}

/// The `side` of an interface: its ifindex folded to 14 bits, with bit 14 set so that it is
/// never 0. Two interfaces may fold alike (then a flow across them is never picked up
/// mid-stream, the safe error); one interface always folds alike.
pub const fn interface_side(ifindex: u32) -> u16 {
    (ifindex & 0x3fff) as u16 | 0x4000
}

/// Whether a packet at `side` (`mptcp_side`) answers the one recorded as `recorded`: the
/// other direction, come in elsewhere.
pub const fn answers(recorded: u16, side: u16) -> bool {
    recorded != 0 && (recorded ^ side) & 1 != 0 && recorded >> 1 != side >> 1
}
/// What a flow's packets said about Multipath TCP.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MptcpState {
    /// No valid option 30 was seen.
    No,
    /// A SYN offered MPTCP; no answer seen yet.
    Attempted,
    /// The answer came back without MPTCP: something on the path, or the peer, refused it.
    Fallback,
    /// MPTCP is in use.
    Yes,
}

impl MptcpState {
    /// The state a flow entry's `flags` record.
    pub const fn from_flags(flags: u8) -> Self {
        if flags & FLOW_MPTCP != 0 {
            Self::Yes
        } else if flags & FLOW_MPTCP_FALLBACK != 0 {
            Self::Fallback
        } else if flags & FLOW_MPTCP_ATTEMPTED != 0 {
            Self::Attempted
        } else {
            Self::No
        }
    }

    /// Stable name, used in JSON output and metrics labels.
    pub const fn name(self) -> &'static str {
        match self {
            Self::No => "no",
            Self::Attempted => "attempted",
            Self::Fallback => "fallback",
            Self::Yes => "yes",
        }
    }
}

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
    /// The generation (`GENERATION`) that `lists`, `rule` and `action` were computed under.
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
    /// Where the MPTCP state's evidence came in (`mptcp_side`), 0 for none: the SYN's side
    /// of a flow whose SYN was seen (`FLOW_OPENED`), else the side of the first valid
    /// option 30 of a flow first seen mid-stream (kept until a SYN).
    pub mptcp_side: u16,
}

/// One slot of a CPU's flow cache (docs/design.md, 'The flow cache'): a flow's decision and
/// MPTCP state as of `generation` and `epoch`, and the packets and bytes this CPU counted
/// for it since they last went into its `FlowEntry`. Readers add those to the entry's.
#[repr(C, align(8))]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowCacheSlot {
    /// The flow's canonical key; meaningful only while `valid` is set.
    pub key: FlowKey,
    /// Counted here, not yet in the flow's entry.
    pub packets: u64,
    pub bytes: u64,
    /// The latest packet counted here.
    pub last_seen_ns: u64,
    /// `FLOW_EPOCH` when the slot was filled: a flow entry's flags changed since, on some CPU,
    /// when it differs.
    pub epoch: u64,
    pub generation: u32,
    pub lists: u32,
    /// Subtypes and version the entry already records: a packet with others goes to it.
    pub mptcp_subtypes: u16,
    pub flags: u8,
    pub mptcp_version: u8,
    pub action: u8,
    pub rule: u8,
    /// Packets served from the slot since the entry was last visited.
    pub hits: u8,
    pub valid: u8,
    /// A side (`mptcp_side`) whose option 30s change nothing in the entry of a flow first
    /// seen mid-stream and not MPTCP: the slot serves them. 0: it serves none.
    pub mptcp_side: u16,
    pub _pad: [u8; 6],
}

impl FlowCacheSlot {
    /// The slot of `key` (canonical) in a cache of `FLOW_CACHE_SLOTS`: both sides compute it.
    pub fn index_of(key: &FlowKey) -> u32 {
        let word = |bytes: &[u8]| {
            let mut word = [0u8; 8];
            word.copy_from_slice(bytes);
            u64::from_ne_bytes(word)
        };
        let mut tail = [0u8; 8];
        tail[..2].copy_from_slice(&key.port_a);
        tail[2..4].copy_from_slice(&key.port_b);
        tail[4] = key.protocol;
        tail[5] = key.ip_version;
        slot_index([
            word(&key.addr_a[..8]),
            word(&key.addr_a[8..]),
            word(&key.addr_b[..8]),
            word(&key.addr_b[8..]),
            u64::from_ne_bytes(tail),
        ])
    }
}

/// How well a CPU's flow cache serves its traffic (`FLOW_CACHE_USE`, one per CPU, not
/// pinned): the kernel counts a window of lookups and bypasses the cache while too few hit
/// (docs/design.md, 'The flow cache').
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheUse {
    /// Packets that came to the cache, bypassed or not (wraps).
    pub packets: u32,
    /// Lookups in the current window.
    pub looked: u32,
    /// Hits in the current window.
    pub hits: u32,
    /// 1 while the cache is bypassed, 0 otherwise.
    pub bypass: u32,
}

/// The cache slot of a key given as its five 8-byte words (native order).
pub const fn slot_index(words: [u64; 5]) -> u32 {
    let folded = words[0]
        ^ words[1].rotate_left(13)
        ^ words[2].rotate_left(29)
        ^ words[3]
        ^ words[4].rotate_left(41);
    let folded = (folded ^ (folded >> 32)) as u32;
    folded.wrapping_mul(0x9e37_79b1) >> (32 - crate::limits::FLOW_CACHE_BITS)
}
