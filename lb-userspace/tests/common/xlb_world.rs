//! The VIPs every `xlb` packet test starts from, the packet table, and
//! small helpers for the stateful tests.

#![allow(dead_code, reason = "each test binary uses part of the helpers")]

use std::net::IpAddr;

use lb_common::{
    FlowKey, Stat, TrafficCounters, VIP_F_NO_FRAGMENTS, VIP_F_SOURCE_AFFINITY, flow_hash,
    hash::HashInput,
};

use super::xlb_checks::*;
use super::xlb_frames::*;
use super::xlb_harness::*;

/// XDP actions.
pub const XDP_DROP: u32 = 1;
/// See [`XDP_DROP`].
pub const XDP_PASS: u32 = 2;
/// See [`XDP_DROP`].
pub const XDP_TX: u32 = 3;
/// Slots of a test table, as a length.
pub const TABLE_SIZE_USIZE: usize = TABLE_SIZE as usize;
/// IPv4 with DF, nothing else.
pub const V4_DF: V4Opts<'static> = V4Opts {
    options: &[],
    df: true,
    mf: false,
    offset: 0,
};

/// The client.
pub const CLIENT4: [u8; 4] = [198, 51, 100, 7];
/// The client, IPv6.
pub const CLIENT6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7,
];

const fn vip(id: u32, addr: IpAddr, port: u16, proto: u8, v6: bool, backends: u32) -> TestVip {
    TestVip {
        id,
        addr,
        port,
        proto,
        backend_v6: v6,
        backends,
        flags: 0,
        address_flags: 0,
    }
}
const fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(std::net::Ipv4Addr::new(a[0], a[1], a[2], a[3]))
}
const fn v6(last: u16) -> IpAddr {
    IpAddr::V6(std::net::Ipv6Addr::new(
        0x2001, 0xdb8, 0xf, 0, 0, 0, 0, last,
    ))
}

/// TCP 192.0.2.10:80 to IPv4 backends.
pub const V4_TCP: TestVip = vip(0, v4([192, 0, 2, 10]), 80, TCP, false, 3);
/// TCP [2001:db8:f::10]:443 to IPv6 backends.
pub const V6_TCP: TestVip = vip(1, v6(0x10), 443, TCP, true, 3);
/// TCP 192.0.2.11:80 to IPv6 backends.
pub const V4_TO_V6: TestVip = vip(2, v4([192, 0, 2, 11]), 80, TCP, true, 2);
/// TCP [2001:db8:f::11]:80 to IPv4 backends.
pub const V6_TO_V4: TestVip = vip(3, v6(0x11), 80, TCP, false, 2);
/// UDP 192.0.2.10:53 (same address as `V4_TCP`).
pub const V4_UDP: TestVip = vip(4, v4([192, 0, 2, 10]), 53, UDP, false, 2);
/// Every TCP port of 192.0.2.12.
pub const V4_ANY_PORT: TestVip = vip(5, v4([192, 0, 2, 12]), 0, TCP, false, 3);
/// TCP 192.0.2.13:80 with no backend.
pub const V4_EMPTY: TestVip = vip(6, v4([192, 0, 2, 13]), 80, TCP, false, 0);
/// UDP 192.0.2.14:53 whose fragments cannot be served.
pub const V4_NO_FRAGS: TestVip = TestVip {
    address_flags: VIP_F_NO_FRAGMENTS,
    ..vip(7, v4([192, 0, 2, 14]), 53, UDP, false, 2)
};
/// TCP 192.0.2.15:80 with source affinity: hashed on the client only.
pub const V4_AFFINITY: TestVip = TestVip {
    flags: VIP_F_SOURCE_AFFINITY,
    ..vip(8, v4([192, 0, 2, 15]), 80, TCP, false, 3)
};

/// Loads `xlb` with all the test VIPs.
pub fn standard_lb() -> Lb {
    let mut lb = Lb::load();
    for v in [
        V4_TCP,
        V6_TCP,
        V4_TO_V6,
        V6_TO_V4,
        V4_UDP,
        V4_ANY_PORT,
        V4_EMPTY,
        V4_NO_FRAGS,
        V4_AFFINITY,
    ] {
        lb.add_vip(&v);
    }
    lb
}

