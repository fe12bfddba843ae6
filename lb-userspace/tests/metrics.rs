//! xlbd's Prometheus endpoint, scraped from inside the daemon's namespace
//! and parsed with a Prometheus text parser. Needs root; never skips.

mod xlbctl_bed;

use std::collections::{BTreeMap, BTreeSet};

use prometheus_parse::Scrape;
use xlbctl_bed::{BACKENDS, Bed};

fn families(scrape: &Scrape) -> BTreeMap<String, Vec<BTreeMap<String, String>>> {
    let mut out: BTreeMap<String, Vec<BTreeMap<String, String>>> = BTreeMap::new();
    for sample in &scrape.samples {
        let labels = sample
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.entry(sample.metric.clone()).or_default().push(labels);
    }
    out
}

#[test]
fn the_metrics_endpoint_serves_every_xlb_family_with_bounded_labels() {
    let bed = Bed::start("xm", [1, 2, 3]);
    let (code, body) = bed.scrape("/metrics");
    assert_eq!(code, 200, "{body}");
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    let scrape = Scrape::parse(lines).expect("valid Prometheus text");
    let families = families(&scrape);

    let vip = BTreeSet::from(["vip"]);
    let backend = BTreeSet::from(["vip", "backend"]);
    let expected: [(&str, BTreeSet<&str>); 13] = [
        ("xlb_vip_packets_total", vip.clone()),
        ("xlb_vip_bytes_total", vip.clone()),
        ("xlb_vip_new_flows_total", vip.clone()),
        ("xlb_backend_packets_total", backend.clone()),
        ("xlb_backend_bytes_total", backend.clone()),
        ("xlb_backend_new_flows_total", backend.clone()),
        (
            "xlb_backend_state",
            BTreeSet::from(["vip", "backend", "state"]),
        ),
        ("xlb_backend_up", backend.clone()),
        ("xlb_backend_weight", backend.clone()),
        ("xlb_backend_effective_weight", backend.clone()),
        ("xlb_packets_total", BTreeSet::from(["action", "reason"])),
        ("xlb_config_reloads_total", BTreeSet::from(["result"])),
        ("xlb_tracked_flows", vip.clone()),
    ];
    for (name, labels) in &expected {
        let samples = families
            .get(*name)
            .unwrap_or_else(|| panic!("no {name} in\n{body}"));
        for sample in samples {
            let keys: BTreeSet<&str> = sample.keys().map(String::as_str).collect();
            assert_eq!(&keys, labels, "{name}");
        }
    }
    assert!(
        families.keys().all(|name| name.starts_with("xlb_")),
        "{:?}",
        families.keys()
    );
    assert_eq!(
        families["xlb_packets_total"].len(),
        lb_common::Stat::ALL.len()
    );
    // Two VIPs of three backends, three states each.
    assert_eq!(families["xlb_backend_state"].len(), 2 * 3 * 3);

    let weight = |address: &str| {
        scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == "xlb_backend_weight"
                    && s.labels.get("vip") == Some("web")
                    && s.labels.get("backend") == Some(address)
            })
            .map(|s| format!("{:?}", s.value))
    };
    assert_eq!(weight(BACKENDS[2]).as_deref(), Some("Gauge(3.0)"));

    let (missing, _) = bed.scrape("/other");
    assert_eq!(missing, 404);
}

#[test]
fn the_metrics_listener_is_loopback_by_default_and_read_only() {
    // The bed's config leaves metrics_listen out: this is the default.
    let bed = Bed::start("xr", [1, 2, 3]);
    let listening = xlbctl_bed::sh(&["ip", "netns", "exec", &bed.ns, "ss", "-ltnH"]);
    let listening = String::from_utf8_lossy(&listening.stdout).into_owned();
    let locals: Vec<&str> = listening
        .lines()
        .filter_map(|line| line.split_whitespace().nth(3))
        .collect();
    assert_eq!(locals, ["127.0.0.1:9641"], "{listening}");

    let services = bed.json(&["svc", "list", "-o", "json"]);
    let reloads = |bed: &Bed| {
        let (_, body) = bed.scrape("/metrics");
        let mut lines: Vec<String> = body
            .lines()
            .filter(|l| l.starts_with("xlb_config_reloads_total"))
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    };
    let reloads_before = reloads(&bed);
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO"] {
        for path in ["/metrics", "/", "/reload", "/-/reload", "/quitquitquit"] {
            let answer = bed.metrics_request(&format!(
                "{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-length: 8\r\n\
                 connection: close\r\n\r\nweight=0"
            ));
            assert!(
                answer.starts_with("HTTP/1.1 405"),
                "{method} {path}: {answer}"
            );
            assert!(
                answer.to_ascii_lowercase().contains("allow: get, head"),
                "{answer}"
            );
        }
    }
    let head =
        bed.metrics_request("HEAD /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (_, body) = head.split_once("\r\n\r\n").expect("a head");
    assert_eq!(body, "", "HEAD has no body");

    assert_eq!(
        bed.json(&["svc", "list", "-o", "json"]),
        services,
        "nothing changed"
    );
    assert_eq!(reloads(&bed), reloads_before, "no reload was caused");
}
