//! Frames the fuzzer starts from: the packet table's rows, and generators
//! for what the table holds few of (IPv6 extension chains of any depth, ICMP
//! errors quoting garbage, packets of every size, encapsulated packets for
//! `xlb_decap`).

use std::net::{IpAddr, Ipv4Addr};

use rand::{Rng, rngs::SmallRng};

use crate::{
    xlb_frames::{
        Ext, ICMP, ICMPV6, TCP, UDP, V4Opts, ether, internet_checksum, ipv4, ipv6, ipv6_with_exts,
        tcp, udp,
    },
    xlb_harness::TestVip,
    xlb_policy_world::table,
    xlb_world::{
        CLIENT4, CLIENT6, V4_AFFINITY, V4_ANY_PORT, V4_EMPTY, V4_NO_FRAGS, V4_TCP, V4_TO_V6,
        V4_UDP, V6_TCP, V6_TO_V4,
    },
};

/// TCP 192.0.2.30:443 with routing policy: half its new flows go to its
/// canary table, and its client is in a tenant class of small budget.
pub const V4_POLICY: TestVip = table(
    9,
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 30)),
    443,
    TCP,
    false,
    2,
);
/// The canary table of [`V4_POLICY`] (IPv6 backends), reached only by
/// the split; listed under the VIP's address so the oracle knows its
/// backends.
pub const V4_POLICY_CANARY: TestVip = table(10, V4_POLICY.addr, 443, TCP, true, 2);
/// TCP 192.0.2.31:80, whose client's /24 is denied.
pub const V4_DENIED: TestVip = table(
    11,
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 31)),
    80,
    TCP,
    false,
    2,
);

/// Every VIP of `standard_lb`, then the policy VIPs `policy_lb` adds.
pub const VIPS: [TestVip; 12] = [
    V4_TCP,
    V6_TCP,
    V4_TO_V6,
    V6_TO_V4,
    V4_UDP,
    V4_ANY_PORT,
    V4_EMPTY,
    V4_NO_FRAGS,
    V4_AFFINITY,
    V4_POLICY,
    V4_POLICY_CANARY,
    V4_DENIED,
];

/// Addresses `xlb_decap` is told to decapsulate for.
pub const DECAP_V4: [u8; 4] = [10, 0, 0, 2];
/// See [`DECAP_V4`].
pub const DECAP_V6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
/// Outer source of generated encapsulated frames.
const LB_V4: [u8; 4] = [10, 0, 0, 1];
/// See [`LB_V4`].
const LB_V6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// A frame generator.
pub type Generator = fn(&mut SmallRng) -> Vec<u8>;

/// Generators for `xlb`.
pub const XLB_GENERATORS: [Generator; 3] = [ext_chain, icmp_error, sized_packet];
/// Generators for `xlb_decap`.
pub const DECAP_GENERATORS: [Generator; 1] = [encapsulated];

