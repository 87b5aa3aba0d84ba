//! Handing DNS responses to user space (`DNS_EVENTS` ring buffer), where `classifier run`
//! learns the addresses CDNs answer with. Only while `CONFIG_LEARN_DNS` is set, so that
//! nobody pays for copies nobody reads.

use aya_ebpf::{helpers::generated::bpf_xdp_load_bytes, programs::XdpContext};
use classifier_common::{
    Counter,
    dns::{DNS_CAPTURE_LEN, DnsEvent},
};

use crate::maps::DNS_EVENTS;

/// Copies the DNS message at `offset` (its UDP payload, `len` bytes) into the ring buffer;
/// returns the counter that says how it went.
///
/// Not inlined: called on DNS responses only, it keeps the ring buffer's registers out of the
/// main path. The copy goes through bpf_xdp_load_bytes, which checks the packet bounds itself.
#[inline(never)]
pub fn forward_dns(ctx: &XdpContext, offset: u32, len: u32) -> u32 {
    // The mask bounds the length where the verifier can see it; the helper's size argument
    // must be known to fit the event's buffer.
    let mut len = len & 0x7ff;
    if len > DNS_CAPTURE_LEN as u32 {
        len = DNS_CAPTURE_LEN as u32;
    }
    if len == 0 {
        return Counter::DnsLost.index();
    }
    let Some(mut entry) = DNS_EVENTS.reserve::<DnsEvent>(0) else {
        return Counter::DnsLost.index();
    };
    let event = entry.as_mut_ptr();
    let copied = unsafe {
        (*event).len = len;
        (*event).ifindex = (*ctx.ctx).ingress_ifindex;
        bpf_xdp_load_bytes(ctx.ctx, offset, (*event).message.as_mut_ptr().cast(), len)
    };
    if copied != 0 {
        entry.discard(0);
        return Counter::DnsLost.index();
    }
    entry.submit(0);
    Counter::DnsForwarded.index()
}
