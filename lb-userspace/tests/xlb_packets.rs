//! Packet tests of `xlb` through `BPF_PROG_TEST_RUN`: a table of
//! (description, input frame, expected action, expected output, counter),
//! then the stateful cases (flow tracking across table and health changes,
//! ICMP steering) and a timing run.
//!
//! Needs root: each test loads the program into a fresh network namespace.

#[path = "common/xlb_cases.rs"]
mod xlb_cases;
#[path = "common/xlb_checks.rs"]
mod xlb_checks;
#[path = "common/xlb_frames.rs"]
mod xlb_frames;
#[path = "common/xlb_harness.rs"]
mod xlb_harness;
#[path = "common/xlb_hostile.rs"]
mod xlb_hostile;
#[path = "common/xlb_world.rs"]
mod xlb_world;

use std::net::IpAddr;

use lb_common::{BACKEND_F_UP, Stat, flow_hash, hash::HashInput};
use xlb_cases::cases;
use xlb_checks::{EncapExpect, assert_encapsulated};
use xlb_frames::*;
use xlb_harness::{Lb, flow_key, trivial_program};
use xlb_world::*;

#[test]
fn every_case_of_the_packet_table_gets_its_action_output_and_counter() {
    let mut lb = standard_lb();
    for case in cases() {
        run_case(&mut lb, &case);
    }
}

#[test]
fn tracked_flow_keeps_its_backend_after_the_table_changes() {
    let mut lb = standard_lb();
    let vip = V4_TCP;
    let (key, syn, ack) = client_flow_v4(&vip, 40_001);
    let first = forwarded_backend(&lb, &syn, &key);
    assert_eq!(
        lb.traffic("VIP_STATS", vip.id).new_flows,
        1,
        "one new flow counted"
    );
    assert_eq!(
        lb.traffic("BACKEND_STATS", first).new_flows,
        1,
        "on its backend too"
    );

    let other = other_backend(&vip, first);
    lb.swap_table(&vip, vec![other; TABLE_SIZE_USIZE]);
    assert_eq!(
        forwarded_backend(&lb, &ack, &key),
        first,
        "tracked flow stays"
    );
    assert_eq!(
        lb.traffic("VIP_STATS", vip.id).new_flows,
        1,
        "no second new flow"
    );

    let (new_key, new_syn, _) = client_flow_v4(&vip, 40_002);
    assert_eq!(
        forwarded_backend(&lb, &new_syn, &new_key),
        other,
        "new flows use the new half"
    );
}

#[test]
fn tracked_flow_is_resteered_when_its_backend_is_down() {
    let mut lb = standard_lb();
    let vip = V4_TCP;
    let (key, syn, ack) = client_flow_v4(&vip, 40_003);
    let first = forwarded_backend(&lb, &syn, &key);
    let other = other_backend(&vip, first);
    lb.set_backend_flags(first, 0);
    lb.swap_table(&vip, vec![other; TABLE_SIZE_USIZE]);

    assert_eq!(
        forwarded_backend(&lb, &ack, &key),
        other,
        "down backend's flow moves"
    );
    let flow = lb.flow(&key).expect("flow still tracked");
    assert_eq!(
        flow.backend_id, other,
        "FLOWS entry rewritten to the new backend"
    );
}

#[test]
fn draining_backend_keeps_its_flow_but_a_new_syn_is_scheduled_afresh() {
    let mut lb = standard_lb();
    let vip = V4_TCP;
    let (key, syn, ack) = client_flow_v4(&vip, 40_004);
    let first = forwarded_backend(&lb, &syn, &key);
    let other = other_backend(&vip, first);
    lb.set_backend_flags(first, BACKEND_F_UP);
    lb.swap_table(&vip, vec![other; TABLE_SIZE_USIZE]);

    assert_eq!(
        forwarded_backend(&lb, &ack, &key),
        first,
        "draining backend keeps the flow"
    );
    assert_eq!(
        forwarded_backend(&lb, &syn, &key),
        other,
        "a new SYN is rescheduled"
    );
    assert_eq!(
        lb.flow(&key).expect("tracked").backend_id,
        other,
        "entry follows the SYN"
    );
}