fn pick<T: Copy>(rng: &mut SmallRng, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

/// 0 to 2 VLAN ids.
fn vlans(rng: &mut SmallRng) -> Vec<u16> {
    let n = pick(rng, &[0, 0, 0, 1, 2]);
    (0..n).map(|_| rng.random_range(1..4095)).collect()
}

fn v6_addr(vip: &TestVip) -> Option<[u8; 16]> {
    match vip.addr {
        IpAddr::V6(a) => Some(a.octets()),
        IpAddr::V4(_) => None,
    }
}

/// TCP (SYN or not) or UDP to `port`, with `payload` bytes.
fn transport(rng: &mut SmallRng, port: u16, payload: usize) -> (u8, Vec<u8>) {
    let sport = rng.random_range(1024..65535);
    let port = if port == 0 { rng.random() } else { port };
    if rng.random_bool(0.7) {
        (TCP, tcp(sport, port, rng.random(), payload))
    } else {
        (UDP, udp(sport, port, payload))
    }
}

/// An IPv6 packet to a VIP behind 0 to 9 extension headers (the program
/// walks at most `MAX_IPV6_EXT_HEADERS`).
pub fn ext_chain(rng: &mut SmallRng) -> Vec<u8> {
    let vip = pick(rng, &[V6_TCP, V6_TO_V4]);
    let exts: Vec<Ext> = (0..rng.random_range(0..10))
        .map(|_| match rng.random_range(0..5) {
            0 => Ext::HopByHop,
            1 => Ext::Routing,
            2 => Ext::DestOpts,
            3 => Ext::Auth,
            _ => {
                let offset = pick(rng, &[0, 0, 1, 185]);
                Ext::Fragment(offset, rng.random())
            }
        })
        .collect();
    let payload = rng.random_range(0..64);
    let (proto, l4) = transport(rng, vip.port, payload);
    let proto = pick(rng, &[proto, proto, proto, ICMPV6, 59]);
    let l3 = ipv6_with_exts(
        CLIENT6,
        v6_addr(&vip).unwrap_or_default(),
        &exts,
        proto,
        &l4,
    );
    ether(&vlans(rng), 0x86dd, &l3)
}

/// An ICMP "fragmentation needed" or ICMPv6 "packet too big" (or another
/// type) to a VIP address, quoting a reply header, a mangled one, or noise.
pub fn icmp_error(rng: &mut SmallRng) -> Vec<u8> {
    let vip = pick(rng, &VIPS);
    let cport = rng.random_range(1024..65535);
    let mut quote = match vip.addr {
        IpAddr::V4(a) => ipv4(
            a.octets(),
            CLIENT4,
            vip.proto,
            &tcp(vip.port, cport, false, 0),
            V4Opts::default(),
        ),
        IpAddr::V6(a) => ipv6(
            a.octets(),
            CLIENT6,
            vip.proto,
            &tcp(vip.port, cport, false, 0),
        ),
    };
    match rng.random_range(0..3) {
        0 => {}
        1 => {
            for _ in 0..rng.random_range(1..6) {
                let i = rng.random_range(0..quote.len());
                quote[i] = rng.random();
            }
        }
        _ => quote = (0..rng.random_range(0..96)).map(|_| rng.random()).collect(),
    }
    quote.truncate(rng.random_range(0..=quote.len()));

    let v4 = vip.addr.is_ipv4();
    let kind = if rng.random_bool(0.8) {
        if v4 { [3, 4] } else { [2, 0] }
    } else {
        rng.random()
    };
    let mut icmp = vec![kind[0], kind[1], 0, 0, 0, 0, 0x05, 0x00];
    icmp.extend_from_slice(&quote);
    match vip.addr {
        IpAddr::V4(a) => {
            let sum = internet_checksum(&icmp);
            icmp[2..4].copy_from_slice(&sum.to_be_bytes());
            let l3 = ipv4([203, 0, 113, 1], a.octets(), ICMP, &icmp, V4Opts::default());
            ether(&vlans(rng), 0x0800, &l3)
        }
        IpAddr::V6(a) => {
            let l3 = ipv6(
                [0x20, 1, 0xd, 0xb8, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                a.octets(),
                ICMPV6,
                &icmp,
            );
            ether(&vlans(rng), 0x86dd, &l3)
        }
    }
}

/// A packet of any size up to beyond the MTU to any VIP (IPv4 with or
/// without DF), for the "too big" answers and drops.
pub fn sized_packet(rng: &mut SmallRng) -> Vec<u8> {
    let vip = pick(rng, &VIPS);
    let size = if rng.random_bool(0.5) {
        rng.random_range(1380..1560)
    } else {
        rng.random_range(0..1600)
    };
    let (proto, l4) = transport(rng, vip.port, size);
    match vip.addr {
        IpAddr::V4(a) => {
            let o = V4Opts {
                df: rng.random(),
                ..V4Opts::default()
            };
            ether(
                &vlans(rng),
                0x0800,
                &ipv4(CLIENT4, a.octets(), proto, &l4, o),
            )
        }
        IpAddr::V6(a) => ether(&vlans(rng), 0x86dd, &ipv6(CLIENT6, a.octets(), proto, &l4)),
    }
}

/// A client packet (from the `xlb` generators) in an outer IPv4 or IPv6
/// header to one of `xlb_decap`'s addresses or another.
pub fn encapsulated(rng: &mut SmallRng) -> Vec<u8> {
    let frame = match rng.random_range(0..3) {
        0 => ext_chain(rng),
        1 => icmp_error(rng),
        _ => sized_packet(rng),
    };
    let Some((l2, _)) = super::wire::link_layer(&frame) else {
        return frame;
    };
    let inner = &frame[l2..];
    let proto = if inner[0] >> 4 == 4 { 4 } else { 41 };
    let proto = if rng.random_bool(0.9) {
        proto
    } else {
        pick(rng, &[4, 41, 6, 17])
    };
    let ours = rng.random_bool(0.85);
    if rng.random_bool(0.5) {
        let dst = if ours { DECAP_V4 } else { [10, 0, 0, 3] };
        let o = V4Opts {
            df: rng.random(),
            ..V4Opts::default()
        };
        ether(&vlans(rng), 0x0800, &ipv4(LB_V4, dst, proto, inner, o))
    } else {
        let mut dst = DECAP_V6;
        dst[15] = if ours { 2 } else { 3 };
        ether(&vlans(rng), 0x86dd, &ipv6(LB_V6, dst, proto, inner))
    }
}
