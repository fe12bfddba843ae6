//! Load signals against real HTTP servers on 127.0.0.0/8: the three
//! exposition formats (dcgm-exporter, vLLM, node_exporter), and every way
//! an endpoint can misbehave (garbage, non-UTF-8, 500, a huge body, a hang,
//! a trickle, nothing listening), each within bounded time; then the
//! tracker steering a factor down and back, and falling back to the
//! configured weight when readings go bad. Config keys at the end.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use xlb::config::{Config, LoadKind};
use xlb::load::{LoadTracker, SCRAPE_BODY_LIMIT, ScrapeOutcome, Selector, fetch, select};

#[path = "load/support.rs"]
mod support;
use support::{Answer, Server, bounded, loopback, ok, until};

/// The scrape timeout the failure tests use.
const TIMEOUT: Duration = Duration::from_millis(300);

const DCGM: &str = "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).\n\
# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n\
DCGM_FI_DEV_GPU_UTIL{gpu=\"0\",UUID=\"GPU-5f0e1f7e-3c4b-4a8e-9d21-0c1a2b3c4d5e\",\
pci_bus_id=\"00000000:07:00.0\",device=\"nvidia0\",modelName=\"NVIDIA A100-SXM4-80GB\",\
Hostname=\"b1\",DCGM_FI_DRIVER_VERSION=\"535.104.05\"} 91\n\
DCGM_FI_DEV_GPU_UTIL{gpu=\"1\",UUID=\"GPU-6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d\",\
pci_bus_id=\"00000000:0F:00.0\",device=\"nvidia1\",modelName=\"NVIDIA A100-SXM4-80GB\",\
Hostname=\"b1\",DCGM_FI_DRIVER_VERSION=\"535.104.05\"} 79\n\
# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).\n\
# TYPE DCGM_FI_DEV_FB_USED gauge\n\
DCGM_FI_DEV_FB_USED{gpu=\"0\",device=\"nvidia0\"} 40211\n";

const VLLM: &str = "# HELP vllm:num_requests_running \
Number of requests in model execution batches.\n\
# TYPE vllm:num_requests_running gauge\n\
vllm:num_requests_running{engine=\"0\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 12.0\n\
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n\
# TYPE vllm:num_requests_waiting gauge\n\
vllm:num_requests_waiting{engine=\"0\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 5.0\n\
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.\n\
# TYPE vllm:kv_cache_usage_perc gauge\n\
vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 0.83\n\
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.\n\
# TYPE vllm:prompt_tokens_total counter\n\
vllm:prompt_tokens_total{engine=\"0\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 120433.0\n";

const NODE: &str = "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n\
# TYPE node_cpu_seconds_total counter\n\
node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 90210.45\n\
node_cpu_seconds_total{cpu=\"0\",mode=\"iowait\"} 12.5\n\
node_cpu_seconds_total{cpu=\"0\",mode=\"system\"} 801.25\n\
node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 2011.0\n\
node_cpu_seconds_total{cpu=\"1\",mode=\"idle\"} 90111.0\n\
node_cpu_seconds_total{cpu=\"1\",mode=\"system\"} 799.75\n\
node_cpu_seconds_total{cpu=\"1\",mode=\"user\"} 2100.0\n\
# HELP node_load1 1m load average.\n\
# TYPE node_load1 gauge\n\
node_load1 0.52\n";