#[test]
fn a_syn_on_a_reused_tuple_follows_the_live_table() {
    // Clients reuse ports: a SYN on a tuple still in FLOWS is a new
    // connection and must see a weight change like any other.
    let mut lb = standard_lb();
    let vip = V4_TCP;
    let (key, syn, ack) = client_flow_v4(&vip, 40_005);
    let first = forwarded_backend(&lb, &syn, &key);
    let other = other_backend(&vip, first);
    lb.swap_table(&vip, vec![other; TABLE_SIZE_USIZE]);

    assert_eq!(
        forwarded_backend(&lb, &ack, &key),
        first,
        "the established flow stays: its backend is still up, flags unchanged"
    );
    assert_eq!(
        forwarded_backend(&lb, &syn, &key),
        other,
        "the new connection on the same tuple follows the live table"
    );
    assert_eq!(
        lb.traffic("VIP_STATS", vip.id).new_flows,
        2,
        "both connections counted as new flows"
    );
    assert_eq!(
        lb.traffic("BACKEND_STATS", other).new_flows,
        1,
        "the second on its backend"
    );
}

#[test]
fn icmp_frag_needed_about_a_vip_flow_reaches_that_flows_backend() {
    let mut lb = standard_lb();
    let vip = V4_TCP;
    let (key, syn, _) = client_flow_v4(&vip, 40_005);
    let owner = forwarded_backend(&lb, &syn, &key);
    // The table now points elsewhere: only FLOWS knows the owner.
    lb.swap_table(&vip, vec![other_backend(&vip, owner); TABLE_SIZE_USIZE]);

    let frame = icmp_frag_needed_from_router(&vip, 40_005);
    let before = lb.stat(Stat::TxIcmpSteered);
    let out = lb.run(&frame);
    assert_eq!(out.action, XDP_TX, "steered ICMP is sent");
    assert_eq!(
        lb.stat(Stat::TxIcmpSteered),
        before + 1,
        "counted as steered"
    );
    let expect = EncapExpect {
        input: &frame,
        l2_len: 14,
        backend: lb.backend_addrs[&owner],
        hash: flow_hash(&key, HashInput::FiveTuple),
        inner_df: false,
    };
    assert_encapsulated(&out.frame, &expect);

    let unrelated = icmp_frag_needed_from_router(&vip, 40_999);
    let out = lb.run(&unrelated);
    assert_eq!(
        out.action, XDP_TX,
        "an untracked flow's ICMP follows Maglev"
    );
    let maglev = lb.maglev_backend(vip.id, &flow_key_v4(&vip, 40_999), HashInput::FiveTuple);
    assert_eq!(
        outer_dst(&out.frame, 14),
        lb.backend_addrs[&maglev],
        "to the Maglev choice"
    );
}

#[test]
fn icmpv6_packet_too_big_about_a_vip_flow_reaches_that_flows_backend() {
    let mut lb = standard_lb();
    let vip = V6_TCP;
    let IpAddr::V6(vip_addr) = vip.addr else {
        panic!("IPv6 VIP expected")
    };
    let key = flow_key(IpAddr::from(CLIENT6), vip.addr, 40_006, vip.port, vip.proto);
    let syn = tcp(40_006, vip.port, true, 0);
    let syn = ether6(&ipv6(CLIENT6, vip_addr.octets(), TCP, &syn));
    let owner = forwarded_backend(&lb, &syn, &key);
    // The table now points elsewhere: only FLOWS knows the owner.
    lb.swap_table(&vip, vec![other_backend(&vip, owner); TABLE_SIZE_USIZE]);

    let frame = icmpv6_too_big_from_router(&vip, 40_006);
    let before = lb.stat(Stat::TxIcmpSteered);
    let out = lb.run(&frame);
    assert_eq!(out.action, XDP_TX, "steered ICMPv6 is sent");
    assert_eq!(
        lb.stat(Stat::TxIcmpSteered),
        before + 1,
        "counted as steered"
    );
    let expect = EncapExpect {
        input: &frame,
        l2_len: 14,
        backend: lb.backend_addrs[&owner],
        hash: flow_hash(&key, HashInput::FiveTuple),
        inner_df: false,
    };
    assert_encapsulated(&out.frame, &expect);
}

#[test]
fn verifier_accepts_xlb_and_reports_its_instruction_count() {
    let lb = standard_lb();
    let info = lb.prog().info().expect("program info");
    let count = info
        .verified_instruction_count()
        .expect("kernel reports the count");
    eprintln!("xlb: {count} verified instructions");
    assert!(count > 0, "verifier processed the program");
}

