//! End to end through xlbd with a load signal: a backend that reports a
//! busy GPU gets a smaller share of new connections, and its share comes
//! back when the load drops; with cost-aware tiers, the cheap backend takes
//! every new connection until its load spills to the next tier. Needs
//! root; never skips.
//!
//! Three backends of weight 100; xlbd reads each one's
//! `DCGM_FI_DEV_GPU_UTIL` from xlb-backend's `/metrics` (port 8080) every
//! 200 ms, target 70 %. At 95 % the factor is (1 - 0.95) / (1 - 0.7) = 1/6,
//! so b1's weight becomes round(100 / 6) = 17 and its expected share
//! 17 / 217 = 7.8 % (the others 46.1 % each), down from 33.3 %.
//!
//! The tolerance: over n = 600 connections a share's standard deviation
//! is at most sqrt(0.25 / 600) = 2.04 points, so ±7 points is 3.4 standard
//! deviations or more (below 1e-3 per backend for a fair spread).

mod e2e_support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use e2e_support::*;
use xlb_testbed::shares::{check_shares, format_shares};
use xlb_testbed::xlbd_config::{Protocol, XlbdConfig};
use xlb_testbed::{Testbed, Xlbd, plan};

/// New connections per measurement.
const CONNECTIONS: usize = 600;
/// How far a measured share may be from the expected one, in points.
const TOLERANCE_POINTS: f64 = 7.0;
/// How long xlbd may take to apply a new load.
const APPLY_LIMIT: Duration = Duration::from_secs(10);
/// The port xlb-backend serves `/metrics` and `/set-load` on.
const METRICS_PORT: u16 = 8080;

/// The pool's load signal (the pool is the last thing rendered).
const LOAD_SIGNAL: &str = "    load_signal: {port: 8080, interval: 200ms, timeout: 150ms, \
     ewma_alpha: 1, min_interval: 200ms, max_moved_share: 1, grace: 10s}\n";

/// Makes backend `k` report `gpu_percent` from now on.
fn set_gpu_load(testbed: &Testbed, k: usize, gpu_percent: u32) {
    set_load(testbed, k, &format!("gpu={gpu_percent}"));
}

/// Sets backend `k`'s reported load by `query` (`gpu=95`, `kv=0.9`,
/// `cpu=0.95`), which its answer echoes.
fn set_load(testbed: &Testbed, k: usize, query: &str) {
    let ns = testbed.backend_ns(k).expect("backend namespace");
    let answer = testbed
        .in_ns(ns, || -> std::io::Result<String> {
            let mut stream = TcpStream::connect(("127.0.0.1", METRICS_PORT))?;
            stream.set_read_timeout(Some(Duration::from_secs(2)))?;
            let request = format!(
                "GET /set-load?{query} HTTP/1.1\r\n\
                 host: b{k}\r\nconnection: close\r\n\r\n"
            );
            stream.write_all(request.as_bytes())?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer)?;
            Ok(answer)
        })
        .expect("enter the backend namespace")
        .unwrap_or_else(|e| panic!("set the load of b{k}: {e}"));
    assert!(
        answer.contains(&format!("{query} ")) || answer.contains(&format!("{query}\n")),
        "b{k} did not take the load {query}: {answer}"
    );
}

/// Waits until xlbd runs b`k` at `weight`; returns how long that took.
fn wait_for_weight(xlbd: &Xlbd, k: usize, weight: u32) -> Duration {
    wait_for_weight_in(xlbd, k, weight..=weight)
}

