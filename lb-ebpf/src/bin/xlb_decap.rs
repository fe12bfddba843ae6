//! `xlb_decap`: the backend side of xlb.
//!
//! The load balancer sends a client's packet to a backend wrapped in an
//! outer IP header addressed to the backend (IPv4 or IPv6 outside, IPv4
//! or IPv6 inside: IP protocol 4 or 41). Kernels without tunnel devices
//! cannot unwrap it, so this program does, on the backend's ingress:
//!
//! 1. find the IP header behind Ethernet and up to `MAX_VLAN_TAGS` tags;
//! 2. check it is IPIP or IPv6-in-IP for an address in `DECAP_ADDRS`, and
//!    that its lengths (and for IPv4, its checksum) are sound;
//! 3. check that an inner header of the announced family is there;
//! 4. move the L2 header forward over the outer IP header, fix the
//!    innermost EtherType, and pass the inner packet to the stack, which
//!    delivers it to the VIP the backend holds on `lo`.
//!
//! Anything not encapsulated for us passes byte for byte. Every packet
//! moves exactly one `DecapStat` counter.

#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    helpers::bpf_xdp_adjust_head,
    macros::{map, xdp},
    maps::{HashMap, PerCpuArray},
    programs::XdpContext,
};
use lb_common::{
    DecapKey, DecapStat, FAMILY_V4, FAMILY_V6, MAX_VLAN_TAGS, PROTO_IPIP, PROTO_IPV6,
    decap::MAX_DECAP_ADDRS,
};

/// Outer destination addresses we decapsulate for; value unused (1).
/// Written by `xlb::decap` when it attaches.
#[map]
static DECAP_ADDRS: HashMap<DecapKey, u8> = HashMap::with_max_entries(MAX_DECAP_ADDRS, 0);

/// Packets by outcome, indexed by `DecapStat`, per CPU. Written here only.
#[map]
static DECAP_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(DecapStat::COUNT, 0);

/// Bytes of the two MAC addresses that open an Ethernet header.
const ETH_ADDRS_LEN: usize = 12;
/// Bytes of one 802.1Q/802.1ad tag (TPID and TCI).
const VLAN_TAG_LEN: usize = 4;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88A8;
/// Bytes of an IPv4 header without options.
const IPV4_MIN_LEN: usize = 20;
/// Bytes of the fixed IPv6 header.
const IPV6_LEN: usize = 40;
/// Flags and fragment offset bits of IPv4 that mark a fragment (MF and the
/// offset; DF is fine).
const IPV4_FRAGMENT_BITS: u16 = 0x3FFF;

/// Where the outer IP header starts: behind `tags` VLAN tags.
struct L2 {
    /// VLAN tags in front of the EtherType, at most `MAX_VLAN_TAGS`.
    tags: usize,
    /// The innermost EtherType.
    ethertype: u16,
}

impl L2 {
    /// Bytes of the whole L2 header.
    fn len(&self) -> usize {
        ETH_ADDRS_LEN + self.tags * VLAN_TAG_LEN + 2
    }
}

/// An outer header we will strip.
struct Outer {
    /// Bytes of the outer IP header.
    header_len: usize,
    /// Bytes the outer header says follow it: the inner packet.
    payload_len: usize,
    /// `FAMILY_V4` or `FAMILY_V6`: the inner packet's family.
    inner_family: u8,
}

/// Entry point: decapsulate, count the outcome, pass or drop.
#[xdp]
pub fn xlb_decap(ctx: XdpContext) -> u32 {
    let stat = match try_decap(&ctx) {
        Ok(()) => DecapStat::Decapsulated,
        Err(stat) => stat,
    };
    count(stat);
    match stat {
        DecapStat::Decapsulated | DecapStat::Passed => xdp_action::XDP_PASS,
        _ => xdp_action::XDP_DROP,
    }
}

/// Decapsulates the packet in place. `Err` carries the packet's outcome
/// when it is not decapsulated: `Passed` when it is not ours.
#[inline(always)]
fn try_decap(ctx: &XdpContext) -> Result<(), DecapStat> {
    let l2 = parse_l2(ctx)?;
    let outer = match l2.ethertype {
        ETH_P_IP => parse_outer_v4(ctx, l2.len())?,
        ETH_P_IPV6 => parse_outer_v6(ctx, l2.len())?,
        _ => return Err(DecapStat::Passed),
    };
    check_inner(ctx, l2.len() + outer.header_len, &outer)?;
    strip_outer(ctx, &l2, &outer)
}

