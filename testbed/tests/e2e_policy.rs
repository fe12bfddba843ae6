//! Routing policy end to end, with real TCP connections through XDP:
//! clients of two prefixes reach their own pools, a denied prefix is
//! dropped and counted, a canary takes its share of new connections, the
//! share follows `xlbctl vip split` at run time, and the canary rolls back
//! to 0 % when its backends fail their health checks. Needs root; never
//! skips.
//!
//! Tolerances: a connection goes to the canary when the 16 split bits of
//! its flow hash (a fresh source port each) fall below the share, so the
//! canary's count is binomial. At p = 0.10 over n = 1000 the standard
//! deviation is sqrt(p(1-p)/n) = 0.95 points, so ±3 points is 3.2 of them
//! (a fair split fails it with probability about 0.15 %). At p = 0.30 over
//! n = 1500 it is 1.18 points, and ±4 points is 3.4 of them.

mod e2e_support;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use e2e_support::*;
use lb_common::Stat;
use xlb_testbed::{RequestStats, Testbed, Xlbd, bins, plan};

/// Backends: 1 and 2 serve pool `eu` (the default), 3 and 4 pool `us`.
const BACKENDS: usize = 4;
/// Connections for the canary's share at 10 %.
const CANARY_CONNECTIONS: usize = 1000;
/// Connections after `xlbctl vip split` sets 30 %.
const SPLIT_CONNECTIONS: usize = 1500;

/// The config's head: the testbed's pins, socket and encapsulation.
fn head(testbed: &Testbed) -> String {
    format!(
        "interfaces: [{{name: eth0, mode: native}}]
pin_path: {}
control_socket: {}
metrics_listen: {}
encap: {{source_v4: {}}}
",
        testbed.pin_path().display(),
        testbed.log_dir().join("xlbd.sock").display(),
        xlb_testbed::xlbd_config::METRICS_LISTEN,
        xlb_testbed::xlbd_config::ENCAP_SOURCE_V4,
    )
}

/// A pool of backends `ks`, health-checked on port 80 every 200 ms.
fn pool(name: &str, ks: &[usize]) -> String {
    let mut out = format!("  {name}:\n    backends:\n");
    for &k in ks {
        out += &format!("      - {{address: {}}}\n", plan::backend_v4(k));
    }
    out += "    health_check: {kind: tcp, port: 80, interval: 200ms, timeout: 100ms, \
            rise: 2, fall: 3}\n";
    out
}

fn client(i: u8) -> IpAddr {
    plan::client_v4_in(i).into()
}

fn vip() -> SocketAddr {
    plan::vip_socket_v4(1, 80)
}

/// The backend numbers that answered, with how many answers each.
fn answered_by(stats: &RequestStats) -> Vec<(usize, usize)> {
    let parse = |name: &String| name.strip_prefix('b').and_then(|n| n.parse().ok());
    let rows = stats.per_backend.iter();
    rows.map(|(name, &count)| (parse(name).unwrap_or(0), count))
        .collect()
}

/// The share (in points) of `stats`' answers given by backends `ks`.
fn share_points(stats: &RequestStats, ks: &[usize]) -> f64 {
    let of: usize = answered_by(stats)
        .iter()
        .filter(|(k, _)| ks.contains(k))
        .map(|(_, n)| n)
        .sum();
    100.0 * of as f64 / stats.answered().max(1) as f64
}

