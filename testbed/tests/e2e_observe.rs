//! xlbctl and the Prometheus endpoint against real traffic: after the test
//! opens `CONNECTIONS` TCP connections to a VIP, each from a source port of
//! its own, every view must count exactly what was sent. Needs root; never
//! skips.
//!
//! Why the counts can be exact: a connection from a fresh source port is a
//! 5-tuple the connection table has not seen, so its SYN is one new flow on
//! the backend that answered it; the flows stay tracked for the test's
//! length (the idle timeout is minutes).

mod e2e_support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, SocketAddrV4};
use std::process::Command;
use std::time::Duration;

use e2e_support::*;
use prometheus_parse::{Scrape, Value};
use serde_json::Value as Json;
use socket2::{Domain, Socket, Type};
use xlb_testbed::xlbd_config::{HealthCheckSpec, METRICS_LISTEN, Protocol, XlbdConfig};
use xlb_testbed::{Testbed, Xlbd, bins, plan};

/// Connections the test opens.
const CONNECTIONS: u16 = 120;
/// The first client source port; the test uses `CONNECTIONS` from here.
const FIRST_PORT: u16 = 42_000;
const BACKENDS: [(usize, u32); 3] = [(1, 100), (2, 100), (3, 100)];

/// GETs `/` from `target` over a connection from `port`; returns the body.
fn get_from_port(target: SocketAddr, port: u16) -> anyhow::Result<String> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    let local = SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, port);
    socket.bind(&local.into())?;
    socket.connect_timeout(&target.into(), Duration::from_secs(2))?;
    let mut stream: std::net::TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n")?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Ok(body.to_owned())
}

/// Answers per backend number, after one connection from each test port.
fn send_traffic(testbed: &Testbed) -> BTreeMap<usize, u64> {
    let target = plan::vip_socket_v4(1, 80);
    let bodies = testbed
        .in_ns(testbed.client_ns(), || {
            (0..CONNECTIONS)
                .map(|i| get_from_port(target, FIRST_PORT + i))
                .collect::<Vec<_>>()
        })
        .expect("enter the client namespace");
    let mut answers = BTreeMap::new();
    for (i, body) in bodies.into_iter().enumerate() {
        let body = body.unwrap_or_else(|e| panic!("connection {i} failed: {e:#}"));
        *answers.entry(backend_of(&body)).or_default() += 1;
    }
    answers
}

/// Runs xlbctl with `-o json` against this testbed's xlbd.
fn xlbctl(xlbd: &Xlbd, args: &[&str]) -> Json {
    let output = Command::new(bins::locate("xlbctl").expect("xlbctl is built"))
        .arg("--status-file")
        .arg(xlbd.status_path())
        .args(["-o", "json"])
        .args(args)
        .output()
        .expect("xlbctl runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "xlbctl {args:?} failed: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("xlbctl {args:?}: {e}: {stdout}"))
}

fn address(k: usize) -> String {
    plan::backend_v4(k).to_string()
}

/// The service named `name` in `svc list` output.
fn service<'a>(services: &'a Json, name: &str) -> &'a Json {
    services
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no service {name} in {services}"))
}

