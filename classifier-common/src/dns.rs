//! DNS responses handed from the kernel to user space, for learning CDN addresses.

/// Bytes of a DNS message copied per event; longer messages are cut (their later answers
/// are lost, the earlier ones still parse).
pub const DNS_CAPTURE_LEN: usize = 1500;

/// Size of the `DNS_EVENTS` ring buffer (a power of two, a multiple of the page size).
pub const DNS_RING_BYTES: u32 = 1 << 20;

/// One DNS response: the UDP payload as it arrived.
#[repr(C)]
#[derive(Copy, Clone)]
pub struct DnsEvent {
    /// Bytes valid in `message`.
    pub len: u32,
    /// Interface the response arrived on.
    pub ifindex: u32,
    pub message: [u8; DNS_CAPTURE_LEN],
}

/// Longest DNS name kept with a learned address (longer names are cut).
pub const LEARNED_NAME_LEN: usize = 96;

/// Learned addresses kept at once.
pub const MAX_LEARNED: u32 = 65_536;

/// A learned address in one list: the key of `LEARNED`.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LearnedKey {
    /// IPv4 in the first 4 bytes, the rest zero.
    pub addr: [u8; 16],
    pub list: u32,
    /// 4 or 6.
    pub ip_version: u8,
    pub _pad: [u8; 3],
}

/// Where a learned address came from and when it expires. Only the user side reads it.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LearnedEntry {
    /// Unix time, in seconds.
    pub expires_at: u64,
    /// The DNS name that was asked for (NUL-padded).
    pub name: [u8; LEARNED_NAME_LEN],
}
