//! Frame builders for the `xlb_decap` packet tests: inner packets,
//! outer headers, Ethernet with VLAN tags.

use etherparse::{
    EtherType, Ethernet2Header, IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header, PacketBuilder,
    SingleVlanHeader, VlanId, VlanPcp,
};

pub const OURS_V4: [u8; 4] = [10, 0, 0, 2];
pub const OURS_V6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
pub const OTHER_V4: [u8; 4] = [10, 0, 0, 3];
pub const OTHER_V6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3];
pub const LB_V4: [u8; 4] = [10, 0, 0, 1];
pub const LB_V6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// An IPv4 UDP datagram from a client to a VIP.
pub fn inner_v4() -> Vec<u8> {
    let mut packet = Vec::new();
    PacketBuilder::ipv4([198, 51, 100, 7], [192, 0, 2, 10], 61)
        .udp(40000, 53)
        .write(&mut packet, b"query for the vip")
        .expect("inner ipv4 packet");
    packet
}

/// An IPv6 TCP SYN from a client to a VIP.
pub fn inner_v6() -> Vec<u8> {
    let client = [0x20, 0x01, 0x0d, 0xb8, 0xc, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
    let vip = [
        0x20, 0x01, 0x0d, 0xb8, 0xf, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut packet = Vec::new();
    PacketBuilder::ipv6(client, vip, 63)
        .tcp(40001, 80, 1000, 64240)
        .syn()
        .write(&mut packet, &[])
        .expect("inner ipv6 packet");
    packet
}

pub fn outer_v4_header(payload_len: usize, proto: IpNumber, dst: [u8; 4]) -> Ipv4Header {
    let mut header =
        Ipv4Header::new(payload_len as u16, 64, proto, LB_V4, dst).expect("outer ipv4 header");
    header.header_checksum = header.calc_header_checksum();
    header
}

/// `inner` behind an outer IPv4 header to `dst`.
pub fn in_v4(inner: &[u8], dst: [u8; 4]) -> Vec<u8> {
    with_v4_header(outer_v4_header(inner.len(), proto_of(inner), dst), inner)
}

pub fn with_v4_header(header: Ipv4Header, inner: &[u8]) -> Vec<u8> {
    let mut packet = header.to_bytes().to_vec();
    packet.extend_from_slice(inner);
    packet
}

/// `inner` behind an outer IPv6 header to `dst`.
pub fn in_v6(inner: &[u8], dst: [u8; 16]) -> Vec<u8> {
    let header = Ipv6Header {
        traffic_class: 0,
        flow_label: Ipv6FlowLabel::try_new(0x12345).expect("flow label"),
        payload_length: inner.len() as u16,
        next_header: proto_of(inner),
        hop_limit: 64,
        source: LB_V6,
        destination: dst,
    };
    let mut packet = header.to_bytes().to_vec();
    packet.extend_from_slice(inner);
    packet
}

/// The outer protocol for an inner packet: 4 or 41 by its version.
pub fn proto_of(inner: &[u8]) -> IpNumber {
    if inner[0] >> 4 == 4 {
        IpNumber::IPV4
    } else {
        IpNumber::IPV6
    }
}

/// `payload` behind Ethernet and `tags` VLAN tags (802.1ad outside
/// 802.1Q for two), with `ethertype` innermost.
pub fn eth(tags: usize, ethertype: EtherType, payload: &[u8]) -> Vec<u8> {
    let outer_type = match tags {
        0 => ethertype,
        1 => EtherType::VLAN_TAGGED_FRAME,
        _ => EtherType::PROVIDER_BRIDGING,
    };
    let mut frame = Ethernet2Header {
        source: [0x02, 0, 0, 0, 0, 1],
        destination: [0x02, 0, 0, 0, 0, 2],
        ether_type: outer_type,
    }
    .to_bytes()
    .to_vec();
    for tag in 0..tags {
        let next = if tag + 1 == tags {
            ethertype
        } else {
            EtherType::VLAN_TAGGED_FRAME
        };
        let header = SingleVlanHeader {
            pcp: VlanPcp::try_new(3).expect("pcp"),
            drop_eligible_indicator: false,
            vlan_id: VlanId::try_new(100 + tag as u16).expect("vlan id"),
            ether_type: next,
        };
        frame.extend_from_slice(&header.to_bytes());
    }
    frame.extend_from_slice(payload);
    frame
}

pub fn eth_v4(payload: &[u8]) -> Vec<u8> {
    eth(0, EtherType::IPV4, payload)
}

pub fn eth_v6(payload: &[u8]) -> Vec<u8> {
    eth(0, EtherType::IPV6, payload)
}

/// Recomputes the IPv4 header checksum of `packet` after a test edited it.
pub fn refresh_checksum(packet: &mut [u8]) {
    let header_len = usize::from(packet[0] & 0x0f) * 4;
    packet[10..12].fill(0);
    let mut sum: u32 = packet[..header_len]
        .chunks(2)
        .map(|word| u32::from(u16::from_be_bytes([word[0], word[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    packet[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

/// `packet` with `edit` applied and its outer checksum made right again.
pub fn edited_v4(mut packet: Vec<u8>, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    edit(&mut packet);
    refresh_checksum(&mut packet);
    packet
}

/// Grows the total length of the IPv4 packet `inner` by `extra` bytes
/// without adding them.
pub fn refresh_len_by(inner: &mut [u8], extra: u16) {
    let len = u16::from_be_bytes([inner[2], inner[3]]) + extra;
    inner[2..4].copy_from_slice(&len.to_be_bytes());
    refresh_checksum(inner);
}