/// Checks `svc list --stats`, `backend list`, `ct count` and `stats`.
fn check_xlbctl(xlbd: &Xlbd, answers: &BTreeMap<usize, u64>) {
    let services = xlbctl(xlbd, &["svc", "list", "--stats"]);
    let web = service(&services, "web");
    let total = u64::from(CONNECTIONS);
    assert_eq!(web["traffic"]["new_flows"], total, "{web}");
    assert_eq!(web["flows"], total, "{web}");
    let mut member_packets = 0;
    for member in web["backends"].as_array().expect("backends") {
        let k = (1..=3)
            .find(|&k| member["address"] == address(k))
            .unwrap_or_else(|| panic!("unknown backend {member}"));
        let answered = answers.get(&k).copied().unwrap_or(0);
        assert_eq!(member["traffic"]["new_flows"], answered, "b{k}: {member}");
        assert_eq!(member["flows"], answered, "b{k}: {member}");
        member_packets += member["traffic"]["packets"].as_u64().expect("packets");
    }
    assert_eq!(web["traffic"]["packets"], member_packets, "{web}");

    for (k, answered) in answers {
        let counts = xlbctl(xlbd, &["ct", "count", "--backend", &address(*k)]);
        assert_eq!(counts["total"], *answered, "ct count for b{k}: {counts}");
    }
    let counts = xlbctl(xlbd, &["ct", "count", "--vip", "web"]);
    assert_eq!(counts["total"], total, "{counts}");
    assert_eq!(counts["by_protocol"]["tcp"], total, "{counts}");
    let flows = xlbctl(xlbd, &["ct", "list", "--vip", "web"]);
    let mut ports: Vec<u64> = flows
        .as_array()
        .expect("flow rows")
        .iter()
        .map(|f| f["client_port"].as_u64().expect("client_port"))
        .collect();
    ports.sort_unstable();
    let sent: Vec<u64> = (0..CONNECTIONS)
        .map(|i| u64::from(FIRST_PORT + i))
        .collect();
    assert_eq!(ports, sent, "ct list names every client port once");

    // Only the web VIP carried traffic, so every forwarded packet is its.
    let stats = xlbctl(xlbd, &["stats"]);
    let forwarded = stats
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["reason"] == "forwarded"))
        .unwrap_or_else(|| panic!("no forwarded row in {stats}"));
    assert_eq!(forwarded["packets"], member_packets, "{stats}");
}

/// The text xlbd's endpoint serves, fetched inside the LB namespace.
fn metrics_text(testbed: &Testbed) -> String {
    let url = format!("http://{METRICS_LISTEN}/metrics");
    testbed
        .in_ns(testbed.lb_ns(), || -> anyhow::Result<String> {
            Ok(ureq::get(&url).call()?.body_mut().read_to_string()?)
        })
        .expect("enter the LB namespace")
        .expect("scrape the metrics endpoint")
}

/// Scrapes xlbd's endpoint and parses it.
fn scrape(testbed: &Testbed) -> Scrape {
    let text = metrics_text(testbed);
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("valid Prometheus text")
}

/// Every metric name the dashboard in configs/ queries must be one xlbd
/// serves (families are declared by `# TYPE` even without samples).
fn check_dashboard(testbed: &Testbed) {
    let text = metrics_text(testbed);
    let served: BTreeSet<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../configs/grafana-dashboard.json"
    );
    let dashboard: Json =
        serde_json::from_str(&std::fs::read_to_string(path).expect("dashboard is readable"))
            .expect("dashboard is JSON");
    let mut queried = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            queried.extend(metric_names(expr));
        }
    }
    assert!(
        queried.len() >= 10,
        "the dashboard queries only {queried:?}"
    );
    for name in &queried {
        let family = ["_total", "_bucket", "_count", "_sum"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|family| served.contains(family))
            .unwrap_or(name);
        assert!(
            served.contains(family),
            "the dashboard queries {name}, which xlbd does not serve"
        );
    }
}

/// The `xlb_...` identifiers in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("xlb_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// The value of the sample `name` whose labels include `labels`.
fn sample(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)));
    found
        .and_then(|s| number(&s.value))
        .unwrap_or_else(|| panic!("no {name}{labels:?} in the scrape"))
}

/// The value on the line of the label-less sample `name` in `text`.
fn plain_value(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|line| line.split(['{', ' ']).next() == Some(name))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in the scrape"))
}

/// A plain sample's value. OpenMetrics names a counter's family without
/// `_total`, so the parser may see its samples as untyped.
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(*v),
        _ => None,
    }
}

