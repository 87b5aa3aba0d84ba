//! Every packet's exit: one call to `record`, which bumps the per-CPU counters and, when asked
//! for, writes the packet report.

use classifier_common::{
    Counter,
    counter::{CounterBlock, INTERFACE_SLOTS, MPTCP_SUBTYPE_SLOTS, PARSE_ERROR_BASE},
    limits::MAX_LISTS,
    mptcp::{MPTCP_VERSION_NONE, MptcpSubtype},
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
///
/// The usual outcomes (no report, no error, no DNS or MPTCP event, one list at most, and no
/// MPTCP option, only a DSS, as an MPTCP flow's data segments carry, or only an MP_CAPABLE
/// of version 0 or 1, as a connection's SYN carries) move at most nine counters: they are
/// counted here, inline, the same counters `classifier_record` would move. A flow event
/// (a first packet) is counted inline too. Any other outcome pays for the call, whose
/// return costs about 9 ns on a host with AMD's "Safe RET" (`cargo xtask bench`).
#[inline(always)]
pub fn record(out: &Outcome, length: u64, slot: u32, report: bool) {
    let usual = if report { NOT_USUAL } else { usual(out) };
    if usual != NOT_USUAL {
        if let Some(block) = block_of(slot) {
            count_every_outcome(block, out, length);
            if usual & USUAL_DSS != 0 {
                count(block, Counter::MptcpOption.index(), length);
                count(
                    block,
                    Counter::for_mptcp_subtype(MptcpSubtype::Dss as u8),
                    length,
                );
            } else if usual & USUAL_MP_CAPABLE != 0 {
                count(block, Counter::MptcpOption.index(), length);
                count(
                    block,
                    Counter::for_mptcp_subtype(MptcpSubtype::MpCapable as u8),
                    length,
                );
                // `usual` let only versions 0 and 1 through.
                let version = u32::from(out.mptcp_version & 1);
                count(block, Counter::MpCapableV0.index() + version, length);
            }
            let lists = out.lists;
            if lists != 0 {
                // Read back through memory: LLVM knows the index is below 32 and would drop
                // the bounds check, which the verifier cannot follow through the arithmetic.
                let list = bit_index(lists);
                let list = unsafe { core::ptr::read_volatile(&list) };
                count(block, Counter::for_list(list), length);
            }
        }
        return;
    }
    classifier_record(out, length, slot, u32::from(report));
}

/// The counter block of interface slot `slot` (slot 0, "other", for one out of range).
#[inline(always)]
fn block_of(slot: u32) -> Option<&'static mut CounterBlock> {
    let slot = if slot < INTERFACE_SLOTS { slot } else { 0 };
    // SAFETY: a per-CPU map value, written by this CPU's program alone.
    COUNTERS
        .get_ptr_mut(slot)
        .map(|block| unsafe { &mut *block })
}

/// What every outcome moves, inline or through `classifier_record`: the packet, its class,
/// network, transport, action and flow event (`NO_SLOT` when it has none: `count` moves
/// nothing then).
#[inline(always)]
fn count_every_outcome(block: &mut CounterBlock, out: &Outcome, length: u64) {
    count(block, Counter::Packets.index(), length);
    count(block, u32::from(out.class), length);
    count(block, u32::from(out.network), length);
    count(block, u32::from(out.transport), length);
    count(block, u32::from(out.action), length);
    count(block, u32::from(out.flow_event), length);
}

/// `usual`'s answers: not a usual outcome; a usual one; with a DSS (and no other option 30);
/// with an MP_CAPABLE of version 0 or 1 (and no other option 30).
const NOT_USUAL: u32 = 0;
const USUAL: u32 = 1;
const USUAL_DSS: u32 = 2;
const USUAL_MP_CAPABLE: u32 = 4;

