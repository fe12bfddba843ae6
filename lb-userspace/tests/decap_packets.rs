//! Packet tests of `xlb_decap` through `BPF_PROG_TEST_RUN`: a table of
//! (description, input frame, expected action, expected output, counter).
//!
//! Needs root (or CAP_BPF + CAP_NET_ADMIN) to load the program.

mod decap_frames;

use std::net::IpAddr;

use decap_frames::*;
use etherparse::{
    ArpEthIpv4Packet, ArpOperation, ArpPacket, EtherType, IpNumber, Ipv4Options, PacketBuilder,
};
use lb_common::DecapStat;
use xlb::{
    decap::Decap,
    testrun::{TestRunOptions, test_run},
};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

/// What the program should do with a frame.
enum Expect {
    /// Pass, leaving exactly these bytes.
    Pass(Vec<u8>),
    /// Drop.
    Drop,
}

struct Case {
    description: &'static str,
    frame: Vec<u8>,
    expect: Expect,
    stat: DecapStat,
}

/// A frame that passes untouched.
fn unchanged(description: &'static str, frame: Vec<u8>) -> Case {
    Case {
        description,
        expect: Expect::Pass(frame.clone()),
        frame,
        stat: DecapStat::Passed,
    }
}

fn decapsulated(description: &'static str, frame: Vec<u8>, inner_frame: Vec<u8>) -> Case {
    Case {
        description,
        frame,
        expect: Expect::Pass(inner_frame),
        stat: DecapStat::Decapsulated,
    }
}

fn dropped(description: &'static str, frame: Vec<u8>, stat: DecapStat) -> Case {
    Case {
        description,
        frame,
        expect: Expect::Drop,
        stat,
    }
}

fn encapsulation_cases() -> Vec<Case> {
    let (v4, v6) = (inner_v4(), inner_v6());
    let with_options = {
        let mut header = outer_v4_header(v4.len(), IpNumber::IPV4, OURS_V4);
        header.options = Ipv4Options::from([1, 1, 1, 0]); // NOP NOP NOP EOL
        header.set_payload_len(v4.len()).expect("payload fits");
        header.header_checksum = header.calc_header_checksum();
        with_v4_header(header, &v4)
    };
    let small = {
        let mut packet = Vec::new();
        PacketBuilder::ipv4([198, 51, 100, 7], [192, 0, 2, 10], 61)
            .udp(40000, 53)
            .write(&mut packet, &[])
            .expect("small inner packet");
        packet
    };
    let padding = [0u8; 12]; // a short frame padded to Ethernet's minimum
    let padded_frame = [eth_v4(&in_v4(&small, OURS_V4)), padding.to_vec()].concat();
    let padded_inner = [eth_v4(&small), padding.to_vec()].concat();

    vec![
        decapsulated("ipv4 in ipv4", eth_v4(&in_v4(&v4, OURS_V4)), eth_v4(&v4)),
        decapsulated("ipv6 in ipv6", eth_v6(&in_v6(&v6, OURS_V6)), eth_v6(&v6)),
        decapsulated("ipv4 in ipv6", eth_v6(&in_v6(&v4, OURS_V6)), eth_v4(&v4)),
        decapsulated("ipv6 in ipv4", eth_v4(&in_v4(&v6, OURS_V4)), eth_v6(&v6)),
        decapsulated(
            "ipv4 in ipv4 with outer options",
            eth_v4(&with_options),
            eth_v4(&v4),
        ),
        decapsulated(
            "ipv4 in ipv6 behind a vlan tag",
            eth(1, EtherType::IPV6, &in_v6(&v4, OURS_V6)),
            eth(1, EtherType::IPV4, &v4),
        ),
        decapsulated(
            "ipv6 in ipv4 behind two vlan tags",
            eth(2, EtherType::IPV4, &in_v4(&v6, OURS_V4)),
            eth(2, EtherType::IPV6, &v6),
        ),
        decapsulated(
            "ipv4 in ipv4 with ethernet padding keeps the padding",
            padded_frame,
            padded_inner,
        ),
    ]
}

