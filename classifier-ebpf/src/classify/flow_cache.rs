//! Each CPU's flow cache in front of the flow tables (docs/design.md, 'The flow cache'): a
//! direct-mapped array of slots, each holding one flow's decision and MPTCP state as the
//! flow's entry had them, and the packets and bytes counted since. A packet whose slot holds
//! its flow, still fresh, is served from it and writes nothing but that slot, which no other
//! CPU writes; any other packet goes to the table, and the slot is filled again after.
//!
//! A slot is fresh while its generation is in force, `FLOW_EPOCH` has not moved since it was
//! filled (any CPU moves it after changing a flow entry's flags: an MPTCP handshake seen in
//! the other direction, on another CPU, reaches this CPU's next packet), the packet brings
//! nothing the entry does not record yet (a SYN/ACK, an option 30 that could pick up a flow
//! first seen mid-stream, new subtypes or a version), and it has served fewer than
//! `FLOW_CACHE_REVISIT` packets: every so often the entry gets its counts, and its place in
//! the LRU is refreshed.

use classifier_common::{
    Counter, FlowKey,
    flow::{FLOW_MPTCP, FLOW_OPENED, FlowCacheSlot, slot_index},
    limits::FLOW_CACHE_REVISIT,
    mptcp::MPTCP_VERSION_NONE,
    protocol::IPPROTO_TCP,
};

use super::{
    Decision, clock,
    flow::{canonicalize, mptcp_may_change, narrow},
};
use crate::{
    act::NO_COUNTER,
    maps::{
        FLOW_CACHE, FLOW_CACHE_USE, FLOW_EPOCH, FLOWS_TCP_V4, FLOWS_TCP_V6, FLOWS_UDP_V4,
        FLOWS_UDP_V6,
    },
    parse::{MptcpSeen, SEGMENT_SYN},
};

/// `serve`'s result: set on a hit, with the decision (`Decision::pack`,
/// bits 0..59) beside it.
pub const CACHE_HIT: u64 = 1 << 63;
/// On a miss: the packet's source became endpoint B when the key was made canonical.
pub const MISS_INITIATOR_IS_B: u64 = 1;
/// On a miss: the cache was not looked at (`CacheUse`), and is not to be filled.
pub const MISS_BYPASS: u64 = 2;

/// How well this CPU's cache serves its traffic (`CacheUse`) is counted per window of
/// `WINDOW` packets that looked at it. A miss costs more than a hit saves (on the host this
/// was written on, a miss cost about 110 ns more than no cache, a hit saved about 30), so
/// while fewer than three in four lookups hit, the cache is bypassed, and only one packet in
/// `PROBE_EVERY` looks at it (and fills it), to notice when the traffic changes. Bypassing is
/// always exact: the packet goes to its flow's entry, as on a miss.
const WINDOW: u32 = 256;
const PROBE_EVERY: u32 = 16;

/// Makes `key` canonical and serves the packet from this CPU's cache if it can: `CACHE_HIT`
/// with the decision. On a miss, the slot's counts go to their flow's entry, and the slot is
/// emptied but keeps the epoch read now, before the table is: `classifier_flow_cache_fill`
/// files what the table says under it.
///
/// Inlined into the pipeline, not a global function: on a host whose returns are expensive
/// (AMD's "Safe RET"), a call and its return cost an established packet about 9 ns in
/// `cargo xtask bench`, and the verifier's work on the inlined copies stays far inside its
/// budget (`kernel_program.rs`).
#[inline(always)]
pub fn serve(
    key: &mut FlowKey,
    seen: u32,
    length_and_generation: u64,
    side: impl Fn(bool) -> u16,
) -> u64 {
    let miss = if canonicalize(key) {
        MISS_INITIATOR_IS_B
    } else {
        0
    };
    let key = &*key;
    let Some(usage) = FLOW_CACHE_USE.get_ptr_mut(0) else {
        return miss | MISS_BYPASS;
    };
    let usage = unsafe { &mut *usage };
    usage.packets = usage.packets.wrapping_add(1);
    if usage.bypass != 0 && usage.packets % PROBE_EVERY != 0 {
        return miss | MISS_BYPASS;
    }
    usage.looked += 1;
    if usage.looked >= WINDOW {
        usage.bypass = u32::from(usage.hits * 4 < usage.looked * 3);
        usage.looked = 0;
        usage.hits = 0;
    }
    // Read before any flow entry: a change of flags that the table read misses moves the
    // epoch after it, so a slot filled from that read is stale from the start.
    let epoch = FLOW_EPOCH
        .get_ptr(0)
        .map_or(0, |epoch| unsafe { core::ptr::read_volatile(epoch) });
    let words = key_words(key);
    let Some(slot) = FLOW_CACHE.get_ptr_mut(slot_index(words)) else {
        return miss;
    };
    let slot = unsafe { &mut *slot };
    let seen = MptcpSeen::unpack(seen);
    let (length, generation) = (length_and_generation >> 32, length_and_generation as u32);
    let fresh = slot.valid != 0
        && same_words(&key_words(&slot.key), &words)
        && slot.generation == generation
        && slot.epoch == epoch
        && slot.hits < FLOW_CACHE_REVISIT
        && (!mptcp_may_change(slot.flags, &seen)
            || (u32::from(seen.segment) & SEGMENT_SYN == 0
                && slot.mptcp_side != 0
                && slot.mptcp_side == side(miss & MISS_INITIATOR_IS_B != 0)))
        && seen.subtypes & !slot.mptcp_subtypes == 0
        && (seen.version == MPTCP_VERSION_NONE || seen.version == slot.mptcp_version);
    if fresh {
        usage.hits += 1;
        slot.packets += 1;
        slot.bytes += length;
        slot.last_seen_ns = clock::coarse_ns();
        slot.hits += 1;
        return CACHE_HIT
            | Decision {
                lists: slot.lists,
                flow_event: NO_COUNTER,
                mptcp_event: NO_COUNTER,
                mptcp: slot.flags & FLOW_MPTCP != 0,
                action: slot.action,
                rule: slot.rule,
                flow_flags: slot.flags,
            }
            .pack();
    }
    if slot.valid != 0 && slot.packets != 0 {
        flush(slot);
    }
    slot.valid = 0;
    slot.epoch = epoch;
    miss
}