/// What the program must do with a frame.
pub enum Expect {
    /// XDP_PASS with the frame unchanged.
    Pass,
    /// XDP_DROP.
    Drop,
    /// XDP_TX encapsulated to the backend Maglev gives `key` at VIP `vip`.
    Encap {
        vip: u32,
        key: FlowKey,
        input: HashInput,
        l2_len: usize,
        df: bool,
    },
    /// XDP_TX of an answer the function checks (output, input).
    Answer(fn(&[u8], &[u8])),
}

/// One row of the packet table.
pub struct Case {
    /// What the row shows.
    pub what: &'static str,
    /// The input frame.
    pub frame: Vec<u8>,
    /// Action and output.
    pub expect: Expect,
    /// The one counter it must move.
    pub stat: Stat,
}

/// Runs one row and asserts action, output and counters.
pub fn run_case(lb: &mut Lb, case: &Case) {
    let before = lb.stats();
    let traffic_before = expected_traffic(lb, &case.expect);
    let out = lb.run(&case.frame);
    let what = case.what;
    match &case.expect {
        Expect::Pass => {
            assert_eq!(out.action, XDP_PASS, "{what}: action");
            assert_eq!(out.frame, case.frame, "{what}: passed unchanged");
        }
        Expect::Drop => assert_eq!(out.action, XDP_DROP, "{what}: action"),
        Expect::Encap {
            vip,
            key,
            input,
            l2_len,
            df,
        } => {
            assert_eq!(out.action, XDP_TX, "{what}: action");
            let id = lb.maglev_backend(*vip, key, *input);
            let expect = EncapExpect {
                input: &case.frame,
                l2_len: *l2_len,
                backend: lb.backend_addrs[&id],
                hash: flow_hash(key, *input),
                inner_df: *df,
            };
            assert_encapsulated(&out.frame, &expect);

            // One packet of the inner packet's bytes on the VIP and on the
            // chosen backend.
            let bytes = (case.frame.len() - l2_len) as u64;
            let counted = [("VIP_STATS", *vip), ("BACKEND_STATS", id)];
            for ((map, index), old) in counted.into_iter().zip(traffic_before) {
                let new = lb.traffic(map, index);
                let moved = (new.packets - old.packets, new.bytes - old.bytes);
                assert_eq!(moved, (1, bytes), "{what}: {map}[{index}] packets, bytes");
            }
        }
        Expect::Answer(check) => {
            assert_eq!(out.action, XDP_TX, "{what}: action");
            check(&out.frame, &case.frame);
        }
    }
    let after = lb.stats();
    for (i, stat) in Stat::ALL.iter().enumerate() {
        let moved = after[i] - before[i];
        let want = u64::from(*stat == case.stat);
        assert_eq!(moved, want, "{what}: STATS[{stat:?}] moved by {moved}");
    }
}

/// For an `Encap` row: the VIP's and the expected backend's traffic
/// counters before the run (empty for other rows).
fn expected_traffic(lb: &Lb, expect: &Expect) -> Vec<TrafficCounters> {
    let Expect::Encap {
        vip, key, input, ..
    } = expect
    else {
        return Vec::new();
    };
    let id = lb.maglev_backend(*vip, key, *input);
    vec![
        lb.traffic("VIP_STATS", *vip),
        lb.traffic("BACKEND_STATS", id),
    ]
}

/// Key of client port `sport` to `vip` (IPv4 client).
pub fn flow_key_v4(vip: &TestVip, sport: u16) -> FlowKey {
    flow_key(v4(CLIENT4), vip.addr, sport, vip.port, vip.proto)
}