fn passthrough_cases() -> Vec<Case> {
    let (v4, v6) = (inner_v4(), inner_v6());
    let arp: ArpPacket = ArpEthIpv4Packet {
        operation: ArpOperation::REQUEST,
        sender_mac: [0x02, 0, 0, 0, 0, 1],
        sender_ipv4: LB_V4,
        target_mac: [0; 6],
        target_ipv4: OURS_V4,
    }
    .into();
    let mut echo = Vec::new();
    PacketBuilder::ipv6(LB_V6, OURS_V6, 64)
        .icmpv6_echo_request(7, 1)
        .write(&mut echo, b"ping")
        .expect("icmpv6 echo");
    let fragment = {
        let mut header = outer_v4_header(v4.len(), IpNumber::IPV4, OURS_V4);
        header.more_fragments = true;
        header.header_checksum = header.calc_header_checksum();
        with_v4_header(header, &v4)
    };

    vec![
        unchanged(
            "ipv4 in ipv4 for another address",
            eth_v4(&in_v4(&v4, OTHER_V4)),
        ),
        unchanged(
            "ipv6 in ipv6 for another address",
            eth_v6(&in_v6(&v6, OTHER_V6)),
        ),
        unchanged("plain udp over ipv4", eth_v4(&v4)),
        unchanged("plain tcp over ipv6", eth_v6(&v6)),
        unchanged("arp request", eth(0, EtherType::ARP, &arp.to_bytes())),
        unchanged("icmpv6 echo to our address", eth_v6(&echo)),
        unchanged("outer ipv4 fragment (limitation)", eth_v4(&fragment)),
        unchanged(
            "outer ipv4 cut before its destination",
            eth_v4(&in_v4(&v4, OURS_V4)[..12]),
        ),
        unchanged(
            "encapsulated behind a third vlan tag",
            eth(3, EtherType::IPV4, &in_v4(&v4, OURS_V4)),
        ),
    ]
}

fn malformed_cases() -> Vec<Case> {
    use DecapStat::{DropBadInner, DropBadOuter};
    let (v4, v6) = (inner_v4(), inner_v6());
    let ipip = in_v4(&v4, OURS_V4);
    let cut = |frame: Vec<u8>, by: usize| frame[..frame.len() - by].to_vec();
    let inner_too_long = {
        let mut inner = v4.clone();
        refresh_len_by(&mut inner, 8);
        inner
    };
    let inner_bad_ihl = {
        let mut inner = v4.clone();
        inner[0] = 0x44;
        inner
    };
    let mut v6_says_v4 = in_v6(&v4, OURS_V6);
    v6_says_v4[6] = IpNumber::IPV6.0;
    let mut v6_version_4 = in_v6(&v6, OURS_V6);
    v6_version_4[0] = 0x40;

    vec![
        dropped(
            "outer ipv4 longer than the frame",
            cut(eth_v4(&ipip), 5),
            DropBadOuter,
        ),
        dropped(
            "outer ipv6 longer than the frame",
            cut(eth_v6(&in_v6(&v4, OURS_V6)), 5),
            DropBadOuter,
        ),
        dropped(
            "outer ipv4 ihl below 5",
            eth_v4(&edited_v4(ipip.clone(), |p| p[0] = 0x44)),
            DropBadOuter,
        ),
        dropped(
            "outer ipv4 ihl past its total length",
            eth_v4(&edited_v4(ipip.clone(), |p| {
                p[2..4].copy_from_slice(&16u16.to_be_bytes())
            })),
            DropBadOuter,
        ),
        dropped(
            "outer ipv4 with version 6",
            eth_v4(&edited_v4(ipip.clone(), |p| p[0] = 0x65)),
            DropBadOuter,
        ),
        dropped(
            "outer ipv4 with a wrong checksum",
            eth_v4(&{
                let mut p = ipip.clone();
                p[10] ^= 0xff;
                p
            }),
            DropBadOuter,
        ),
        dropped(
            "outer ipv6 with version 4",
            eth_v6(&v6_version_4),
            DropBadOuter,
        ),
        dropped(
            "inner ipv4 cut short",
            eth_v4(&in_v4(&v4[..10], OURS_V4)),
            DropBadInner,
        ),
        dropped(
            "inner ipv6 cut short",
            eth_v6(&in_v6(&v6[..30], OURS_V6)),
            DropBadInner,
        ),
        dropped(
            "ipip carrying ipv6",
            eth_v4(&edited_v4(in_v4(&v6, OURS_V4), |p| p[9] = IpNumber::IPV4.0)),
            DropBadInner,
        ),
        dropped(
            "ipv6-in-ipv6 carrying ipv4",
            eth_v6(&v6_says_v4),
            DropBadInner,
        ),
        dropped(
            "inner ipv4 longer than the outer payload",
            eth_v4(&in_v4(&inner_too_long, OURS_V4)),
            DropBadInner,
        ),
        dropped(
            "inner ipv4 ihl below 5",
            eth_v4(&in_v4(&inner_bad_ihl, OURS_V4)),
            DropBadInner,
        ),
    ]
}

