//! Reading frames the way the XDP programs do, for the fuzz oracles: the
//! link-layer length, the IP addresses and the declared IP length.

#![allow(dead_code, reason = "each oracle uses part of the readers")]

use std::net::IpAddr;

/// EtherTypes the programs know.
pub const ETH_IPV4: u16 = 0x0800;
/// See [`ETH_IPV4`].
pub const ETH_IPV6: u16 = 0x86dd;
const ETH_8021Q: u16 = 0x8100;
const ETH_8021AD: u16 = 0x88a8;

/// Big-endian `u16` at `off`, if the frame holds it.
pub fn be16(frame: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]))
}

/// Link-layer length (up to two 802.1Q/802.1ad tags skipped, like both
/// programs) and the EtherType found there; `None` when the frame is too
/// short to show it.
pub fn link_layer(frame: &[u8]) -> Option<(usize, u16)> {
    let mut off = 12;
    let mut ether_type = be16(frame, off)?;
    for _ in 0..lb_common::MAX_VLAN_TAGS {
        if ether_type != ETH_8021Q && ether_type != ETH_8021AD {
            break;
        }
        off += 4;
        ether_type = be16(frame, off)?;
    }
    Some((off + 2, ether_type))
}

/// Source and destination of the IP header at `l2`, read as the EtherType
/// says (whatever the version nibble), when the fixed header fits.
pub fn ip_addrs(frame: &[u8], l2: usize, ether_type: u16) -> Option<(IpAddr, IpAddr)> {
    let ip = frame.get(l2..)?;
    match ether_type {
        ETH_IPV4 if ip.len() >= 20 => Some((
            IpAddr::from(<[u8; 4]>::try_from(&ip[12..16]).ok()?),
            IpAddr::from(<[u8; 4]>::try_from(&ip[16..20]).ok()?),
        )),
        ETH_IPV6 if ip.len() >= 40 => Some((
            IpAddr::from(<[u8; 16]>::try_from(&ip[8..24]).ok()?),
            IpAddr::from(<[u8; 16]>::try_from(&ip[24..40]).ok()?),
        )),
        _ => None,
    }
}

/// The IP packet's length as its header declares it (IPv4 total length,
/// IPv6 40 + payload length).
pub fn declared_l3_len(ip: &[u8], v4: bool) -> Option<usize> {
    if v4 {
        be16(ip, 2).map(usize::from)
    } else {
        be16(ip, 4).map(|p| 40 + usize::from(p))
    }
}

/// Whether `ip` starts with a sound IPv4 (or IPv6) header that fits in it:
/// the right version, IHL and total length consistent.
pub fn sound_ip_header(ip: &[u8], v4: bool) -> bool {
    let Some(len) = declared_l3_len(ip, v4) else {
        return false;
    };
    if v4 {
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        ip[0] >> 4 == 4 && ihl >= 20 && ihl <= len && len <= ip.len()
    } else {
        ip.len() >= 40 && ip[0] >> 4 == 6 && len <= ip.len()
    }
}

/// RFC 1071 sum of `bytes`, folded, not inverted (0xffff for a valid
/// header including its checksum).
pub fn ones_sum(bytes: &[u8]) -> u16 {
    let mut sum: u64 = bytes
        .chunks(2)
        .map(|c| u64::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Whether the ICMPv6 message `icmp` between `src` and `dst` has a valid
/// checksum (pseudo-header included).
pub fn icmpv6_checksum_ok(src: &[u8], dst: &[u8], icmp: &[u8]) -> bool {
    let mut pseudo = Vec::with_capacity(40 + icmp.len());
    pseudo.extend_from_slice(src);
    pseudo.extend_from_slice(dst);
    pseudo.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    pseudo.extend_from_slice(icmp);
    ones_sum(&pseudo) == 0xffff
}