/// Key, SYN frame and ACK frame of one IPv4 client flow to `vip`.
pub fn client_flow_v4(vip: &TestVip, sport: u16) -> (FlowKey, Vec<u8>, Vec<u8>) {
    let IpAddr::V4(dst) = vip.addr else {
        panic!("IPv4 VIP expected")
    };
    let frame = |syn| {
        ether4(&ipv4(
            CLIENT4,
            dst.octets(),
            TCP,
            &tcp(sport, vip.port, syn, 0),
            V4_DF,
        ))
    };
    (flow_key_v4(vip, sport), frame(true), frame(false))
}

/// Destination of the outer header of an encapsulated frame.
pub fn outer_dst(frame: &[u8], l2_len: usize) -> IpAddr {
    let ip = &frame[l2_len..];
    if ip[0] >> 4 == 4 {
        IpAddr::from(<[u8; 4]>::try_from(&ip[16..20]).expect("v4"))
    } else {
        IpAddr::from(<[u8; 16]>::try_from(&ip[24..40]).expect("v6"))
    }
}

/// Sends `frame` of `key`, asserts it is encapsulated, returns the backend id.
pub fn forwarded_backend(lb: &Lb, frame: &[u8], key: &FlowKey) -> u32 {
    let out = lb.run(frame);
    assert_eq!(out.action, XDP_TX, "flow {key:?} forwarded");
    let dst = outer_dst(&out.frame, 14);

    lb.backend_addrs
        .iter()
        .find(|(_, a)| **a == dst)
        .map(|(id, _)| *id)
        .expect("outer destination is a known backend")
}

/// A backend of `vip` other than `id`.
pub fn other_backend(vip: &TestVip, id: u32) -> u32 {
    (0..vip.backends)
        .map(|i| backend_of(vip, i).0)
        .find(|&b| b != id)
        .expect("two backends")
}

/// A router's "fragmentation needed" to `vip` about its reply to the
/// client's port `client_port` (IPv4 VIP).
pub fn icmp_frag_needed_from_router(vip: &TestVip, client_port: u16) -> Vec<u8> {
    let IpAddr::V4(vip_addr) = vip.addr else {
        panic!("IPv4 VIP expected")
    };
    let reply = ipv4(
        vip_addr.octets(),
        CLIENT4,
        TCP,
        &tcp(vip.port, client_port, false, 0),
        V4_DF,
    );
    let mut icmp = vec![3, 4, 0, 0, 0, 0, 0x05, 0x00];
    icmp.extend_from_slice(&reply[..28]);
    let sum = internet_checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    ether4(&ipv4(
        [203, 0, 113, 1],
        vip_addr.octets(),
        ICMP,
        &icmp,
        V4Opts::default(),
    ))
}

/// A router's "packet too big" to `vip` about its reply to the client's
/// port `client_port` (IPv6 VIP), quoting 48 bytes of that reply.
pub fn icmpv6_too_big_from_router(vip: &TestVip, client_port: u16) -> Vec<u8> {
    let IpAddr::V6(vip_addr) = vip.addr else {
        panic!("IPv6 VIP expected")
    };
    let router = [
        0x20, 0x01, 0x0d, 0xb8, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    ];
    let reply = tcp(vip.port, client_port, false, 0);
    let reply = ipv6(vip_addr.octets(), CLIENT6, TCP, &reply);
    let mut icmp = vec![2, 0, 0, 0, 0, 0, 0x05, 0x00];
    icmp.extend_from_slice(&reply[..48]);
    let mut pseudo = router.to_vec();
    pseudo.extend_from_slice(&vip_addr.octets());
    pseudo.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, ICMPV6]);
    pseudo.extend_from_slice(&icmp);
    let sum = internet_checksum(&pseudo);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    ether6(&ipv6(router, vip_addr.octets(), ICMPV6, &icmp))
}

/// Test-run options repeating `repeat` times.
pub fn repeat_opts(repeat: u32) -> xlb::testrun::TestRunOptions {
    xlb::testrun::TestRunOptions {
        repeat,
        ..Default::default()
    }
}

/// Mean of `runs` kernel-measured times.
pub fn mean_ns(runs: u32, mut one: impl FnMut(u32) -> u32) -> u64 {
    let total: u64 = (0..runs).map(|i| u64::from(one(i))).sum();
    total / u64::from(runs.max(1))
}
