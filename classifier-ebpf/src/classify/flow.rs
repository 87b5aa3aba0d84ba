//! The flow table: remembers MPTCP, caches prefix matches and the policy's decision, and counts.
//!
//! Established flows never touch the LPM tries: an entry keeps the generation its lists and
//! action were computed under, and only a newer generation (or the flow turning out to be
//! MPTCP) makes a packet compute them again. The generation is the packet's snapshot, taken
//! before it read the policy or the tries (docs/design.md, 'Live updates: the generation
//! protocol'): a decision is never filed under a generation newer than what it was made of.
//!
//! The flow's MPTCP state follows what the endpoints' kernels accept (docs/design.md, 'MPTCP
//! state of a flow'): a SYN starts it afresh, MP_CAPABLE or MP_JOIN on it is an attempt, the
//! SYN/ACK answering it from the other side decides (MPTCP or fallback), and a SYN without
//! them makes the connection plain TCP for life. A flow first seen mid-stream becomes MPTCP
//! once valid option 30s came both ways, each way on its own interface: one host alone,
//! spoofing either address, sends on one interface only.
//!
//! Entries are updated without atomics: XDP runs per RX queue and RSS keeps each direction
//! of a flow on one queue, so at most two CPUs write an entry, one a direction. A rare race
//! costs one increment of a statistic, never a classification.

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::generated::{bpf_get_smp_processor_id, bpf_ktime_get_ns},
    maps::LruHashMap,
};
use classifier_common::{
    Config, Counter, FlowEntry, FlowKey, FlowKeyV4,
    config::CONFIG_SIDE_IS_DIRECTION,
    flow::{
        FLOW_INITIATOR_IS_B, FLOW_MPTCP, FLOW_MPTCP_ATTEMPTED, FLOW_MPTCP_FALLBACK, FLOW_OPENED,
        answers, interface_side, mptcp_side,
    },
    mptcp::{MPTCP_VERSION_NONE, MptcpSubtype},
    protocol::IPPROTO_TCP,
};

use super::{Decision, clock, flow_cache, policy, prefix};
use crate::{
    act::NO_COUNTER,
    maps::{FLOW_EPOCH, FLOWS_TCP_V4, FLOWS_TCP_V6, FLOWS_UDP_V4, FLOWS_UDP_V6, NEW_FLOW},
    parse::{IpHeader, IpKind, MptcpSeen, SEGMENT_ACK, SEGMENT_SYN},
};

/// The options that open an MPTCP connection or subflow.
const HANDSHAKE_SUBTYPES: u16 =
    1 << MptcpSubtype::MpCapable as u16 | 1 << MptcpSubtype::MpJoin as u16;

const EEXIST: i32 = 17;

/// Looks up (or creates) the flow of `key`, updates it, and says how to treat the packet.
/// `ifindex` is read only when the packet goes to the table (a cache hit needs no side).
#[inline(always)]
pub fn track(
    key: &mut FlowKey,
    seen: &MptcpSeen,
    config: &Config,
    generation: u32,
    length: u64,
    ifindex: impl Fn() -> u32,
) -> Decision {
    // One argument for both: a frame is far below 4 GiB.
    let length_and_generation = (length << 32) | u64::from(generation);
    // A SYN opens a flow that no cache holds yet: straight to the table, and the cache is
    // left as it is, so that a SYN flood churns no CPU's cache (docs/design.md, 'The flow
    // cache'). (Emptying a slot that holds the key costs this chain stack it does not have.)
    if u32::from(seen.segment) & (SEGMENT_SYN | SEGMENT_ACK) == SEGMENT_SYN {
        let seen = seen.pack() | SEEN_OPENS;
        return Decision::unpack(classifier_track(
            key,
            seen,
            config,
            length_and_generation,
            ifindex(),
        ));
    }
    let seen = seen.pack();
    // The cache first (docs/design.md, 'The flow cache'); on a miss the table, then the
    // cache is filled from what the table said. The lookup is inlined (a hit makes no call);
    // the table and the fill are global functions, each a chain of calls of its own:
    // together they would not fit the 512-byte stack.
    let side = |source_is_b| packet_side(config, ifindex(), source_is_b);
    let cached = flow_cache::serve(key, seen, length_and_generation, side);
    if cached & flow_cache::CACHE_HIT != 0 {
        return Decision::unpack(cached);
    }
    let source_is_b = cached & flow_cache::MISS_INITIATOR_IS_B != 0;
    let seen = if source_is_b {
        seen | SEEN_INITIATOR_IS_B
    } else {
        seen
    };
    let ifindex = ifindex();
    let decision = classifier_track(key, seen, config, length_and_generation, ifindex);
    if cached & flow_cache::MISS_BYPASS == 0 {
        let side = packet_side(config, ifindex, source_is_b);
        flow_cache::classifier_flow_cache_fill(key, decision, seen, generation, side);
    }
    Decision::unpack(decision)
}