#[test]
fn clients_of_two_prefixes_reach_their_own_pools_and_a_denied_prefix_is_dropped() {
    const REQUESTS: usize = 200;
    let testbed = testbed(BACKENDS);
    let config = format!(
        "{}vips:
  - name: llm
    address: {}
    port: 80
    protocol: tcp
    pool: eu
    source_rules:
      - {{prefix: 10.201.0.0/24, pool: us}}
      - {{prefix: 10.202.0.0/24, deny: true}}
pools:
{}{}",
        head(&testbed),
        plan::vip_v4(1),
        pool("eu", &[1, 2]),
        pool("us", &[3, 4]),
    );
    let xlbd = testbed
        .start_xlbd(&config)
        .unwrap_or_else(|err| panic!("xlbd starts: {err:#}"));

    for (prefix, pool, own) in [(0, "eu", [1, 2]), (1, "us", [3, 4])] {
        let stats = testbed
            .run_requests_from(client(prefix), vip(), REQUESTS)
            .expect("requests run");
        println!("from {}: {:?}", client(prefix), answered_by(&stats));
        assert_eq!(stats.failures, 0, "from {}: {stats:?}", client(prefix));
        let strays: Vec<(usize, usize)> = answered_by(&stats)
            .into_iter()
            .filter(|(k, _)| !own.contains(k))
            .collect();
        assert!(
            strays.is_empty(),
            "clients of {} must reach pool {pool} only, got {strays:?}",
            client(prefix)
        );
        for k in own {
            assert!(
                answered_by(&stats).iter().any(|&(b, n)| b == k && n > 0),
                "backend {k} of pool {pool} took none of {REQUESTS}: {stats:?}"
            );
        }
    }

    const DENIED: usize = 10;
    let before = xlbd.counters().expect("counters");
    let stats = testbed
        .run_requests_from(client(2), vip(), DENIED)
        .expect("requests run");
    let after = xlbd.counters().expect("counters");
    let dropped = after.get(Stat::DropDenied) - before.get(Stat::DropDenied);
    println!(
        "from {}: {} of {DENIED} failed, DropDenied +{dropped}",
        client(2),
        stats.failures
    );
    assert_eq!(
        stats.failures, DENIED,
        "a denied client was served: {stats:?}"
    );
    // Each refused connection retransmits its SYN at least once in 2 s.
    assert!(
        dropped >= DENIED as u64,
        "DropDenied grew by {dropped}, expected at least {DENIED}"
    );
    let denied = policy_counters(&testbed, &xlbd, "llm").denied;
    println!("POLICY_STATS of llm: denied {denied}");
    assert!(
        denied >= dropped,
        "POLICY_STATS denied {denied} < DropDenied {dropped}"
    );
}

/// What the routing policy counted at the table `name` (`VIP` or
/// `VIP/POOL`), from the pinned `POLICY_STATS`.
fn policy_counters(testbed: &Testbed, xlbd: &Xlbd, name: &str) -> lb_common::PolicyCounters {
    let status = xlbd.status().expect("xlbd status");
    let table = status.vips.iter().find(|v| v.name == name);
    let id = table.unwrap_or_else(|| panic!("no table {name}")).id;
    let pins = xlb::dataplane::PinDir::new(testbed.pin_path());
    let maps = xlb::dataplane::Maps::open_pinned(&pins).expect("pinned maps");
    xlb::dataplane::counters::policy_of(&maps, id).expect("POLICY_STATS")
}

#[test]
fn a_tenant_over_its_new_flow_budget_has_its_syns_dropped_and_counted() {
    // The budget is per CPU: with 2 CPUs up to 4 go at once, then each
    // CPU refills a token a second while connections come faster.
    const REQUESTS: usize = 12;
    let testbed = testbed(2);
    let config = format!(
        "{}tenants: {{free: {{new_flows_per_second: 1, burst: 2}}}}
vips:
  - name: llm
    address: {}
    port: 80
    protocol: tcp
    pool: web
    source_rules: [{{prefix: 10.201.0.0/24, tenant: free}}]
pools:
{}",
        head(&testbed),
        plan::vip_v4(1),
        pool("web", &[1, 2]),
    );
    let xlbd = testbed
        .start_xlbd(&config)
        .unwrap_or_else(|err| panic!("xlbd starts: {err:#}"));

    let before = xlbd.counters().expect("counters");
    let start = Instant::now();
    let free = testbed
        .run_requests_from(client(1), vip(), REQUESTS)
        .expect("requests run");
    let took = start.elapsed();
    let after = xlbd.counters().expect("counters");
    let limited = after.get(Stat::DropTenantLimit) - before.get(Stat::DropTenantLimit);
    println!(
        "tenant free: {} of {REQUESTS} answered in {took:?}, DropTenantLimit +{limited}",
        free.answered()
    );
    // A burst goes at once, the others wait for a token: their first SYN
    // is dropped and the retransmission 1 s later gets through.
    assert!(
        limited >= 3,
        "DropTenantLimit grew by {limited}, expected at least 3"
    );
    let counted = policy_counters(&testbed, &xlbd, "llm").rate_limited;
    assert!(
        counted >= limited,
        "POLICY_STATS rate_limited {counted} < {limited}"
    );

    let start = Instant::now();
    let other = testbed
        .run_requests_from(client(0), vip(), 50)
        .expect("requests run");
    println!("no tenant: 50 answered in {:?}", start.elapsed());
    assert_eq!(
        other.failures, 0,
        "clients without a tenant are not limited: {other:?}"
    );
}