fn check_metrics(testbed: &Testbed, answers: &BTreeMap<usize, u64>) {
    let scrape = scrape(testbed);
    let total = f64::from(CONNECTIONS);
    assert_eq!(
        sample(&scrape, "xlb_vip_new_flows_total", &[("vip", "web")]),
        total
    );
    assert_eq!(
        sample(&scrape, "xlb_tracked_flows", &[("vip", "web")]),
        total
    );
    // One insert per connection's SYN, in a table far from full.
    // Families without labels come as `name{} value`, which the parser
    // skips: read those lines as they are.
    let text = metrics_text(testbed);
    assert_eq!(plain_value(&text, "xlb_flow_table_inserts_total"), total);
    assert_eq!(plain_value(&text, "xlb_flow_table_evictions_total"), 0.0);
    for k in 1..=3 {
        let answered = answers.get(&k).copied().unwrap_or(0) as f64;
        let be = [("vip", "web"), ("backend", &address(k))];
        assert_eq!(
            sample(&scrape, "xlb_backend_new_flows_total", &be),
            answered
        );
        assert_eq!(sample(&scrape, "xlb_backend_tracked_flows", &be), answered);
        let ok = [("pool", "web"), ("backend", &address(k)), ("result", "ok")];
        assert!(sample(&scrape, "xlb_health_probes_total", &ok) >= 1.0);
    }
    assert_eq!(sample(&scrape, "xlb_pool_panic", &[("pool", "web")]), 0.0);

    // Every probe is timed once; the histogram is read a moment after the
    // counters, so a probe or two may land in between.
    let probes: f64 = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "xlb_health_probes_total")
        .filter_map(|s| number(&s.value))
        .sum();
    let timed = scrape
        .samples
        .iter()
        .find(|s| s.metric == "xlb_health_probe_duration_seconds")
        .map(|s| match &s.value {
            Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            _ => 0.0,
        })
        .expect("probe duration histogram");
    assert!(
        (probes..=probes + 3.0).contains(&timed),
        "{timed} timed probes against {probes} counted"
    );
}

