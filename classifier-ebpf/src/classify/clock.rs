//! The time flows are stamped with, at a fraction of the cost of asking for it.
//!
//! `bpf_ktime_get_coarse_ns` (CLOCK_MONOTONIC_COARSE, what `classifier flows` compares with)
//! cost 13 ns a packet in `cargo xtask bench`, an eighth of the whole program. That clock
//! only moves when the timer tick updates timekeeping, which is also when jiffies move, and
//! `bpf_jiffies64` is a single load. So each CPU keeps the coarse time it last read with the
//! jiffies of that moment, and reads the clock again only when jiffies have moved on: the
//! same values, one clock read per tick instead of per packet. (If a packet falls between a
//! tick's jiffies update and its timekeeping update, the stamp is one tick old: within the
//! coarse clock's own resolution.)

use aya_ebpf::helpers::generated::{bpf_jiffies64, bpf_ktime_get_coarse_ns};

use crate::maps::CLOCK;

/// CLOCK_MONOTONIC_COARSE, in nanoseconds.
#[inline(always)]
pub fn coarse_ns() -> u64 {
    let jiffies = unsafe { bpf_jiffies64() };
    let Some(cached) = CLOCK.get_ptr_mut(0) else {
        return unsafe { bpf_ktime_get_coarse_ns() };
    };
    let cached = unsafe { &mut *cached };
    // A fresh entry holds jiffies 0, which the kernel's jiffies never are (they start
    // 5 minutes before wrapping 32 bits), so the first packet reads the clock too.
    if cached.jiffies != jiffies {
        cached.ns = unsafe { bpf_ktime_get_coarse_ns() };
        cached.jiffies = jiffies;
    }
    cached.ns
}
