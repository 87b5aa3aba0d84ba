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
//! own is compatible (older state holds zero there); a counter that moves or goes is not.

use std::{fmt::Write as _, mem::offset_of};

use classifier_common::{
    Attachment, Config, CounterValue, FlowEntry, FlowKey, FlowKeyV4, ListName, PacketReport,
    PrefixValue, ShapeConfig,
    config::{PolicyRule, STATE_LAYOUT},
    counter::{COUNTER_SLOTS, Counter, CounterBlock, INTERFACE_SLOTS},
    dns::{LEARNED_NAME_LEN, LearnedEntry, LearnedKey, MAX_LEARNED},
    flow::FlowCacheSlot,
    limits,
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
    // A counter moved to another slot would be read as the one that was there.
    for counter in Counter::ALL {
        writeln!(out, "counter {} {}", counter.index(), counter.name()).unwrap();
    }
    out
}

/// The description's lines but the counters', and the counters' (slot and name).
fn split(description: &str) -> (Vec<&str>, Vec<&str>) {
    description
        .lines()
        .partition(|line| !line.starts_with("counter "))
}

#[test]
fn state_layout_moves_with_the_maps_layout() {
    let now = layout();
    let recorded = std::fs::read_to_string(RECORD).unwrap_or_default();
    let (first, body) = recorded.split_once('\n').unwrap_or(("", ""));
    let recorded_layout: Option<u32> = first
        .strip_prefix("STATE_LAYOUT ")
        .and_then(|n| n.parse().ok());
    let (types_now, counters_now) = split(&now);
    let (types_then, counters_then) = split(body);
    // A new counter takes a slot that was zero in older state: compatible. One that moved or
    // went away is not.
    let moved: Vec<&&str> = counters_then
        .iter()
        .filter(|line| !counters_now.contains(line))
        .collect();
    let compatible = types_now == types_then && moved.is_empty();
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
         counters moved or gone: {moved:?}\nrecorded:\n{body}\nnow:\n{now}"
    );
}