/// Fills the slot of `key` (canonical) with `decision` (packed), which the table gave the
/// packet whose options `seen` describes and which came in at `side` (`mptcp_side`), under
/// `generation` and the epoch the miss left in the slot. A flow the table could not take is not cached: its next packet tries again.
///
/// A global BPF function: its stack is a chain of its own (see `flow::track`), and only a
/// miss pays for its call.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn classifier_flow_cache_fill(
    key: *const FlowKey,
    decision: u64,
    seen: u32,
    generation: u32,
    side: u16,
) -> u32 {
    let Some(key) = (unsafe { key.as_ref() }) else {
        return 1;
    };
    let Some(slot) = FLOW_CACHE.get_ptr_mut(index(key)) else {
        return 1;
    };
    let slot = unsafe { &mut *slot };
    let decision = Decision::unpack(decision);
    if decision.flow_event == Counter::FlowInsertFailed.index() {
        return 0;
    }
    let seen = MptcpSeen::unpack(seen);
    let held = &mut slot.key as *mut FlowKey as *mut u64;
    for (n, word) in key_words(key).iter().enumerate() {
        unsafe { core::ptr::write_volatile(held.add(n), *word) };
    }
    slot.packets = 0;
    slot.bytes = 0;
    slot.last_seen_ns = clock::coarse_ns();
    slot.generation = generation;
    slot.lists = decision.lists;
    slot.mptcp_subtypes = seen.subtypes;
    slot.flags = decision.flow_flags;
    slot.mptcp_version = seen.version;
    slot.action = decision.action;
    slot.rule = decision.rule;
    // The table saw this side's option 30 and left the flow as it was: from now on it never
    // answers (the entry keeps its first side), and the slot may serve it.
    slot.mptcp_side = if seen.any() && decision.flow_flags & (FLOW_OPENED | FLOW_MPTCP) == 0 {
        side
    } else {
        0
    };
    slot.hits = 0;
    slot.valid = 1;
    0
}

#[inline(always)]
fn index(key: &FlowKey) -> u32 {
    slot_index(key_words(key))
}

/// The key as five words, loaded with volatile reads: otherwise LLVM rebuilds them from byte
/// loads and spills them.
#[inline(always)]
fn key_words(key: &FlowKey) -> [u64; 5] {
    let base = key as *const FlowKey as *const u64;
    unsafe {
        [
            core::ptr::read_volatile(base),
            core::ptr::read_volatile(base.add(1)),
            core::ptr::read_volatile(base.add(2)),
            core::ptr::read_volatile(base.add(3)),
            core::ptr::read_volatile(base.add(4)),
        ]
    }
}

/// Whether two keys' words are equal. Not `==` on the arrays: LLVM makes that a call to a
/// byte-by-byte `memcmp`, 40 rounds of a loop on every packet the cache serves.
#[inline(always)]
fn same_words(a: &[u64; 5], b: &[u64; 5]) -> bool {
    (a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) == 0
}

/// Adds a slot's counts to its flow's entry (gone: they go with it) and zeroes them.
#[inline(always)]
fn flush(slot: &mut FlowCacheSlot) {
    let key = &slot.key;
    let tcp = key.protocol == IPPROTO_TCP;
    let entry = if key.ip_version == 4 {
        let table = if tcp { &FLOWS_TCP_V4 } else { &FLOWS_UDP_V4 };
        table.get_ptr_mut(narrow(key))
    } else {
        let table = if tcp { &FLOWS_TCP_V6 } else { &FLOWS_UDP_V6 };
        table.get_ptr_mut(key)
    };
    if let Some(entry) = entry {
        let entry = unsafe { &mut *entry };
        entry.packets += slot.packets;
        entry.bytes += slot.bytes;
        if slot.last_seen_ns > entry.last_seen_ns {
            entry.last_seen_ns = slot.last_seen_ns;
        }
    }
    slot.packets = 0;
    slot.bytes = 0;
}