/// The canary config: pool `main` (backends 1, 2) with a canary pool
/// `canary` (backend 3) at 10 %, rolled back when half of it is down.
fn canary_config(testbed: &Testbed) -> String {
    format!(
        "{}vips:
  - name: llm
    address: {}
    port: 80
    protocol: tcp
    pool: main
    canary:
      pool: canary
      share: 10%
      rollback: {{max_down_share: 0.5}}
pools:
{}{}",
        head(testbed),
        plan::vip_v4(1),
        pool("main", &[1, 2]),
        pool("canary", &[3]),
    )
}

/// Runs `xlbctl ARGS` against the testbed's xlbd; returns stdout.
fn xlbctl(testbed: &Testbed, xlbd: &Xlbd, args: &[&str]) -> String {
    let program = bins::locate("xlbctl").expect("xlbctl is built beside xlbd");
    let mut command = std::process::Command::new(program);
    command
        .arg("--socket")
        .arg(testbed.log_dir().join("xlbd.sock"))
        .arg("--status-file")
        .arg(xlbd.status_path())
        .arg("--pin-path")
        .arg(testbed.pin_path());
    let output = command.args(args).output().expect("xlbctl runs");
    assert!(
        output.status.success(),
        "xlbctl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// xlbd's `/metrics`, read inside the LB namespace.
fn metrics(testbed: &Testbed) -> String {
    use std::io::{Read as _, Write as _};
    let listen = xlb_testbed::xlbd_config::METRICS_LISTEN;
    let read = || -> std::io::Result<String> {
        let mut stream = std::net::TcpStream::connect(listen)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"GET /metrics HTTP/1.1\r\nhost: xlbd\r\nconnection: close\r\n\r\n")?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer)
    };
    let answer = testbed
        .in_ns(testbed.lb_ns(), read)
        .expect("enter the LB namespace");
    answer.unwrap_or_else(|e| panic!("read xlbd's metrics: {e}"))
}

/// The canary row of VIP `llm` in xlbd's status.
fn canary(xlbd: &Xlbd) -> xlb::daemon::canary::CanaryRow {
    let status = xlbd.status().expect("xlbd status");
    let mut rows = status.canaries.into_iter();
    rows.find(|row| row.vip == "llm")
        .expect("a canary row for llm")
}

fn check_canary_share(stats: &RequestStats, want: f64, tolerance: f64) -> f64 {
    assert_eq!(stats.failures, 0, "{stats:?}");
    let share = share_points(stats, &[3]);
    assert!(
        (share - want).abs() <= tolerance,
        "canary took {share:.2} % of {} new connections, want {want} ± {tolerance}: {:?}",
        stats.answered(),
        answered_by(stats)
    );
    share
}

