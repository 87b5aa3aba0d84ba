//! tc (TCX ingress): the packet is an skb. Direct access reaches only its linear part, so the
//! headers are made linear first; every write goes through the kernel's helpers, which keep
//! the skb's checksum state right and unclone it when others share its data.

use aya_ebpf::{
    bindings::{__sk_buff, BPF_F_RECOMPUTE_CSUM},
    programs::TcContext,
};
use aya_log_ebpf::{debug, warn};
use classifier_common::Counter;

use super::PacketAccess;
use crate::parse::{IPV4_CHECKSUM, IpKind, headers_end};

/// How many bytes are made linear when the linear part ends before the headers can be told
/// apart (an IPv6 extension chain, a driver that copies only a short head): Ethernet, two VLAN
/// tags, IPv4 with 40 bytes of options and TCP with 40 (142), or IPv6 with a short extension
/// chain and TCP. A longer chain in the paged part of an skb is out of reach: the packet is
/// classified by its addresses (`PacketAccess::headers_cut`).
const HEADERS_DIRECT: usize = 192;

/// Makes the headers the pipeline reads linear, when they are not: direct packet access sees
/// only an skb's linear part. Most skbs are linear, or hold exactly their headers in the
/// linear part (GRO, drivers that split at `eth_get_headlen`, TCP from this host): for them
/// this is a few reads and no copy. Otherwise (a short head, as virtio's 128 bytes) the
/// headers are pulled in with `bpf_skb_pull_data`, up to `HEADERS_DIRECT` bytes when the
/// linear part does not even show where they end (`parse::headers_end`). A failed pull (no memory) leaves the
/// packet as it is: what the parse cannot reach is then classified by address.
///
/// Not inlined: inlined, its registers cost the pipeline's frame 8 of the few bytes the
/// verifier's 512-byte limit leaves it.
#[inline(never)]
pub fn make_headers_direct(skb: *mut __sk_buff) {
    let ctx = TcContext::new(skb);
    let len = ctx.len() as usize;
    let (data, end) = (ctx.data(), ctx.data_end());
    let linear = end - data;
    if linear >= len {
        return;
    }
    let mut wanted = headers_end(data, end).unwrap_or(HEADERS_DIRECT);
    if wanted > len {
        wanted = len;
    }
    if linear < wanted {
        let _ = ctx.pull_data(wanted as u32);
    }
}

impl PacketAccess for TcContext {
    #[inline(always)]
    fn data(&self) -> usize {
        TcContext::data(self)
    }

    #[inline(always)]
    fn data_end(&self) -> usize {
        TcContext::data_end(self)
    }

    /// The whole skb, paged part included: the same count as XDP's for a packet that is one
    /// frame. A GSO or GRO packet counts once, with all its bytes.
    #[inline(always)]
    fn packet_len(&self) -> u64 {
        u64::from(self.len())
    }

    /// The linear part ends before the skb: `make_headers_direct` could not pull, or pulled
    /// `HEADERS_DIRECT` bytes and the headers go on past them.
    #[inline(always)]
    fn headers_cut(&self) -> bool {
        ((TcContext::data_end(self) - TcContext::data(self)) as u64) < u64::from(self.len())
    }

    /// The device the skb is on: at ingress, the one it arrived on.
    #[inline(always)]
    fn ifindex(&self) -> u32 {
        unsafe { (*self.skb.skb).ifindex }
    }

    #[inline(always)]
    fn load_bytes(&self, offset: u32, to: *mut u8, len: u32) -> Option<()> {
        let copied = unsafe {
            aya_ebpf::helpers::generated::bpf_skb_load_bytes(
                self.skb.skb as *const _,
                offset,
                to.cast(),
                len,
            )
        };
        (copied == 0).then_some(())
    }

    #[inline(always)]
    fn write_dscp(&self, ip: &IpKind, dscp: u8) {
        // The header's first two bytes: IPv4's version/IHL and TOS, IPv6's version, traffic
        // class and the flow label's top nibble.
        let (hdr, first, ipv6) = match *ip {
            IpKind::V4(hdr) => (hdr as usize, unsafe { [(*hdr).vihl, (*hdr).tos] }, 0),
            IpKind::V6(hdr) => {
                let vcf = unsafe { (*hdr).vcf };
                (hdr as usize, [vcf[0], vcf[1]], 1)
            }
        };
        let at = (hdr - TcContext::data(self)) as u32;
        write_dscp_skb(self.skb.skb, at, u16::from_ne_bytes(first), dscp, ipv6);
    }

    #[inline(always)]
    fn log_trouble(&self, flow_event: u32) {
        classifier_log_trouble_tc(self.skb.skb, flow_event);
    }
}

/// Rewrites the DSCP of the IP header at `at`, whose first two bytes are `first` (as they lie
/// in the packet): bpf_skb_store_bytes, then for IPv4 bpf_l3_csum_replace over that 16-bit
/// word, so the header's sum is unchanged and a CHECKSUM_COMPLETE skb stays right. IPv6 has
/// no header checksum; BPF_F_RECOMPUTE_CSUM updates skb->csum for the changed word.
///
/// Not inlined, and given scalars only: the classifier's stack frame is within 16 bytes of
/// what the verifier allows for its deepest chain of calls, and this keeps the helpers' buffer
/// out of it.
#[inline(never)]
fn write_dscp_skb(skb: *mut __sk_buff, at: u32, first: u16, dscp: u8, ipv6: u32) {
    let ctx = TcContext::new(skb);
    let [b0, b1] = first.to_ne_bytes();
    let at = at as usize;
    if ipv6 == 0 {
        let new = [b0, (dscp << 2) | (b1 & 0x03)];
        if ctx.store(at, &new, 0).is_ok() {
            let _ = ctx.l3_csum_replace(
                at + IPV4_CHECKSUM,
                u64::from(first),
                u64::from(u16::from_ne_bytes(new)),
                2,
            );
        }
    } else {
        let ecn = (b1 >> 4) & 0x03;
        let traffic_class = (dscp << 2) | ecn;
        let new = [
            (b0 & 0xf0) | (traffic_class >> 4),
            (traffic_class << 4) | (b1 & 0x0f),
        ];
        let _ = ctx.store(at, &new, u64::from(BPF_F_RECOMPUTE_CSUM));
    }
}

/// `classifier_log_trouble` for skbs: a global function takes the context of its program's
/// type, so each hook has its own (see the XDP one for why it is global).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn classifier_log_trouble_tc(ctx: *mut __sk_buff, flow_event: u32) -> u32 {
    if ctx.is_null() {
        return 1;
    }
    let ctx = TcContext::new(ctx);
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
