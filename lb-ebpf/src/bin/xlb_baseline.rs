//! Trivial XDP programs: the baselines benchmarks measure xlb against, the
//! receiver a veth peer needs before it accepts `XDP_TX` frames, and the
//! benchmark's live-frame generator.
//!
//! Linux 6.18 drops frames sent with `XDP_TX` into a veth whose peer has
//! no XDP program (its NAPI ring is off); attaching `xlb_pass` there turns
//! the ring on and changes nothing else.

#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    macros::{map, xdp},
    maps::Array,
    programs::XdpContext,
};

/// Bytes of the frame `xlb_gen` writes: Ethernet, IPv4 and TCP headers.
const GEN_FRAME_LEN: usize = 54;

/// The frame `xlb_gen` sends, at index 0; written by the benchmark.
#[map]
static GEN_FRAME: Array<[u8; GEN_FRAME_LEN]> = Array::with_max_entries(1, 0);

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

/// Writes `GEN_FRAME` over the start of every frame, then sends it out.
///
/// With `BPF_F_TEST_XDP_LIVE_FRAMES` the kernel reuses each page of its
/// pool and resets only the frame's pointers, not its bytes (Linux 6.18
/// `reset_ctx` in net/bpf/test_run.c). A program downstream that rewrites
/// headers in place, as xlb's encapsulation does, would otherwise see its
/// own output again when the page comes round.
#[xdp]
pub fn xlb_gen(ctx: XdpContext) -> u32 {
    let (start, end) = (ctx.data(), ctx.data_end());
    if start + GEN_FRAME_LEN > end {
        return xdp_action::XDP_ABORTED;
    }
    let Some(frame) = GEN_FRAME.get(0) else {
        return xdp_action::XDP_ABORTED;
    };
    // SAFETY: `start..start + GEN_FRAME_LEN` lies inside the packet
    // (checked against `data_end` above), and the map value is as long.
    unsafe {
        core::ptr::copy_nonoverlapping(frame.as_ptr(), start as *mut u8, GEN_FRAME_LEN);
    }
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
