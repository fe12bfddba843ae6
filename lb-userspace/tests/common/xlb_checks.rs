//! Assertions on what `xlb` sent: encapsulated frames and ICMP answers.

#![allow(dead_code, reason = "each test binary uses part of the helpers")]

use std::net::IpAddr;

use etherparse::{Ipv4HeaderSlice, Ipv6HeaderSlice};

use super::xlb_frames::{LB_MAC, ROUTER_MAC, internet_checksum};
use super::xlb_harness::{GATEWAY_MAC, SRC_V4, SRC_V6};

/// What an encapsulated frame must look like.
pub struct EncapExpect<'a> {
    /// The frame the program got.
    pub input: &'a [u8],
    /// Its link-layer length (14, 18 or 22).
    pub l2_len: usize,
    /// The backend it must reach.
    pub backend: IpAddr,
    /// The flow hash (its low byte ends the outer source).
    pub hash: u32,
    /// The inner packet is IPv4 with DF set.
    pub inner_df: bool,
}

/// Asserts `out` is `e.input` encapsulated to `e.backend`: MACs from the
/// gateway fallback, tags kept, outer header right, inner bytes unchanged.
pub fn assert_encapsulated(out: &[u8], e: &EncapExpect) {
    let l2 = e.l2_len;
    let inner = &e.input[l2..];
    let inner_v4 = inner[0] >> 4 == 4;
    assert_eq!(
        out[..6],
        GATEWAY_MAC,
        "outer destination MAC is the gateway's"
    );
    assert_eq!(
        out[6..12],
        LB_MAC,
        "outer source MAC is the one the frame came to"
    );
    assert_eq!(out[12..l2 - 2], e.input[12..l2 - 2], "VLAN tags kept");
    let ether_type = u16::from_be_bytes([out[l2 - 2], out[l2 - 1]]);
    let inner_proto = if inner_v4 { 4 } else { 41 };
    let outer_len = match e.backend {
        IpAddr::V4(addr) => {
            assert_eq!(ether_type, 0x0800, "outer EtherType is IPv4");
            let h = Ipv4HeaderSlice::from_slice(&out[l2..]).expect("outer ipv4 header");
            assert_eq!(h.ihl(), 5, "outer ihl");
            assert_eq!(h.ttl(), 64, "outer ttl");
            assert_eq!(h.identification(), 0, "outer id");
            assert_eq!(h.protocol().0, inner_proto, "outer protocol");
            assert_eq!(
                h.destination(),
                addr.octets(),
                "outer destination is the backend"
            );
            let src = h.source();
            assert_eq!(src[..3], SRC_V4[..3], "outer source prefix");
            assert_eq!(src[3], e.hash as u8, "outer source host bits from the hash");
            assert_eq!(
                usize::from(h.total_len()),
                20 + inner.len(),
                "outer total length"
            );
            assert_eq!(h.dont_fragment(), !inner_v4 || e.inner_df, "outer DF");
            assert_eq!(internet_checksum(&out[l2..l2 + 20]), 0, "outer checksum");
            20
        }
        IpAddr::V6(addr) => {
            assert_eq!(ether_type, 0x86dd, "outer EtherType is IPv6");
            let h = Ipv6HeaderSlice::from_slice(&out[l2..]).expect("outer ipv6 header");
            assert_eq!(h.hop_limit(), 64, "outer hop limit");
            assert_eq!(h.next_header().0, inner_proto, "outer next header");
            assert_eq!(
                h.destination(),
                addr.octets(),
                "outer destination is the backend"
            );
            let src = h.source();
            assert_eq!(src[..15], SRC_V6[..15], "outer source prefix");
            assert_eq!(
                src[15], e.hash as u8,
                "outer source host bits from the hash"
            );
            assert_eq!(
                h.flow_label().value(),
                e.hash & 0xfffff,
                "flow label from the hash"
            );
            assert_eq!(
                usize::from(h.payload_length()),
                inner.len(),
                "outer payload length"
            );
            40
        }
    };
    assert_eq!(&out[l2 + outer_len..], inner, "inner packet unchanged");
}

/// Asserts `out` is an ICMPv4 "fragmentation needed" for the IPv4 frame
/// `input` (no VLAN), announcing `mtu`.
pub fn assert_frag_needed(out: &[u8], input: &[u8], mtu: u16) {
    assert_eq!(out[..6], ROUTER_MAC, "answer goes back to the sender's MAC");
    assert_eq!(out[6..12], LB_MAC, "answer comes from the LB's MAC");
    let ip = &out[14..];
    let h = Ipv4HeaderSlice::from_slice(ip).expect("answer ipv4 header");
    let orig = Ipv4HeaderSlice::from_slice(&input[14..]).expect("input ipv4 header");
    assert_eq!(h.source(), orig.destination(), "answer comes from the VIP");
    assert_eq!(h.destination(), orig.source(), "answer goes to the client");
    assert_eq!(h.protocol().0, 1, "answer is ICMP");
    assert_eq!(internet_checksum(&ip[..20]), 0, "answer ipv4 checksum");
    let quote_len = orig.slice().len() + 8;
    assert_eq!(
        usize::from(h.total_len()),
        20 + 8 + quote_len,
        "answer length"
    );
    assert_eq!(out.len(), 14 + 28 + quote_len, "frame cut after the quote");
    let icmp = &ip[20..];
    assert_eq!(icmp[..2], [3, 4], "type 3 code 4");
    assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), mtu, "next-hop MTU");
    assert_eq!(internet_checksum(icmp), 0, "ICMP checksum");
    assert_eq!(
        icmp[8..],
        input[14..14 + quote_len],
        "quotes IP header + 8 bytes"
    );
}

/// Asserts `out` is an ICMPv6 "packet too big" for the IPv6 frame `input`
/// (no VLAN), announcing `mtu` and quoting 512 bytes.
pub fn assert_packet_too_big(out: &[u8], input: &[u8], mtu: u32) {
    assert_eq!(out[..6], ROUTER_MAC, "answer goes back to the sender's MAC");
    let ip = &out[14..];
    let h = Ipv6HeaderSlice::from_slice(ip).expect("answer ipv6 header");
    let orig = Ipv6HeaderSlice::from_slice(&input[14..]).expect("input ipv6 header");
    assert_eq!(h.source(), orig.destination(), "answer comes from the VIP");
    assert_eq!(h.destination(), orig.source(), "answer goes to the client");
    assert_eq!(h.next_header().0, 58, "answer is ICMPv6");
    let icmp = &ip[40..];
    assert_eq!(
        usize::from(h.payload_length()),
        icmp.len(),
        "answer payload length"
    );
    assert_eq!(icmp.len(), 8 + 512, "quotes 512 bytes");
    assert_eq!(icmp[0], 2, "type 2");
    assert_eq!(
        u32::from_be_bytes([icmp[4], icmp[5], icmp[6], icmp[7]]),
        mtu,
        "MTU"
    );
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&h.source());
    pseudo.extend_from_slice(&h.destination());
    pseudo.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    pseudo.extend_from_slice(icmp);
    assert_eq!(
        internet_checksum(&pseudo),
        0,
        "ICMPv6 checksum with pseudo-header"
    );
    assert_eq!(icmp[8..], input[14..14 + 512], "quotes the original packet");
}
