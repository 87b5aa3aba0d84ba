//! Prefix-list matching: LPM tries for IPv4 and IPv6; source or destination may match.

use aya_ebpf::maps::lpm_trie::Key;
use classifier_common::FlowKey;

use crate::maps::{PREFIXES_V4, PREFIXES_V6};

/// The lists of a packet classified by its addresses alone (`by_address`: no ports, never
/// remembered). `lists_of` as a BPF-to-BPF subprogram: the pipeline's stack cannot spare an
/// inlined copy's trie keys there.
#[inline(never)]
pub fn lists_of_addresses(key: &FlowKey) -> u32 {
    lists_of(key)
}

/// The lists either address of `key` belongs to (bit n = list n).
///
/// Inlined into the flow table's update (`classifier_track`), whose frame has room for the
/// trie keys: a flow's first packet then makes no call but the tries' own, and a call's
/// return costs about 9 ns on a host with AMD's "Safe RET".
#[inline(always)]
pub fn lists_of(key: &FlowKey) -> u32 {
    if key.ip_version == 4 {
        lists_v4(&key.addr_a) | lists_v4(&key.addr_b)
    } else {
        lists_v6(key.addr_a) | lists_v6(key.addr_b)
    }
}

#[inline(always)]
fn lists_v4(addr: &[u8; 16]) -> u32 {
    let addr = [addr[0], addr[1], addr[2], addr[3]];
    PREFIXES_V4
        .get(Key::new(32, addr))
        .map_or(0, |value| value.lists)
}

#[inline(always)]
fn lists_v6(addr: [u8; 16]) -> u32 {
    PREFIXES_V6
        .get(Key::new(128, addr))
        .map_or(0, |value| value.lists)
}