/// `classifier_track`'s `seen` bit that says the packet's source is endpoint B of the
/// (already canonical) key; `MptcpSeen::pack` leaves it clear.
const SEEN_INITIATOR_IS_B: u32 = 1 << 31;
/// `classifier_track`'s `seen` bit for a SYN, which skips the cache: the key is not canonical
/// yet.
const SEEN_OPENS: u32 = 1 << 30;

/// `track` as a global BPF function: the verifier checks it once with unknown arguments,
/// instead of once for every path that reaches it (VLAN depths × IP versions × extension
/// chains × option walks), which alone would take most of its budget. Global functions take
/// scalars and pointers to sized memory (which may be null: hence the checks) and return a
/// scalar: the MPTCP options come in packed, the decision goes out packed. None of the
/// arguments points into the packet: a packet pointer passed through memory can come back
/// split by LLVM, which the verifier rejects.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn classifier_track(
    key: *mut FlowKey,
    seen: u32,
    config: *const Config,
    length_and_generation: u64,
    ifindex: u32,
) -> u64 {
    let (Some(key), Some(config)) = (unsafe { (key.as_mut(), config.as_ref()) }) else {
        return Decision::NONE.pack();
    };
    let initiator_is_b = if seen & SEEN_OPENS != 0 {
        canonicalize(key)
    } else {
        seen & SEEN_INITIATOR_IS_B != 0
    };
    let seen = MptcpSeen::unpack(seen & !(SEEN_INITIATOR_IS_B | SEEN_OPENS));
    let (length, generation) = (length_and_generation >> 32, length_and_generation as u32);
    let packet = Packet {
        seen: &seen,
        config,
        generation,
        length,
        now: clock::coarse_ns(),
        initiator_is_b,
        side: packet_side(config, ifindex, initiator_is_b),
    };
    packet.track_in_table(key).pack()
}

/// Where a packet came in, as `mptcp_side` records it: on a router its interface, which one
/// host cannot choose; offline, where a capture records none, its direction.
#[inline(always)]
pub(super) fn packet_side(config: &Config, ifindex: u32, source_is_b: bool) -> u16 {
    let side = if config.flags & CONFIG_SIDE_IS_DIRECTION != 0 {
        1 + u16::from(source_is_b)
    } else {
        interface_side(ifindex)
    };
    mptcp_side(side, source_is_b)
}

/// The flow's flags and `mptcp_side` after a segment whose valid MPTCP options and kind
/// `seen` describes, come in at `side` (`mptcp_side`), given the flow's `flags` and
/// `recorded` side (docs/design.md, 'MPTCP state of a flow').
#[inline(always)]
pub(super) fn mptcp_next(flags: u8, recorded: u16, seen: &MptcpSeen, side: u16) -> (u8, u16) {
    let segment = u32::from(seen.segment);
    let handshake = seen.subtypes & HANDSHAKE_SUBTYPES != 0;
    if segment & (SEGMENT_SYN | SEGMENT_ACK) == SEGMENT_SYN {
        // A new connection on the 5-tuple: nothing the old one showed carries over.
        let mut fresh = FLOW_OPENED;
        if side & 1 != 0 {
            fresh |= FLOW_INITIATOR_IS_B;
        }
        if handshake {
            fresh |= FLOW_MPTCP_ATTEMPTED;
        }
        return (fresh, side);
    }
    if flags & FLOW_MPTCP != 0 {
        return (flags, recorded);
    }
    if flags & FLOW_OPENED != 0 {
        // As for the endpoints: only the SYN/ACK answering an offer decides, and only one
        // that came in where the SYN did not. Later option 30s change nothing.
        let answered = segment & SEGMENT_SYN != 0
            && flags & (FLOW_MPTCP_ATTEMPTED | FLOW_MPTCP_FALLBACK) == FLOW_MPTCP_ATTEMPTED
            && answers(recorded, side);
        return match (answered, handshake) {
            (true, true) => (flags | FLOW_MPTCP, recorded),
            (true, false) => (flags | FLOW_MPTCP_FALLBACK, recorded),
            _ => (flags, recorded),
        };
    }
    // First seen mid-stream: option 30 both ways, each from its own side. The first side
    // stays: a side that once did not answer never will, so the flow cache can serve it
    // (`classifier_flow_cache_fill`) without the entry, and without moving the epoch.
    if !seen.any() {
        (flags, recorded)
    } else if answers(recorded, side) {
        (flags | FLOW_MPTCP, recorded)
    } else if recorded == 0 {
        (flags, side)
    } else {
        (flags, recorded)
    }
}

