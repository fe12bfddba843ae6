//! ICMP both ways: "fragmentation needed" / "packet too big" answers to
//! clients whose packets grow past the MTU once encapsulated, and steering
//! of such errors about VIP flows to the backend that owns the flow.

use aya_ebpf::{helpers::bpf_xdp_adjust_tail, programs::XdpContext};
use lb_common::{FAMILY_V4, FlowKey, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, Stat};

use crate::{
    csum,
    encap::grow_head,
    flow::{Choice, peek_backend},
    l2::{L2Header, read_l2, write_l2},
    net::{ETH_P_IPV4, ETH_P_IPV6, ICMP_HLEN, IPV4_HLEN, IPV6_HLEN, load, store, view, view_mut},
    parse::Packet,
    vip::{hash_input, is_vip_address, service_vip},
};

/// ICMPv4 "destination unreachable", code "fragmentation needed".
const ICMP_DEST_UNREACH: u8 = 3;
/// See [`ICMP_DEST_UNREACH`].
const ICMP_FRAG_NEEDED: u8 = 4;
/// ICMPv6 "packet too big".
const ICMPV6_PKT_TOOBIG: u8 = 2;
/// TTL / hop limit of the answers xlb sends.
const REPLY_TTL: u8 = 64;
/// Bytes of the original packet an ICMPv6 answer quotes (RFC 4443 allows up
/// to 1280 in all; this is plenty to identify the flow).
const QUOTE_V6: usize = 512;
/// Largest ICMPv4 quote: a 60-byte header and 8 bytes of L4.
const QUOTE_V4_MAX: usize = 68;

/// The backend of the flow an inbound "fragmentation needed" / "packet
/// too big" is about; `Err` passes other ICMP.
#[inline(always)]
pub fn steered_flow(ctx: &XdpContext, pkt: &Packet) -> Result<Choice, Stat> {
    if !is_vip_address(&pkt.key) {
        return Err(Stat::PassNotVip);
    }
    let key = quoted_flow(ctx, pkt).ok_or(Stat::PassIcmp)?;
    let vip = service_vip(&key).ok_or(Stat::PassIcmp)?;
    peek_backend(&key, &vip, hash_input(&vip))
}

/// Reverses the quoted VIP-to-client packet into its client-to-VIP key.
/// Only 8 bytes of L4 are quoted: the ports are all we read.
#[inline(always)]
fn quoted_flow(ctx: &XdpContext, pkt: &Packet) -> Option<FlowKey> {
    let kind = load::<2>(ctx, pkt.l4_off)?;
    let quote = pkt.l4_off + ICMP_HLEN;
    let mut key = FlowKey {
        family: pkt.key.family,
        ..FlowKey::default()
    };
    let l4_off = if pkt.key.family == FAMILY_V4 {
        if kind != [ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED] {
            return None;
        }
        let h = view::<IPV4_HLEN>(ctx, quote)?;
        key.proto = h[9];
        key.dst[..4].copy_from_slice(&h[12..16]);
        key.src[..4].copy_from_slice(&h[16..20]);
        quote + usize::from(h[0] & 0x0f).max(5) * 4
    } else {
        if kind[0] != ICMPV6_PKT_TOOBIG {
            return None;
        }
        let h = view::<IPV6_HLEN>(ctx, quote)?;
        key.proto = h[6];
        key.dst.copy_from_slice(&h[8..24]);
        key.src.copy_from_slice(&h[24..40]);
        quote + IPV6_HLEN
    };
    let ports = load::<4>(ctx, l4_off)?;
    key.dport_be = u16::from_ne_bytes([ports[0], ports[1]]);
    key.sport_be = u16::from_ne_bytes([ports[2], ports[3]]);
    let served = matches!(key.proto, PROTO_TCP | PROTO_UDP) && key.dst == pkt.key.dst;
    served.then_some(key)
}

/// Answers `pkt` with "fragmentation needed" (IPv4 with DF) or "packet too
/// big" (IPv6) announcing `mtu`, sent back out from the VIP.
#[inline(always)]
pub fn reply_too_big(ctx: &XdpContext, pkt: &Packet, mtu: u16) -> Result<Stat, Stat> {
    let l2 = read_l2(ctx, pkt.l2_len).ok_or(Stat::DropTruncated)?;
    if pkt.key.family == FAMILY_V4 {
        if !pkt.dont_fragment {
            return Err(Stat::DropTooBig);
        }
        frag_needed_v4(ctx, pkt, &l2, mtu)
    } else {
        packet_too_big_v6(ctx, pkt, &l2, mtu)
    }
}

