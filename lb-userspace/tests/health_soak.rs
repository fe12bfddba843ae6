//! Soak: the health checker and the load tracker run against a mix of
//! hostile targets (never answers, resets, slow, trickle, a gigabyte body,
//! 500, garbage), reloaded now and then, for a while; after a warm-up the
//! process's open file descriptors, live tokio tasks and resident memory
//! must stay flat.
//!
//! `XLB_SOAK_SECONDS` sets the length (default 25 s); `cargo xtask soak
//! --duration 1h` runs the long version. Figures are printed at the start,
//! every tenth of the run and at the end.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use xlb::config::Config;
use xlb::health::HealthChecker;
use xlb::load::LoadTracker;

#[path = "hostile/servers.rs"]
mod servers;
use servers::{Behaviour, HostileServers, open_fds, rss_kib};

/// Growth allowed after the warm-up. Descriptors and tasks vary with the
/// probes in flight at the moment of a sample (a few per target); memory
/// with the allocator's arenas. A leak of one per probe or scrape passes
/// these within seconds.
const FD_SLACK: usize = 32;
const TASK_SLACK: usize = 32;
const RSS_SLACK_KIB: u64 = 32 * 1024;

/// How often the checker and tracker are handed a new config.
const RELOAD_EVERY: Duration = Duration::from_secs(5);

fn soak_length() -> Duration {
    let seconds = std::env::var("XLB_SOAK_SECONDS").ok();
    Duration::from_secs(seconds.and_then(|s| s.parse().ok()).unwrap_or(25))
}

/// One pool per target, health-checked over HTTP (body read) and with a
/// load signal on the same port; `timeout_ms` changes on reloads, which
/// restarts every probe and scrape task.
fn soak_config(servers: &HostileServers, ip: IpAddr, timeout_ms: u32) -> Config {
    let mut pools = String::new();
    for (i, (behaviour, addr)) in servers.addrs.iter().enumerate() {
        let pool = format!("p{i}_{}", behaviour.name().replace('-', "_"));
        let port = addr.port();
        let timing = format!("interval: 200ms, timeout: {timeout_ms}ms");
        pools += &format!(
            "  {pool}:\n    backends: [{{address: {ip}}}]\n    health_check: {{kind: http, \
             port: {port}, {timing}, body_contains: DCGM}}\n    load_signal: {{port: {port}, \
             metric: DCGM_FI_DEV_GPU_UTIL, {timing}, grace: 1s}}\n"
        );
    }
    let text =
        format!("interfaces: [{{name: lo}}]\nencap: {{source_v4: 10.255.0.1}}\npools:\n{pools}");
    match Config::from_str(&text, "soak.yaml") {
        Ok(loaded) => loaded.config,
        Err(err) => panic!("soak config is invalid:\n{err}\n{text}"),
    }
}

/// The figures of one moment.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    fds: usize,
    tasks: usize,
    rss_kib: u64,
    probes: u64,
    scrapes: u64,
}

impl std::fmt::Display for Sample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "t={:>6.0}s fds={:>4} tasks={:>4} rss={:>7} KiB probes={:>8} scrapes={:>8}",
            self.at.as_secs_f64(),
            self.fds,
            self.tasks,
            self.rss_kib,
            self.probes,
            self.scrapes
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_targets_leak_no_fds_tasks_or_memory() {
    let length = soak_length();
    let warm_up = (length / 10).clamp(Duration::from_secs(3), Duration::from_secs(60));
    let ip = IpAddr::from([127, 0, 0, 60]);
    let servers = HostileServers::start(ip, &Behaviour::all(Duration::from_millis(120)));
    let configs = [
        soak_config(&servers, ip, 150),
        soak_config(&servers, ip, 100),
    ];
    let mut checker = HealthChecker::new(&configs[0]);
    let mut tracker = LoadTracker::new(&configs[0]);
    let (health, load) = (checker.metrics(), tracker.metrics());
    let runtime = tokio::runtime::Handle::current().metrics();
    let started = Instant::now();
    let sample = || Sample {
        at: started.elapsed(),
        fds: open_fds(),
        tasks: runtime.num_alive_tasks(),
        rss_kib: rss_kib(),
        probes: health.snapshot().probes_total.values().sum(),
        scrapes: load.snapshot().scrapes_total.values().sum(),
    };

    let mut reloads = 0usize;
    let mut samples: Vec<Sample> = Vec::new();
    let mut base: Option<Sample> = None;
    let step = (length / 10).max(Duration::from_secs(1));
    let mut next_sample = warm_up;
    while started.elapsed() < length {
        tokio::time::sleep(RELOAD_EVERY.min(step)).await;
        if started.elapsed() >= RELOAD_EVERY * (reloads as u32 + 1) {
            reloads += 1;
            checker.update_config(&configs[reloads % 2]);
            tracker.update_config(&configs[reloads % 2]);
        }
        if started.elapsed() >= next_sample {
            let now = sample();
            println!("soak {now}");
            base.get_or_insert(now);
            samples.push(now);
            next_sample += step;
        }
    }
    let end = sample();
    println!("soak {end} (end, {reloads} reloads)");
    let base = base.expect("a sample after the warm-up");

    let outcomes = |names: BTreeMap<&'static str, u64>| {
        let parts: Vec<String> = names.iter().map(|(k, v)| format!("{k} {v}")).collect();
        parts.join(", ")
    };
    let mut by_probe = BTreeMap::new();
    for ((_, _, outcome), n) in health.snapshot().probes_total {
        *by_probe.entry(outcome.name()).or_default() += n;
    }
    let mut by_scrape = BTreeMap::new();
    for ((_, _, outcome), n) in load.snapshot().scrapes_total {
        *by_scrape.entry(outcome.name()).or_default() += n;
    }
    println!("soak probes: {}", outcomes(by_probe));
    println!("soak scrapes: {}", outcomes(by_scrape));

    for now in samples.iter().chain([&end]) {
        assert!(now.fds <= base.fds + FD_SLACK, "fds grew: {base} -> {now}");
        assert!(
            now.tasks <= base.tasks + TASK_SLACK,
            "tasks grew: {base} -> {now}"
        );
        let rss_limit = base.rss_kib + RSS_SLACK_KIB;
        assert!(now.rss_kib <= rss_limit, "memory grew: {base} -> {now}");
    }
    assert!(
        end.probes > base.probes && end.scrapes > base.scrapes,
        "{base} -> {end}"
    );
    drop((checker, tracker));
}
