//! Step 1: reads Ethernet (with up to two VLAN tags), IPv4 or IPv6 (with its
//! extension headers) and the start of TCP, UDP or ICMP into a [`Packet`].
//!
//! Parsing never decides whether a broken packet is dropped: it records the
//! fault, and the VIP step drops it only if it is addressed to a VIP. It
//! does pass packets to addresses without a VIP as soon as their addresses
//! are read, before the L4 header (one bit of the `VIP_ADDRS` filter
//! instead of the service step's `VIPS` lookups).

use core::mem::MaybeUninit;

use aya_ebpf::programs::XdpContext;
use lb_common::{
    FAMILY_V4, FAMILY_V6, FlowKey, MAX_IPV6_EXT_HEADERS, MAX_VLAN_TAGS, PROTO_ICMP, PROTO_ICMPV6,
    PROTO_TCP, PROTO_UDP, Stat,
};

use crate::{mem::zero_in_place, net::*, vip::may_be_vip_traffic};

/// TCP flag bits in byte 13 of the header.
const TCP_SYN: u8 = 0x02;
/// See [`TCP_SYN`].
const TCP_ACK: u8 = 0x10;

/// What the parse step learnt about a frame.
#[derive(Clone, Copy)]
pub struct Packet {
    /// Bytes of Ethernet header and tags: where the IP header starts.
    pub l2_len: usize,
    /// Bytes of the IP packet, as its length fields say.
    pub l3_len: usize,
    /// Where the L4 (or ICMP) header starts.
    pub l4_off: usize,
    /// Client to VIP 5-tuple; ports stay 0 when not read (fragments).
    pub key: FlowKey,
    /// An IP fragment, first or later.
    pub fragment: bool,
    /// IPv4 "don't fragment" (always false for IPv6).
    pub dont_fragment: bool,
    /// A TCP SYN without ACK: the start of a new connection.
    pub tcp_syn: bool,
    /// Why the packet cannot be served, if it is broken.
    pub fault: Option<Stat>,
}

impl Packet {
    /// Makes `slot` a packet with nothing learnt yet: zero offsets, an
    /// all-zero key, no flags and no fault.
    #[inline(always)]
    pub fn empty(slot: &mut MaybeUninit<Packet>) -> &mut Packet {
        // SAFETY: zero is valid for every field: integers, byte arrays,
        // `false`, and `Some(Stat::PassNotIp)` (replaced next).
        let pkt = unsafe { zero_in_place(slot) };
        pkt.fault = None;
        pkt
    }

    /// True for ICMP (IPv4) or ICMPv6 (IPv6).
    #[inline(always)]
    pub fn is_icmp(&self) -> bool {
        let p = self.key.proto;
        (p == PROTO_ICMP && self.key.family == FAMILY_V4)
            || (p == PROTO_ICMPV6 && self.key.family == FAMILY_V6)
    }
}

/// Parses the frame into `pkt`; `Err` is the pass outcome for non-IP
/// frames and frames too short to show their addresses.
///
/// Not inlined, and writing through `pkt`, so the compiler keeps the
/// addresses in memory instead of spilling them byte by byte (which blew
/// the 512-byte BPF stack).
#[inline(never)]
pub fn parse_packet(ctx: &XdpContext, pkt: &mut Packet) -> Result<(), Stat> {
    let (l2_len, ether_type) = parse_ethernet(ctx)?;
    pkt.l2_len = l2_len;
    match ether_type {
        ETH_P_IPV4 => parse_ipv4(ctx, pkt)?,
        ETH_P_IPV6 => parse_ipv6(ctx, pkt)?,
        _ => return Err(Stat::PassNotIp),
    }
    if !may_be_vip_traffic(&pkt.key) {
        return Err(Stat::PassNotVip);
    }
    if pkt.fault.is_none() && !pkt.fragment {
        parse_l4(ctx, pkt)?;
    }
    bound_offsets(pkt);
    Ok(())
}

/// Gives the offsets and lengths the same known range on every path out of
/// the parser (see `forget_range`), so the verifier can prune.
#[inline(always)]
fn bound_offsets(pkt: &mut Packet) {
    let l4_off = forget_range(pkt.l4_off);
    if l4_off > MAX_HEADER_OFF && pkt.fault.is_none() {
        pkt.fault = Some(Stat::DropExtHeaders);
    }
    pkt.l4_off = l4_off & MAX_HEADER_OFF;
    pkt.l3_len = forget_range(pkt.l3_len) & 0xffff;
}

/// Skips up to `MAX_VLAN_TAGS` tags; returns the L2 length and EtherType.
#[inline(always)]
fn parse_ethernet(ctx: &XdpContext) -> Result<(usize, u16), Stat> {
    let mut off = ETH_TYPE_OFF;
    let mut ether_type = load_be16(ctx, off).ok_or(Stat::PassNotIp)?;
    for _ in 0..MAX_VLAN_TAGS {
        if ether_type != ETH_P_8021Q && ether_type != ETH_P_8021AD {
            break;
        }
        off += VLAN_HLEN;
        ether_type = load_be16(ctx, off).ok_or(Stat::PassNotIp)?;
    }
    Ok((off + 2, ether_type))
}

