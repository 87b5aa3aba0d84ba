//! `STATE_LAYOUT` moves whenever the pinned maps' layout does (ARCHITECTURE.md, 'Pinned state
//! and its versioning'). The layout is described here from the types themselves: every map
//! key and value, its size, alignment and each field's offset and size, the map sizes, and
//! which counter each slot holds. `state_layout.txt` records the description with the
//! `STATE_LAYOUT` it belongs to. A change to the layout with the same `STATE_LAYOUT` fails;
//! a bumped `STATE_LAYOUT` fails until the new description is recorded:
//! `RECORD_STATE_LAYOUT=1 cargo test -p classifier-common --test state_layout`.
//!
//! Each type's fields must add up to its size (the types have explicit padding), so a field
//! added to a type cannot be left out of its description here. A counter in a slot of its
//! own, or any line only added, is compatible (older state holds zero there, or nothing to
//! misread); a line that changes or goes is not.

use std::{fmt::Write as _, mem::offset_of};

use classifier_common::{
    Attachment, Config, CounterValue, FlowEntry, FlowKey, FlowKeyV4, ListName, PacketReport,
    PrefixValue, ShapeConfig,
    config::{self, PolicyRule, STATE_LAYOUT},
    control,
    counter::{self, COUNTER_SLOTS, Counter, CounterBlock, INTERFACE_SLOTS},
    dns::{self, LEARNED_NAME_LEN, LearnedEntry, LearnedKey, MAX_LEARNED},
    flow::{self, FlowCacheSlot},
    limits,
    parse_error::ParseError,
};

const RECORD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/state_layout.txt");

/// The size of the field `field` returns.
fn size_of_field<T, F>(_field: fn(&T) -> &F) -> usize {
    size_of::<F>()
}

/// One type's line and its fields' lines; fails unless the fields fill the type.
macro_rules! describe {
    ($out:ident, $ty:ty { $($field:ident),* $(,)? }) => {{
        let mut filled = 0;
        writeln!(
            $out,
            "{} size {} align {}",
            stringify!($ty),
            size_of::<$ty>(),
            align_of::<$ty>()
        )
        .unwrap();
        $(
            let size = size_of_field(|value: &$ty| &value.$field);
            filled += size;
            writeln!(
                $out,
                "  {} at {} size {}",
                stringify!($field),
                offset_of!($ty, $field),
                size
            )
            .unwrap();
        )*
        assert_eq!(
            filled,
            size_of::<$ty>(),
            "{}: the fields listed here do not fill the type: list every field (and make \
             padding explicit)",
            stringify!($ty)
        );
    }};
}

