//! The maps the kernel program uses. The user side pins them and reads them by these names.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, RingBuf},
};
use classifier_common::{
    Attachment, CoarseClock, Config, FlowEntry, FlowKey, FlowKeyV4, ListName, PacketReport,
    PrefixValue, ShapeConfig,
    config::CONFIG_SLOTS,
    control::{MAX_ATTACHMENTS, MAX_SHAPED},
    counter::{CounterBlock, INTERFACE_SLOTS, MAX_IFINDEX},
    dns::{DNS_RING_BYTES, LearnedEntry, LearnedKey, MAX_LEARNED},
    flow::{CacheUse, FlowCacheSlot},
    limits::{
        FLOW_CACHE_SLOTS, FLOW_TABLE_ENTRIES, MAX_LISTS, PREFIX_V4_ENTRIES, PREFIX_V6_ENTRIES,
        UDP_FLOW_TABLE_ENTRIES,
    },
};

/// One `CounterBlock` per interface slot, per CPU so that counting needs no atomics: a
/// packet moves all its counters with one lookup.
#[map]
pub static COUNTERS: PerCpuArray<CounterBlock> = PerCpuArray::with_max_entries(INTERFACE_SLOTS, 0);

/// Counter block of each interface, by ifindex (0: the shared "other" block).
#[map]
pub static IFACE_SLOTS: Array<u32> = Array::with_max_entries(MAX_IFINDEX, 0);

/// Runtime configuration: the slot `config_slot(generation)` is in force, the other is where
/// user space writes the next one before it moves the generation on.
#[map]
pub static CONFIG: Array<Config> = Array::with_max_entries(CONFIG_SLOTS, 0);

/// The generation: bumped by user space after every change of prefixes or policy, and only
/// once the change is complete (docs/design.md, 'Live updates: the generation protocol').
#[map]
pub static GENERATION: Array<u32> = Array::with_max_entries(1, 0);

/// Flows by canonical 5-tuple, in four tables (`FlowTable`): IPv4 with a 16-byte key, and
/// UDP apart from TCP. Least recently used entries make room for new ones.
///
/// One LRU list per table, shared by the CPUs, not `BPF_F_NO_COMMON_LRU`: per-CPU lists give
/// each CPU a fixed share of the entries (capacity / CPUs), so an interface whose packets
/// land on one CPU (one RX queue: most Wi-Fi and USB NICs) could remember only that share
/// (`fault_flow_table.rs` filled 65,533 of 131,072 on this 2-CPU host). The shared list takes
/// its lock once per 128 new flows on a CPU (the kernel hands free entries out in batches),
/// and the benchmark measures no serialisation of first packets on it
/// (`cargo xtask bench --only lru-contention`; docs/design.md, 'Flows').
#[map]
pub static FLOWS_TCP_V4: LruHashMap<FlowKeyV4, FlowEntry> =
    LruHashMap::with_max_entries(FLOW_TABLE_ENTRIES, FLOW_TABLE_FLAGS);
#[map]
pub static FLOWS_TCP_V6: LruHashMap<FlowKey, FlowEntry> =
    LruHashMap::with_max_entries(FLOW_TABLE_ENTRIES, FLOW_TABLE_FLAGS);
#[map]
pub static FLOWS_UDP_V4: LruHashMap<FlowKeyV4, FlowEntry> =
    LruHashMap::with_max_entries(UDP_FLOW_TABLE_ENTRIES, FLOW_TABLE_FLAGS);
#[map]
pub static FLOWS_UDP_V6: LruHashMap<FlowKey, FlowEntry> =
    LruHashMap::with_max_entries(UDP_FLOW_TABLE_ENTRIES, FLOW_TABLE_FLAGS);

