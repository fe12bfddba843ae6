//! Rows of the packet table for hostile frames: lengths that lie, tags
//! past the parser's depth, and ICMP errors that quote the wrong thing.

use std::net::IpAddr;

use lb_common::{FlowKey, Stat, hash::HashInput};

use super::xlb_frames::*;
use super::xlb_harness::flow_key;
use super::xlb_world::*;

fn v4_of(addr: IpAddr) -> [u8; 4] {
    match addr {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => panic!("IPv4 VIP expected"),
    }
}

fn v6_of(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(_) => panic!("IPv6 VIP expected"),
    }
}

fn row(what: &'static str, frame: Vec<u8>, expect: Expect, stat: Stat) -> Case {
    Case {
        what,
        frame,
        expect,
        stat,
    }
}

fn encap(vip: u32, key: FlowKey, input: HashInput, df: bool) -> Expect {
    Expect::Encap {
        vip,
        key,
        input,
        l2_len: 14,
        df,
    }
}

/// An IPv6 TCP SYN to `V6_TCP` whose payload length field says `payload`.
fn syn6_claiming(sport: u16, exts: &[Ext], payload: u16) -> Vec<u8> {
    let l4 = tcp(sport, V6_TCP.port, true, 0);
    let mut packet = ipv6_with_exts(CLIENT6, v6_of(V6_TCP.addr), exts, TCP, &l4);
    packet[4..6].copy_from_slice(&payload.to_be_bytes());
    ether6(&packet)
}

/// An ICMPv4 "fragmentation needed" to `to` quoting `quote`.
fn frag_needed_quoting(to: [u8; 4], code: u8, quote: &[u8]) -> Vec<u8> {
    let mut icmp = vec![3, code, 0, 0, 0, 0, 0x05, 0x00];
    icmp.extend_from_slice(quote);
    let sum = internet_checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let router = [203, 0, 113, 1];
    ether4(&ipv4(router, to, ICMP, &icmp, V4Opts::default()))
}

/// The first 28 bytes of a reply from `from`:`sport` to the client.
fn reply_v4(from: [u8; 4], to: [u8; 4], proto: u8, sport: u16, dport: u16) -> Vec<u8> {
    let l4 = tcp(sport, dport, false, 0);
    let mut packet = ipv4(from, to, proto, &l4, V4_DF);
    packet.truncate(28);
    packet
}

/// Asserts a padded frame went out whole, its outer length counting the
/// inner IP packet only (the padding stays behind it, as on the wire).
fn assert_padding_not_counted(out: &[u8], input: &[u8]) {
    let inner_total = usize::from(u16::from_be_bytes([input[16], input[17]]));
    let outer_total = usize::from(u16::from_be_bytes([out[16], out[17]]));
    assert_eq!(out[14] >> 4, 4, "padded frame: outer header is IPv4");
    assert_eq!(outer_total, 20 + inner_total, "padded frame: outer length");
    assert_eq!(&out[34..], &input[14..], "padded frame: inner bytes kept");
}

/// Hostile frames, each with the one outcome it must have.
pub fn hostile_rows() -> Vec<Case> {
    let mut rows = length_rows();
    rows.extend(icmp_rows());
    rows
}

