//! End to end through xlbd: a UDP VIP and a port-0 VIP (every port of
//! the address), each over 1000 new flows whose shares must follow the
//! weights. Needs root; never skips.
//!
//! The tolerance, as in `e2e_shares`: a backend's count over n flows is
//! binomial, with a standard deviation of at most 1.58 points at n = 1000;
//! ±6 points is 3.8 standard deviations or more.

mod e2e_support;

use e2e_support::*;
use xlb_testbed::shares::{check_shares, format_shares, shares};
use xlb_testbed::xlbd_config::{Protocol, XlbdConfig};
use xlb_testbed::{RequestStats, plan};

/// New flows per VIP (per family for UDP).
const FLOWS: usize = 1000;
/// How far a measured share may be from its weight's share, in points.
const TOLERANCE_POINTS: f64 = 6.0;

fn check_spread(what: &str, stats: &RequestStats, backends: &[(usize, u32)]) {
    println!(
        "{what}: {} flows\n{}",
        FLOWS,
        format_shares(&shares(stats, &weights(backends)))
    );
    check_shares(stats, &weights(backends), TOLERANCE_POINTS)
        .unwrap_or_else(|err| panic!("{what}: {err:#}"));
}

#[test]
fn udp_vip_spreads_queries_by_weight_over_both_families() {
    let backends = [(1, 100), (2, 100), (3, 200)];
    let testbed = testbed(3);
    let config = XlbdConfig::for_testbed(&testbed)
        .vip(
            "dns4",
            plan::vip_v4(2).into(),
            plan::UDP_PORT,
            Protocol::Udp,
        )
        .pool("dns4", &v4_backends(&backends), None)
        .vip(
            "dns6",
            plan::vip_v6(2).into(),
            plan::UDP_PORT,
            Protocol::Udp,
        )
        .pool("dns6", &v6_backends(&backends), None);
    let _xlbd = start_xlbd(&testbed, &config);

    for target in [
        plan::vip_socket_v4(2, plan::UDP_PORT),
        plan::vip_socket_v6(2, plan::UDP_PORT),
    ] {
        // Each query comes from a new socket, so a new source port.
        let mut stats = RequestStats::default();
        for i in 0..FLOWS {
            let reply = testbed
                .udp_query(target)
                .unwrap_or_else(|err| panic!("query {i} to {target}: {err:#}"));
            *stats
                .per_backend
                .entry(plan::backend_name(backend_of(&reply)))
                .or_default() += 1;
        }
        check_spread(&format!("udp {target}"), &stats, &backends);
    }
}

#[test]
fn port_zero_vip_takes_connections_on_any_port_by_weight() {
    let backends = [(1, 100), (2, 300)];
    let testbed = testbed(2);
    let config = XlbdConfig::for_testbed(&testbed)
        .vip("any-port", plan::vip_v4(3).into(), 0, Protocol::Tcp)
        .pool("any-port", &v4_backends(&backends), None);
    let _xlbd = start_xlbd(&testbed, &config);

    let mut total = RequestStats::default();
    for port in plan::HTTP_PORTS {
        let target = plan::vip_socket_v4(3, port);
        let stats = testbed
            .run_requests(target, FLOWS / plan::HTTP_PORTS.len(), |_, _| {})
            .expect("requests run");
        assert_eq!(stats.failures, 0, "{target}: {stats:?}");
        assert_eq!(
            stats.per_backend.keys().collect::<Vec<_>>(),
            ["b1", "b2"],
            "{target}: both backends answer: {stats:?}"
        );
        for (backend, count) in stats.per_backend {
            *total.per_backend.entry(backend).or_default() += count;
        }
    }
    check_spread("port-0 VIP over every test port", &total, &backends);
}
