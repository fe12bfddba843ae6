//! End to end through xlbd: one long-lived keep-alive TCP connection to a
//! VIP stays with its backend through every change an operator makes:
//! a backend added, another removed, weight changes, a reload adding a
//! service, and xlbd killed and started again. Needs root; never skips.

mod e2e_support;

use std::net::IpAddr;

use e2e_support::*;
use xlb_testbed::xlbd_config::{BackendSpec, Protocol, XlbdConfig};
use xlb_testbed::{KeepAliveConn, Testbed, plan};

const PORT: u16 = 8080;

/// The connection still answers, from backend `expected`, and a new
/// connection to the VIP is answered too.
fn still_served(testbed: &Testbed, connection: &mut KeepAliveConn, expected: usize, after: &str) {
    let reply = connection
        .get()
        .unwrap_or_else(|err| panic!("keep-alive connection broke after {after}: {err:#}"));
    assert_eq!(
        reply,
        plan::backend_reply(expected),
        "keep-alive connection moved to another backend after {after}"
    );
    testbed
        .http_get(plan::vip_socket_v4(1, PORT))
        .unwrap_or_else(|err| panic!("new connection fails after {after}: {err:#}"));
}

#[test]
fn keep_alive_connection_keeps_its_backend_through_changes_and_restarts() {
    let testbed = testbed(4);
    let mut config = XlbdConfig::for_testbed(&testbed)
        .vip("web", plan::vip_v4(1).into(), PORT, Protocol::Tcp)
        .pool("web", &v4_backends(&[(1, 100), (2, 100), (3, 100)]), None);
    let xlbd = start_xlbd(&testbed, &config);

    let mut connection = testbed
        .keep_alive(plan::vip_socket_v4(1, PORT))
        .expect("keep-alive connection to the VIP");
    let first = connection.get().expect("first request");
    let ours = backend_of(&first);
    let other = [1, 2, 3]
        .into_iter()
        .find(|k| *k != ours)
        .expect("another backend");
    println!("keep-alive connection served by b{ours}; b{other} will be removed");

    config
        .pool_mut("web")
        .expect("pool")
        .backends
        .push(BackendSpec::v4(4, 100));
    xlbd.reload(&config.render()).expect("reload: b4 added");
    still_served(&testbed, &mut connection, ours, "adding b4");

    let pool = config.pool_mut("web").expect("pool");
    let removed = IpAddr::from(plan::backend_v4(other));
    pool.backends.retain(|b| b.address != removed);
    xlbd.reload(&config.render())
        .expect("reload: a backend removed");
    still_served(&testbed, &mut connection, ours, "removing another backend");

    let ours_addr = IpAddr::from(plan::backend_v4(ours));
    for backend in &mut config.pool_mut("web").expect("pool").backends {
        backend.weight = if backend.address == ours_addr {
            10
        } else {
            500
        };
    }
    xlbd.reload(&config.render())
        .expect("reload: weights changed");
    still_served(&testbed, &mut connection, ours, "changing weights");

    let config = config
        .vip("dns", plan::vip_v4(2).into(), plan::UDP_PORT, Protocol::Udp)
        .pool("dns", &v4_backends(&[(4, 100)]), None);
    xlbd.reload(&config.render())
        .expect("reload: a service added");
    still_served(&testbed, &mut connection, ours, "a reload adding a service");

    xlbd.kill().expect("SIGKILL xlbd");
    still_served(&testbed, &mut connection, ours, "xlbd was killed");
    let restarted = start_xlbd(&testbed, &config);
    assert_ne!(restarted.pid(), xlbd.pid());
    still_served(&testbed, &mut connection, ours, "xlbd was restarted");
}
