//! Trivial XDP programs: the baselines benchmarks measure xlb against, and
//! the receiver a veth peer needs before it accepts `XDP_TX` frames.
//!
//! Linux 6.18 drops frames sent with `XDP_TX` into a veth whose peer has
//! no XDP program (its NAPI ring is off); attaching `xlb_pass` there turns
//! the ring on and changes nothing else.

#![no_std]
#![no_main]

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

/// Passes every frame to the stack unchanged.
#[xdp]
pub fn xlb_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

/// Sends every frame back out unchanged.
#[xdp]
pub fn xlb_tx(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_TX
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
