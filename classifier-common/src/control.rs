//! State only the user side reads, kept in maps so that it lives in the pinned state with
//! everything else: a CLI run from any shell finds it there.

/// Longest list name, in bytes.
pub const LIST_NAME_LEN: usize = 24;

/// The name of one prefix list; index = list bit. An all-zero name is an unused slot.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ListName {
    pub name: [u8; LIST_NAME_LEN],
}

/// Interface name length, as the kernel's IFNAMSIZ (with the terminating NUL).
pub const IFNAME_LEN: usize = 16;

/// `Attachment::mode`.
pub const ATTACH_NATIVE: u32 = 1;
pub const ATTACH_SKB: u32 = 2;
/// tc at TCX ingress (`classify_tc`), for interfaces without native XDP.
pub const ATTACH_TC: u32 = 3;

/// One interface the program is attached to, keyed by ifindex in `ATTACHMENTS`.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Attachment {
    pub name: [u8; IFNAME_LEN],
    pub mode: u32,
    /// Network namespace inode the interface lives in (0 = the host's).
    pub netns_inode: u32,
    /// Unix time of the attach, in seconds.
    pub attached_at: u64,
    /// This interface's block in `COUNTERS` (0: shared with the others).
    pub counter_slot: u32,
    pub ifindex: u32,
}

/// Interfaces that can be attached at once.
pub const MAX_ATTACHMENTS: u32 = 64;

/// How `steer` (tc egress) steers one interface's packets into its HTB classes,
/// keyed by ifindex in `SHAPING`.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ShapeConfig {
    /// Bit n set: DSCP n goes to the bulk class.
    pub bulk_dscp: u64,
    /// skb->priority values that HTB reads as class ids (major:minor as 0xMMMMmmmm).
    pub normal_class: u32,
    pub bulk_class: u32,
    /// Fairness between devices in the bulk class (docs/design.md, 'Fairness between
    /// devices'): the number of leaf classes under it, a power of two; 0 when off, and bulk
    /// packets go to `bulk_class` itself.
    pub fair_leaves: u32,
    /// The class id of leaf 0; leaf n is `first_leaf + n`.
    pub first_leaf: u32,
    /// Which side the interface faces, so which address is the device's: `SIDE_LAN` (the
    /// destination) or `SIDE_WAN` (the source).
    pub side: u32,
    /// Flows in the normal class (docs/design.md, 'Flows in the normal class'): the number
    /// of leaf classes under it, a power of two, one per hash of a flow (`flow_hash`); 0 when
    /// off, and packets that are not bulk go to `normal_class` itself.
    pub flow_leaves: u32,
    /// The class id of flow leaf 0; flow leaf n is `first_flow_leaf + n`.
    pub first_flow_leaf: u32,
    pub _padding: u32,
}

/// `ShapeConfig::side`: the interface faces the devices, which are the destinations of what
/// leaves through it (downloads).
pub const SIDE_LAN: u32 = 0;
/// The interface faces the uplink: the devices are the sources (uploads).
pub const SIDE_WAN: u32 = 1;

/// Interfaces that can be shaped at once.
pub const MAX_SHAPED: u32 = 64;