#[test]
fn time_per_packet_is_measured_for_new_tracked_and_non_vip_traffic() {
    const REPEAT: u32 = 100_000;
    let lb = standard_lb();
    let trivial = trivial_program();
    let vip = V4_TCP;
    let (_, syn, ack) = client_flow_v4(&vip, 41_000);
    let other = ether4(&ipv4(
        CLIENT4,
        [192, 0, 2, 99],
        TCP,
        &tcp(1, 80, true, 0),
        V4_DF,
    ));

    // New flows: a fresh source port per run, one run each, so every
    // packet misses FLOWS (repeat would feed the encapsulated output back).
    let new_ns = mean_ns(REPEAT / 10, |i| {
        let (_, syn, _) = client_flow_v4(&vip, 10_000 + (i % 50_000) as u16);
        lb.run_timed(&syn, 1)
    });
    lb.run(&syn);
    // Tracked and non-VIP: one call per packet too (XDP_TX output would be
    // re-run as input with repeat); the kernel's per-run time is used.
    let tracked_ns = mean_ns(REPEAT / 10, |_| lb.run_timed(&ack, 1));
    let pass_ns = lb.run_timed(&other, REPEAT);
    let trivial_fd = std::os::fd::AsRawFd::as_raw_fd(&trivial) as u32;
    let trivial_ns = xlb::testrun::test_run_fd(trivial_fd, &other, repeat_opts(REPEAT))
        .expect("trivial run")
        .duration_ns;
    eprintln!(
        "ns/packet: new flow {new_ns}, tracked flow {tracked_ns}, non-VIP pass {pass_ns}, \
         trivial XDP_PASS program {trivial_ns}"
    );
}

/// Backend id the outer header of a forwarded frame names; panics unless
/// the frame was forwarded.
fn backend_of_output(lb: &Lb, frame: &[u8], what: &str) -> u32 {
    let out = lb.run(frame);
    assert_eq!(out.action, XDP_TX, "{what}: forwarded");
    let dst = outer_dst(&out.frame, 14);
    lb.backend_addrs
        .iter()
        .find(|(_, a)| **a == dst)
        .map(|(id, _)| *id)
        .expect("outer destination is a known backend")
}

#[test]
fn later_ipv6_fragments_follow_the_first_when_options_follow_the_fragment_header() {
    // The fragment header's next header is that of the fragmentable part:
    // here destination options, then TCP. Only the first fragment shows
    // the TCP; the later ones must still reach the same backend.
    let lb = standard_lb();
    let IpAddr::V6(vip) = V6_TCP.addr else {
        panic!("IPv6 VIP expected")
    };
    let first = ipv6_with_exts(
        CLIENT6,
        vip.octets(),
        &[Ext::Fragment(0, true), Ext::DestOpts],
        TCP,
        &tcp(1700, 443, true, 8),
    );
    let later = ipv6_with_exts(
        CLIENT6,
        vip.octets(),
        &[Ext::Fragment(5, false)],
        Ext::DestOpts.number(),
        &[7; 16],
    );
    let first_backend = backend_of_output(&lb, &ether6(&first), "first fragment");
    let later_backend = backend_of_output(&lb, &ether6(&later), "later fragment");
    assert_eq!(
        first_backend, later_backend,
        "fragments of one datagram split"
    );
}

#[test]
fn an_ipv6_atomic_fragment_of_a_tracked_flow_reaches_the_flows_backend() {
    // RFC 6946: a fragment header with offset 0 and M clear is a whole
    // packet and is processed as one. A tracked flow must not move for it.
    let lb = standard_lb();
    let vip = V6_TCP;
    let IpAddr::V6(vip_addr) = vip.addr else {
        panic!("IPv6 VIP expected")
    };
    let addrs = flow_key(CLIENT6.into(), vip.addr, 0, 0, TCP);
    let by_addrs = lb.maglev_backend(vip.id, &addrs, HashInput::Addresses);
    let sport = (1800..2000)
        .find(|&p| {
            let key = flow_key(CLIENT6.into(), vip.addr, p, vip.port, TCP);
            lb.maglev_backend(vip.id, &key, HashInput::FiveTuple) != by_addrs
        })
        .expect("a port whose 5-tuple hash differs from the address hash");
    let packet = |exts: &[Ext], syn| {
        let l4 = tcp(sport, vip.port, syn, 0);
        ether6(&ipv6_with_exts(CLIENT6, vip_addr.octets(), exts, TCP, &l4))
    };
    let owner = backend_of_output(&lb, &packet(&[], true), "SYN");
    let atomic = packet(&[Ext::Fragment(0, false)], false);
    assert_eq!(
        backend_of_output(&lb, &atomic, "atomic fragment"),
        owner,
        "the atomic fragment left its flow's backend"
    );
}
