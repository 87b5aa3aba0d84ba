//! Every packet's exit: one call to `record`, which bumps the per-CPU counters and, when asked
//! for, writes the packet report.

use classifier_common::{
    Counter,
    counter::{COUNTER_SLOTS, INTERFACE_SLOTS, MPTCP_SUBTYPE_SLOTS},
    limits::MAX_LISTS,
    mptcp::MPTCP_VERSION_NONE,
    report::{
        REPORT_CLASSIFIED, REPORT_DRY_RUN, REPORT_FRAGMENT, REPORT_MARKED, REPORT_MPTCP_FLOW,
        REPORT_MPTCP_OPTION,
    },
};

use super::{Outcome, outcome::NO_COUNTER};
use crate::maps::{COUNTERS, REPORT};

#[inline(always)]
fn count(base: u32, index: u32, length: u64) {
    if index == NO_COUNTER {
        return;
    }
    if let Some(slot) = COUNTERS.get_ptr_mut(base + index) {
        unsafe {
            (*slot).packets += 1;
            (*slot).bytes += length;
        }
    }
}

/// Counts `counter(n)` for each bit n set in `bits` (of `slots`), stopping at the last one
/// set: a packet carries one or two subtypes and is in one or two lists, the low ones, and
/// looking at all 32 list bits cost a listed packet 19 ns (`cargo xtask bench`).
#[inline(always)]
fn count_each_bit(base: u32, mut bits: u32, slots: u32, length: u64, counter: impl Fn(u32) -> u32) {
    for n in 0..slots {
        if bits == 0 {
            break;
        }
        if bits & 1 != 0 {
            count(base, counter(n), length);
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
/// pointers to sized memory that may be null, and return a scalar.
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
    let base = if slot < INTERFACE_SLOTS {
        slot * COUNTER_SLOTS
    } else {
        0
    };
    let count = |index: u32, length: u64| count(base, index, length);
    count(Counter::Packets.index(), length);
    count(out.class, length);
    count(out.network, length);
    count(out.transport, length);
    count(out.fragment, length);
    count(out.action, length);
    count(out.flow_event, length);
    count(out.dns, length);
    count(out.mptcp_event, length);
    if out.error != 0 {
        count(Counter::for_parse_error_code(out.error), length);
    }
    if out.mptcp_subtypes != 0 {
        count(Counter::MptcpOption.index(), length);
        count_each_bit(
            base,
            u32::from(out.mptcp_subtypes),
            MPTCP_SUBTYPE_SLOTS,
            length,
            |subtype| Counter::for_mptcp_subtype(subtype as u8),
        );
        match out.mptcp_version {
            MPTCP_VERSION_NONE => {}
            0 => count(Counter::MpCapableV0.index(), length),
            1 => count(Counter::MpCapableV1.index(), length),
            _ => count(Counter::MpCapableOtherVersion.index(), length),
        }
    }
    count_each_bit(base, out.lists, MAX_LISTS, length, Counter::for_list);
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
    if out.fragment != NO_COUNTER {
        flags |= REPORT_FRAGMENT;
    }
    if out.action == Counter::Marked.index() {
        flags |= REPORT_MARKED;
    } else if out.action == Counter::DryRunWouldMark.index() {
        flags |= REPORT_DRY_RUN;
    }
    if out.network != NO_COUNTER && out.class != Counter::ClassMalformed.index() {
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
