//! End to end under abuse of the control plane: a storm of reloads, good
//! and bad mixed, then xlbd killed with SIGKILL again and again (once right
//! after a SIGHUP, so mid-reload), all while keep-alive connections carry
//! requests. No connection may break or change backend, and the final
//! state must be the last good config. Needs root; never skips.
//!
//! Counts are bounded for CI; `XLB_STORM_RELOADS` and `XLB_STORM_KILLS`
//! raise them (`cargo xtask bench` runs the long version).

mod e2e_support;

use std::net::IpAddr;

use e2e_support::*;
use xlb_testbed::xlbd_config::{Protocol, XlbdConfig};
use xlb_testbed::{KeepAliveConn, Testbed, plan};

const PORT: u16 = 8080;

/// Keep-alive connections held through the storm: enough that every
/// backend likely holds one.
const CONNECTIONS: usize = 6;

fn count_from_env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Every held connection still answers from its first backend, and a new
/// connection to the VIP is answered.
fn all_served(testbed: &Testbed, held: &mut [(KeepAliveConn, usize)], after: &str) {
    for (connection, backend) in held.iter_mut() {
        let reply = connection
            .get()
            .unwrap_or_else(|err| panic!("a held connection broke after {after}: {err:#}"));
        assert_eq!(
            backend_of(&reply),
            *backend,
            "a held connection changed backend after {after}"
        );
    }
    testbed
        .http_get(plan::vip_socket_v4(1, PORT))
        .unwrap_or_else(|err| panic!("a new connection fails after {after}: {err:#}"));
}

/// The config of round `round`: the same three backends, weights turning.
fn good_config(testbed: &Testbed, round: usize) -> XlbdConfig {
    let weight = |k: usize| 50 + 50 * ((round + k) % 3) as u32;
    XlbdConfig::for_testbed(testbed)
        .vip("web", plan::vip_v4(1).into(), PORT, Protocol::Tcp)
        .pool(
            "web",
            &v4_backends(&[(1, weight(1)), (2, weight(2)), (3, weight(3))]),
            None,
        )
}

/// The weights xlbd reports for pool web, by backend address.
fn reported_weights(xlbd: &xlb_testbed::Xlbd) -> Vec<(IpAddr, u32)> {
    let status = xlbd.status().expect("xlbd status");
    let web = status
        .vips
        .iter()
        .find(|v| v.name == "web")
        .expect("VIP web in the status");
    let mut weights: Vec<_> = web.backends.iter().map(|b| (b.address, b.weight)).collect();
    weights.sort();
    weights
}

fn expected_weights(round: usize) -> Vec<(IpAddr, u32)> {
    let mut weights: Vec<_> = (1..=3)
        .map(|k| {
            (
                IpAddr::from(plan::backend_v4(k)),
                50 + 50 * ((round + k) % 3) as u32,
            )
        })
        .collect();
    weights.sort();
    weights
}

#[test]
fn connections_survive_a_reload_storm_and_repeated_kills() {
    let reloads = count_from_env("XLB_STORM_RELOADS", 24);
    let kills = count_from_env("XLB_STORM_KILLS", 6);
    let testbed = testbed(3);
    let mut xlbd = start_xlbd(&testbed, &good_config(&testbed, 0));

    let mut held: Vec<(KeepAliveConn, usize)> = (0..CONNECTIONS)
        .map(|_| {
            let mut connection = testbed
                .keep_alive(plan::vip_socket_v4(1, PORT))
                .expect("keep-alive connection to the VIP");
            let first = connection.get().expect("first request");
            (connection, backend_of(&first))
        })
        .collect();

    // Odd rounds are broken (an unknown key): refused, running config stays.
    let mut last_good = 0;
    for round in 1..=reloads {
        if round % 2 == 1 {
            let broken = format!(
                "{}\nno_such_key: 1\n",
                good_config(&testbed, round).render()
            );
            let refused = xlbd.reload(&broken);
            assert!(
                refused.is_err(),
                "round {round}: a broken config was accepted"
            );
        } else {
            xlbd.reload(&good_config(&testbed, round).render())
                .unwrap_or_else(|err| panic!("round {round}: good reload refused: {err:#}"));
            last_good = round;
        }
        all_served(&testbed, &mut held, &format!("reload round {round}"));
    }
    assert_eq!(
        reported_weights(&xlbd),
        expected_weights(last_good),
        "after the storm xlbd runs the last good config"
    );

    for kill in 1..=kills {
        if kill == 1 {
            // Mid-reload: SIGHUP, then SIGKILL before the reload can finish.
            xlbd.process().signal(libc::SIGHUP);
        }
        xlbd.kill().expect("SIGKILL xlbd");
        all_served(&testbed, &mut held, &format!("kill {kill}"));
        xlbd = testbed
            .start_xlbd(&good_config(&testbed, last_good).render())
            .unwrap_or_else(|err| panic!("restart {kill}: {err:#}"));
        all_served(&testbed, &mut held, &format!("restart {kill}"));
    }
    assert_eq!(
        reported_weights(&xlbd),
        expected_weights(last_good),
        "after the kills xlbd still runs the last good config"
    );
    println!(
        "{reloads} reloads ({} refused), {kills} SIGKILLs, {CONNECTIONS} connections kept",
        reloads.div_ceil(2)
    );
}
