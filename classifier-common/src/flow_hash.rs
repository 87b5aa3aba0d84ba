//! The hash that picks a flow's leaf in the normal class (docs/design.md, 'Flows in the
//! normal class'). The kernel's egress program hashes each packet with it; the user side uses
//! the same function to tell which leaf a connection lands in (tests, and to explain a
//! collision), so the two cannot drift.

/// One flow's words, as the egress program reads them from the packet: the source and
/// destination addresses (an IPv4 address is one word and three zeros), the ports as
/// `source << 16 | destination` (0 when the packet carries none the program reads: not TCP
/// or UDP, a fragment, IPv6 extension headers), and the IP protocol (or, for a packet that is
/// not IP, its EtherType).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowWords {
    pub source: [u32; 4],
    pub destination: [u32; 4],
    pub ports: u32,
    pub protocol: u32,
}

/// Mixes one word into the running hash (a multiply-xorshift round: every input bit reaches
/// the low bits the leaf mask keeps).
#[inline(always)]
fn mix(hash: u32, word: u32) -> u32 {
    let hash = (hash ^ word).wrapping_mul(0x9e37_79b1);
    hash ^ (hash >> 15)
}

/// The 32-bit hash of a flow. Not keyed: the same flow gets the same leaf on every shaped
/// interface and after every `shape`, which is what lets a test predict it.
#[inline(always)]
pub fn flow_hash(flow: &FlowWords) -> u32 {
    let mut hash = 0x5bd1_e995;
    hash = mix(hash, flow.source[0]);
    hash = mix(hash, flow.source[1]);
    hash = mix(hash, flow.source[2]);
    hash = mix(hash, flow.source[3]);
    hash = mix(hash, flow.destination[0]);
    hash = mix(hash, flow.destination[1]);
    hash = mix(hash, flow.destination[2]);
    hash = mix(hash, flow.destination[3]);
    hash = mix(hash, flow.ports);
    hash = mix(hash, flow.protocol);
    // A final avalanche (murmur3's fmix32 constants), so that the low bits depend on all.
    hash = hash.wrapping_mul(0x85eb_ca6b);
    hash ^= hash >> 13;
    hash = hash.wrapping_mul(0xc2b2_ae35);
    hash ^ (hash >> 16)
}

/// The leaf (0 ..= leaves - 1) of `flow` among `leaves`, a power of two.
#[inline(always)]
pub fn flow_leaf(flow: &FlowWords, leaves: u32) -> u32 {
    flow_hash(flow) & leaves.wrapping_sub(1)
}
