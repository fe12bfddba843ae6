//! End to end with xlbd attached: traffic that is not for a VIP reaches
//! the LB node's own stack unchanged: TCP to its own address, ping over
//! both families, ARP and IPv6 neighbour discovery. Needs root; never
//! skips.

mod e2e_support;

use std::net::SocketAddr;
use std::path::Path;

use e2e_support::*;
use lb_common::Stat;
use xlb_testbed::xlbd_config::{Protocol, XlbdConfig};
use xlb_testbed::{Testbed, plan};

fn ping(testbed: &Testbed, from: &str, target: &str) {
    testbed
        .exec(from, &["ping", "-c", "1", "-W", "2", target])
        .unwrap_or_else(|err| panic!("ping {target} from {from}: {err:#}"));
}

#[test]
fn lb_node_own_traffic_passes_with_xlb_attached() {
    let testbed = testbed(1);
    let config = XlbdConfig::for_testbed(&testbed)
        .vip("web", plan::vip_v4(1).into(), 80, Protocol::Tcp)
        .pool("web", &v4_backends(&[(1, 100)]), None);
    let xlbd = start_xlbd(&testbed, &config);
    let server = Path::new(env!("CARGO_BIN_EXE_xlb-backend"));
    testbed
        .spawn_labeled(testbed.lb_ns(), "lb-server", server, &["--name", "lb"])
        .expect("a server on the LB node");
    let before = xlbd.counters().expect("counters");

    // The server binds before it serves; give it a moment by retrying.
    let lb_v4 = SocketAddr::new(plan::LB_V4.into(), 80);
    let lb_v6 = SocketAddr::new(plan::LB_V6.into(), 8080);
    for target in [lb_v4, lb_v6] {
        let body = (0..50)
            .find_map(|_| {
                let reply = testbed.http_get(target).ok();
                if reply.is_none() {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                reply
            })
            .unwrap_or_else(|| panic!("no answer from the LB node's own server at {target}"));
        assert_eq!(body, "backend lb\n", "{target}");
    }
    ping(&testbed, testbed.client_ns(), &plan::LB_V4.to_string());
    ping(&testbed, testbed.client_ns(), &plan::LB_V6.to_string());

    // Forget the LB's MAC on the router: the next ping needs ARP and
    // neighbour solicitation answered by the LB through the program.
    let router = testbed.router_ns();
    for family in ["-4", "-6"] {
        testbed
            .exec(router, &["ip", family, "neigh", "flush", "dev", "eth0"])
            .expect("flush the router's neighbours");
    }
    ping(&testbed, router, &plan::LB_V4.to_string());
    ping(&testbed, router, &plan::LB_V6.to_string());
    let neighbours = testbed
        .exec(router, &["ip", "-6", "neigh", "show", "dev", "eth0"])
        .expect("router's neighbours");
    let lb_mac = plan::mac(plan::Node::Lb, plan::Port::Eth0);
    assert!(
        neighbours.contains(&format!("{} lladdr {lb_mac}", plan::LB_V6)),
        "router did not learn the LB's MAC by neighbour discovery:\n{neighbours}"
    );

    let after = xlbd.counters().expect("counters");
    for stat in [Stat::PassNotVip, Stat::PassNotIp] {
        assert!(
            after.get(stat) > before.get(stat),
            "{stat:?} did not grow: {} -> {}",
            before.get(stat),
            after.get(stat)
        );
    }
    assert_eq!(
        after.get(Stat::TxForwarded),
        before.get(Stat::TxForwarded),
        "non-VIP traffic was forwarded"
    );
}
