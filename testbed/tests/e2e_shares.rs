//! End to end through xlbd: new TCP connections to a VIP spread over its
//! backends by weight, over IPv4 and IPv6, and the pinned counters see
//! the forwarded packets. Needs root; never skips.
//!
//! The tolerance: with weights 1:1:2 the expected shares are 25/25/50 %.
//! Each connection picks a backend independently (the flow hash of a new
//! source port), so a backend's count is binomial: over n = 1500
//! connections its share has a standard deviation of
//! sqrt(p(1-p)/n) = 1.12 points at p = 0.25 and 1.29 points at p = 0.5.
//! ±5 points is then 3.9 standard deviations or more, which a fair
//! spread leaves with probability below 1e-4 per backend; Maglev's own
//! error with 65537 slots and 3 backends is below 0.01 points.

mod e2e_support;

use std::net::SocketAddr;

use e2e_support::*;
use lb_common::Stat;
use xlb_testbed::shares::{check_shares, format_shares, shares};
use xlb_testbed::xlbd_config::{Protocol, XlbdConfig};
use xlb_testbed::{Testbed, plan};

/// New connections per family.
const CONNECTIONS: usize = 1500;
/// How far a measured share may be from its weight's share, in points.
const TOLERANCE_POINTS: f64 = 5.0;
/// Backends and weights: 1:1:2.
const WEIGHTS: [(usize, u32); 3] = [(1, 100), (2, 100), (3, 200)];

fn config(testbed: &Testbed) -> XlbdConfig {
    XlbdConfig::for_testbed(testbed)
        .vip("web4", plan::vip_v4(1).into(), 80, Protocol::Tcp)
        .pool("web4", &v4_backends(&WEIGHTS), None)
        .vip("web6", plan::vip_v6(1).into(), 80, Protocol::Tcp)
        .pool("web6", &v6_backends(&WEIGHTS), None)
}

fn check_spread(testbed: &Testbed, target: SocketAddr) {
    let stats = testbed
        .run_requests(target, CONNECTIONS, |_, _| {})
        .expect("requests run from the client");
    let rows = shares(&stats, &weights(&WEIGHTS));
    println!(
        "{target}: {CONNECTIONS} connections\n{}",
        format_shares(&rows)
    );
    check_shares(&stats, &weights(&WEIGHTS), TOLERANCE_POINTS)
        .unwrap_or_else(|err| panic!("{target}: {err:#}"));
}

#[test]
fn new_connections_spread_by_weight_over_ipv4_and_ipv6() {
    let testbed = testbed(3);
    let _xlbd = start_xlbd(&testbed, &config(&testbed));

    check_spread(&testbed, plan::vip_socket_v4(1, 80));
    check_spread(&testbed, plan::vip_socket_v6(1, 80));
}

#[test]
fn forwarded_packets_and_new_flows_are_counted_in_the_pinned_maps() {
    const REQUESTS: usize = 200;
    let testbed = testbed(3);
    let xlbd = start_xlbd(&testbed, &config(&testbed));
    let before = xlbd.counters().expect("counters before");

    let stats = testbed
        .run_requests(plan::vip_socket_v4(1, 80), REQUESTS, |_, _| {})
        .expect("requests run");
    let after = xlbd.counters().expect("counters after");

    assert_eq!(stats.failures, 0, "{stats:?}");
    // Every connection sends at least its SYN, the handshake's last ACK
    // and the request through the LB (replies go straight back).
    let forwarded = after.get(Stat::TxForwarded) - before.get(Stat::TxForwarded);
    let minimum = 3 * REQUESTS as u64;
    assert!(
        forwarded >= minimum,
        "TxForwarded grew by {forwarded}, expected at least {minimum}"
    );
    let new_flows = after.vip_new_flows() - before.vip_new_flows();
    assert!(
        new_flows >= REQUESTS as u64,
        "VIP_STATS new flows grew by {new_flows}, expected at least {REQUESTS}"
    );
    let vip_packets = after.vip_packets() - before.vip_packets();
    assert!(
        vip_packets >= minimum,
        "VIP_STATS packets grew by {vip_packets}, expected at least {minimum}"
    );
    println!("{REQUESTS} requests: TxForwarded +{forwarded}, new flows +{new_flows}");
}