#[test]
fn xlbctl_and_metrics_count_exactly_the_connections_sent() {
    let testbed = testbed(3);
    let config = XlbdConfig::for_testbed(&testbed)
        .vip("web", plan::vip_v4(1).into(), 80, Protocol::Tcp)
        .pool("web", &v4_backends(&BACKENDS), Some(HealthCheckSpec::FAST));
    let xlbd = start_xlbd(&testbed, &config);

    let answers = send_traffic(&testbed);
    println!("{CONNECTIONS} connections answered by {answers:?}");
    assert_eq!(answers.values().sum::<u64>(), u64::from(CONNECTIONS));
    check_xlbctl(&xlbd, &answers);
    check_metrics(&testbed, &answers);
    check_dashboard(&testbed);

    // A weight change swaps in one rebuilt table, and the metrics say so
    // once the daemon has published its new state.
    let swaps = |scrape: &Scrape| sample(scrape, "xlb_maglev_table_swaps_total", &[("vip", "web")]);
    let before = swaps(&scrape(&testbed));
    xlbctl(&xlbd, &["backend", "weight", &address(1), "300"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let swapped = loop {
        let now = scrape(&testbed);
        if swaps(&now) > before || std::time::Instant::now() > deadline {
            break now;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(swaps(&swapped), before + 1.0);
    assert!(sample(&swapped, "xlb_maglev_slots_moved_total", &[("vip", "web")]) > 0.0);

    // The read verbs read the pinned maps: they work with xlbd gone.
    xlbd.kill().expect("SIGKILL xlbd");
    check_xlbctl(&xlbd, &answers);

    // A new xlbd adopts the maps; rates and operator states through it.
    let xlbd = start_xlbd(&testbed, &config);
    check_rates(&testbed, &xlbd);
    check_maint_and_reset(&testbed, &xlbd);
}

/// The member of `web` at backend `k` in `svc list` output.
fn member(services: &Json, k: usize) -> Json {
    let web = service(services, "web");
    web["backends"]
        .as_array()
        .and_then(|all| all.iter().find(|m| m["address"] == address(k)))
        .cloned()
        .unwrap_or_else(|| panic!("no b{k} in {web}"))
}

/// `--rate` and `--watch` read zero on an idle VIP, and new flows per
/// second while the client sends.
fn check_rates(testbed: &Testbed, xlbd: &Xlbd) {
    let idle = xlbctl(xlbd, &["svc", "list", "--rate", "--interval", "300ms"]);
    let web = service(&idle["vips"], "web");
    assert_eq!(web["traffic"]["new_flows"], 0, "idle: {web}");
    assert_eq!(web["traffic"]["packets"], 0, "idle: {web}");

    let target = plan::vip_socket_v4(1, 80);
    let busy = std::thread::scope(|scope| {
        let sender = scope.spawn(|| testbed.run_requests(target, 300, |_, _| {}));
        std::thread::sleep(Duration::from_millis(100));
        let rates = xlbctl(xlbd, &["svc", "list", "--rate", "--interval", "1s"]);
        let sent = sender.join().expect("sender thread").expect("requests run");
        assert_eq!(sent.failures, 0, "{sent:?}");
        rates
    });
    let web = service(&busy["vips"], "web");
    let rate = web["traffic"]["new_flows"]
        .as_u64()
        .expect("new_flows rate");
    assert!(rate > 0, "no new flows per second while sending: {web}");
    let members: u64 = web["backends"]
        .as_array()
        .expect("backends")
        .iter()
        .map(|m| m["traffic"]["new_flows"].as_u64().expect("member rate"))
        .sum();
    assert!(
        members.abs_diff(rate) <= 3,
        "members {members} vs VIP {rate}: {web}"
    );

    let bin = bins::locate("xlbctl").expect("xlbctl is built");
    let watch = Command::new(bin)
        .arg("--status-file")
        .arg(xlbd.status_path())
        .args([
            "-o",
            "json",
            "stats",
            "--watch",
            "--interval",
            "200ms",
            "--count",
            "2",
        ])
        .output()
        .expect("xlbctl stats --watch runs");
    assert!(watch.status.success(), "{watch:?}");
    let lines: Vec<Json> = String::from_utf8_lossy(&watch.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON document per line"))
        .collect();
    assert_eq!(lines.len(), 2, "--count 2 prints two samples");
    for sample in &lines {
        let forwarded = sample
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["reason"] == "forwarded"))
            .unwrap_or_else(|| panic!("no forwarded row in {sample}"));
        assert_eq!(
            forwarded["packets"], 0,
            "idle VIP, nothing forwarded per second"
        );
    }
}

/// `backend maint` takes a backend out (no new flows, not up); `backend
/// reset` gives it back to the config.
fn check_maint_and_reset(testbed: &Testbed, xlbd: &Xlbd) {
    xlbctl(xlbd, &["backend", "maint", &address(2)]);
    let b2 = member(&xlbctl(xlbd, &["svc", "list"]), 2);
    assert_eq!(b2["state"], "maint", "{b2}");
    assert_eq!(
        (&b2["up"], &b2["in_table"]),
        (&Json::from(false), &Json::from(false))
    );
    let stats = testbed
        .run_requests(plan::vip_socket_v4(1, 80), 60, |_, _| {})
        .expect("requests run");
    assert_eq!(stats.failures, 0, "{stats:?}");
    assert!(
        !stats.per_backend.contains_key("b2"),
        "b2 in maint answered: {stats:?}"
    );

    xlbctl(xlbd, &["backend", "reset", &address(2)]);
    let b2 = member(&xlbctl(xlbd, &["svc", "list"]), 2);
    assert_eq!(b2["state"], "ready", "{b2}");
    assert_eq!(b2["operator"], Json::Null, "{b2}");
    assert_eq!(
        (&b2["up"], &b2["in_table"]),
        (&Json::from(true), &Json::from(true))
    );
}
