//! Prefix-list matching: LPM tries for IPv4 and IPv6; source or destination may match.

use aya_ebpf::maps::lpm_trie::Key;
use classifier_common::FlowKey;

use crate::maps::{PREFIXES_V4, PREFIXES_V6};

/// The lists either address of `key` belongs to (bit n = list n).
///
/// Not inlined: it is called from three places, and each inlined copy would take its own
/// ~70 bytes of the 512-byte BPF stack for the trie keys. It runs only on a flow's first
/// packet or after a generation bump, so the BPF-to-BPF call costs nothing that matters.
#[inline(never)]
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
