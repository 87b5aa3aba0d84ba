//! Every packet's exit: one call to `record`, which bumps the per-CPU counters and, when asked
//! for, writes the packet report.

use classifier_common::{
    Counter,
    counter::{CounterBlock, INTERFACE_SLOTS, MPTCP_SUBTYPE_SLOTS, PARSE_ERROR_BASE},
    limits::MAX_LISTS,
    mptcp::MPTCP_VERSION_NONE,
    report::{
        REPORT_CLASSIFIED, REPORT_DRY_RUN, REPORT_FRAGMENT, REPORT_MARKED, REPORT_MPTCP_FLOW,
        REPORT_MPTCP_OPTION,
    },
};

use super::{NO_SLOT, Outcome, slot};
use crate::maps::{COUNTERS, REPORT};

/// Adds one packet of `length` to counter `index` of `block`, unless it is `NO_SLOT` (or
/// `NO_COUNTER`).
#[inline(always)]
fn count(block: &mut CounterBlock, index: u32, length: u64) {
    // Also proves the index inside the block to the verifier.
    if let Some(slot) = block.slots.get_mut(index as usize) {
        slot.packets += 1;
        slot.bytes += length;
    }
}

/// Counts `counter(n)` for each bit n set in `bits` (of `slots`), stopping at the last one
/// set: a packet carries one or two subtypes and is in one or two lists, the low ones, and
/// looking at all 32 list bits cost a listed packet 19 ns (`cargo xtask bench`).
#[inline(always)]
fn count_each_bit(
    block: &mut CounterBlock,
    mut bits: u32,
    slots: u32,
    length: u64,
    counter: impl Fn(u32) -> u32,
) {
    for n in 0..slots {
        if bits == 0 {
            break;
        }
        if bits & 1 != 0 {
            count(block, counter(n), length);
        }
        bits >>= 1;
    }
}

/// Counts `out` in interface slot `slot` and writes the report when `report` is set.
#[inline(always)]
pub fn record(out: &Outcome, length: u64, slot: u32, report: bool) {
    classifier_record(out, length, slot, u32::from(report));
}

/// The recording as a global BPF function: the verifier checks it once with an unknown
/// `Outcome`, instead of once for every combination of outcomes the pipeline can reach
/// (which alone took most of its 1M-instruction budget). Global functions take scalars and
/// pointers to sized memory that may be null (here: the pipeline's stack), and return a
/// scalar.
///
/// One map lookup: the interface's `CounterBlock` on this CPU holds every counter the packet
/// moves (docs/design.md, 'Counters').
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn classifier_record(
    out: *const Outcome,
    length: u64,
    slot: u32,
    report: u32,
) -> u32 {
    let Some(out) = (unsafe { out.as_ref() }) else {
        return 1;
    };
    let slot = if slot < INTERFACE_SLOTS { slot } else { 0 };
    let Some(block) = COUNTERS.get_ptr_mut(slot) else {
        return 1;
    };
    let block = unsafe { &mut *block };
    count(block, Counter::Packets.index(), length);
    count(block, u32::from(out.class), length);
    count(block, u32::from(out.network), length);
    count(block, u32::from(out.transport), length);
    count(block, u32::from(out.fragment), length);
    count(block, u32::from(out.action), length);
    count(block, u32::from(out.flow_event), length);
    count(block, u32::from(out.dns), length);
    count(block, u32::from(out.mptcp_event), length);
    // A mask rather than `Counter::for_parse_error_code`'s modulo, which LLVM turns into a
    // multiplication whose bound the verifier cannot follow (codes are below
    // `PARSE_ERROR_SLOTS`, which the common crate asserts).
    if out.error != 0 {
        count(
            block,
            PARSE_ERROR_BASE + u32::from(out.error & 0x1f),
            length,
        );
    }
    if out.mptcp_subtypes != 0 {
        count(block, Counter::MptcpOption.index(), length);
        count_each_bit(
            block,
            u32::from(out.mptcp_subtypes),
            MPTCP_SUBTYPE_SLOTS,
            length,
            |subtype| Counter::for_mptcp_subtype(subtype as u8),
        );
        match out.mptcp_version {
            MPTCP_VERSION_NONE => {}
            0 => count(block, Counter::MpCapableV0.index(), length),
            1 => count(block, Counter::MpCapableV1.index(), length),
            _ => count(block, Counter::MpCapableOtherVersion.index(), length),
        }
    }
    count_each_bit(block, out.lists, MAX_LISTS, length, Counter::for_list);
    if report != 0 {
        write_report(out);
    }
    0
}

#[inline(always)]
fn write_report(out: &Outcome) {
    let Some(report) = REPORT.get_ptr_mut(0) else {
        return;
    };
    let report = unsafe { &mut *report };
    let mut flags = 0;
    if out.mptcp_subtypes != 0 {
        flags |= REPORT_MPTCP_OPTION;
    }
    if out.mptcp_flow != 0 {
        flags |= REPORT_MPTCP_FLOW;
    }
    if out.fragment != NO_SLOT {
        flags |= REPORT_FRAGMENT;
    }
    if out.action == slot(Counter::Marked) {
        flags |= REPORT_MARKED;
    } else if out.action == slot(Counter::DryRunWouldMark) {
        flags |= REPORT_DRY_RUN;
    }
    if out.network != NO_SLOT && out.class != slot(Counter::ClassMalformed) {
        flags |= REPORT_CLASSIFIED;
    }
    report.sequence += 1;
    report.lists = out.lists;
    report.mptcp_subtypes = out.mptcp_subtypes;
    report.flags = flags;
    report.error = out.error;
    report.mptcp_version = out.mptcp_version;
    report.dscp_in = out.dscp_in;
    report.dscp_out = out.dscp_out;
    report.rule = out.rule;
    report.flow_flags = out.flow_flags;
}
