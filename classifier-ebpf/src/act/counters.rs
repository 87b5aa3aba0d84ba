//! Every packet's exit: one call to `record`, which bumps the per-CPU counters and, when asked
//! for, writes the packet report.

use classifier_common::{
    Counter,
    counter::MPTCP_SUBTYPE_SLOTS,
    limits::MAX_LISTS,
    mptcp::MPTCP_VERSION_NONE,
    report::{
        REPORT_CLASSIFIED, REPORT_DRY_RUN, REPORT_FRAGMENT, REPORT_MARKED, REPORT_MPTCP_FLOW,
        REPORT_MPTCP_OPTION,
    },
};

use super::Outcome;
use crate::maps::{COUNTERS, REPORT};

#[inline(always)]
fn count(index: u32, length: u64) {
    if let Some(slot) = COUNTERS.get_ptr_mut(index) {
        unsafe {
            (*slot).packets += 1;
            (*slot).bytes += length;
        }
    }
}

#[inline(always)]
fn count_some(counter: Option<Counter>, length: u64) {
    if let Some(counter) = counter {
        count(counter.index(), length);
    }
}

/// Not inlined: it runs after the pipeline, and keeping it a BPF-to-BPF call keeps the
/// pipeline's live values from being spilled around its many map lookups (512-byte stack).
#[inline(never)]
pub fn record(out: &Outcome, length: u64, report: bool) {
    count(Counter::Packets.index(), length);
    count(out.class.index(), length);
    count_some(out.network, length);
    count_some(out.transport, length);
    count_some(out.fragment, length);
    count_some(out.action, length);
    count_some(out.flow_event, length);
    if let Some(error) = out.error {
        count(Counter::for_parse_error(error), length);
    }
    if out.mptcp.any() {
        count(Counter::MptcpOption.index(), length);
        for subtype in 0..MPTCP_SUBTYPE_SLOTS {
            if out.mptcp.subtypes & (1 << subtype) != 0 {
                count(Counter::for_mptcp_subtype(subtype as u8), length);
            }
        }
        match out.mptcp.version {
            MPTCP_VERSION_NONE => {}
            0 => count(Counter::MpCapableV0.index(), length),
            1 => count(Counter::MpCapableV1.index(), length),
            _ => count(Counter::MpCapableOtherVersion.index(), length),
        }
    }
    if out.lists != 0 {
        for list in 0..MAX_LISTS {
            if out.lists & (1 << list) != 0 {
                count(Counter::for_list(list), length);
            }
        }
    }
    if report {
        write_report(out);
    }
}

#[inline(always)]
fn write_report(out: &Outcome) {
    let Some(report) = REPORT.get_ptr_mut(0) else {
        return;
    };
    let report = unsafe { &mut *report };
    let mut flags = 0;
    if out.mptcp.any() {
        flags |= REPORT_MPTCP_OPTION;
    }
    if out.mptcp_flow {
        flags |= REPORT_MPTCP_FLOW;
    }
    if out.fragment.is_some() {
        flags |= REPORT_FRAGMENT;
    }
    match out.action {
        Some(Counter::Marked) => flags |= REPORT_MARKED,
        Some(Counter::DryRunWouldMark) => flags |= REPORT_DRY_RUN,
        _ => {}
    }
    if out.network.is_some() && out.error.is_none() {
        flags |= REPORT_CLASSIFIED;
    }
    report.sequence += 1;
    report.lists = out.lists;
    report.mptcp_subtypes = out.mptcp.subtypes;
    report.flags = flags;
    report.error = out.error.map_or(0, |error| error as u8);
    report.mptcp_version = out.mptcp.version;
    report.dscp_in = out.dscp_in;
    report.dscp_out = out.dscp_out;
    report.rule = out.rule;
}
