//! DNS queries and answers handed from the kernel to user space, for learning CDN addresses
//! from the answers that match a query (see `classifier run`'s `dns` module).

/// Bytes of a DNS message copied per event; longer messages are cut (their later answers
/// are lost, the earlier ones still parse).
pub const DNS_CAPTURE_LEN: usize = 1500;

/// Size of the `DNS_EVENTS` ring buffer (a power of two, a multiple of the page size).
pub const DNS_RING_BYTES: u32 = 1 << 20;

/// The UDP port of DNS: queries go to it, answers come from it.
pub const DNS_PORT: u16 = 53;

/// `DnsEvent::kind`: a UDP datagram to port 53.
pub const DNS_QUERY: u8 = 1;
/// `DnsEvent::kind`: a UDP datagram from port 53 (whatever its ports, a datagram from 53 is an
/// answer: a resolver that still queries from port 53 is not learned from).
pub const DNS_ANSWER: u8 = 2;

/// One DNS query or answer: where it came from and went to, as the IP and UDP headers said,
/// and the UDP payload as it arrived. User space matches answers to queries with the
/// addresses and ports, without parsing the packet again.
#[repr(C)]
#[derive(Copy, Clone)]
pub struct DnsEvent {
    /// Bytes valid in `message`: the UDP length less its header, bounded by the packet and
    /// by `DNS_CAPTURE_LEN`.
    pub len: u32,
    /// Interface the datagram arrived on.
    pub ifindex: u32,
    /// `DNS_QUERY` or `DNS_ANSWER`.
    pub kind: u8,
    /// 4 or 6.
    pub ip_version: u8,
    /// UDP ports, network byte order.
    pub src_port: [u8; 2],
    pub dst_port: [u8; 2],
    pub _pad: [u8; 2],
    /// IPv4 in the first 4 bytes, the rest zero.
    pub src_addr: [u8; 16],
    pub dst_addr: [u8; 16],
    pub message: [u8; DNS_CAPTURE_LEN],
}

/// Offset of `message` in a `DnsEvent`.
pub const DNS_EVENT_HEADER: usize = 48;

const _: () = assert!(core::mem::offset_of!(DnsEvent, message) == DNS_EVENT_HEADER);

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

/// `LearnedEntry::source`: a resolver's answer, seen passing through the router.
pub const LEARNED_FROM_ANSWER: u8 = 1;
/// `LearnedEntry::source`: a lookup `classifier run` made itself (active learning).
pub const LEARNED_FROM_LOOKUP: u8 = 2;

/// Where a learned address came from and when it expires. Only the user side reads it.
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LearnedEntry {
    /// Unix time, in seconds.
    pub expires_at: u64,
    /// When the answer that last taught or renewed it was read (Unix seconds).
    pub learned_at: u64,
    /// `LEARNED_FROM_ANSWER` or `LEARNED_FROM_LOOKUP`.
    pub source: u8,
    /// 4 or 6: the resolver's address family.
    pub resolver_version: u8,
    pub _pad: [u8; 6],
    /// The resolver that answered (IPv4 in the first 4 bytes).
    pub resolver: [u8; 16],
    /// The question that was asked (NUL-padded).
    pub name: [u8; LEARNED_NAME_LEN],
}
