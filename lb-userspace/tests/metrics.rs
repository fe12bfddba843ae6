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