/// Reads the IPv4 header; options are skipped (and kept in the frame).
#[inline(always)]
fn parse_ipv4(ctx: &XdpContext, pkt: &mut Packet) -> Result<(), Stat> {
    let hdr = view::<IPV4_HLEN>(ctx, pkt.l2_len).ok_or(Stat::PassNotVip)?;
    pkt.key.family = FAMILY_V4;
    pkt.key.proto = hdr[9];
    pkt.key.src[..4].copy_from_slice(&hdr[12..16]);
    pkt.key.dst[..4].copy_from_slice(&hdr[16..20]);

    let ihl_len = usize::from(hdr[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
    if hdr[0] >> 4 != 4 || ihl_len < IPV4_HLEN || total < ihl_len {
        pkt.fault = Some(Stat::DropBadHeader);
    } else if pkt.l2_len + total > frame_len(ctx) {
        pkt.fault = Some(Stat::DropTruncated);
    }

    let frag = u16::from_be_bytes([hdr[6], hdr[7]]);
    pkt.fragment = frag & IPV4_MF_OFFSET != 0;
    pkt.dont_fragment = frag & IPV4_DF != 0;
    pkt.l3_len = total;
    pkt.l4_off = pkt.l2_len + ihl_len;
    Ok(())
}

/// Reads the IPv6 header and walks its extension headers.
#[inline(always)]
fn parse_ipv6(ctx: &XdpContext, pkt: &mut Packet) -> Result<(), Stat> {
    let hdr = view::<IPV6_HLEN>(ctx, pkt.l2_len).ok_or(Stat::PassNotVip)?;
    pkt.key.family = FAMILY_V6;
    pkt.key.src.copy_from_slice(&hdr[8..24]);
    pkt.key.dst.copy_from_slice(&hdr[24..40]);

    let payload = usize::from(u16::from_be_bytes([hdr[4], hdr[5]]));
    pkt.l3_len = IPV6_HLEN + payload;
    if hdr[0] >> 4 != 6 {
        pkt.fault = Some(Stat::DropBadHeader);
        return Ok(());
    }
    if pkt.l2_len + pkt.l3_len > frame_len(ctx) {
        pkt.fault = Some(Stat::DropTruncated);
        return Ok(());
    }
    walk_ipv6_ext_headers(ctx, pkt, hdr[6]);
    Ok(())
}

/// Follows the extension header chain from `next` to the upper-layer
/// protocol, at most `MAX_IPV6_EXT_HEADERS` deep. A fragment header ends
/// the walk unless it is atomic.
#[inline(always)]
fn walk_ipv6_ext_headers(ctx: &XdpContext, pkt: &mut Packet, mut next: u8) {
    let end = pkt.l2_len + pkt.l3_len;
    let mut off = pkt.l2_len + IPV6_HLEN;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        if !is_ipv6_ext_header(next) {
            break;
        }
        // Every extension header is at least 8 bytes.
        let Some(h) = load::<4>(ctx, off).filter(|_| off + 8 <= end) else {
            pkt.fault = Some(Stat::DropTruncated);
            return;
        };
        let header = next;
        next = h[0];
        off += match header {
            IPV6_FRAGMENT => 8,
            IPV6_AUTH => (usize::from(h[1]) + 2) * 4,
            _ => (usize::from(h[1]) + 1) * 8,
        };
        // Offset 0 with M clear is a whole packet (an atomic fragment, RFC
        // 6946): walk on and serve it as one. A real fragment ends the
        // walk, first or later: fragments hash on addresses, and only the
        // first shows the headers after this one, so every fragment of a
        // datagram finds its VIP by this header's next header.
        if header == IPV6_FRAGMENT && u16::from_be_bytes([h[2], h[3]]) & 0xfff9 != 0 {
            pkt.fragment = true;
            break;
        }
    }
    pkt.key.proto = next;
    pkt.l4_off = off;
    if is_ipv6_ext_header(next) && !pkt.fragment {
        pkt.fault = Some(Stat::DropExtHeaders);
    }
}

/// Extension headers [`walk_ipv6_ext_headers`] knows how to skip.
#[inline(always)]
pub fn is_ipv6_ext_header(next: u8) -> bool {
    matches!(
        next,
        IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_FRAGMENT | IPV6_AUTH | IPV6_DEST_OPTS
    )
}

/// Reads ports and TCP flags of an unfragmented packet; marks a TCP or UDP
/// header cut short by the IP length. Other protocols (ICMP aside) are not
/// VIP traffic.
#[inline(always)]
fn parse_l4(ctx: &XdpContext, pkt: &mut Packet) -> Result<(), Stat> {
    let need = match pkt.key.proto {
        PROTO_TCP => TCP_HLEN,
        PROTO_UDP => UDP_HLEN,
        _ if pkt.is_icmp() => return Ok(()),
        _ => return Err(Stat::PassNotVip),
    };
    let end = pkt.l2_len + pkt.l3_len;
    let Some(ports) = load::<4>(ctx, pkt.l4_off).filter(|_| pkt.l4_off + need <= end) else {
        pkt.fault = Some(Stat::DropTruncated);
        return Ok(());
    };
    pkt.key.sport_be = u16::from_ne_bytes([ports[0], ports[1]]);
    pkt.key.dport_be = u16::from_ne_bytes([ports[2], ports[3]]);
    if pkt.key.proto == PROTO_TCP {
        let flags = load::<1>(ctx, pkt.l4_off + 13).map_or(0, |f| f[0]);
        pkt.tcp_syn = flags & (TCP_SYN | TCP_ACK) == TCP_SYN;
    }
    Ok(())
}
