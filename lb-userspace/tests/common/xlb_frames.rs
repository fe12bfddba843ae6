//! Frames for the `xlb` packet tests, built with etherparse.

#![allow(dead_code, reason = "each test binary uses part of the helpers")]

use etherparse::{
    EtherType, Ethernet2Header, IpAuthHeader, IpFragOffset, IpNumber, Ipv4Header, Ipv6FlowLabel,
    Ipv6FragmentHeader, Ipv6Header, Ipv6RawExtHeader, SingleVlanHeader, TcpHeader, UdpHeader,
    VlanId, VlanPcp,
};

/// MAC the frames come from (the upstream router).
pub const ROUTER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// MAC the frames go to (the load balancer's interface).
pub const LB_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// IP protocol numbers the builders take.
pub const TCP: u8 = 6;
/// See [`TCP`].
pub const UDP: u8 = 17;
/// See [`TCP`].
pub const ICMP: u8 = 1;
/// See [`TCP`].
pub const ICMPV6: u8 = 58;

/// `ethertype` frame around `l3`, behind the given VLAN ids (outer first).
pub fn ether(vlans: &[u16], ethertype: u16, l3: &[u8]) -> Vec<u8> {
    let first = if vlans.is_empty() { ethertype } else { 0x8100 };
    let eth = Ethernet2Header {
        source: ROUTER_MAC,
        destination: LB_MAC,
        ether_type: EtherType(first),
    };
    let mut frame = eth.to_bytes().to_vec();
    for (i, &id) in vlans.iter().enumerate() {
        let next = if i + 1 == vlans.len() {
            ethertype
        } else {
            0x8100
        };
        let tag = SingleVlanHeader {
            pcp: VlanPcp::ZERO,
            drop_eligible_indicator: false,
            vlan_id: VlanId::try_new(id).expect("vlan id"),
            ether_type: EtherType(next),
        };
        frame.extend_from_slice(&tag.to_bytes());
    }
    frame.extend_from_slice(l3);
    frame
}

/// An IPv4 frame (no VLAN).
pub fn ether4(l3: &[u8]) -> Vec<u8> {
    ether(&[], 0x0800, l3)
}

/// An IPv6 frame (no VLAN).
pub fn ether6(l3: &[u8]) -> Vec<u8> {
    ether(&[], 0x86dd, l3)
}

/// How an IPv4 packet is built beyond its addresses and payload.
#[derive(Clone, Copy, Default)]
pub struct V4Opts<'a> {
    /// Header options (multiple of 4 bytes).
    pub options: &'a [u8],
    /// Don't-fragment bit.
    pub df: bool,
    /// More-fragments bit.
    pub mf: bool,
    /// Fragment offset in 8-byte units.
    pub offset: u16,
}

/// An IPv4 packet carrying `payload` as protocol `proto`.
pub fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8], o: V4Opts) -> Vec<u8> {
    let len = u16::try_from(payload.len()).expect("payload length");
    let mut h = Ipv4Header::new(len, 61, IpNumber(proto), src, dst).expect("ipv4 header");
    h.options = o.options.try_into().expect("ipv4 options");
    h.total_len = (h.header_len() + payload.len()) as u16;
    h.dont_fragment = o.df;
    h.more_fragments = o.mf;
    h.fragment_offset = IpFragOffset::try_new(o.offset).expect("fragment offset");
    h.identification = 0x1234;
    h.header_checksum = h.calc_header_checksum();
    let mut packet = h.to_bytes().to_vec();
    packet.extend_from_slice(payload);
    packet
}

/// An IPv6 packet whose first next-header is `next` (payload includes any
/// extension headers).
pub fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, payload: &[u8]) -> Vec<u8> {
    let h = Ipv6Header {
        traffic_class: 0,
        flow_label: Ipv6FlowLabel::try_new(0x12345).expect("flow label"),
        payload_length: u16::try_from(payload.len()).expect("payload length"),
        next_header: IpNumber(next),
        hop_limit: 61,
        source: src,
        destination: dst,
    };
    let mut packet = h.to_bytes().to_vec();
    packet.extend_from_slice(payload);
    packet
}

/// A TCP segment (checksum left 0: the program does not read it).
pub fn tcp(sport: u16, dport: u16, syn: bool, payload_len: usize) -> Vec<u8> {
    let mut h = TcpHeader::new(sport, dport, 1000, 64000);
    h.syn = syn;
    h.ack = !syn;
    h.acknowledgment_number = if syn { 0 } else { 1 };
    let mut seg = h.to_bytes().to_vec();
    seg.extend((0..payload_len).map(|i| i as u8));
    seg
}

/// A UDP datagram (checksum 0).
pub fn udp(sport: u16, dport: u16, payload_len: usize) -> Vec<u8> {
    let h = UdpHeader {
        source_port: sport,
        destination_port: dport,
        length: (8 + payload_len) as u16,
        checksum: 0,
    };
    let mut dgram = h.to_bytes().to_vec();
    dgram.extend((0..payload_len).map(|i| i as u8));
    dgram
}

/// Extension headers the IPv6 builders can chain.
#[derive(Clone, Copy, Debug)]
pub enum Ext {
    /// Hop-by-hop options (8 bytes of PadN).
    HopByHop,
    /// Routing header type 0 with no segments left.
    Routing,
    /// Destination options (8 bytes of PadN).
    DestOpts,
    /// Authentication header with a 12-byte ICV (24 bytes in all).
    Auth,
    /// Fragment header with offset (8-byte units) and more-fragments.
    Fragment(u16, bool),
}

impl Ext {
    /// Its next-header number.
    pub fn number(self) -> u8 {
        match self {
            Ext::HopByHop => 0,
            Ext::Routing => 43,
            Ext::DestOpts => 60,
            Ext::Auth => 51,
            Ext::Fragment(..) => 44,
        }
    }

    fn bytes(self, next: u8) -> Vec<u8> {
        let next = IpNumber(next);
        let pad_n = [1, 4, 0, 0, 0, 0];
        match self {
            Ext::HopByHop | Ext::DestOpts => Ipv6RawExtHeader::new_raw(next, &pad_n)
                .expect("options header")
                .to_bytes()
                .to_vec(),
            Ext::Routing => Ipv6RawExtHeader::new_raw(next, &[0, 0, 0, 0, 0, 0])
                .expect("routing header")
                .to_bytes()
                .to_vec(),
            Ext::Auth => IpAuthHeader::new(next, 0x100, 7, &[0xaa; 12])
                .expect("auth header")
                .to_bytes()
                .to_vec(),
            Ext::Fragment(offset, more) => {
                let offset = IpFragOffset::try_new(offset).expect("fragment offset");
                Ipv6FragmentHeader::new(next, offset, more, 0x5678)
                    .to_bytes()
                    .to_vec()
            }
        }
    }
}

/// An IPv6 packet with `exts` in order, then `l4` as protocol `proto`.
pub fn ipv6_with_exts(src: [u8; 16], dst: [u8; 16], exts: &[Ext], proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut payload = Vec::new();
    for (i, ext) in exts.iter().enumerate() {
        let next = exts.get(i + 1).map_or(proto, |e| e.number());
        payload.extend(ext.bytes(next));
    }
    payload.extend_from_slice(l4);
    let first = exts.first().map_or(proto, |e| e.number());
    ipv6(src, dst, first, &payload)
}

/// RFC 1071 checksum of `bytes` (odd length padded with a zero byte).
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
