//! The classifier's kernel side.
//!
//! `classify` (XDP) parses every packet, remembers flows, matches prefix lists, applies the
//! policy's DSCP and counts. It always returns XDP_PASS and changes no byte other than the
//! DSCP bits and the IPv4 header checksum.
//!
//! `classify_tc` (tc, TCX ingress) runs the same pipeline on interfaces without native XDP:
//! it marks, counts and remembers flows as `classify` does, through the kernel's skb helpers,
//! and always returns TC_ACT_OK.
//!
//! `baseline` (XDP) only returns XDP_PASS, `baseline_tc` only TC_ACT_OK: `cargo xtask bench`
//! measures the classifier beside them, in the same run, to report its own cost. Only an
//! object built with the `bench` feature has them; the shipped one does not.
//!
//! `steer` (tc egress) steers packets into the egress HTB tree's bulk or normal class
//! by their DSCP. It always returns TC_ACT_OK and changes no byte.
// A variant built for the benchmark's ablation leaves the stage it takes out unused.
#![cfg_attr(
    any(
        feature = "ablate-flows",
        feature = "ablate-counters",
        feature = "ablate-options"
    ),
    allow(dead_code, unused_imports)
)]
#![no_std]
#![no_main]

mod act;
mod classify;
mod hook;
mod maps;
mod parse;
mod steer;

use aya_ebpf::{
    bindings::{TC_ACT_OK, xdp_action},
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};

#[xdp]
pub fn classify(ctx: XdpContext) -> u32 {
    classify::classify_packet(&ctx);
    xdp_action::XDP_PASS
}

#[classifier]
pub fn classify_tc(ctx: TcContext) -> i32 {
    hook::make_headers_direct(ctx.skb.skb);
    classify::classify_packet(&ctx);
    TC_ACT_OK
}

#[cfg(feature = "bench")]
#[xdp]
pub fn baseline(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

#[cfg(feature = "bench")]
#[classifier]
pub fn baseline_tc(_ctx: TcContext) -> i32 {
    TC_ACT_OK
}

#[classifier]
pub fn steer(ctx: TcContext) -> i32 {
    steer::steer(&ctx);
    TC_ACT_OK
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any path that could reach this, so it is never executed.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