/// Whether a packet may change what its flow's entry records of MPTCP beyond the slot's
/// `flags`: a SYN/ACK, or a valid option 30 on a flow first seen mid-stream and not MPTCP
/// (it may answer the entry's side). The flow cache serves no such packet, but for option
/// 30s from a side it knows answers nothing (`FlowCacheSlot::mptcp_side`); every other
/// packet changes nothing there.
#[inline(always)]
pub(super) fn mptcp_may_change(flags: u8, seen: &MptcpSeen) -> bool {
    u32::from(seen.segment) & SEGMENT_SYN != 0
        || (seen.any() && flags & (FLOW_OPENED | FLOW_MPTCP) == 0)
}

/// `MptcpFallback` when `after` records a fallback that `before` did not.
#[inline(always)]
fn fallback_event(before: u8, after: u8) -> u32 {
    if after & !before & FLOW_MPTCP_FALLBACK != 0 {
        Counter::MptcpFallback.index()
    } else {
        NO_COUNTER
    }
}

/// Moves `FLOW_EPOCH` on, after a flow entry's flags changed: a cache slot filled from the
/// old flags on any CPU is stale from now on (docs/design.md, 'The flow cache').
///
/// No atomic add (the BPF target has none in `core`): each move writes a value no other
/// move writes, the time in nanoseconds above this CPU's number, so two CPUs moving it at
/// once still leave a value that no slot filled before either move holds.
#[inline(always)]
pub(super) fn move_epoch() {
    if let Some(epoch) = FLOW_EPOCH.get_ptr_mut(0) {
        let (now, cpu) = unsafe { (bpf_ktime_get_ns(), bpf_get_smp_processor_id()) };
        let next = now << 12 | u64::from(cpu & 0xfff);
        unsafe { core::ptr::write_volatile(epoch, next) };
    }
}

/// What a packet brings to its flow's entry.
struct Packet<'a> {
    seen: &'a MptcpSeen,
    config: &'a Config,
    generation: u32,
    length: u64,
    now: u64,
    initiator_is_b: bool,
    /// Where the packet came in, as `mptcp_side` records it.
    side: u16,
}