/// Builds the ICMPv4 answer in front of the original IP header, which is
/// already where the quote belongs, then cuts the frame after the quote.
#[inline(always)]
fn frag_needed_v4(ctx: &XdpContext, pkt: &Packet, l2: &L2Header, mtu: u16) -> Result<Stat, Stat> {
    let quote = (pkt.l4_off - pkt.l2_len + 8) & 0x7c;
    let reply_len = IPV4_HLEN + ICMP_HLEN + quote;
    grow_head(ctx, IPV4_HLEN + ICMP_HLEN)?;
    let fail = Stat::DropAdjustFailed;
    write_l2(ctx, l2, &l2.smac, &l2.dmac, ETH_P_IPV4).ok_or(fail)?;

    let ip = view_mut::<IPV4_HLEN>(ctx, l2.len).ok_or(fail)?;
    *ip = [0; IPV4_HLEN];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(reply_len as u16).to_be_bytes());
    ip[8] = REPLY_TTL;
    ip[9] = PROTO_ICMP;
    ip[12..16].copy_from_slice(&pkt.key.dst[..4]);
    ip[16..20].copy_from_slice(&pkt.key.src[..4]);
    let sum = csum::ipv4_header(ip);
    ip[10..12].copy_from_slice(&sum);

    let [m0, m1] = mtu.to_be_bytes();
    let icmp_off = l2.len + IPV4_HLEN;
    store(
        ctx,
        icmp_off,
        &[ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, 0, 0, 0, 0, m0, m1],
    )
    .ok_or(fail)?;
    let sum = csum::sum_frame::<{ ICMP_HLEN + QUOTE_V4_MAX }>(ctx, icmp_off, ICMP_HLEN + quote)
        .ok_or(fail)?;
    store(ctx, icmp_off + 2, &(!csum::fold(sum)).to_ne_bytes()).ok_or(fail)?;
    cut_frame(ctx, l2.len + reply_len)?;
    Ok(Stat::TxIcmpTooBig)
}

/// Builds the ICMPv6 answer in front of the original packet and keeps
/// `QUOTE_V6` bytes of it.
#[inline(always)]
fn packet_too_big_v6(
    ctx: &XdpContext,
    pkt: &Packet,
    l2: &L2Header,
    mtu: u16,
) -> Result<Stat, Stat> {
    // Limitation: a shorter packet is only "too big" with an MTU below 552,
    // which is no valid IPv6 link; quoting a fixed length keeps the checksum
    // one constant-size helper call.
    if pkt.l3_len < QUOTE_V6 {
        return Err(Stat::DropTooBig);
    }
    let payload = ICMP_HLEN + QUOTE_V6;
    grow_head(ctx, IPV6_HLEN + ICMP_HLEN)?;
    let fail = Stat::DropAdjustFailed;
    write_l2(ctx, l2, &l2.smac, &l2.dmac, ETH_P_IPV6).ok_or(fail)?;

    let ip = view_mut::<IPV6_HLEN>(ctx, l2.len).ok_or(fail)?;
    *ip = [0; IPV6_HLEN];
    ip[0] = 0x60;
    ip[4..6].copy_from_slice(&(payload as u16).to_be_bytes());
    ip[6] = PROTO_ICMPV6;
    ip[7] = REPLY_TTL;
    ip[8..24].copy_from_slice(&pkt.key.dst);
    ip[24..40].copy_from_slice(&pkt.key.src);

    let icmp_off = l2.len + IPV6_HLEN;
    let mut icmp = [0u8; 8];
    icmp[0] = ICMPV6_PKT_TOOBIG;
    icmp[4..].copy_from_slice(&u32::from(mtu).to_be_bytes());
    store(ctx, icmp_off, &icmp).ok_or(fail)?;
    let sum = icmpv6_sum(ctx, l2.len, payload).ok_or(fail)?;
    store(ctx, icmp_off + 2, &(!csum::fold(sum)).to_ne_bytes()).ok_or(fail)?;
    cut_frame(ctx, l2.len + IPV6_HLEN + payload)?;
    Ok(Stat::TxIcmpTooBig)
}

/// ICMPv6 sum with its pseudo-header, for the answer whose IPv6 header
/// starts at `ip_off` and carries `payload` bytes.
#[inline(always)]
fn icmpv6_sum(ctx: &XdpContext, ip_off: usize, payload: usize) -> Option<u64> {
    let addrs = csum::sum_frame::<32>(ctx, ip_off + 8, 32)?;
    let icmp_off = ip_off + IPV6_HLEN;
    let header = csum::sum_frame::<ICMP_HLEN>(ctx, icmp_off, ICMP_HLEN)?;
    let quote = csum::sum_frame::<QUOTE_V6>(ctx, icmp_off + ICMP_HLEN, QUOTE_V6)?;
    let pseudo = csum::sum_be32(payload as u32) + csum::sum_be32(u32::from(PROTO_ICMPV6));
    Some(addrs + header + quote + pseudo)
}

/// Shrinks the frame to `len` bytes.
#[inline(always)]
fn cut_frame(ctx: &XdpContext, len: usize) -> Result<(), Stat> {
    let delta = len as i32 - crate::net::frame_len(ctx) as i32;
    // SAFETY: `ctx.ctx` is the program's context; no packet pointer taken
    // before is used after this call.
    let rc = unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta) };
    if rc == 0 {
        Ok(())
    } else {
        Err(Stat::DropAdjustFailed)
    }
}
