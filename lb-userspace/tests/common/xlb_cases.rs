//! The packet table: one row per behaviour of `xlb` on a single frame.

use std::net::IpAddr;

use lb_common::{FlowKey, Stat, hash::HashInput};

use super::xlb_checks::{assert_frag_needed, assert_packet_too_big};
use super::xlb_frames::*;
use super::xlb_harness::{MTU, TestVip, flow_key};
use super::xlb_world::*;

fn v4_of(vip: &TestVip) -> [u8; 4] {
    match vip.addr {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => panic!("IPv4 VIP expected"),
    }
}

fn v6_of(vip: &TestVip) -> [u8; 16] {
    match vip.addr {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(_) => panic!("IPv6 VIP expected"),
    }
}

fn key4(vip: &TestVip, sport: u16, dport: u16) -> FlowKey {
    flow_key(IpAddr::from(CLIENT4), vip.addr, sport, dport, vip.proto)
}

fn key6(vip: &TestVip, sport: u16, dport: u16) -> FlowKey {
    flow_key(IpAddr::from(CLIENT6), vip.addr, sport, dport, vip.proto)
}

fn encap(vip: &TestVip, key: FlowKey, input: HashInput, l2_len: usize, df: bool) -> Expect {
    Expect::Encap {
        vip: vip.id,
        key,
        input,
        l2_len,
        df,
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

/// A TCP SYN from the IPv4 client to `vip`'s port `dport`.
fn syn4(vip: &TestVip, sport: u16, dport: u16, o: V4Opts) -> Vec<u8> {
    ipv4(CLIENT4, v4_of(vip), TCP, &tcp(sport, dport, true, 0), o)
}

/// A TCP SYN from the IPv6 client through `exts`.
fn syn6(vip: &TestVip, sport: u16, exts: &[Ext]) -> Vec<u8> {
    ipv6_with_exts(
        CLIENT6,
        v6_of(vip),
        exts,
        TCP,
        &tcp(sport, vip.port, true, 0),
    )
}

/// Every row, in the order they run (later rows may meet earlier flows).
pub fn cases() -> Vec<Case> {
    let mut rows = not_vip_rows();
    rows.extend(forwarding_rows());
    rows.extend(ipv6_ext_rows());
    rows.extend(fragment_rows());
    rows.extend(malformed_rows());
    rows.extend(too_big_rows());
    rows.extend(super::xlb_hostile::hostile_rows());
    rows
}

fn not_vip_rows() -> Vec<Case> {
    // ARP request who-has 192.0.2.10 (hardware Ethernet, protocol IPv4).
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
    arp.extend_from_slice(&ROUTER_MAC);
    arp.extend_from_slice(&[203, 0, 113, 1, 0, 0, 0, 0, 0, 0, 192, 0, 2, 10]);
    let mut ns = vec![135, 0, 0, 0, 0, 0, 0, 0];
    ns.extend_from_slice(&v6_of(&V6_TCP));
    let solicited = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 0x10];
    let echo = [8, 0, 0xf7, 0xff, 0, 0, 0, 0];
    vec![
        row(
            "ARP passes",
            ether(&[], 0x0806, &arp),
            Expect::Pass,
            Stat::PassNotIp,
        ),
        row(
            "IPv6 neighbour solicitation passes",
            ether6(&ipv6(CLIENT6, solicited, ICMPV6, &ns)),
            Expect::Pass,
            Stat::PassNotVip,
        ),
        row(
            "IPv4 to a non-VIP address passes",
            ether4(&ipv4(
                CLIENT4,
                [192, 0, 2, 99],
                TCP,
                &tcp(1, 80, true, 0),
                V4_DF,
            )),
            Expect::Pass,
            Stat::PassNotVip,
        ),
        row(
            "IPv6 to a non-VIP address passes",
            ether6(&ipv6(CLIENT6, CLIENT6, TCP, &tcp(1, 443, true, 0))),
            Expect::Pass,
            Stat::PassNotVip,
        ),
        row(
            "VIP address on a port with no VIP passes",
            ether4(&syn4(&V4_TCP, 1, 81, V4_DF)),
            Expect::Pass,
            Stat::PassNotVip,
        ),
        row(
            "ICMP echo to a VIP passes",
            ether4(&ipv4(CLIENT4, v4_of(&V4_TCP), ICMP, &echo, V4_DF)),
            Expect::Pass,
            Stat::PassIcmp,
        ),
        row(
            "GRE to a VIP address passes",
            ether4(&ipv4(CLIENT4, v4_of(&V4_TCP), 47, &[0; 8], V4_DF)),
            Expect::Pass,
            Stat::PassNotVip,
        ),
    ]
}

fn forwarding_rows() -> Vec<Case> {
    let five = HashInput::FiveTuple;
    let source = HashInput::Source;
    let opts = V4Opts {
        options: &[1, 1, 1, 1, 0x94, 4, 0, 0],
        ..V4_DF
    };
    let udp4 = ipv4(
        CLIENT4,
        v4_of(&V4_UDP),
        UDP,
        &udp(5353, 53, 20),
        V4Opts::default(),
    );
    let syn = ether4(&syn4(&V4_TCP, 1000, 80, V4_DF));
    vec![
        row(
            "TCP v4 VIP to v4 backend",
            syn.clone(),
            encap(&V4_TCP, key4(&V4_TCP, 1000, 80), five, 14, true),
            Stat::TxForwarded,
        ),
        row(
            "TCP v6 VIP to v6 backend",
            ether6(&syn6(&V6_TCP, 1001, &[])),
            encap(&V6_TCP, key6(&V6_TCP, 1001, 443), five, 14, true),
            Stat::TxForwarded,
        ),
        row(
            "TCP v4 VIP to v6 backend (IPv4 in IPv6)",
            ether4(&syn4(&V4_TO_V6, 1002, 80, V4Opts::default())),
            encap(&V4_TO_V6, key4(&V4_TO_V6, 1002, 80), five, 14, false),
            Stat::TxForwarded,
        ),
        row(
            "TCP v6 VIP to v4 backend (IPv6 in IPv4)",
            ether6(&syn6(&V6_TO_V4, 1003, &[])),
            encap(&V6_TO_V4, key6(&V6_TO_V4, 1003, 80), five, 14, true),
            Stat::TxForwarded,
        ),
        row(
            "UDP VIP",
            ether4(&udp4),
            encap(&V4_UDP, key4(&V4_UDP, 5353, 53), five, 14, false),
            Stat::TxForwarded,
        ),
        row(
            "port-0 VIP takes an odd port",
            ether4(&syn4(&V4_ANY_PORT, 1004, 4321, V4_DF)),
            encap(&V4_ANY_PORT, key4(&V4_ANY_PORT, 1004, 4321), five, 14, true),
            Stat::TxForwarded,
        ),
        row(
            "IPv4 options are carried unchanged",
            ether4(&syn4(&V4_TCP, 1005, 80, opts)),
            encap(&V4_TCP, key4(&V4_TCP, 1005, 80), five, 14, true),
            Stat::TxForwarded,
        ),
        row(
            "one VLAN tag is kept",
            ether(&[100], 0x0800, &syn4(&V4_TCP, 1006, 80, V4_DF)),
            encap(&V4_TCP, key4(&V4_TCP, 1006, 80), five, 18, true),
            Stat::TxForwarded,
        ),
        row(
            "two VLAN tags are kept",
            ether(&[100, 200], 0x86dd, &syn6(&V6_TCP, 1007, &[])),
            encap(&V6_TCP, key6(&V6_TCP, 1007, 443), five, 22, true),
            Stat::TxForwarded,
        ),
        row(
            "source-affinity VIP hashes the client address only",
            ether4(&syn4(&V4_AFFINITY, 1010, 80, V4_DF)),
            encap(&V4_AFFINITY, key4(&V4_AFFINITY, 1010, 80), source, 14, true),
            Stat::TxForwarded,
        ),
        row(
            "source affinity ignores the client port",
            ether4(&syn4(&V4_AFFINITY, 1011, 80, V4_DF)),
            encap(&V4_AFFINITY, key4(&V4_AFFINITY, 1011, 80), source, 14, true),
            Stat::TxForwarded,
        ),
        row(
            "VIP with no backend drops",
            ether4(&syn4(&V4_EMPTY, 1008, 80, V4_DF)),
            Expect::Drop,
            Stat::DropNoBackend,
        ),
    ]
}

fn ipv6_ext_rows() -> Vec<Case> {
    let five = HashInput::FiveTuple;
    let mut rows = Vec::new();
    let each: [(&'static str, Ext, u16); 4] = [
        ("hop-by-hop header is walked", Ext::HopByHop, 1100),
        ("routing header is walked", Ext::Routing, 1101),
        ("destination options header is walked", Ext::DestOpts, 1102),
        (
            "authentication header is walked (length in 4-byte units)",
            Ext::Auth,
            1103,
        ),
    ];
    for (what, ext, sport) in each {
        let frame = ether6(&syn6(&V6_TCP, sport, &[ext]));
        rows.push(row(
            what,
            frame,
            encap(&V6_TCP, key6(&V6_TCP, sport, 443), five, 14, true),
            Stat::TxForwarded,
        ));
    }
    let chain = [
        Ext::HopByHop,
        Ext::DestOpts,
        Ext::Routing,
        Ext::Auth,
        Ext::DestOpts,
    ];
    rows.push(row(
        "five extension headers are walked",
        ether6(&syn6(&V6_TCP, 1104, &chain)),
        encap(&V6_TCP, key6(&V6_TCP, 1104, 443), five, 14, true),
        Stat::TxForwarded,
    ));
    rows.push(row(
        "seven extension headers are too many",
        ether6(&syn6(&V6_TCP, 1105, &[Ext::DestOpts; 7])),
        Expect::Drop,
        Stat::DropExtHeaders,
    ));
    rows
}

fn fragment_rows() -> Vec<Case> {
    let addrs = HashInput::Addresses;
    let first = V4Opts {
        mf: true,
        ..V4Opts::default()
    };
    let second = V4Opts {
        offset: 3,
        ..V4Opts::default()
    };
    let dgram = udp(5353, 53, 16);
    let key_udp = key4(&V4_UDP, 0, 0);
    let key6_frag = key6(&V6_TCP, 0, 0);
    let v6_first = ipv6_with_exts(
        CLIENT6,
        v6_of(&V6_TCP),
        &[Ext::Fragment(0, true)],
        TCP,
        &tcp(1200, 443, true, 8),
    );
    let v6_second = ipv6_with_exts(
        CLIENT6,
        v6_of(&V6_TCP),
        &[Ext::Fragment(2, false)],
        TCP,
        &[7; 8],
    );
    vec![
        row(
            "first IPv4 fragment hashes on addresses",
            ether4(&ipv4(CLIENT4, v4_of(&V4_UDP), UDP, &dgram[..16], first)),
            encap(&V4_UDP, key_udp, addrs, 14, false),
            Stat::TxForwarded,
        ),
        row(
            "second IPv4 fragment reaches the same backend",
            ether4(&ipv4(CLIENT4, v4_of(&V4_UDP), UDP, &dgram[16..], second)),
            encap(&V4_UDP, key_udp, addrs, 14, false),
            Stat::TxForwarded,
        ),
        row(
            "first IPv6 fragment hashes on addresses",
            ether6(&v6_first),
            encap(&V6_TCP, key6_frag, addrs, 14, true),
            Stat::TxForwarded,
        ),
        row(
            "second IPv6 fragment reaches the same backend",
            ether6(&v6_second),
            encap(&V6_TCP, key6_frag, addrs, 14, true),
            Stat::TxForwarded,
        ),
        row(
            "fragment for an address that allows none drops",
            ether4(&ipv4(
                CLIENT4,
                v4_of(&V4_NO_FRAGS),
                UDP,
                &dgram[..16],
                first,
            )),
            Expect::Drop,
            Stat::DropFragment,
        ),
    ]
}

fn malformed_rows() -> Vec<Case> {
    let options = V4Opts {
        options: &[1, 1, 1, 1],
        ..V4_DF
    };
    let mut cut_in_options = ether4(&syn4(&V4_TCP, 1300, 80, options));
    cut_in_options.truncate(14 + 22);
    let short_tcp = ether4(&ipv4(
        CLIENT4,
        v4_of(&V4_TCP),
        TCP,
        &tcp(1301, 80, true, 0)[..10],
        V4_DF,
    ));
    let short_tcp_other = ether4(&ipv4(
        CLIENT4,
        [192, 0, 2, 99],
        TCP,
        &tcp(1302, 80, true, 0)[..10],
        V4_DF,
    ));
    let mut bad_ihl = ether4(&syn4(&V4_TCP, 1303, 80, V4_DF));
    bad_ihl[14] = 0x44;
    let mut bad_total = ether4(&syn4(&V4_TCP, 1304, 80, V4_DF));
    bad_total[16..18].copy_from_slice(&10u16.to_be_bytes());
    let mut long_total = ether4(&syn4(&V4_TCP, 1305, 80, V4_DF));
    long_total[16..18].copy_from_slice(&100u16.to_be_bytes());
    let v6_payload_len = |frame: &mut Vec<u8>, len: u16| {
        frame[18..20].copy_from_slice(&len.to_be_bytes());
    };
    let mut v6_long = ether6(&syn6(&V6_TCP, 1306, &[]));
    v6_payload_len(&mut v6_long, 200);
    let mut v6_version = ether6(&syn6(&V6_TCP, 1307, &[]));
    v6_version[14] = 0x40 | (v6_version[14] & 0x0f);
    let mut v6_cut_ext = ether6(&syn6(&V6_TCP, 1308, &[Ext::HopByHop]));
    v6_cut_ext.truncate(14 + 40 + 4);
    v6_payload_len(&mut v6_cut_ext, 4);
    vec![
        row(
            "IPv6 payload length beyond the frame drops",
            v6_long,
            Expect::Drop,
            Stat::DropTruncated,
        ),
        row(
            "IPv6 header with version 4 drops",
            v6_version,
            Expect::Drop,
            Stat::DropBadHeader,
        ),
        row(
            "IPv6 extension header cut short drops",
            v6_cut_ext,
            Expect::Drop,
            Stat::DropTruncated,
        ),
        row(
            "IPv4 header cut inside its options drops",
            cut_in_options,
            Expect::Drop,
            Stat::DropTruncated,
        ),
        row(
            "truncated TCP header to a VIP drops",
            short_tcp,
            Expect::Drop,
            Stat::DropTruncated,
        ),
        row(
            "truncated TCP header to another host passes",
            short_tcp_other,
            Expect::Pass,
            Stat::PassNotVip,
        ),
        row(
            "IHL below 5 drops",
            bad_ihl,
            Expect::Drop,
            Stat::DropBadHeader,
        ),
        row(
            "total length below the header drops",
            bad_total,
            Expect::Drop,
            Stat::DropBadHeader,
        ),
        row(
            "total length beyond the frame drops",
            long_total,
            Expect::Drop,
            Stat::DropTruncated,
        ),
    ]
}

fn too_big_rows() -> Vec<Case> {
    let big = MTU as usize - 20 - 20 - 10;
    let payload = tcp(1400, 80, false, big);
    let big_df = ether4(&ipv4(CLIENT4, v4_of(&V4_TCP), TCP, &payload, V4_DF));
    let big_no_df = ether4(&ipv4(
        CLIENT4,
        v4_of(&V4_TCP),
        TCP,
        &payload,
        V4Opts::default(),
    ));
    let payload6 = tcp(1401, 443, false, MTU as usize - 40 - 20 - 10);
    let big6 = ether6(&ipv6(CLIENT6, v6_of(&V6_TCP), TCP, &payload6));
    vec![
        row(
            "too big with DF is answered with fragmentation needed",
            big_df,
            Expect::Answer(|out, input| assert_frag_needed(out, input, (MTU - 20) as u16)),
            Stat::TxIcmpTooBig,
        ),
        row(
            "too big without DF drops",
            big_no_df,
            Expect::Drop,
            Stat::DropTooBig,
        ),
        row(
            "too big IPv6 is answered with packet too big",
            big6,
            Expect::Answer(|out, input| assert_packet_too_big(out, input, MTU - 40)),
            Stat::TxIcmpTooBig,
        ),
    ]
}
