//! XDP: the packet is one linear buffer the program may write directly.

use aya_ebpf::{bindings::xdp_md, helpers::generated::bpf_xdp_load_bytes, programs::XdpContext};
use aya_log_ebpf::{debug, warn};
use classifier_common::Counter;

use super::PacketAccess;
use crate::{act::dscp, parse::IpKind};

impl PacketAccess for XdpContext {
    #[inline(always)]
    fn data(&self) -> usize {
        XdpContext::data(self)
    }

    #[inline(always)]
    fn data_end(&self) -> usize {
        XdpContext::data_end(self)
    }

    #[inline(always)]
    fn packet_len(&self) -> u64 {
        (XdpContext::data_end(self) - XdpContext::data(self)) as u64
    }

    /// A frame is one buffer (the program is not loaded for multi-buffer XDP): what ends
    /// before its end is truncated.
    #[inline(always)]
    fn headers_cut(&self) -> bool {
        false
    }

    #[inline(always)]
    fn ifindex(&self) -> u32 {
        unsafe { (*self.ctx).ingress_ifindex }
    }

    #[inline(always)]
    fn load_bytes(&self, offset: u32, to: *mut u8, len: u32) -> Option<()> {
        let copied = unsafe { bpf_xdp_load_bytes(self.ctx, offset, to.cast(), len) };
        (copied == 0).then_some(())
    }

    #[inline(always)]
    fn write_dscp(&self, ip: &IpKind, dscp: u8) {
        match *ip {
            IpKind::V4(hdr) => dscp::set_dscp_v4(hdr, dscp),
            IpKind::V6(hdr) => dscp::set_dscp_v6(hdr, dscp),
        }
    }

    #[inline(always)]
    fn log_trouble(&self, flow_event: u32) {
        classifier_log_trouble(self.ctx, flow_event);
    }
}

/// A global BPF function, so that aya-log's formatting gets a stack frame of its own instead
/// of pushing the pipeline's chain of calls past 512 bytes; it is verified once. It reads
/// the interface from the context itself: an argument the body does not use is dropped by
/// LLVM, and the verifier then refuses a call that passes no context.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn classifier_log_trouble(ctx: *mut xdp_md, flow_event: u32) -> u32 {
    if ctx.is_null() {
        return 1;
    }
    // No arguments to format: each one costs stack this call chain does not have. The
    // per-interface counters say where it happened.
    let ctx = XdpContext::new(ctx);
    if flow_event == Counter::FlowInsertFailed.index() {
        warn!(
            &ctx,
            "flow table full: new flows are classified but not remembered"
        );
    } else {
        debug!(&ctx, "DNS ring buffer full: a response was not handed over");
    }
    0
}