fn layout() -> String {
    let mut out = String::new();
    describe!(
        out,
        Config {
            generation,
            flags,
            rule_count,
            layout,
            rules
        }
    );
    describe!(
        out,
        PolicyRule {
            lists,
            flags,
            action,
            _pad
        }
    );
    describe!(out, CounterValue { packets, bytes });
    describe!(out, CounterBlock { slots });
    describe!(
        out,
        FlowKey {
            addr_a,
            addr_b,
            port_a,
            port_b,
            protocol,
            ip_version,
            _pad
        }
    );
    describe!(
        out,
        FlowKeyV4 {
            addr_a,
            addr_b,
            port_a,
            port_b,
            protocol,
            _pad
        }
    );
    describe!(
        out,
        FlowEntry {
            packets,
            bytes,
            first_seen_ns,
            last_seen_ns,
            lists,
            generation,
            mptcp_subtypes,
            flags,
            mptcp_version,
            action,
            rule,
            mptcp_side,
        }
    );
    describe!(
        out,
        FlowCacheSlot {
            key,
            packets,
            bytes,
            last_seen_ns,
            epoch,
            generation,
            lists,
            mptcp_subtypes,
            flags,
            mptcp_version,
            action,
            rule,
            hits,
            valid,
            mptcp_side,
            _pad,
        }
    );
    describe!(
        out,
        PrefixValue {
            lists,
            own,
            learned,
            prefix_len
        }
    );
    describe!(
        out,
        PacketReport {
            sequence,
            lists,
            mptcp_subtypes,
            flags,
            error,
            mptcp_version,
            dscp_in,
            dscp_out,
            rule,
            flow_flags,
            _pad,
        }
    );
    describe!(out, ListName { name });
    describe!(
        out,
        Attachment {
            name,
            mode,
            netns_inode,
            attached_at,
            counter_slot,
            ifindex
        }
    );
    describe!(
        out,
        ShapeConfig {
            bulk_dscp,
            normal_class,
            bulk_class,
            fair_leaves,
            first_leaf,
            side,
            flow_leaves,
            first_flow_leaf,
            _padding,
        }
    );
    describe!(
        out,
        LearnedKey {
            addr,
            list,
            ip_version,
            _pad
        }
    );
    describe!(
        out,
        LearnedEntry {
            expires_at,
            learned_at,
            source,
            resolver_version,
            _pad,
            resolver,
            name,
        }
    );
    for (name, value) in [
        ("FLOW_TABLE_ENTRIES", limits::FLOW_TABLE_ENTRIES),
        ("UDP_FLOW_TABLE_ENTRIES", limits::UDP_FLOW_TABLE_ENTRIES),
        ("PREFIX_V4_ENTRIES", limits::PREFIX_V4_ENTRIES),
        ("PREFIX_V6_ENTRIES", limits::PREFIX_V6_ENTRIES),
        ("FLOW_CACHE_SLOTS", limits::FLOW_CACHE_SLOTS),
        ("MAX_LISTS", limits::MAX_LISTS),
        ("MAX_RULES", limits::MAX_RULES as u32),
        ("MAX_LEARNED", MAX_LEARNED),
        ("LEARNED_NAME_LEN", LEARNED_NAME_LEN as u32),
        ("COUNTER_SLOTS", COUNTER_SLOTS),
        ("INTERFACE_SLOTS", INTERFACE_SLOTS),
    ] {
        writeln!(out, "{name} {value}").unwrap();
    }
    // The values the maps hold: flags and codes read back from state another binary wrote.
    for (name, value) in [
        ("CONFIG_DRY_RUN", u64::from(config::CONFIG_DRY_RUN)),
        ("CONFIG_REPORT", u64::from(config::CONFIG_REPORT)),
        ("CONFIG_LEARN_DNS", u64::from(config::CONFIG_LEARN_DNS)),
        (
            "CONFIG_SIDE_IS_DIRECTION",
            u64::from(config::CONFIG_SIDE_IS_DIRECTION),
        ),
        ("CONFIG_SLOTS", u64::from(config::CONFIG_SLOTS)),
        ("ACTION_KEEP", u64::from(config::ACTION_KEEP)),
        ("RULE_MATCH_MPTCP", u64::from(config::RULE_MATCH_MPTCP)),
        ("ATTACH_NATIVE", u64::from(control::ATTACH_NATIVE)),
        ("ATTACH_SKB", u64::from(control::ATTACH_SKB)),
        ("ATTACH_TC", u64::from(control::ATTACH_TC)),
        ("MAX_ATTACHMENTS", u64::from(control::MAX_ATTACHMENTS)),
        ("SIDE_LAN", u64::from(control::SIDE_LAN)),
        ("SIDE_WAN", u64::from(control::SIDE_WAN)),
        ("MAX_SHAPED", u64::from(control::MAX_SHAPED)),
        ("FLOW_MPTCP", u64::from(flow::FLOW_MPTCP)),
        ("FLOW_INITIATOR_IS_B", u64::from(flow::FLOW_INITIATOR_IS_B)),
        (
            "FLOW_MPTCP_ATTEMPTED",
            u64::from(flow::FLOW_MPTCP_ATTEMPTED),
        ),
        ("FLOW_MPTCP_FALLBACK", u64::from(flow::FLOW_MPTCP_FALLBACK)),
        ("FLOW_OPENED", u64::from(flow::FLOW_OPENED)),
        ("ACTION_NONE", u64::from(flow::ACTION_NONE)),
        ("NO_RULE", u64::from(flow::NO_RULE)),
        ("LEARNED_FROM_ANSWER", u64::from(dns::LEARNED_FROM_ANSWER)),
        ("LEARNED_FROM_LOOKUP", u64::from(dns::LEARNED_FROM_LOOKUP)),
        ("DNS_RING_BYTES", u64::from(dns::DNS_RING_BYTES)),
        ("MAX_IFINDEX", u64::from(counter::MAX_IFINDEX)),
        ("MPTCP_SUBTYPE_BASE", u64::from(counter::MPTCP_SUBTYPE_BASE)),
        ("PARSE_ERROR_BASE", u64::from(counter::PARSE_ERROR_BASE)),
        ("LIST_BASE", u64::from(counter::LIST_BASE)),
    ] {
        writeln!(out, "{name} {value}").unwrap();
    }
    for error in ParseError::ALL {
        writeln!(out, "parse error {} {}", error as u8, error.name()).unwrap();
    }
    // A counter moved to another slot would be read as the one that was there.
    for counter in Counter::ALL {
        writeln!(out, "counter {} {}", counter.index(), counter.name()).unwrap();
    }
    out
}

#[test]
fn state_layout_moves_with_the_maps_layout() {
    let now = layout();
    let recorded = std::fs::read_to_string(RECORD).unwrap_or_default();
    let (first, body) = recorded.split_once('\n').unwrap_or(("", ""));
    let recorded_layout: Option<u32> = first
        .strip_prefix("STATE_LAYOUT ")
        .and_then(|n| n.parse().ok());
    // What older state holds must read the same: every recorded line is still there. A line
    // only added (a counter in a free slot, a map of its own, a constant newly described) is
    // compatible: older state holds zero there, or nothing to misread.
    let lines_now: Vec<&str> = now.lines().collect();
    let moved: Vec<&str> = body
        .lines()
        .filter(|line| !lines_now.contains(line))
        .collect();
    let compatible = moved.is_empty();
    if std::env::var_os("RECORD_STATE_LAYOUT").is_some() {
        assert!(
            recorded_layout != Some(STATE_LAYOUT) || compatible,
            "the layout changed but STATE_LAYOUT is still {STATE_LAYOUT}: bump it first"
        );
        std::fs::write(RECORD, format!("STATE_LAYOUT {STATE_LAYOUT}\n{now}")).unwrap();
        return;
    }
    assert_eq!(
        recorded_layout,
        Some(STATE_LAYOUT),
        "STATE_LAYOUT is {STATE_LAYOUT}, {RECORD} records {first:?}: record the layout with \
         RECORD_STATE_LAYOUT=1 cargo test -p classifier-common --test state_layout"
    );
    assert!(
        compatible,
        "the pinned maps' layout changed but STATE_LAYOUT is still {STATE_LAYOUT}: a binary \
         would read state written by an incompatible one. Bump STATE_LAYOUT, then record the \
         layout (RECORD_STATE_LAYOUT=1 cargo test -p classifier-common --test state_layout).\n\
         what moved or went: {moved:?}"
    );
}
