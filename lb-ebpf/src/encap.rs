//! Step 4: wraps the IP packet in an outer IPv4 or IPv6 header addressed to
//! the backend (direct server return), behind next-hop MACs from
//! `next_hop`.
//!
//! The inner packet is not touched: the frame only grows at the front.

use aya_ebpf::{helpers::bpf_xdp_adjust_head, programs::XdpContext};
use lb_common::{Backend, DEFAULT_MTU, FAMILY_V4, PROTO_IPIP, PROTO_IPV6, Settings, Stat};

use crate::{
    csum,
    flow::Choice,
    l2::{read_l2, write_l2},
    net::{ETH_P_IPV4, ETH_P_IPV6, IPV4_HLEN, IPV6_HLEN, view_mut},
    next_hop::next_hop_macs,
    parse::Packet,
};

/// Hop limit / TTL of outer headers.
const OUTER_TTL: u8 = 64;

/// Bytes the outer header for `backend` adds.
#[inline(always)]
pub fn outer_header_len(backend: &Backend) -> usize {
    if backend.family == FAMILY_V4 {
        IPV4_HLEN
    } else {
        IPV6_HLEN
    }
}

/// Largest outer packet, from the settings (`DEFAULT_MTU` when unset).
#[inline(always)]
pub fn mtu(settings: &Settings) -> usize {
    if settings.mtu == 0 {
        DEFAULT_MTU as usize
    } else {
        settings.mtu as usize
    }
}

/// Encapsulates `pkt` to `choice`'s backend, ready for `XDP_TX`.
#[inline(always)]
pub fn encapsulate(
    ctx: &XdpContext,
    pkt: &Packet,
    choice: &Choice,
    settings: &Settings,
) -> Result<(), Stat> {
    let l2 = read_l2(ctx, pkt.l2_len).ok_or(Stat::DropTruncated)?;
    let (dmac, smac) = next_hop_macs(ctx, choice.backend_id, &choice.backend, settings, &l2)?;
    let outer_len = outer_header_len(&choice.backend);
    grow_head(ctx, outer_len)?;
    let fail = Stat::DropAdjustFailed;
    if choice.backend.family == FAMILY_V4 {
        write_l2(ctx, &l2, &dmac, &smac, ETH_P_IPV4).ok_or(fail)?;
        let outer = view_mut::<IPV4_HLEN>(ctx, l2.len).ok_or(fail)?;
        write_ipv4_outer_header(outer, pkt, choice, settings);
    } else {
        write_l2(ctx, &l2, &dmac, &smac, ETH_P_IPV6).ok_or(fail)?;
        let outer = view_mut::<IPV6_HLEN>(ctx, l2.len).ok_or(fail)?;
        write_ipv6_outer_header(outer, pkt, choice, settings);
    }
    Ok(())
}

/// Makes room for `bytes` more at the front of the frame.
#[inline(always)]
pub fn grow_head(ctx: &XdpContext, bytes: usize) -> Result<(), Stat> {
    // SAFETY: `ctx.ctx` is the program's context; packet pointers taken
    // before are not used after this call.
    let rc = unsafe { bpf_xdp_adjust_head(ctx.ctx, -(bytes as i32)) };
    if rc == 0 {
        Ok(())
    } else {
        Err(Stat::DropAdjustFailed)
    }
}

/// Outer IPv4 header: ihl 5, TTL 64, id 0, DF from an IPv4 inner packet
/// (always for IPv6, which routers may not fragment).
#[inline(always)]
fn write_ipv4_outer_header(h: &mut [u8; 20], pkt: &Packet, choice: &Choice, settings: &Settings) {
    let inner_v4 = pkt.key.family == FAMILY_V4;
    h[0] = 0x45;
    h[1] = 0;
    h[4..6].copy_from_slice(&[0, 0]);
    h[7] = 0;
    h[10..12].copy_from_slice(&[0, 0]);
    h[2..4].copy_from_slice(&((IPV4_HLEN + pkt.l3_len) as u16).to_be_bytes());
    h[6] = if !inner_v4 || pkt.dont_fragment {
        0x40
    } else {
        0
    };
    h[8] = OUTER_TTL;
    h[9] = if inner_v4 { PROTO_IPIP } else { PROTO_IPV6 };
    let src = mix_host_bits(&settings.src_v4, &settings.src_v4_hostmask, choice.hash);
    h[12..16].copy_from_slice(&src);
    h[16..20].copy_from_slice(&choice.backend.addr[..4]);
    let sum = csum::ipv4_header(h);
    h[10..12].copy_from_slice(&sum);
}

/// Outer IPv6 header: hop limit 64, flow label from the flow hash.
#[inline(always)]
fn write_ipv6_outer_header(h: &mut [u8; 40], pkt: &Packet, choice: &Choice, settings: &Settings) {
    let first = (6u32 << 28) | (choice.hash & 0x000f_ffff);
    h[..4].copy_from_slice(&first.to_be_bytes());
    h[4..6].copy_from_slice(&(pkt.l3_len as u16).to_be_bytes());
    h[6] = if pkt.key.family == FAMILY_V4 {
        PROTO_IPIP
    } else {
        PROTO_IPV6
    };
    h[7] = OUTER_TTL;
    h[8..20].copy_from_slice(&settings.src_v6[..12]);
    let last = [
        settings.src_v6[12],
        settings.src_v6[13],
        settings.src_v6[14],
        settings.src_v6[15],
    ];
    let host = mix_host_bits(&last, &settings.src_v6_hostmask, choice.hash);
    h[20..24].copy_from_slice(&host);
    h[24..40].copy_from_slice(&choice.backend.addr);
}

/// `prefix` with the bits set in `mask` taken from `hash`, so the outer
/// source varies per flow (spreading it over the backend's receive queues).
#[inline(always)]
fn mix_host_bits(prefix: &[u8; 4], mask: &[u8; 4], hash: u32) -> [u8; 4] {
    let (p, m) = (u32::from_be_bytes(*prefix), u32::from_be_bytes(*mask));
    ((p & !m) | (hash & m)).to_be_bytes()
}