fn loaded_with_our_addrs() -> Decap {
    let mut decap = Decap::load().expect("xlb_decap loads (run as root)");
    decap
        .set_addrs(&[IpAddr::from(OURS_V4), IpAddr::from(OURS_V6)])
        .expect("decap addresses written");
    decap
}

/// Runs every case and checks action, output bytes and the one counter
/// that must move.
fn run(decap: &Decap, cases: Vec<Case>) {
    let program = decap.program().expect("xlb_decap program");
    for case in cases {
        let what = case.description;
        let before = decap.counters().expect("counters before");
        let out = test_run(program, &case.frame, TestRunOptions::default())
            .unwrap_or_else(|e| panic!("{what}: test run failed: {e:#}"));
        let after = decap.counters().expect("counters after");

        match &case.expect {
            Expect::Pass(frame) => {
                assert_eq!(out.action, XDP_PASS, "{what}: action");
                assert_eq!(&out.frame, frame, "{what}: output frame");
            }
            Expect::Drop => assert_eq!(out.action, XDP_DROP, "{what}: action"),
        }
        for stat in DecapStat::ALL {
            let moved = u64::from(stat == case.stat);
            assert_eq!(
                after.get(stat),
                before.get(stat) + moved,
                "{what}: counter {}",
                stat.reason()
            );
        }
    }
}

#[test]
fn each_encapsulation_is_stripped_to_the_inner_frame() {
    run(&loaded_with_our_addrs(), encapsulation_cases());
}

#[test]
fn traffic_not_encapsulated_for_us_passes_byte_for_byte() {
    run(&loaded_with_our_addrs(), passthrough_cases());
}

#[test]
fn malformed_encapsulated_packets_are_dropped_and_counted() {
    run(&loaded_with_our_addrs(), malformed_cases());
}

#[test]
fn replacing_the_address_set_stops_decapsulating_for_removed_addresses() {
    let mut decap = loaded_with_our_addrs();
    decap
        .set_addrs(&[IpAddr::from(OURS_V6)])
        .expect("address set replaced");
    let (v4, v6) = (inner_v4(), inner_v6());
    run(
        &decap,
        vec![
            unchanged(
                "ipv4 in ipv4 for a removed address",
                eth_v4(&in_v4(&v4, OURS_V4)),
            ),
            decapsulated(
                "ipv6 in ipv6 for a kept address",
                eth_v6(&in_v6(&v6, OURS_V6)),
                eth_v6(&v6),
            ),
        ],
    );
}
