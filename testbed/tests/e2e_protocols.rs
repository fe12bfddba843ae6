//! End to end through xlbd: a UDP VIP and a port-0 VIP (every port of
//! the address). Needs root; never skips.

mod e2e_support;

use std::collections::BTreeSet;

use e2e_support::*;
use xlb_testbed::plan;
use xlb_testbed::xlbd_config::{Protocol, XlbdConfig};

#[test]
fn udp_vip_answers_from_every_backend_over_both_families() {
    const QUERIES: usize = 200;
    let backends = [(1, 100), (2, 100), (3, 100)];
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
        let mut seen = BTreeSet::new();
        for i in 0..QUERIES {
            let reply = testbed
                .udp_query(target)
                .unwrap_or_else(|err| panic!("query {i} to {target}: {err:#}"));
            seen.insert(backend_of(&reply));
        }
        assert_eq!(
            seen,
            BTreeSet::from([1, 2, 3]),
            "{QUERIES} UDP queries to {target} reached only {seen:?}"
        );
    }
}

#[test]
fn port_zero_vip_takes_connections_on_any_port() {
    const REQUESTS: usize = 100;
    let backends = [(1, 100), (2, 100)];
    let testbed = testbed(2);
    let config = XlbdConfig::for_testbed(&testbed)
        .vip("any-port", plan::vip_v4(3).into(), 0, Protocol::Tcp)
        .pool("any-port", &v4_backends(&backends), None);
    let _xlbd = start_xlbd(&testbed, &config);

    for port in plan::HTTP_PORTS {
        let target = plan::vip_socket_v4(3, port);
        let stats = testbed
            .run_requests(target, REQUESTS, |_, _| {})
            .expect("requests run");
        assert_eq!(stats.failures, 0, "{target}: {stats:?}");
        assert_eq!(
            stats.per_backend.keys().collect::<Vec<_>>(),
            ["b1", "b2"],
            "{target}: both backends answer: {stats:?}"
        );
    }
}