fn selector(metric: &str, labels: &[(&str, &str)]) -> Selector {
    Selector {
        metric: metric.to_owned(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

/// Scrapes `server` once and reads `selector`; returns the outcome, the
/// values and how long it took.
async fn scrape(server: &Server, selector: &Selector) -> (ScrapeOutcome, Vec<f64>, Duration) {
    let start = Instant::now();
    let result = fetch(server.addr, "/metrics", TIMEOUT).await;
    let took = start.elapsed();
    match result {
        Err(failure) => (failure.outcome, Vec::new(), took),
        Ok(body) => match select(&body, selector) {
            Ok(values) => (ScrapeOutcome::Ok, values, took),
            Err(xlb::load::ExpositionError::Missing) => (ScrapeOutcome::Missing, Vec::new(), took),
            Err(_) => (ScrapeOutcome::ParseError, Vec::new(), took),
        },
    }
}

#[tokio::test]
async fn gpu_vllm_and_node_exporter_texts_are_read() {
    bounded(async {
        let server = Server::start(loopback(1), ok(DCGM)).await;
        let gpu = scrape(&server, &selector("DCGM_FI_DEV_GPU_UTIL", &[])).await;
        assert_eq!((gpu.0, gpu.1), (ScrapeOutcome::Ok, vec![91.0, 79.0]));
        let gpu1 = scrape(&server, &selector("DCGM_FI_DEV_GPU_UTIL", &[("gpu", "1")])).await;
        assert_eq!(gpu1.1, vec![79.0]);

        server.set(ok(VLLM));
        let kv = scrape(&server, &selector("vllm:kv_cache_usage_perc", &[])).await;
        assert_eq!((kv.0, kv.1), (ScrapeOutcome::Ok, vec![0.83]));
        let waiting = scrape(&server, &selector("vllm:num_requests_waiting", &[])).await;
        assert_eq!(waiting.1, vec![5.0]);

        server.set(ok(NODE));
        let busy = scrape(
            &server,
            &selector("node_cpu_seconds_total", &[("mode", "!idle")]),
        )
        .await;
        assert_eq!(busy.1, vec![12.5, 801.25, 2011.0, 799.75, 2100.0]);
        let gone = scrape(&server, &selector("DCGM_FI_DEV_GPU_UTIL", &[])).await;
        assert_eq!(gone.0, ScrapeOutcome::Missing);
    })
    .await;
}

#[tokio::test]
async fn bad_endpoints_fail_by_kind_within_the_timeout() {
    bounded(async {
        let gpu = selector("DCGM_FI_DEV_GPU_UTIL", &[]);
        let huge = vec![b'#'; SCRAPE_BODY_LIMIT + 1];
        let cases = [
            (
                "garbage",
                ok("<html><body>502 bad gateway</body></html>"),
                ScrapeOutcome::ParseError,
            ),
            (
                "non-utf-8",
                Answer::Body(200, vec![0xff, 0xfe, 0x80, 0x00]),
                ScrapeOutcome::ParseError,
            ),
            (
                "status 500",
                Answer::Body(500, DCGM.as_bytes().to_vec()),
                ScrapeOutcome::HttpError,
            ),
            (
                "declared too large",
                Answer::Body(200, huge),
                ScrapeOutcome::TooLarge,
            ),
            (
                "endless body",
                Answer::Unsized(64 * 1024 * 1024),
                ScrapeOutcome::TooLarge,
            ),
            ("hang", Answer::Hang, ScrapeOutcome::Timeout),
            ("trickle", Answer::Trickle, ScrapeOutcome::Timeout),
        ];
        let server = Server::start(loopback(2), Answer::Hang).await;
        for (what, answer, expected) in cases {
            server.set(answer);
            let (outcome, _, took) = scrape(&server, &gpu).await;
            assert_eq!(outcome, expected, "{what}");
            assert!(
                took < TIMEOUT + Duration::from_millis(200),
                "{what} took {took:?}"
            );
        }

        let addr = server.addr;
        drop(server);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let refused = fetch(addr, "/metrics", TIMEOUT)
            .await
            .expect_err("nothing listens");
        assert_eq!(refused.outcome, ScrapeOutcome::ConnectError);
    })
    .await;
}

/// One pool `web` whose only backend is `ip`, its load read from `port`.
fn config(ip: IpAddr, port: u16, signal: &str) -> Config {
    let text = format!(
        "interfaces: [{{name: lo}}]\n\
         encap: {{source_v4: 10.255.0.1}}\n\
         vips: [{{name: web, address: 10.100.0.1, port: 80, protocol: tcp, pool: web}}]\n\
         pools:\n  web:\n    backends: [{{address: {ip}}}]\n\
         \x20   load_signal: {{port: {port}, {signal}}}\n"
    );
    match Config::from_str(&text, "load.yaml") {
        Ok(loaded) => loaded.config,
        Err(err) => panic!("test config is invalid:\n{err}\n{text}"),
    }
}

fn gpu(percent: u32) -> Answer {
    ok(&format!(
        "# TYPE DCGM_FI_DEV_GPU_UTIL gauge\nDCGM_FI_DEV_GPU_UTIL{{gpu=\"0\"}} {percent}\n"
    ))
}

#[tokio::test]
async fn a_loaded_backend_loses_weight_and_gets_it_back() {
    bounded(async {
        let ip = loopback(3);
        let server = Server::start(ip, gpu(20)).await;
        let signal = "interval: 100ms, timeout: 100ms, ewma_alpha: 1, min_interval: 100ms, \
                      max_moved_share: 1";
        let tracker = LoadTracker::new(&config(ip, server.addr.port(), signal));
        let metrics = tracker.metrics();
        until(|| metrics.scrapes("web", ip, ScrapeOutcome::Ok) >= 2).await;
        assert_eq!(tracker.view().factor("web", ip), 1.0);

        // 95 % against a 70 % target: (1 - 0.95) / (1 - 0.7) = 1/6.
        server.set(gpu(95));
        until(|| (tracker.view().factor("web", ip) - 1.0 / 6.0).abs() < 1e-6).await;
        server.set(gpu(10));
        until(|| tracker.view().factor("web", ip) == 1.0).await;
        let changes = metrics.snapshot().changes_total[&("web".to_owned(), ip)];
        assert_eq!(changes, 2, "one move down, one back");
    })
    .await;
}

#[tokio::test]
async fn moves_are_capped_per_rebuild_and_spaced_by_min_interval() {
    bounded(async {
        let ip = loopback(4);
        let server = Server::start(ip, gpu(100)).await;
        let signal = "interval: 50ms, timeout: 50ms, ewma_alpha: 1, min_interval: 300ms, \
                      max_moved_share: 0.3, min_weight_factor: 0.1";
        let tracker = LoadTracker::new(&config(ip, server.addr.port(), signal));
        let mut views = tracker.subscribe();
        let start = Instant::now();
        // (factor, when) at each change, until the floor or too many.
        let mut seen: Vec<(f64, Duration)> = Vec::new();
        while seen.len() < 5 && seen.last().is_none_or(|(f, _)| (f - 0.1).abs() > 1e-6) {
            views.changed().await.expect("the tracker is alive");
            let factor = views.borrow_and_update().factor("web", ip);
            seen.push((factor, start.elapsed()));
        }
        drop(server);
        let factors: Vec<f64> = seen.iter().map(|s| s.0).collect();
        let expected = [0.7, 0.4, 0.1];
        assert_eq!(factors.len(), expected.len(), "{seen:?}");
        for (got, want) in factors.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{seen:?}");
        }
        for pair in seen.windows(2) {
            let gap = pair[1].1 - pair[0].1;
            assert!(
                gap >= Duration::from_millis(300),
                "moves {gap:?} apart: {seen:?}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn bad_readings_hold_the_last_factor_for_the_grace_then_the_configured_weight_returns() {
    bounded(async {
        let ip = loopback(5);
        let server = Server::start(ip, gpu(95)).await;
        let signal = "interval: 100ms, timeout: 100ms, ewma_alpha: 1, min_interval: 100ms, \
                      max_moved_share: 1, grace: 1s";
        let tracker = LoadTracker::new(&config(ip, server.addr.port(), signal));
        let metrics = tracker.metrics();
        until(|| tracker.view().factor("web", ip) < 0.2).await;

        let bad_since = Instant::now();
        let bad = [
            ok("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} NaN\n"),
            ok("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} -3\n"),
            ok("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 1e300\n"),
            Answer::Body(200, vec![0xc3, 0x28, 0xa0]),
        ];
        for answer in bad {
            server.set(answer);
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        assert!(
            tracker.view().factor("web", ip) < 0.2,
            "held within the grace"
        );
        until(|| tracker.view().factor("web", ip) == 1.0).await;
        // The grace runs from the last good reading, which can be up to one
        // interval (100 ms) before the answers turned bad.
        let after = bad_since.elapsed();
        assert!(
            after >= Duration::from_millis(900),
            "fell back after {after:?}"
        );
        assert!(metrics.scrapes("web", ip, ScrapeOutcome::Absurd) >= 3);
        assert!(metrics.scrapes("web", ip, ScrapeOutcome::ParseError) >= 1);
    })
    .await;
}

#[test]
fn load_signal_defaults_and_errors_name_the_field() {
    let config = config(
        loopback(6),
        9400,
        "metric: \"vllm:kv_cache_usage_perc\", scale: 1",
    );
    let signal = config.pools["web"]
        .load_signal
        .clone()
        .expect("a load signal");
    assert_eq!(signal.metric, "vllm:kv_cache_usage_perc");
    assert_eq!(signal.kind, LoadKind::Gauge);
    assert_eq!(
        (signal.target, signal.step, signal.max_moved_share),
        (0.7, 0.1, 0.2)
    );
    assert_eq!(signal.grace, xlb::config::DEFAULT_LOAD_GRACE);

    let text = "interfaces: [{name: lo}]\nencap: {source_v4: 10.255.0.1}\n\
                vips: [{name: web, address: 10.100.0.1, port: 80, protocol: tcp, pool: web}]\n\
                pools:\n  web:\n    backends: [{address: 127.0.0.6}]\n    load_signal:\n\
                \x20     metric: \"gpu util\"\n      target: 1.5\n      kind: sum\n";
    let err = Config::from_str(text, "bad.yaml")
        .expect_err("invalid")
        .to_string();
    assert!(
        err.contains("bad.yaml:10:") && err.contains("load_signal.kind"),
        "{err}"
    );
    let text = text.replace(
        "      kind: sum\n",
        "      min_weight_factor: 0.5\n      max_weight_factor: 0.4\n",
    );
    let err = Config::from_str(&text, "bad.yaml")
        .expect_err("invalid")
        .to_string();
    assert!(
        err.contains("bad.yaml:8:") && err.contains("pools.web.load_signal.metric"),
        "{err}"
    );
    assert!(
        err.contains("bad.yaml:9:") && err.contains("pools.web.load_signal.target"),
        "{err}"
    );
    assert!(
        err.contains("load_signal.max_weight_factor: 0.4 is below"),
        "{err}"
    );
}

#[test]
fn the_full_example_writes_the_load_signal_defaults() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/full.yaml");
    let full = Config::load(std::path::Path::new(path))
        .expect("full.yaml loads")
        .config;
    let written = full.pools["web"]
        .load_signal
        .clone()
        .expect("full.yaml has a load signal");
    let defaults = config(loopback(7), 9400, "url_path: /metrics");
    let defaults = defaults.pools["web"]
        .load_signal
        .clone()
        .expect("a load signal");
    assert_eq!(written, defaults);
}

#[tokio::test]
async fn the_cpu_busy_share_of_a_real_node_exporter_is_read_as_a_rate() {
    bounded(async {
        let ip = loopback(8);
        let exporter = support::NodeExporter::start(ip).await;
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let signal = format!(
            "metric: node_cpu_seconds_total, labels: {{mode: \"!idle\"}}, kind: rate, \
             scale: {cpus}, interval: 500ms, timeout: 400ms"
        );
        let tracker = LoadTracker::new(&config(ip, exporter.addr.port(), &signal));
        let metrics = tracker.metrics();
        let key = ("web".to_owned(), ip);
        until(|| metrics.snapshot().load.contains_key(&key)).await;

        // The rate divides the counter's growth by the time between two
        // scrapes as xlbd received them, while node_exporter read the
        // counter a little earlier or later each time: on a loaded machine
        // a busy share can come out a few percent over 1. A counter read
        // as a gauge would give thousands (CPU seconds since boot).
        let load = metrics.snapshot().load[&key];
        assert!((0.0..=1.25).contains(&load), "busy share {load}");
        assert_eq!(metrics.scrapes("web", ip, ScrapeOutcome::ParseError), 0);
        assert_eq!(metrics.scrapes("web", ip, ScrapeOutcome::Missing), 0);
        println!("node_exporter: {cpus} CPUs {:.1} % busy", load * 100.0);
    })
    .await;
}
