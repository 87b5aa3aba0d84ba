//! `aya::Pod` for the map types: all are `repr(C)`, `Copy`, and without implicit padding.

use crate::{
    Attachment, Config, CounterValue, FlowEntry, FlowKey, ListName, PacketReport, PolicyRule,
    PrefixValue, ShapeConfig,
};

// SAFETY: every type below is repr(C), Copy, has only integer fields and explicit padding.
unsafe impl aya::Pod for Attachment {}
unsafe impl aya::Pod for Config {}
unsafe impl aya::Pod for ListName {}
unsafe impl aya::Pod for CounterValue {}
unsafe impl aya::Pod for crate::counter::CounterBlock {}
unsafe impl aya::Pod for FlowEntry {}
unsafe impl aya::Pod for FlowKey {}
unsafe impl aya::Pod for crate::FlowKeyV4 {}
unsafe impl aya::Pod for crate::flow::FlowCacheSlot {}
unsafe impl aya::Pod for crate::flow::CacheUse {}
unsafe impl aya::Pod for crate::CoarseClock {}
unsafe impl aya::Pod for PacketReport {}
unsafe impl aya::Pod for PolicyRule {}
unsafe impl aya::Pod for PrefixValue {}
unsafe impl aya::Pod for ShapeConfig {}
unsafe impl aya::Pod for crate::dns::DnsEvent {}
unsafe impl aya::Pod for crate::dns::LearnedKey {}
unsafe impl aya::Pod for crate::dns::LearnedEntry {}