impl Packet<'_> {
    /// The packet through its flow table, without the cache.
    #[inline(always)]
    fn track_in_table(&self, key: &FlowKey) -> Decision {
        let lists = || prefix::lists_of(key);
        // One inlined update per table, each naming its map: the verifier then calls the
        // table's own lookup and update (`__htab_map_lookup_elem`, `htab_lru_map_update_elem`)
        // rather than the generic helpers, whose indirect call through `map->ops` goes
        // through a retpoline on this kind of host.
        let tcp = key.protocol == IPPROTO_TCP;
        if key.ip_version == 4 {
            let key = narrow(key);
            if tcp {
                self.update(&FLOWS_TCP_V4, &key, lists)
            } else {
                self.update(&FLOWS_UDP_V4, &key, lists)
            }
        } else if tcp {
            self.update(&FLOWS_TCP_V6, key, lists)
        } else {
            self.update(&FLOWS_UDP_V6, key, lists)
        }
    }

    /// Updates (or creates) the entry of `key` in `table`; `lists` computes the flow's lists.
    #[inline(always)]
    fn update<K>(
        &self,
        table: &LruHashMap<K, FlowEntry>,
        key: &K,
        lists: impl Fn() -> u32,
    ) -> Decision {
        let (seen, config, generation) = (self.seen, self.config, self.generation);
        if let Some(entry) = table.get_ptr_mut(key) {
            let entry = unsafe { &mut *entry };
            entry.packets += 1;
            entry.bytes += self.length;
            entry.last_seen_ns = self.now;
            let before = entry.flags;
            let (after, side) = mptcp_next(before, entry.mptcp_side, seen, self.side);
            // Written only when something is new: most MPTCP packets repeat a DSS option.
            // The side is no slot's business (`mptcp_may_change`): it moves no epoch, so a
            // spray of option 30s that changes no flag costs no CPU its cache.
            let mut moved = after != before;
            if moved {
                entry.flags = after;
            }
            if side != entry.mptcp_side {
                entry.mptcp_side = side;
            }
            if u32::from(seen.segment) & (SEGMENT_SYN | SEGMENT_ACK) == SEGMENT_SYN {
                if seen.subtypes != entry.mptcp_subtypes || seen.version != entry.mptcp_version {
                    entry.mptcp_subtypes = seen.subtypes;
                    entry.mptcp_version = seen.version;
                    moved = true;
                }
            } else {
                if seen.subtypes & !entry.mptcp_subtypes != 0 {
                    entry.mptcp_subtypes |= seen.subtypes;
                }
                if seen.version != MPTCP_VERSION_NONE && seen.version != entry.mptcp_version {
                    entry.mptcp_version = seen.version;
                }
            }
            if moved {
                move_epoch();
            }
            let mptcp = after & FLOW_MPTCP != 0;
            if entry.generation != generation {
                entry.lists = lists();
                entry.generation = generation;
                (entry.action, entry.rule) = policy::decide_again(mptcp, entry.lists, config);
            } else if mptcp != (before & FLOW_MPTCP != 0) {
                // Either way: a new SYN takes an MPTCP connection's class back.
                (entry.action, entry.rule) = policy::decide_again(mptcp, entry.lists, config);
            }
            return Decision {
                lists: entry.lists,
                flow_event: NO_COUNTER,
                mptcp_event: fallback_event(before, after),
                mptcp,
                action: entry.action,
                rule: entry.rule,
                flow_flags: after,
            };
        }

        let lists = lists();
        let (mut flags, side) = mptcp_next(0, 0, seen, self.side);
        let mptcp = flags & FLOW_MPTCP != 0;
        let (action, rule) = policy::decide(mptcp, lists, config);
        if self.initiator_is_b {
            flags |= FLOW_INITIATOR_IS_B;
        }
        // Built in a per-CPU scratch entry: the four inlined copies of this path (one per
        // table) cannot each have 56 bytes of the stack the pipeline's deepest call chain
        // leaves.
        let Some(entry) = NEW_FLOW.get_ptr_mut(0) else {
            return Decision {
                lists,
                flow_event: Counter::FlowInsertFailed.index(),
                mptcp_event: NO_COUNTER,
                mptcp,
                action,
                rule,
                flow_flags: flags,
            };
        };
        let entry = unsafe { &mut *entry };
        *entry = FlowEntry {
            packets: 1,
            bytes: self.length,
            first_seen_ns: self.now,
            last_seen_ns: self.now,
            lists,
            generation,
            mptcp_subtypes: seen.subtypes,
            flags,
            mptcp_version: seen.version,
            action,
            rule,
            mptcp_side: side,
        };
        let entry = &*entry;
        let flow_event = match table.insert(key, entry, BPF_NOEXIST as u64) {
            Ok(()) => Counter::FlowCreated.index(),
            // Another CPU created it in between: its entry stands, this packet is still
            // classified.
            Err(error) if error == -EEXIST => NO_COUNTER,
            Err(_) => Counter::FlowInsertFailed.index(),
        };
        Decision {
            lists,
            flow_event,
            mptcp_event: NO_COUNTER,
            mptcp,
            action,
            rule,
            flow_flags: flags,
        }
    }
}