/// Which usual outcome `out` is, if any: one that moves no counter but packets, class,
/// network, transport, action, its flow event and its one list if it has them, and for a DSS
/// the MPTCP option and DSS counters, for an MP_CAPABLE those and its version's.
///
/// Two words tested rather than eight fields: each test of a field is a branch the verifier
/// follows both ways for every state that reaches it.
#[inline(always)]
fn usual(out: &Outcome) -> u32 {
    let words = out as *const Outcome as *const u64;
    // SAFETY: Outcome is C layout, aligned to 8 and at least 16 bytes; every byte is written
    // (`Outcome::NEW`). Volatile: LLVM would split the tests back into byte loads.
    let (first, second) = unsafe {
        (
            core::ptr::read_volatile(words),
            core::ptr::read_volatile(words.add(1)),
        )
    };
    let lists = second as u32;
    let options_and_error = second >> 32;
    if first & USUAL_FIRST_NONE != USUAL_FIRST_NONE || lists & lists.wrapping_sub(1) != 0 {
        NOT_USUAL
    } else if options_and_error & NO_OPTION_NO_ERROR_MASK == 0 {
        USUAL
    } else if options_and_error == DSS_ALONE {
        USUAL | USUAL_DSS
    } else if options_and_error & !MP_CAPABLE_V1_BIT == MP_CAPABLE_V0_ALONE {
        USUAL | USUAL_MP_CAPABLE
    } else {
        NOT_USUAL
    }
}

/// The index of the one bit set in `bit`: the number of bits below it, counted without a
/// loop or a branch (`count_each_bit` loops, which inlined would cost the verifier a state
/// per round in every state that reaches it).
#[inline(always)]
fn bit_index(bit: u32) -> u32 {
    let below = bit.wrapping_sub(1);
    let pairs = below - ((below >> 1) & 0x5555_5555);
    let nibbles = (pairs & 0x3333_3333) + ((pairs >> 2) & 0x3333_3333);
    (((nibbles + (nibbles >> 4)) & 0x0f0f_0f0f).wrapping_mul(0x0101_0101)) >> 24
}

/// The bytes of `Outcome`'s first word that are `NO_SLOT` in a usual outcome: address-only,
/// DNS and MPTCP event (bytes 3, 6, 7; little endian). The flow event (byte 5) may be set.
const USUAL_FIRST_NONE: u64 = 0xffff_0000_ff00_0000;
/// The upper half of its second word (bytes 12..16: MPTCP subtypes, version, error) holds 0
/// but for the version without an MPTCP option and error; the version means nothing without
/// MP_CAPABLE.
const NO_OPTION_NO_ERROR_MASK: u64 = 0xff00_ffff;
/// That half with a DSS and nothing else: subtypes DSS alone, no MP_CAPABLE version, no
/// error.
const DSS_ALONE: u64 = (MPTCP_VERSION_NONE as u64) << 16 | 1 << MptcpSubtype::Dss as u64;
/// That half with an MP_CAPABLE of version 0 and nothing else; with the version's low bit
/// (`MP_CAPABLE_V1_BIT`) ignored, version 1 too.
const MP_CAPABLE_V0_ALONE: u64 = 1 << MptcpSubtype::MpCapable as u64;
const MP_CAPABLE_V1_BIT: u64 = 1 << 16;

const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(Outcome, address_only) == 3);
    assert!(offset_of!(Outcome, flow_event) == 5);
    assert!(offset_of!(Outcome, dns) == 6);
    assert!(offset_of!(Outcome, mptcp_event) == 7);
    assert!(offset_of!(Outcome, lists) == 8);
    assert!(offset_of!(Outcome, mptcp_subtypes) == 12);
    assert!(offset_of!(Outcome, mptcp_version) == 14);
    assert!(offset_of!(Outcome, error) == 15);
    assert!(core::mem::align_of::<Outcome>() == 8);
};

const _: () = assert!(Counter::MpCapableV1.index() == Counter::MpCapableV0.index() + 1);

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
    let Some(block) = block_of(slot) else {
        return 1;
    };
    count_every_outcome(block, out, length);
    count(block, u32::from(out.address_only), length);
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
    if out.address_only == slot(Counter::Ipv4Fragment)
        || out.address_only == slot(Counter::Ipv6Fragment)
    {
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
