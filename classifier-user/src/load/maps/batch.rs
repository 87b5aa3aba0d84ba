//! Reading a whole hash map in batches (BPF_MAP_LOOKUP_BATCH), which aya 0.14 does not offer:
//! one bpf(2) call per `BATCH` entries instead of two per entry (next key, then value). Besides
//! the calls saved, the kernel walks buckets, not keys: a walk element by element that finds
//! its last key evicted starts over from the first, so a table under churn could be walked
//! many times over; a batch walk visits each bucket once.
//!
//! Generic over the key and value types, so any hash map of plain-old-data elements (not a
//! per-CPU one, whose values are one per CPU) is read the same way.

use std::{
    mem::{MaybeUninit, size_of},
    os::fd::{AsRawFd as _, BorrowedFd},
};

use aya::{Pod, maps::MapError, sys::SyscallError};

/// Entries asked for per call. A call fails with ENOSPC when one bucket holds more; the walk
/// then retries with room for more.
const BATCH: u32 = 4096;

/// The kernel's command number (include/uapi/linux/bpf.h).
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;

/// `union bpf_attr`'s `batch` member.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Every entry of the hash map behind `fd`. Entries added or removed during the walk may be
/// in it or not; each entry read is whole (the kernel copies it under its bucket's lock).
pub fn entries<K: Pod, V: Pod>(fd: BorrowedFd<'_>) -> Result<Vec<(K, V)>, MapError> {
    // The position between calls: a bucket number for hash maps, whatever the kernel's map
    // type uses otherwise; a key's size is the most it takes.
    let token_size = size_of::<K>().max(size_of::<u64>());
    let mut token_in = vec![0u8; token_size];
    let mut token_out = vec![0u8; token_size];
    let mut room = BATCH as usize;
    let mut keys: Vec<MaybeUninit<K>> = Vec::new();
    let mut values: Vec<MaybeUninit<V>> = Vec::new();
    let mut all = Vec::new();
    let mut first = true;
    loop {
        keys.resize_with(room, MaybeUninit::uninit);
        values.resize_with(room, MaybeUninit::uninit);
        let mut attr = BatchAttr {
            in_batch: if first { 0 } else { token_in.as_ptr() as u64 },
            out_batch: token_out.as_mut_ptr() as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: room as u32,
            map_fd: fd.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        // SAFETY: `attr` is a valid `bpf_attr` batch member whose buffers hold `count` keys
        // and values of the map's sizes (checked by the typed handle that gave `fd`) and a
        // token of at least the key's size; all outlive the call.
        let result = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_LOOKUP_BATCH,
                &mut attr as *mut BatchAttr,
                size_of::<BatchAttr>(),
            )
        };
        let error = (result < 0).then(std::io::Error::last_os_error);
        match error.as_ref().and_then(std::io::Error::raw_os_error) {
            // One bucket holds more than `room`: nothing was read, ask for more at once.
            Some(libc::ENOSPC) => {
                room *= 2;
                continue;
            }
            None | Some(libc::ENOENT) => {}
            Some(_) => {
                return Err(MapError::SyscallError(SyscallError {
                    call: "bpf_map_lookup_batch",
                    io_error: error.expect("an error"),
                }));
            }
        }
        let read = attr.count as usize;
        // SAFETY: the kernel wrote `read` whole keys and values, and every bit pattern is a
        // valid `K` and `V` (`Pod`).
        all.extend(
            keys[..read]
                .iter()
                .zip(&values[..read])
                .map(|(k, v)| unsafe { (k.assume_init(), v.assume_init()) }),
        );
        // ENOENT: the walk has passed the last bucket.
        if error.is_some() {
            return Ok(all);
        }
        std::mem::swap(&mut token_in, &mut token_out);
        first = false;
    }
}