fn length_rows() -> Vec<Case> {
    let vip4 = v4_of(V4_TCP.addr);
    let syn4 = |sport| ipv4(CLIENT4, vip4, TCP, &tcp(sport, 80, true, 0), V4_DF);
    let key4 = |sport| flow_key(CLIENT4.into(), V4_TCP.addr, sport, 80, TCP);

    let mut not_v4 = ether4(&syn4(1500));
    not_v4[14] = 0x65;
    let mut not_v6 = syn6_claiming(1501, &[], 20);
    not_v6[14] = 0x45;
    let mut doff_4 = ether4(&syn4(1502));
    doff_4[14 + 20 + 12] = 0x40;
    let mut padded = ether4(&syn4(1503));
    padded.extend_from_slice(&[0xee; 6]);
    let later = V4Opts {
        offset: 100,
        ..V4Opts::default()
    };
    let tcp_later = ether4(&ipv4(CLIENT4, vip4, TCP, &[9; 16], later));
    let addrs4 = flow_key(CLIENT4.into(), V4_TCP.addr, 0, 0, TCP);
    vec![
        row(
            "three VLAN tags pass: the third is past the parser's depth",
            ether(&[100, 200, 300], 0x0800, &syn4(1504)),
            Expect::Pass,
            Stat::PassNotIp,
        ),
        row(
            "IPv4 EtherType with version 6 to a VIP drops",
            not_v4,
            Expect::Drop,
            Stat::DropBadHeader,
        ),
        row(
            "IPv6 EtherType with version 4 to a VIP drops",
            not_v6,
            Expect::Drop,
            Stat::DropBadHeader,
        ),
        row(
            "IPv6 payload length beyond the frame drops",
            syn6_claiming(1505, &[], 200),
            Expect::Drop,
            Stat::DropTruncated,
        ),
        row(
            "IPv6 payload length shorter than the TCP header drops",
            syn6_claiming(1506, &[], 10),
            Expect::Drop,
            Stat::DropTruncated,
        ),
        row(
            "IPv6 payload length ending inside an extension header drops",
            syn6_claiming(1507, &[Ext::HopByHop], 4),
            Expect::Drop,
            Stat::DropTruncated,
        ),
        row(
            "TCP data offset below 5 is forwarded: the backend's stack judges L4",
            doff_4,
            encap(V4_TCP.id, key4(1502), HashInput::FiveTuple, true),
            Stat::TxForwarded,
        ),
        row(
            "Ethernet padding after the IPv4 packet is not counted in the outer length",
            padded,
            Expect::Answer(assert_padding_not_counted),
            Stat::TxForwarded,
        ),
        row(
            "later TCP fragment to a TCP VIP hashes on addresses",
            tcp_later,
            encap(V4_TCP.id, addrs4, HashInput::Addresses, false),
            Stat::TxForwarded,
        ),
    ]
}

fn icmp_rows() -> Vec<Case> {
    let vip4 = v4_of(V4_TCP.addr);
    let other_vip = v4_of(V4_ANY_PORT.addr);
    let from_other = reply_v4(other_vip, CLIENT4, TCP, 80, 1600);
    let icmp_quote = reply_v4(vip4, CLIENT4, ICMP, 80, 1601);
    let wrong_way = reply_v4(CLIENT4, vip4, TCP, 1602, 80);
    let cut = reply_v4(vip4, CLIENT4, TCP, 80, 1603);
    let unreachable = reply_v4(vip4, CLIENT4, TCP, 80, 1604);

    let reply6 = {
        let l4 = tcp(V6_TCP.port, 1605, false, 0);
        let vip6 = v6_of(V6_TCP.addr);
        let mut packet = ipv6(vip6, CLIENT6, TCP, &l4);
        packet.truncate(48);
        let mut icmp = vec![2, 0, 0, 0, 0, 0, 0x05, 0x00];
        icmp.extend_from_slice(&packet);
        let router6 = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        ether6(&ipv6(router6, vip6, ICMPV6, &icmp))
    };
    let key6 = flow_key(CLIENT6.into(), V6_TCP.addr, 1605, 443, TCP);
    vec![
        row(
            "frag-needed to one VIP quoting another VIP's reply passes",
            frag_needed_quoting(vip4, 4, &from_other),
            Expect::Pass,
            Stat::PassIcmp,
        ),
        row(
            "frag-needed quoting an ICMP packet passes",
            frag_needed_quoting(vip4, 4, &icmp_quote),
            Expect::Pass,
            Stat::PassIcmp,
        ),
        row(
            "frag-needed quoting the client-to-VIP direction passes",
            frag_needed_quoting(vip4, 4, &wrong_way),
            Expect::Pass,
            Stat::PassIcmp,
        ),
        row(
            "frag-needed whose quote stops before the ports passes",
            frag_needed_quoting(vip4, 4, &cut[..21]),
            Expect::Pass,
            Stat::PassIcmp,
        ),
        row(
            "port unreachable about a VIP flow passes",
            frag_needed_quoting(vip4, 3, &unreachable),
            Expect::Pass,
            Stat::PassIcmp,
        ),
        row(
            "packet-too-big about a VIP flow goes to the flow's backend",
            reply6,
            encap(V6_TCP.id, key6, HashInput::FiveTuple, true),
            Stat::TxIcmpSteered,
        ),
    ]
}