/// The key of a packet as it travels: A is the source, B the destination. Ports are zero for
/// packets without them; such keys serve only the prefix lookup.
///
/// The addresses are copied out of the packet once here; everything after works on the copy,
/// which is 8-aligned on the stack.
#[inline(always)]
pub fn packet_key(ip: &IpHeader, src_port: [u8; 2], dst_port: [u8; 2]) -> FlowKey {
    let mut key = FlowKey {
        port_a: src_port,
        port_b: dst_port,
        protocol: ip.protocol,
        ..FlowKey::default()
    };
    match ip.kind {
        IpKind::V4(hdr) => unsafe {
            key.ip_version = 4;
            key.addr_a[..4].copy_from_slice(&(*hdr).src_addr);
            key.addr_b[..4].copy_from_slice(&(*hdr).dst_addr);
        },
        IpKind::V6(hdr) => unsafe {
            key.ip_version = 6;
            key.addr_a = (*hdr).src_addr;
            key.addr_b = (*hdr).dst_addr;
        },
    }
    key
}

/// Orders a packet key so that endpoint A is the lesser (address, port): both directions of a
/// flow then share one key. Returns whether the packet's source became endpoint B.
///
/// The swap moves whole words: `core::mem::swap` on the fields moved the addresses a byte at
/// a time (36 byte stores on every packet whose source is B, the reply direction of every
/// flow).
#[inline(always)]
pub(super) fn canonicalize(key: &mut FlowKey) -> bool {
    let base = key as *mut FlowKey as *mut u64;
    // SAFETY: FlowKey is 40 bytes, aligned to 8: addr_a (words 0, 1), addr_b (2, 3), then
    // port_a, port_b, protocol, ip_version and padding in word 4 (little endian, as BPF on
    // every host this runs on). Volatile loads: otherwise LLVM forwards the packet's bytes
    // and rebuilds the words from unaligned byte loads, spilling past the 512-byte stack.
    let word = |n: usize| unsafe { core::ptr::read_volatile(base.add(n)) };
    let ports = word(4);
    let a = (
        u64::from_be(word(0)),
        u64::from_be(word(1)),
        u16::from_be(ports as u16),
    );
    let b = (
        u64::from_be(word(2)),
        u64::from_be(word(3)),
        u16::from_be((ports >> 16) as u16),
    );
    let source_is_b = a > b;
    if source_is_b {
        // Read again rather than kept: held across the comparison, the words took
        // `classifier_track` past its share of the stack.
        let (a0, a1, b0, b1) = (word(0), word(1), word(2), word(3));
        let swapped_ports =
            (ports & !0xffff_ffff) | (ports & 0xffff) << 16 | (ports >> 16) & 0xffff;
        unsafe {
            core::ptr::write_volatile(base, b0);
            core::ptr::write_volatile(base.add(1), b1);
            core::ptr::write_volatile(base.add(2), a0);
            core::ptr::write_volatile(base.add(3), a1);
            core::ptr::write_volatile(base.add(4), swapped_ports);
        }
    }
    source_is_b
}

/// The IPv4 key of an IPv4 `key`, built from two words: field by field, LLVM moves it a
/// byte at a time and spills every byte to the stack.
#[inline(always)]
pub(super) fn narrow(key: &FlowKey) -> FlowKeyV4 {
    let base = key as *const FlowKey as *const u8;
    // Volatile loads from the 8-aligned key, for the reason `words` gives.
    let (a, b, ports) = unsafe {
        (
            core::ptr::read_volatile(base as *const u32),
            core::ptr::read_volatile(base.add(16) as *const u32),
            core::ptr::read_volatile(base.add(32) as *const u32),
        )
    };
    let words: [u64; 2] = [
        u64::from(a) | u64::from(b) << 32,
        u64::from(ports) | u64::from(key.protocol) << 32,
    ];
    // SAFETY: FlowKeyV4 is 16 bytes of integers, C layout, aligned to 8 like the array;
    // the words lay out addr_a, addr_b, port_a, port_b, protocol and zero padding in place
    // (little endian, as BPF on every host this runs on).
    unsafe { core::mem::transmute::<[u64; 2], FlowKeyV4>(words) }
}

const _: () = assert!(core::mem::size_of::<FlowKeyV4>() == 16);
const _: () = assert!(core::mem::offset_of!(FlowKey, addr_b) == 16);
const _: () = assert!(core::mem::offset_of!(FlowKey, port_a) == 32);
const _: () = assert!(core::mem::offset_of!(FlowKey, port_b) == 34);
const _: () = assert!(core::mem::size_of::<FlowKey>() == 40);
