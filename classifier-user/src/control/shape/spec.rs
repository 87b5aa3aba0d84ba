//! What `classifier shape` is asked for: the rate, the bulk class's floor and DSCPs, the
//! leaves for devices and for flows, the side; the flags' syntax and their defaults. Nothing
//! here touches an interface.

use crate::load::{Side, parse_dscp};

/// The DSCPs that go to the bulk class unless told otherwise: LE (RFC 8622, what the default
/// policy marks) and CS1 (the older "scavenger" class).
pub const DEFAULT_BULK_DSCP: &str = "LE,CS1";
pub const DEFAULT_BULK_FLOOR: u8 = 10;
/// Leaves for fairness between devices unless told otherwise: a campus's hundreds of devices
/// mostly get a leaf of their own (docs/design.md, 'Fairness between devices').
pub const DEFAULT_FAIR_LEAVES: u32 = 256;
/// The most leaves: the leaf's minor numbers stay below 0x1100, and the leaf bits of the
/// address fold (`spread` in the kernel's steer.rs) stay within its first 12 bits.
pub const MAX_FAIR_LEAVES: u32 = 4096;

/// Leaves for flows in the normal class unless told otherwise. The chance that a sparse flow
/// shares a leaf with one of b busy flows is about b/N: 1.6 % with 4 busy flows in 256
/// leaves (6 % in 64). Idle leaves cost nothing when HTB dequeues (it keeps only the busy
/// ones in its round); making 256 is about 0.3 s of `tc` (docs/design.md, 'Flows in the
/// normal class').
pub const DEFAULT_FLOW_LEAVES: u32 = 256;
/// The most flow leaves: their minor numbers stay in 1:2000 to 1:2fff.
pub const MAX_FLOW_LEAVES: u32 = 4096;

/// What `classifier shape` builds on an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeSpec {
    /// Bits per second.
    pub rate: u64,
    /// The bulk class's guaranteed share of `rate`, in percent (1..=99).
    pub bulk_floor: u8,
    pub bulk_dscp: Vec<u8>,
    /// Leaves of the bulk class, one per hash of a device's address; None: no fairness
    /// between devices, the bulk class is one queue (as before fairness existed).
    pub fair_leaves: Option<u32>,
    /// Which side of the router the interface faces: whose address is the device's.
    pub side: Side,
    /// Leaves of the normal class, one per hash of a flow; None: the normal class is one
    /// queue (as before flows in the normal class existed).
    pub flow_leaves: Option<u32>,
}

/// "256" → Some(256), "off" → None. K must be a power of two (the kernel picks a leaf with a
/// mask, and every leaf then gets an equal part of the hashes) from 2 to MAX_FAIR_LEAVES.
pub fn parse_fair_leaves(text: &str) -> Result<Option<u32>, String> {
    parse_leaves(text, MAX_FAIR_LEAVES, "leaves of the bulk class")
}

/// `--flows`: as `parse_fair_leaves`, up to MAX_FLOW_LEAVES.
pub fn parse_flow_leaves(text: &str) -> Result<Option<u32>, String> {
    parse_leaves(text, MAX_FLOW_LEAVES, "leaves of the normal class")
}

fn parse_leaves(text: &str, most: u32, what: &str) -> Result<Option<u32>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let wrong = || format!("`{text}`: give a power of two from 2 to {most} ({what}), or off");
    let leaves: u32 = text.parse().map_err(|_| wrong())?;
    if !(2..=most).contains(&leaves) || !leaves.is_power_of_two() {
        return Err(wrong());
    }
    Ok(Some(leaves))
}

/// "50mbit", "1.5gbit", "800kbit", "100000bit" → bits per second.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let units = [
        ("tbit", 1e12),
        ("gbit", 1e9),
        ("mbit", 1e6),
        ("kbit", 1e3),
        ("bit", 1.0),
    ];
    for (unit, scale) in units {
        if let Some(number) = lower.strip_suffix(unit) {
            let value: f64 = number
                .parse()
                .map_err(|_| format!("`{text}`: `{number}` is not a number"))?;
            let bits = (value * scale).round();
            if !(1000.0..=1e13).contains(&bits) {
                return Err(format!("`{text}` is out of range (1kbit to 10tbit)"));
            }
            return Ok(bits as u64);
        }
    }
    Err(format!(
        "`{text}` is not a rate: use a number and a unit (bit, kbit, mbit, gbit), e.g. 50mbit"
    ))
}

/// "LE,CS1,8" → DSCP values.
pub fn parse_dscp_list(text: &str) -> Result<Vec<u8>, String> {
    text.split(',')
        .map(|item| parse_dscp(item.trim()))
        .collect::<Result<Vec<_>, _>>()
        .and_then(|list| {
            if list.is_empty() {
                Err("the bulk DSCP list is empty".to_owned())
            } else {
                Ok(list)
            }
        })
}
