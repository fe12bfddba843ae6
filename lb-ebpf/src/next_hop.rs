//! Next-hop MACs toward a backend: the kernel FIB's answer, cached per
//! backend and CPU for `NEXT_HOP_TTL_NS`, with the configured gateway MAC
//! as fallback.
//!
//! `bpf_fib_lookup` costs a route and a neighbour lookup on every packet;
//! a forwarded flow reaches the same few backends over and over. The cache
//! keeps the answer (or the fact that the FIB had none, so the gateway is
//! used) for a short while, then asks the FIB again, so a neighbour that
//! changes or appears is followed within `NEXT_HOP_TTL_NS`.

use core::mem::MaybeUninit;

use aya_ebpf::{
    bindings::{BPF_FIB_LKUP_RET_SUCCESS, bpf_fib_lookup},
    helpers::{bpf_fib_lookup as fib_lookup, bpf_ktime_get_coarse_ns},
    macros::map,
    maps::PerCpuArray,
    programs::XdpContext,
};
use lb_common::{
    Backend, DEFAULT_BACKEND_LIMIT, FAMILY_V4, SETTINGS_F_GATEWAY_MAC, Settings, Stat,
};

use crate::{l2::L2Header, mem::zero_in_place};

/// How long a cached next hop is used before the FIB is asked again, in ns.
pub const NEXT_HOP_TTL_NS: u64 = 100_000_000;

/// [`NextHop::kind`]: nothing cached (the map's initial zeroes).
const HOP_EMPTY: u32 = 0;
/// [`NextHop::kind`]: `dmac` and `smac` are the FIB's answer.
const HOP_FIB: u32 = 1;
/// [`NextHop::kind`]: the FIB had no neighbour; the gateway MAC is used.
const HOP_GATEWAY: u32 = 2;

/// One cached next hop, valid for the backend address and ingress
/// interface it was found for (backend ids are reused, and several
/// interfaces may run this program).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NextHop {
    /// Backend address the entry was found for, as in `Backend::addr`.
    addr: [u8; 16],
    /// Ingress interface of the packet that filled the entry.
    ifindex: u32,
    /// `HOP_*`.
    kind: u32,
    /// Coarse monotonic clock (`bpf_ktime_get_coarse_ns`) after which the
    /// entry is stale, in ns.
    expires_ns: u64,
    /// Next-hop MAC from the FIB (`HOP_FIB` only).
    dmac: [u8; 6],
    /// Source MAC from the FIB (`HOP_FIB` only).
    smac: [u8; 6],
    /// Always zero.
    _pad: [u8; 4],
}
const _: () = assert!(size_of::<NextHop>() == 48);

/// Next hops by backend id, per CPU; written and read by `xlb` only (user
/// space never sees it, and a fresh load starts it empty). xlbd sizes it
/// like `BACKENDS`.
#[map]
pub static NEXT_HOPS: PerCpuArray<NextHop> =
    PerCpuArray::with_max_entries(DEFAULT_BACKEND_LIMIT, 0);

/// Destination and source MACs toward `backend` (id `backend_id`): the
/// FIB's neighbour, else the configured gateway (sent from the MAC the
/// frame came to); `DropNoRoute` when there is neither.
#[inline(always)]
pub fn next_hop_macs(
    ctx: &XdpContext,
    backend_id: u32,
    backend: &Backend,
    settings: &Settings,
    l2: &L2Header,
) -> Result<([u8; 6], [u8; 6]), Stat> {
    let hop = NEXT_HOPS.get_ptr_mut(backend_id).ok_or(Stat::DropNoRoute)?;
    // SAFETY: `hop` points at this CPU's entry, which only this CPU writes,
    // and XDP runs with preemption off.
    let hop = unsafe { &mut *hop };
    let ifindex = ctx.ingress_ifindex() as u32;
    // SAFETY: no preconditions.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    let fresh = hop.kind != HOP_EMPTY
        && now < hop.expires_ns
        && hop.ifindex == ifindex
        && hop.addr == backend.addr;
    if !fresh {
        refresh(ctx, hop, backend, ifindex, now);
    }

    if hop.kind == HOP_FIB {
        return Ok((hop.dmac, hop.smac));
    }
    if settings.flags & SETTINGS_F_GATEWAY_MAC != 0 {
        return Ok((settings.gateway_mac, l2.dmac));
    }
    // Nothing to send to: the next packet asks the FIB again rather than
    // being dropped for a whole TTL.
    hop.kind = HOP_EMPTY;
    Err(Stat::DropNoRoute)
}

/// Asks the FIB for `backend` and stores the answer (or its absence) in
/// `hop` until `now + NEXT_HOP_TTL_NS`.
#[inline(never)]
fn refresh(ctx: &XdpContext, hop: &mut NextHop, backend: &Backend, ifindex: u32, now: u64) {
    hop.addr = backend.addr;
    hop.ifindex = ifindex;
    hop.expires_ns = now + NEXT_HOP_TTL_NS;
    hop.kind = HOP_GATEWAY;
    if let Some((dmac, smac)) = fib_macs(ctx, backend, ifindex) {
        hop.dmac = dmac;
        hop.smac = smac;
        hop.kind = HOP_FIB;
    }
}

/// The FIB's next-hop and source MACs toward `backend`, if it has a
/// neighbour for it.
#[inline(always)]
fn fib_macs(ctx: &XdpContext, backend: &Backend, ifindex: u32) -> Option<([u8; 6], [u8; 6])> {
    // SAFETY: `bpf_fib_lookup` is plain old data; all zeroes is its
    // "nothing set" state.
    let mut slot = MaybeUninit::<FibParams>::uninit();
    let params = &mut unsafe { zero_in_place(&mut slot) }.0;
    params.family = backend.family;
    params.ifindex = ifindex;
    let a = &backend.addr;
    if backend.family == FAMILY_V4 {
        params.__bindgen_anon_4.ipv4_dst = u32::from_ne_bytes([a[0], a[1], a[2], a[3]]);
    } else {
        // SAFETY: `[u8; 16]` and `[u32; 4]` have the same size, any bits
        // are valid.
        params.__bindgen_anon_4.ipv6_dst =
            unsafe { core::mem::transmute::<[u8; 16], [u32; 4]>(*a) };
    }
    // SAFETY: `params` is a valid, writable `bpf_fib_lookup` of the size
    // passed; `ctx.ctx` is the program's context.
    let rc = unsafe {
        fib_lookup(
            ctx.ctx.cast(),
            params,
            size_of::<bpf_fib_lookup>() as i32,
            0,
        )
    };
    (rc == i64::from(BPF_FIB_LKUP_RET_SUCCESS)).then_some((params.dmac, params.smac))
}

/// `bpf_fib_lookup` aligned for [`zero_in_place`].
#[repr(C, align(8))]
struct FibParams(bpf_fib_lookup);