/// Finds the innermost EtherType behind up to `MAX_VLAN_TAGS` tags.
#[inline(always)]
fn parse_l2(ctx: &XdpContext) -> Result<L2, DecapStat> {
    let mut l2 = L2 {
        tags: 0,
        ethertype: be16_at(ctx, ETH_ADDRS_LEN).ok_or(DecapStat::Passed)?,
    };
    while l2.tags < MAX_VLAN_TAGS && matches!(l2.ethertype, ETH_P_8021Q | ETH_P_8021AD) {
        l2.tags += 1;
        l2.ethertype = be16_at(ctx, l2.len() - 2).ok_or(DecapStat::Passed)?;
    }
    Ok(l2)
}

/// Reads an outer IPv4 header at `off`; `Err(Passed)` unless it is IPIP or
/// IPv6-in-IPv4 for one of our addresses.
#[inline(always)]
fn parse_outer_v4(ctx: &XdpContext, off: usize) -> Result<Outer, DecapStat> {
    // Too short to hold a destination: not recognisably ours.
    let hdr: [u8; IPV4_MIN_LEN] = bytes_at(ctx, off).ok_or(DecapStat::Passed)?;
    let inner_family = inner_family_of(hdr[9])?;
    let mut addr = [0u8; 16];
    addr[..4].copy_from_slice(&hdr[16..20]);
    ensure_ours(addr, FAMILY_V4)?;

    let header_len = usize::from(hdr[0] & 0x0F) * 4;
    let total_len = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
    let available = ctx.data_end() - ctx.data() - off;
    let lengths_ok = header_len >= IPV4_MIN_LEN && header_len <= total_len;
    if hdr[0] >> 4 != 4 || !lengths_ok || total_len > available {
        return Err(DecapStat::DropBadOuter);
    }
    if !ipv4_checksum_ok(ctx, off, header_len) {
        return Err(DecapStat::DropBadOuter);
    }

    // Limitation: outer fragments are passed untouched, and the stack
    // drops them, since reassembling here would need per-flow state. The
    // load balancer sends with DF and answers "too big" instead.
    if u16::from_be_bytes([hdr[6], hdr[7]]) & IPV4_FRAGMENT_BITS != 0 {
        return Err(DecapStat::Passed);
    }
    Ok(Outer {
        header_len,
        payload_len: total_len - header_len,
        inner_family,
    })
}

/// Reads an outer IPv6 header at `off`; `Err(Passed)` unless it is
/// IPv4- or IPv6-in-IPv6 for one of our addresses. Extension headers are
/// not walked: the load balancer emits none.
#[inline(always)]
fn parse_outer_v6(ctx: &XdpContext, off: usize) -> Result<Outer, DecapStat> {
    let hdr: [u8; IPV6_LEN] = bytes_at(ctx, off).ok_or(DecapStat::Passed)?;
    let inner_family = inner_family_of(hdr[6])?;
    let mut addr = [0u8; 16];
    addr.copy_from_slice(&hdr[24..40]);
    ensure_ours(addr, FAMILY_V6)?;

    let payload_len = usize::from(u16::from_be_bytes([hdr[4], hdr[5]]));
    let available = ctx.data_end() - ctx.data() - off - IPV6_LEN;
    if hdr[0] >> 4 != 6 || payload_len > available {
        return Err(DecapStat::DropBadOuter);
    }
    Ok(Outer {
        header_len: IPV6_LEN,
        payload_len,
        inner_family,
    })
}

/// The inner family an outer protocol number announces.
#[inline(always)]
fn inner_family_of(proto: u8) -> Result<u8, DecapStat> {
    match proto {
        PROTO_IPIP => Ok(FAMILY_V4),
        PROTO_IPV6 => Ok(FAMILY_V6),
        _ => Err(DecapStat::Passed),
    }
}

/// `Err(Passed)` unless `addr` is in `DECAP_ADDRS`.
#[inline(always)]
fn ensure_ours(addr: [u8; 16], family: u8) -> Result<(), DecapStat> {
    let key = DecapKey {
        addr,
        family,
        _pad: [0; 3],
    };
    match DECAP_ADDRS.get_ptr(key) {
        Some(_) => Ok(()),
        None => Err(DecapStat::Passed),
    }
}

/// Whether the IPv4 header of `header_len` bytes at `off` sums to all ones.
/// The stack never sees the outer header, so a corrupt one is caught here.
#[inline(always)]
fn ipv4_checksum_ok(ctx: &XdpContext, off: usize, header_len: usize) -> bool {
    const MAX_WORDS: usize = 30; // ihl 15: 60 bytes
    let mut sum: u32 = 0;
    for word in 0..MAX_WORDS {
        if word * 2 >= header_len {
            break;
        }
        match be16_at(ctx, off + word * 2) {
            Some(value) => sum += u32::from(value),
            None => return false,
        }
    }
    sum = (sum & 0xFFFF) + (sum >> 16);
    sum = (sum & 0xFFFF) + (sum >> 16);
    sum == 0xFFFF
}