#[test]
fn a_canary_takes_its_share_follows_the_split_and_rolls_back_when_its_backends_fail() {
    let testbed = testbed(3);
    let xlbd = testbed
        .start_xlbd(&canary_config(&testbed))
        .unwrap_or_else(|err| panic!("xlbd starts: {err:#}"));

    let stats = testbed
        .run_requests_from(client(0), vip(), CANARY_CONNECTIONS)
        .expect("requests run");
    let share = check_canary_share(&stats, 10.0, 3.0);
    let mut to_canary = stats.per_backend.get("b3").copied().unwrap_or(0);
    println!("canary at 10 %: {share:.2} % of {CANARY_CONNECTIONS} new connections");

    let answer = xlbctl(&testbed, &xlbd, &["vip", "split", "llm", "canary=30%"]);
    println!("xlbctl vip split llm canary=30%: {}", answer.trim());
    assert_eq!(canary(&xlbd).effective_bp, 3000);
    let stats = testbed
        .run_requests_from(client(0), vip(), SPLIT_CONNECTIONS)
        .expect("requests run");
    let share = check_canary_share(&stats, 30.0, 4.0);
    to_canary += stats.per_backend.get("b3").copied().unwrap_or(0);
    println!("canary at 30 %: {share:.2} % of {SPLIT_CONNECTIONS} new connections");
    let list = xlbctl(&testbed, &xlbd, &["svc", "list"]);
    assert!(
        list.contains("canary -> pool canary at 30%"),
        "svc list:\n{list}"
    );

    // Kill the canary's only backend: its checks fail (fall 3 x 200 ms),
    // half or more of the pool is down, the share goes to 0.
    testbed.kill_backend(3).expect("kill backend 3");
    let start = Instant::now();
    while canary(&xlbd).effective_bp != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no rollback within 5 s: {:?}",
            canary(&xlbd)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let row = canary(&xlbd);
    println!(
        "rolled back after {:?}: {:?}",
        start.elapsed(),
        row.last_rollback
    );
    assert_eq!(row.rollbacks_total, 1, "{row:?}");

    let stats = testbed
        .run_requests_from(client(0), vip(), 300)
        .expect("requests run");
    assert_eq!(stats.failures, 0, "after the rollback: {stats:?}");
    assert_eq!(share_points(&stats, &[3]), 0.0, "{:?}", answered_by(&stats));

    let text = metrics(&testbed);
    for line in [
        "xlb_vip_canary_share_ratio{vip=\"llm\",pool=\"canary\"} 0.0",
        "xlb_canary_rollbacks_total{vip=\"llm\"} 1",
    ] {
        assert!(text.contains(line), "no {line:?} in the metrics:\n{text}");
    }
    // Every connection the canary answered is a new flow its split sent.
    let prefix = "xlb_policy_new_flows_total{vip=\"llm\",pool=\"main\",kind=\"canary\"} ";
    let counted = text
        .lines()
        .find_map(|l| l.strip_prefix(prefix)?.trim().parse::<usize>().ok());
    println!("canary new flows counted {counted:?}, answered by the canary {to_canary}");
    assert_eq!(
        counted,
        Some(to_canary),
        "xlb_policy_new_flows_total of the canary split"
    );

    // Held at 0 until an operator sets a share, also across a reload.
    xlbd.reload(&canary_config(&testbed)).expect("reload");
    assert_eq!(
        canary(&xlbd).effective_bp,
        0,
        "the rollback holds across reloads"
    );

    // The canary's backend back and healthy, `--reset` returns the
    // config's share, which stays.
    testbed.start_backend(3).expect("restart backend 3");
    let start = Instant::now();
    let healthy = || {
        let status = xlbd.status().expect("xlbd status");
        let table = status.vips.iter().find(|v| v.name == "llm/canary");
        table.is_some_and(|t| t.backends.iter().all(|b| b.healthy))
    };
    while !healthy() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "backend 3 not up in 5 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    xlbctl(&testbed, &xlbd, &["vip", "split", "llm", "--reset"]);
    std::thread::sleep(Duration::from_secs(1));
    let row = canary(&xlbd);
    assert_eq!((row.effective_bp, row.operator_bp), (1000, None), "{row:?}");
    assert_eq!(row.rollbacks_total, 1, "{row:?}");
}

#[test]
fn a_pool_without_a_usable_backend_falls_back_to_another_and_counts_it() {
    const REQUESTS: usize = 100;
    let testbed = testbed(2);
    let config = format!(
        "{}vips:
  - {{name: llm, address: {}, port: 80, protocol: tcp, pool: eu}}
pools:
{}    fallback: us
{}",
        head(&testbed),
        plan::vip_v4(1),
        pool("eu", &[1]),
        pool("us", &[2]),
    );
    let xlbd = testbed
        .start_xlbd(&config)
        .unwrap_or_else(|err| panic!("xlbd starts: {err:#}"));
    let stats = testbed
        .run_requests_from(client(0), vip(), REQUESTS)
        .expect("requests run");
    assert_eq!(
        answered_by(&stats),
        [(1, REQUESTS)],
        "pool eu serves while up"
    );

    testbed.kill_backend(1).expect("kill backend 1");
    let start = Instant::now();
    let down = || {
        let status = xlbd.status().expect("xlbd status");
        let eu = status.vips.iter().find(|v| v.name == "llm");
        eu.is_some_and(|v| v.backends.iter().all(|b| !b.healthy))
    };
    while !down() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "backend 1 not down in 5 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = policy_counters(&testbed, &xlbd, "llm").fallback_new_flows;
    let stats = testbed
        .run_requests_from(client(0), vip(), REQUESTS)
        .expect("requests run");
    let counted = policy_counters(&testbed, &xlbd, "llm").fallback_new_flows - before;
    println!(
        "eu down after {:?}: {:?}, fallback new flows +{counted}",
        start.elapsed(),
        answered_by(&stats)
    );
    assert_eq!(
        answered_by(&stats),
        [(2, REQUESTS)],
        "pool us takes over: {stats:?}"
    );
    assert!(
        counted >= REQUESTS as u64,
        "POLICY_STATS fallback_new_flows grew by {counted}, expected {REQUESTS}"
    );
}
