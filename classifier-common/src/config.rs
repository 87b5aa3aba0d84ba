//! Runtime configuration: two entries in the `CONFIG` array, of which the one the
//! generation's parity selects is in force (docs/design.md, 'Live updates: the generation
//! protocol').

use crate::limits::MAX_RULES;

/// `Config::flags`: count what would be marked, change nothing.
pub const CONFIG_DRY_RUN: u32 = 1;
/// `Config::flags`: write a `PacketReport` for every packet (offline analysis and tests only:
/// it costs a map write per packet).
pub const CONFIG_REPORT: u32 = 2;

/// `Config::flags`: hand DNS responses (UDP from port 53) to user space through
/// `DNS_EVENTS`, for `classifier run` (or `analyze`) to learn CDN addresses from.
pub const CONFIG_LEARN_DNS: u32 = 4;

/// `Config::flags`: offline analysis (`analyze`, and the kernel tests' default): a capture
/// records no interface, so each direction of a flow counts as having come in on an
/// interface of its own, as a flow forwarded by a router does. Never set on a live router:
/// there one host can send both directions, and only the real interface tells them apart
/// (docs/design.md, 'MPTCP state of a flow').
pub const CONFIG_SIDE_IS_DIRECTION: u32 = 8;

/// `PolicyRule::action` meaning "count it, leave the DSCP as it is".
pub const ACTION_KEEP: u8 = 0x40;

/// Highest DSCP value (6 bits).
pub const DSCP_MAX: u8 = 63;

/// `PolicyRule::flags`: the packet's flow must be MPTCP.
pub const RULE_MATCH_MPTCP: u8 = 1;

/// One policy rule: a match and an action. A rule matches when every condition it sets holds:
/// MPTCP if `RULE_MATCH_MPTCP`, and at least one of `lists` if `lists != 0`. A rule setting
/// no condition matches every IP packet.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyRule {
    pub lists: u32,
    pub flags: u8,
    /// DSCP 0..=63, or `ACTION_KEEP`.
    pub action: u8,
    pub _pad: [u8; 2],
}

/// How many `Config` slots `CONFIG` holds: the one in force, and the one the next change is
/// written into before the generation moves to it.
pub const CONFIG_SLOTS: u32 = 2;

/// The `CONFIG` slot in force under `generation`.
pub const fn config_slot(generation: u32) -> u32 {
    generation % CONFIG_SLOTS
}

#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// The generation this slot was written for (informational: the kernel reads the
    /// generation from `GENERATION`, never from here).
    pub generation: u32,
    pub flags: u32,
    pub rule_count: u32,
    /// `STATE_LAYOUT` of the binary that created the pinned state; the kernel ignores it.
    pub layout: u32,
    pub rules: [PolicyRule; MAX_RULES],
}

/// Version of the pinned maps' layout. Bumped whenever a map's key or value changes, so that a
/// binary never reads state written by an incompatible one: `tests/state_layout.rs` fails
/// when the layout moves without it.
pub const STATE_LAYOUT: u32 = 8;
