//! End to end under abuse of the control plane: a storm of reloads, good
//! and bad mixed, then xlbd killed with SIGKILL again and again at seeded
//! random moments (idle, mid-reload of a good config, mid-reload of a
//! broken one), all while keep-alive connections carry requests. No
//! connection may break or change backend; after every reload, kill and
//! restart the pinned Maglev tables are compared slot by slot with the
//! tables built from the last good config (a kill mid-reload may leave the
//! old or the new one, never a mix). Needs root; never skips.
//!
//! Counts are bounded for CI; `XLB_STORM_RELOADS` and `XLB_STORM_KILLS`
//! raise them (`cargo xtask bench` runs the long version), and
//! `XLB_STORM_SEED` picks other kill moments.

mod e2e_support;
#[path = "e2e_support/tables.rs"]
mod tables;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use e2e_support::*;
use xlb_testbed::xlbd_config::{Protocol, XlbdConfig};
use xlb_testbed::{KeepAliveConn, Testbed, Xlbd, plan};

use tables::{Tables, desired_tables, pinned_tables, slots_differing};

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

/// Kills mid-reload land up to this long after the SIGHUP: wide enough
/// that on the project's machine some land before the new table is
/// written and some after (the closing line counts which).
const RELOAD_WINDOW_MS: u64 = 400;

/// The kill moments: splitmix64 from a seed, so a failing run can be
/// replayed with its `XLB_STORM_SEED`.
struct Moments(u64);

impl Moments {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % bound
    }

    fn millis(&mut self, bound: u64) -> Duration {
        Duration::from_millis(self.below(bound))
    }
}

/// What the storm saw, for its closing line.
#[derive(Default)]
struct Tally {
    good_reloads: usize,
    bad_reloads: usize,
    kills_idle: usize,
    kills_mid_reload: usize,
    kills_mid_bad_reload: usize,
    /// Mid-reload kills after which the pinned tables were still the old.
    kills_before_apply: usize,
    table_checks: usize,
    mismatches: Vec<String>,
}

impl Tally {
    /// Compares the pinned tables with one of `wanted` (the first is the
    /// one a running xlbd must converge on), waiting up to a second;
    /// returns which matched.
    fn check_tables(&mut self, testbed: &Testbed, wanted: &[&Tables], after: &str) -> usize {
        self.table_checks += 1;
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let pinned = pinned_tables(testbed.pin_path());
            if let Some(matched) = wanted.iter().position(|tables| **tables == pinned) {
                return matched;
            }
            if Instant::now() >= deadline {
                let differing = slots_differing(&pinned, wanted[0]);
                self.mismatches
                    .push(format!("after {after}: {differing} slots differ"));
                return 0;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Replaces xlbd's config file with `config` and sends SIGHUP, without
/// waiting for the reload.
fn start_reload(xlbd: &Xlbd, config: &str) {
    let path = xlbd.config_path();
    let staged = path.with_extension("staged");
    std::fs::write(&staged, config).expect("staging the config");
    std::fs::rename(&staged, path).expect("replacing the config");
    xlbd.process().signal(libc::SIGHUP);
}

#[test]
fn connections_survive_a_reload_storm_and_repeated_kills() {
    let reloads = count_from_env("XLB_STORM_RELOADS", 24);
    let kills = count_from_env("XLB_STORM_KILLS", 6);
    let seed = count_from_env("XLB_STORM_SEED", 0x5eed) as u64;
    let mut moments = Moments(seed);
    let mut tally = Tally::default();
    let testbed = testbed(3);
    let mut xlbd = start_xlbd(&testbed, &good_config(&testbed, 0));
    let desired = |round: usize| desired_tables(&good_config(&testbed, round).render());
    // Weights turn with the round, so consecutive tables differ.
    assert!(!desired(0).is_empty() && desired(0) != desired(1));

    let mut held: Vec<(KeepAliveConn, usize)> = (0..CONNECTIONS)
        .map(|_| {
            let mut connection = testbed
                .keep_alive(plan::vip_socket_v4(1, PORT))
                .expect("keep-alive connection to the VIP");
            let first = connection.get().expect("first request");
            (connection, backend_of(&first))
        })
        .collect();
    tally.check_tables(&testbed, &[&desired(0)], "the start");

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
            tally.bad_reloads += 1;
        } else {
            xlbd.reload(&good_config(&testbed, round).render())
                .unwrap_or_else(|err| panic!("round {round}: good reload refused: {err:#}"));
            last_good = round;
            tally.good_reloads += 1;
        }
        let after = format!("reload round {round}");
        all_served(&testbed, &mut held, &after);
        tally.check_tables(&testbed, &[&desired(last_good)], &after);
    }
    assert_eq!(
        reported_weights(&xlbd),
        expected_weights(last_good),
        "after the storm xlbd runs the last good config"
    );

    for kill in 1..=kills {
        let before = desired(last_good);
        // The first kill always lands mid-reload; the others where the
        // seed says, at a random moment of the reload.
        let mode = if kill == 1 { 1 } else { moments.below(3) };
        let what = match mode {
            0 => {
                std::thread::sleep(moments.millis(200));
                tally.kills_idle += 1;
                "idle"
            }
            1 => {
                last_good += 1;
                start_reload(&xlbd, &good_config(&testbed, last_good).render());
                std::thread::sleep(moments.millis(RELOAD_WINDOW_MS));
                tally.kills_mid_reload += 1;
                "mid-reload"
            }
            _ => {
                let broken = format!(
                    "{}\nno_such_key: 1\n",
                    good_config(&testbed, last_good + 1).render()
                );
                start_reload(&xlbd, &broken);
                std::thread::sleep(moments.millis(RELOAD_WINDOW_MS));
                tally.kills_mid_bad_reload += 1;
                "mid-broken-reload"
            }
        };
        xlbd.kill().expect("SIGKILL xlbd");
        let after = format!("kill {kill} ({what})");
        all_served(&testbed, &mut held, &after);
        // Dead mid-reload: the old table or the new one, never a mix.
        let matched = tally.check_tables(&testbed, &[&desired(last_good), &before], &after);
        if mode == 1 && matched == 1 {
            tally.kills_before_apply += 1;
        }

        xlbd = testbed
            .start_xlbd(&good_config(&testbed, last_good).render())
            .unwrap_or_else(|err| panic!("restart {kill}: {err:#}"));
        let after = format!("restart {kill}");
        all_served(&testbed, &mut held, &after);
        tally.check_tables(&testbed, &[&desired(last_good)], &after);
    }
    assert_eq!(
        reported_weights(&xlbd),
        expected_weights(last_good),
        "after the kills xlbd still runs the last good config"
    );
    println!(
        "seed {seed:#x}: {} reloads ({} good, {} refused), {kills} SIGKILLs ({} idle, {} \
         mid-reload of which {} before the new table, {} mid-broken-reload), {CONNECTIONS} \
         connections kept (0 lost), {} table checks, {} mismatches",
        tally.good_reloads + tally.bad_reloads,
        tally.good_reloads,
        tally.bad_reloads,
        tally.kills_idle,
        tally.kills_mid_reload,
        tally.kills_before_apply,
        tally.kills_mid_bad_reload,
        tally.table_checks,
        tally.mismatches.len()
    );
    assert!(tally.mismatches.is_empty(), "{:#?}", tally.mismatches);
}