/// The flow tables' flags: one shared LRU list. The benchmark's variant (feature
/// `lru-per-cpu`, never shipped) gives each CPU its own list, to measure the difference.
#[cfg(not(feature = "lru-per-cpu"))]
const FLOW_TABLE_FLAGS: u32 = 0;
#[cfg(feature = "lru-per-cpu")]
const FLOW_TABLE_FLAGS: u32 = aya_ebpf::bindings::BPF_F_NO_COMMON_LRU;

/// Each CPU's flow cache, direct-mapped by `FlowCacheSlot::index_of` (docs/design.md, 'The
/// flow cache'). Pinned: its slots hold counts not yet in the flow tables.
#[map]
pub static FLOW_CACHE: PerCpuArray<FlowCacheSlot> =
    PerCpuArray::with_max_entries(FLOW_CACHE_SLOTS, 0);

/// How well each CPU's flow cache serves its traffic (`CacheUse`, counted by
/// `classify::flow_cache`). A heuristic with nothing worth keeping: not pinned.
#[map]
pub static FLOW_CACHE_USE: PerCpuArray<CacheUse> = PerCpuArray::with_max_entries(1, 0);

/// Moves on whenever a flow entry's flags change (it becomes MPTCP, attempts it, falls
/// back): cache slots filled under an older epoch go back to the entry. Written rarely, read
/// by every packet.
#[map]
pub static FLOW_EPOCH: Array<u64> = Array::with_max_entries(1, 0);

/// Prefix lists, longest prefix match.
#[map]
pub static PREFIXES_V4: LpmTrie<[u8; 4], PrefixValue> =
    LpmTrie::with_max_entries(PREFIX_V4_ENTRIES, 0);
#[map]
pub static PREFIXES_V6: LpmTrie<[u8; 16], PrefixValue> =
    LpmTrie::with_max_entries(PREFIX_V6_ENTRIES, 0);

/// The last packet's report, written only when `CONFIG_REPORT` is set.
#[map]
pub static REPORT: Array<PacketReport> = Array::with_max_entries(1, 0);

/// Names of the prefix lists, by list bit. The kernel never reads it: it is here so that the
/// names live in the pinned state beside the lists themselves.
#[map]
pub static LIST_NAMES: Array<ListName> = Array::with_max_entries(MAX_LISTS, 0);

/// Interfaces the program is attached to, by ifindex (user-side bookkeeping, as above).
#[map]
pub static ATTACHMENTS: HashMap<u32, Attachment> = HashMap::with_max_entries(MAX_ATTACHMENTS, 0);

/// How `steer` steers each shaped interface (ifindex), written by `classifier shape`: the
/// map keeps the name it is pinned under.
#[map]
pub static SHAPING: HashMap<u32, ShapeConfig> = HashMap::with_max_entries(MAX_SHAPED, 0);

/// DNS responses for user space to learn from (`act::forward_dns`).
#[map]
pub static DNS_EVENTS: RingBuf = RingBuf::with_byte_size(DNS_RING_BYTES, 0);

/// Learned addresses with their DNS name and expiry (user-side bookkeeping, kept pinned so
/// that `classifier prefixes list` can show them).
#[map]
pub static LEARNED: HashMap<LearnedKey, LearnedEntry> = HashMap::with_max_entries(MAX_LEARNED, 0);

/// Scratch space for the TCP options copy (`parse::tcp_options`), per CPU: 64 bytes the
/// pipeline's stack frame cannot spare.
#[map]
pub static OPTION_SCRATCH: PerCpuArray<[u8; 64]> = PerCpuArray::with_max_entries(1, 0);

/// A new flow's entry while it is built, per CPU: the pipeline's stack cannot spare it
/// (`classify::flow`). Nothing worth keeping: not pinned.
#[map]
pub static NEW_FLOW: PerCpuArray<FlowEntry> = PerCpuArray::with_max_entries(1, 0);

/// The coarse clock as last read on this CPU, with the jiffies it was read at
/// (`classify::clock`). A cache with nothing worth keeping: not pinned.
#[map]
pub static CLOCK: PerCpuArray<CoarseClock> = PerCpuArray::with_max_entries(1, 0);