/// Waits until xlbd runs b`k` at a weight in `weights`.
fn wait_for_weight_in(xlbd: &Xlbd, k: usize, weights: std::ops::RangeInclusive<u32>) -> Duration {
    let address = std::net::IpAddr::from(plan::backend_v4(k));
    let start = Instant::now();
    loop {
        let status = xlbd.status().expect("xlbd status");
        let current = status
            .vips
            .iter()
            .flat_map(|vip| &vip.backends)
            .find(|b| b.address == address)
            .map(|b| b.effective_weight);
        if current.is_some_and(|w| weights.contains(&w)) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < APPLY_LIMIT,
            "b{k} still at weight {current:?}, not in {weights:?}, after {APPLY_LIMIT:?}; \
             load: {:?}",
            status.load
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs the connections and checks the spread against `weights`; returns
/// b1's share in percent.
fn measure(testbed: &Testbed, label: &str, weights: &[(usize, u32)]) -> f64 {
    let stats = testbed
        .run_requests(plan::vip_socket_v4(1, 80), CONNECTIONS, |_, _| {})
        .expect("requests run from the client");
    let rows = xlb_testbed::shares::shares(&stats, &e2e_support::weights(weights));
    println!(
        "{label}: {CONNECTIONS} connections\n{}",
        format_shares(&rows)
    );
    check_shares(&stats, &e2e_support::weights(weights), TOLERANCE_POINTS)
        .unwrap_or_else(|err| panic!("{label}: {err:#}"));
    rows[0].measured_pct
}

#[test]
fn a_backend_reporting_high_gpu_load_gets_fewer_new_connections_until_it_recovers() {
    let equal = [(1, 100), (2, 100), (3, 100)];
    let testbed = testbed(3);
    let config = XlbdConfig::for_testbed(&testbed)
        .vip("web", plan::vip_v4(1).into(), 80, Protocol::Tcp)
        .pool("web", &v4_backends(&equal), None);
    let xlbd = testbed
        .start_xlbd(&(config.render() + LOAD_SIGNAL))
        .unwrap_or_else(|err| panic!("xlbd starts: {err:#}"));

    let before = measure(&testbed, "every backend at 10 % GPU", &equal);

    set_gpu_load(&testbed, 1, 95);
    let took = wait_for_weight(&xlbd, 1, 17);
    println!("b1 at 95 % GPU: weight 17 after {took:?}");
    let loaded = measure(&testbed, "b1 at 95 % GPU", &[(1, 17), (2, 100), (3, 100)]);
    assert!(
        loaded < before / 2.0,
        "b1's share fell only from {before:.1} % to {loaded:.1} %"
    );

    set_gpu_load(&testbed, 1, 10);
    let took = wait_for_weight(&xlbd, 1, 100);
    println!("b1 back at 10 % GPU: weight 100 after {took:?}");
    let after = measure(&testbed, "b1 back at 10 % GPU", &equal);
    println!("b1's share: {before:.1} % -> {loaded:.1} % -> {after:.1} %");

    let rows = xlbd.status().expect("xlbd status").load;
    let b1 = rows
        .iter()
        .find(|row| row.backend == std::net::IpAddr::from(plan::backend_v4(1)))
        .expect("a load row for b1");
    assert_eq!(b1.weight_changes_total, 2, "{rows:?}");
    assert!(
        b1.scrapes_total.get("ok").is_some_and(|&n| n >= 2),
        "{rows:?}"
    );

    let metrics = scrape_xlbd_metrics(&testbed);
    for family in [
        "xlb_load_scrapes_total{pool=\"web\",backend=\"10.0.0.11\",result=\"ok\"}",
        "xlb_backend_load_factor_ratio{pool=\"web\",backend=\"10.0.0.11\"} 1.0",
        "xlb_load_weight_changes_total{pool=\"web\",backend=\"10.0.0.11\"} 2",
    ] {
        assert!(metrics.contains(family), "no {family} in:\n{metrics}");
    }
}

/// xlbd's `/metrics`, read inside the LB namespace.
fn scrape_xlbd_metrics(testbed: &Testbed) -> String {
    let listen = xlb_testbed::xlbd_config::METRICS_LISTEN;
    testbed
        .in_ns(testbed.lb_ns(), || -> std::io::Result<String> {
            let mut stream = TcpStream::connect(listen)?;
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            let request = "GET /metrics HTTP/1.1\r\nhost: xlbd\r\nconnection: close\r\n\r\n";
            stream.write_all(request.as_bytes())?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer)?;
            Ok(answer)
        })
        .expect("enter the LB namespace")
        .unwrap_or_else(|e| panic!("read xlbd's metrics: {e}"))
}

/// The vLLM and node_exporter formats, as xlb-backend serves them on its
/// own `/metrics`, move weights through xlbd like the GPU gauge: vLLM's
/// KV-cache gauge (a name with a colon) and node_exporter's CPU seconds
/// read as a rate of the non-idle modes over the backend's two CPUs.
#[test]
fn vllm_and_node_exporter_signals_move_weights_through_xlbd() {
    let equal = [(1, 100), (2, 100)];
    let signals = [
        (
            "vllm",
            "{metric: \"vllm:kv_cache_usage_perc\", scale: 1, port: 8080, interval: 200ms, \
             timeout: 150ms, ewma_alpha: 1, min_interval: 200ms, max_moved_share: 1}",
            "kv=0.95",
            "kv=0.1",
            17..=17,
        ),
        (
            "node",
            "{metric: node_cpu_seconds_total, labels: {mode: \"!idle\"}, kind: rate, \
             scale: 2, port: 8080, interval: 200ms, timeout: 150ms, ewma_alpha: 1, \
             min_interval: 200ms, max_moved_share: 1}",
            "cpu=0.95",
            "cpu=0.1",
            // A rate measured between two scrapes jitters by a few percent.
            5..=40,
        ),
    ];
    let testbed = testbed(2);
    for (name, signal, high, low, loaded) in signals {
        let config = XlbdConfig::for_testbed(&testbed)
            .vip("web", plan::vip_v4(1).into(), 80, Protocol::Tcp)
            .pool("web", &v4_backends(&equal), None);
        let yaml = config.render() + &format!("    load_signal: {signal}\n");
        let xlbd = testbed
            .start_xlbd(&yaml)
            .unwrap_or_else(|err| panic!("xlbd starts with the {name} signal: {err:#}"));
        wait_for_weight(&xlbd, 1, 100);

        set_load(&testbed, 1, high);
        let took = wait_for_weight_in(&xlbd, 1, loaded.clone());
        println!("{name}: b1 at {high}: weight in {loaded:?} after {took:?}");
        set_load(&testbed, 1, low);
        let took = wait_for_weight(&xlbd, 1, 100);
        println!("{name}: b1 at {low}: weight 100 after {took:?}");
        assert_eq!(
            xlbd_weight(&xlbd, 2),
            100,
            "{name}: b2 stays at full weight"
        );
        xlbd.kill().expect("stop xlbd before the next signal");
    }
}

fn xlbd_weight(xlbd: &Xlbd, k: usize) -> u32 {
    let address = std::net::IpAddr::from(plan::backend_v4(k));
    xlbd.status()
        .expect("xlbd status")
        .vips
        .iter()
        .flat_map(|vip| &vip.backends)
        .find(|b| b.address == address)
        .map_or(0, |b| b.effective_weight)
}

/// The pool's cost-aware tiers (after `LOAD_SIGNAL`, under the same pool).
const COST_AWARE: &str = "    cost_aware: {spill_load: 0.8}\n";

/// `yaml` with a `cost` label on the backends of `costs` (by index).
fn with_costs(yaml: &str, costs: &[(usize, &str)]) -> String {
    let mut out = yaml.to_owned();
    for &(k, cost) in costs {
        let address = std::net::IpAddr::from(plan::backend_v4(k));
        let line = format!("{{address: \"{address}\", weight: 100}}");
        assert!(out.contains(&line), "b{k} not rendered as {line}");
        let labelled =
            format!("{{address: \"{address}\", weight: 100, labels: {{cost: \"{cost}\"}}}}");
        out = out.replace(&line, &labelled);
    }
    out
}

/// Cost-aware tiers through xlbd: b1 (cost 1) takes every new connection
/// while its GPU load stays under `spill_load`; at 95 % the next tier (b2,
/// cost 2.5) joins, and once b1's load falls again b2 takes no new
/// connection.
#[test]
fn a_cheap_backend_takes_every_new_connection_until_its_load_spills_to_the_next_tier() {
    let testbed = testbed(2);
    let config = XlbdConfig::for_testbed(&testbed)
        .vip("web", plan::vip_v4(1).into(), 80, Protocol::Tcp)
        .pool("web", &v4_backends(&[(1, 100), (2, 100)]), None);
    let yaml = with_costs(&config.render(), &[(1, "1"), (2, "2.5")]) + LOAD_SIGNAL + COST_AWARE;
    let xlbd = testbed
        .start_xlbd(&yaml)
        .unwrap_or_else(|err| panic!("xlbd starts: {err:#}"));

    let took = wait_for_weight(&xlbd, 2, 0);
    println!("b2 (cost 2.5) out of the serving tier after {took:?}");
    let cheap_only = [(1, 100), (2, 0)];
    let alone = measure(&testbed, "b1 (cost 1) at 10 % GPU", &cheap_only);
    assert!(
        alone > 99.0,
        "b1 took only {alone:.1} % with b2 outside the tier"
    );

    set_gpu_load(&testbed, 1, 95);
    let took = wait_for_weight(&xlbd, 2, 100);
    wait_for_weight(&xlbd, 1, 17);
    println!("b1 at 95 % GPU: b2 joins at weight 100 after {took:?}");
    let spilled = measure(&testbed, "b1 at 95 % GPU, b2 joined", &[(1, 17), (2, 100)]);
    assert!(spilled < 30.0, "b1 kept {spilled:.1} % after the spill");

    set_gpu_load(&testbed, 1, 10);
    let took = wait_for_weight(&xlbd, 2, 0);
    wait_for_weight(&xlbd, 1, 100);
    println!("b1 back at 10 % GPU: b2 out again after {took:?}");
    let back = measure(&testbed, "b1 back at 10 % GPU", &cheap_only);
    println!("b1's share: {alone:.1} % -> {spilled:.1} % -> {back:.1} %");
    assert!(
        back > 99.0,
        "b1 took only {back:.1} % once b2 left the tier"
    );
}