/// Checks that the inner packet at `off` is of the announced family and
/// fits in the outer payload.
#[inline(always)]
fn check_inner(ctx: &XdpContext, off: usize, outer: &Outer) -> Result<(), DecapStat> {
    let first: [u8; 6] = bytes_at(ctx, off).ok_or(DecapStat::DropBadInner)?;
    let sound = if outer.inner_family == FAMILY_V4 {
        let header_len = usize::from(first[0] & 0x0F) * 4;
        let total_len = usize::from(u16::from_be_bytes([first[2], first[3]]));
        first[0] >> 4 == 4
            && header_len >= IPV4_MIN_LEN
            && header_len <= total_len
            && total_len <= outer.payload_len
    } else {
        let payload_len = usize::from(u16::from_be_bytes([first[4], first[5]]));
        first[0] >> 4 == 6 && IPV6_LEN + payload_len <= outer.payload_len
    };
    if sound {
        Ok(())
    } else {
        Err(DecapStat::DropBadInner)
    }
}

/// Moves the L2 header forward over the outer IP header and sets the
/// innermost EtherType to the inner family's.
///
/// Limitation: a congestion mark (ECN CE) set on the outer header by a
/// router between load balancer and backend is lost, as RFC 6040 would copy
/// it inward; doing so means rewriting the inner TOS and, for IPv4, its
/// checksum.
#[inline(always)]
fn strip_outer(ctx: &XdpContext, l2: &L2, outer: &Outer) -> Result<(), DecapStat> {
    let unreadable = DecapStat::DropBadOuter;
    let macs: [u8; ETH_ADDRS_LEN] = bytes_at(ctx, 0).ok_or(unreadable)?;
    let mut tags = [[0u8; VLAN_TAG_LEN]; MAX_VLAN_TAGS];
    for (i, tag) in tags.iter_mut().enumerate().take(l2.tags) {
        *tag = bytes_at(ctx, ETH_ADDRS_LEN + i * VLAN_TAG_LEN).ok_or(unreadable)?;
    }
    let ethertype = if outer.inner_family == FAMILY_V4 {
        ETH_P_IP
    } else {
        ETH_P_IPV6
    };

    // SAFETY: `ctx.ctx` is the live `xdp_md` of this invocation; the
    // helper checks the delta against the frame and fails cleanly.
    let rc = unsafe { bpf_xdp_adjust_head(ctx.ctx, outer.header_len as i32) };
    if rc != 0 {
        return Err(DecapStat::DropAdjustFailed);
    }

    // The helper moved `data`: every offset below is from the new start,
    // and each write re-checks its bounds.
    let mut rewritten = write_at(ctx, 0, macs).is_some();
    for (i, tag) in tags.iter().enumerate().take(l2.tags) {
        rewritten &= write_at(ctx, ETH_ADDRS_LEN + i * VLAN_TAG_LEN, *tag).is_some();
    }
    rewritten &= write_at(ctx, l2.len() - 2, ethertype.to_be_bytes()).is_some();
    if rewritten {
        Ok(())
    } else {
        Err(DecapStat::DropAdjustFailed)
    }
}

/// Adds one to the counter `stat` of this CPU.
#[inline(always)]
fn count(stat: DecapStat) {
    if let Some(counter) = DECAP_STATS.get_ptr_mut(stat as u32) {
        // SAFETY: the pointer is to this CPU's slot of a per-CPU array, which
        // nothing else writes while this program runs on this CPU.
        unsafe { *counter += 1 };
    }
}

/// The `N` bytes at `off` from the start of the frame, if the frame has them.
#[inline(always)]
fn bytes_at<const N: usize>(ctx: &XdpContext, off: usize) -> Option<[u8; N]> {
    let start = ctx.data() + off;
    if start + N > ctx.data_end() {
        return None;
    }
    // SAFETY: `start..start + N` lies within `data..data_end`, checked above.
    Some(unsafe { core::ptr::read_unaligned(start as *const [u8; N]) })
}

/// The big-endian `u16` at `off`, if the frame has it.
#[inline(always)]
fn be16_at(ctx: &XdpContext, off: usize) -> Option<u16> {
    bytes_at::<2>(ctx, off).map(u16::from_be_bytes)
}

/// Writes `bytes` at `off` from the start of the frame, if it fits.
#[inline(always)]
fn write_at<const N: usize>(ctx: &XdpContext, off: usize, bytes: [u8; N]) -> Option<()> {
    let start = ctx.data() + off;
    if start + N > ctx.data_end() {
        return None;
    }
    // SAFETY: `start..start + N` lies within `data..data_end`, checked above.
    unsafe { core::ptr::write_unaligned(start as *mut [u8; N], bytes) };
    Some(())
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
