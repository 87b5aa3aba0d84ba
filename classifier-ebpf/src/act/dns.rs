//! Handing DNS queries and answers to user space (`DNS_EVENTS` ring buffer), where
//! `classifier run` learns the addresses CDNs answer with, from answers that match a query it
//! saw. Only while `CONFIG_LEARN_DNS` is set, so that nobody pays for copies nobody reads.

use core::mem::offset_of;

use classifier_common::{
    Counter,
    dns::{DNS_ANSWER, DNS_CAPTURE_LEN, DNS_PORT, DNS_QUERY, DnsEvent},
};

use crate::{
    hook::PacketAccess,
    maps::DNS_EVENTS,
    parse::{
        IPV4_ADDRESS_LEN, IPV4_DESTINATION, IPV4_SOURCE, IPV6_ADDRESS_LEN, IPV6_DESTINATION,
        IPV6_SOURCE, UDP_HEADER_LEN, UDP_LENGTH,
    },
};

/// The UDP header's length, as the load helper's offsets are counted.
const UDP_HEADER: u32 = UDP_HEADER_LEN as u32;

/// Copies a DNS datagram into the ring buffer: its addresses (IP header at `ip_offset`,
/// IPv6 when `ipv6` is not 0), its ports and its message (the UDP payload at `payload`, of
/// which the packet holds `available` bytes). Returns the counter that says how it went.
///
/// Not inlined: called on DNS datagrams only, it keeps the ring buffer's registers out of the
/// main path. Every copy goes through the hook's load helper (bpf_xdp_load_bytes,
/// bpf_skb_load_bytes), which checks the packet bounds itself.
#[inline(never)]
pub fn forward_dns<H: PacketAccess>(
    ctx: &H,
    ip_offset: u32,
    payload: u32,
    available: u32,
    ipv6: u32,
) -> u32 {
    let Some(mut entry) = DNS_EVENTS.reserve::<DnsEvent>(0) else {
        return Counter::DnsLost.index();
    };
    let event = entry.as_mut_ptr();
    if unsafe { fill(ctx, event, ip_offset, payload, available, ipv6) }.is_none() {
        entry.discard(0);
        return Counter::DnsLost.index();
    }
    entry.submit(0);
    Counter::DnsForwarded.index()
}

/// Writes every field of `event`; None when the packet did not hold what its headers said.
#[inline(always)]
unsafe fn fill<H: PacketAccess>(
    ctx: &H,
    event: *mut DnsEvent,
    ip_offset: u32,
    payload: u32,
    available: u32,
    ipv6: u32,
) -> Option<()> {
    let base = event as *mut u8;
    let udp = payload - UDP_HEADER;
    // Source and destination ports, adjacent in the UDP header as in the event.
    load(
        ctx,
        udp,
        unsafe { base.add(offset_of!(DnsEvent, src_port)) },
        4,
    )?;
    let mut udp_length = [0u8; 2];
    load(ctx, udp + UDP_LENGTH as u32, udp_length.as_mut_ptr(), 2)?;
    unsafe {
        (*event).ifindex = ctx.ifindex();
        (*event).kind = if (*event).src_port == DNS_PORT.to_be_bytes() {
            DNS_ANSWER
        } else {
            DNS_QUERY
        };
        (*event)._pad = [0; 2];
    }
    let src = unsafe { base.add(offset_of!(DnsEvent, src_addr)) };
    let dst = unsafe { base.add(offset_of!(DnsEvent, dst_addr)) };
    if ipv6 != 0 {
        unsafe { (*event).ip_version = 6 };
        let len = IPV6_ADDRESS_LEN as u32;
        load(ctx, ip_offset + IPV6_SOURCE as u32, src, len)?;
        load(ctx, ip_offset + IPV6_DESTINATION as u32, dst, len)?;
    } else {
        unsafe {
            (*event).ip_version = 4;
            (*event).src_addr = [0; 16];
            (*event).dst_addr = [0; 16];
        }
        let len = IPV4_ADDRESS_LEN as u32;
        load(ctx, ip_offset + IPV4_SOURCE as u32, src, len)?;
        load(ctx, ip_offset + IPV4_DESTINATION as u32, dst, len)?;
    }
    // The UDP length says how long the message is (a length below the header's own: nothing,
    // and user space counts the answer malformed); the packet bounds it. Clamped to the
    // buffer first: a mask before the clamp would wrap a 2,100-byte answer to 52 bytes.
    let mut len = (u16::from_be_bytes(udp_length) as u32).saturating_sub(UDP_HEADER);
    if len > available {
        len = available;
    }
    if len > DNS_CAPTURE_LEN as u32 {
        len = DNS_CAPTURE_LEN as u32;
    }
    // No change after the clamp: a bound the verifier keeps whatever registers the clamp
    // was compiled to. The zero test comes after it, as a mask forgets a lower bound.
    let len = len & 0x7ff;
    unsafe { (*event).len = len };
    if len == 0 {
        return Some(());
    }
    load(ctx, payload, unsafe { (*event).message.as_mut_ptr() }, len)
}

#[inline(always)]
fn load<H: PacketAccess>(ctx: &H, offset: u32, to: *mut u8, len: u32) -> Option<()> {
    ctx.load_bytes(offset, to, len)
}
