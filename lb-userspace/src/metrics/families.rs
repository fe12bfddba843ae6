//! The metric families, computed at scrape time: counters from the pinned
//! maps (per-CPU values summed over every possible CPU), names, weights and
//! states from the daemon's status.
//!
//! Every family has the `xlb_` prefix and a base unit; labels are bounded
//! sets: VIP names, backend addresses of the config, pools, reasons.

use std::collections::HashMap;

use lb_common::{BACKEND_F_UP, Stat};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::config::BackendState;
use crate::daemon::DaemonStatus;
use crate::dataplane::{DataplaneError, Maps, counters};

use super::Sources;
use super::signals;

/// A label set: (name, value) pairs.
pub(super) type Labels = Vec<(&'static str, String)>;

/// Renders every family as OpenMetrics text.
///
/// # Errors
///
/// When a map cannot be read.
pub fn render(
    status: &DaemonStatus,
    maps: &Maps,
    sources: &Sources,
) -> Result<String, DataplaneError> {
    let mut registry = Registry::with_prefix("xlb");
    traffic(&mut registry, status, maps)?;
    backends(&mut registry, status);
    flows(&mut registry, status, maps)?;
    outcomes(&mut registry, maps)?;
    daemon(&mut registry, status);
    tables(&mut registry, status);
    super::policy::policy(&mut registry, status, maps)?;
    signals::health(&mut registry, &sources.health);
    signals::load(&mut registry, &sources.load);
    super::autoscale::autoscale(&mut registry, status);

    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut text, &registry);
    Ok(text)
}

pub(super) fn counter_family(
    registry: &mut Registry,
    name: &str,
    help: &str,
) -> Family<Labels, Counter> {
    let family = Family::<Labels, Counter>::default();
    registry.register(name, help, family.clone());
    family
}

pub(super) fn gauge_family(
    registry: &mut Registry,
    name: &str,
    help: &str,
) -> Family<Labels, Gauge> {
    let family = Family::<Labels, Gauge>::default();
    registry.register(name, help, family.clone());
    family
}

/// Packets, bytes and new flows per VIP and per backend.
fn traffic(
    registry: &mut Registry,
    status: &DaemonStatus,
    maps: &Maps,
) -> Result<(), DataplaneError> {
    let vip_packets = counter_family(registry, "vip_packets", "Packets forwarded for a VIP");
    let vip_bytes = counter_family(
        registry,
        "vip_bytes",
        "Bytes forwarded for a VIP (L3, before encapsulation)",
    );
    let vip_flows = counter_family(registry, "vip_new_flows", "Flows newly tracked for a VIP");
    let be_packets = counter_family(
        registry,
        "backend_packets",
        "Packets forwarded to a backend",
    );
    let be_bytes = counter_family(
        registry,
        "backend_bytes",
        "Bytes forwarded to a backend (L3, before encapsulation)",
    );
    let be_flows = counter_family(
        registry,
        "backend_new_flows",
        "Flows newly tracked to a backend",
    );

    for vip in &status.vips {
        let labels = vec![("vip", vip.name.clone())];
        let t = counters::vip_traffic_of(maps, vip.id)?;
        vip_packets.get_or_create(&labels).inc_by(t.packets);
        vip_bytes.get_or_create(&labels).inc_by(t.bytes);
        vip_flows.get_or_create(&labels).inc_by(t.new_flows);
        for backend in &vip.backends {
            let labels = backend_labels(&vip.name, backend.address);
            let t = counters::backend_traffic_of(maps, backend.id)?;
            be_packets.get_or_create(&labels).inc_by(t.packets);
            be_bytes.get_or_create(&labels).inc_by(t.bytes);
            be_flows.get_or_create(&labels).inc_by(t.new_flows);
        }
    }
    Ok(())
}

/// State, health and weights of every backend.
fn backends(registry: &mut Registry, status: &DaemonStatus) {
    let state = gauge_family(
        registry,
        "backend_state",
        "1 for the backend's state in force (config or operator override), 0 for the others",
    );
    let up = gauge_family(
        registry,
        "backend_up",
        "1 when the backend is up (healthy and not in maintenance)",
    );
    let weight = gauge_family(registry, "backend_weight", "Weight written in the config");
    let effective = gauge_family(
        registry,
        "backend_effective_weight",
        "Weight the Maglev table is built with; 0 when the backend takes no new flows",
    );
    for vip in &status.vips {
        for backend in &vip.backends {
            let labels = backend_labels(&vip.name, backend.address);
            for candidate in [
                BackendState::Ready,
                BackendState::Drain,
                BackendState::Maint,
            ] {
                let mut labels = labels.clone();
                labels.push(("state", state_label(candidate).to_owned()));
                let on = i64::from(backend.effective_state == candidate);
                state.get_or_create(&labels).set(on);
            }
            let is_up = i64::from(backend.flags & BACKEND_F_UP != 0);
            up.get_or_create(&labels).set(is_up);
            weight.get_or_create(&labels).set(i64::from(backend.weight));
            effective
                .get_or_create(&labels)
                .set(i64::from(backend.effective_weight));
        }
    }

    let transitions = counter_family(
        registry,
        "backend_health_transitions",
        "Health flips of a backend, by the state it flipped to",
    );
    for t in &status.health_transitions {
        for (to, count) in [("up", t.to_up_total), ("down", t.to_down_total)] {
            let labels = vec![
                ("pool", t.pool.clone()),
                ("backend", t.backend.to_string()),
                ("to", to.to_owned()),
            ];
            transitions.get_or_create(&labels).inc_by(count);
        }
    }
}

/// Tracked flows per VIP and per backend, from one walk of `FLOWS`.
fn flows(
    registry: &mut Registry,
    status: &DaemonStatus,
    maps: &Maps,
) -> Result<(), DataplaneError> {
    let by_vip = gauge_family(
        registry,
        "tracked_flows",
        "Flows in the connection table for a VIP",
    );
    let by_backend = gauge_family(
        registry,
        "backend_tracked_flows",
        "Flows in the connection table that go to a backend",
    );
    let mut vips: HashMap<u32, i64> = HashMap::new();
    let mut backends: HashMap<u32, i64> = HashMap::new();
    let mut entries = 0u64;
    for (_, flow) in counters::flows(maps)? {
        *vips.entry(flow.vip_id).or_default() += 1;
        *backends.entry(flow.backend_id).or_default() += 1;
        entries += 1;
    }
    let inserted = counters::flow_inserts(maps)?;
    let inserts = Counter::<u64>::default();
    registry.register(
        "flow_table_inserts",
        "Flows entered in the connection table since its maps were made",
        inserts.clone(),
    );
    inserts.inc_by(inserted);
    let evictions = Counter::<u64>::default();
    registry.register(
        "flow_table_evictions",
        "Flows a full connection table pushed out: inserts minus entries, as nothing \
         else removes them",
        evictions.clone(),
    );
    evictions.inc_by(inserted.saturating_sub(entries));
    for vip in &status.vips {
        let count = vips.get(&vip.id).copied().unwrap_or(0);
        by_vip
            .get_or_create(&vec![("vip", vip.name.clone())])
            .set(count);
        for backend in &vip.backends {
            let count = backends.get(&backend.id).copied().unwrap_or(0);
            let labels = backend_labels(&vip.name, backend.address);
            by_backend.get_or_create(&labels).set(count);
        }
    }
    Ok(())
}

/// Packets by outcome: every `Stat`, labelled by action and reason.
fn outcomes(registry: &mut Registry, maps: &Maps) -> Result<(), DataplaneError> {
    let packets = counter_family(
        registry,
        "packets",
        "Packets seen by the XDP program, by action (pass, tx, drop) and reason",
    );
    for (stat, count) in counters::stats(maps)? {
        let labels = vec![
            ("action", stat.action().to_owned()),
            ("reason", stat.reason().to_owned()),
        ];
        packets.get_or_create(&labels).inc_by(count);
    }
    debug_assert_eq!(Stat::ALL.len(), Stat::COUNT as usize);
    Ok(())
}

/// Reloads, start time and versions.
fn daemon(registry: &mut Registry, status: &DaemonStatus) {
    let reloads = counter_family(registry, "config_reloads", "Config reloads, by result");
    let results = [
        ("success", status.reloads_succeeded_total),
        ("failure", status.reloads_failed_total),
    ];
    for (result, count) in results {
        reloads
            .get_or_create(&vec![("result", result.to_owned())])
            .inc_by(count);
    }

    let source_errors = counter_family(
        registry,
        "config_source_errors",
        "Times the config source (etcd) was unreachable or held no usable value",
    );
    source_errors
        .get_or_create(&Vec::new())
        .inc_by(status.config_source_errors_total);

    let started = gauge_family(
        registry,
        "start_time_seconds",
        "When xlbd started, in seconds since the Unix epoch",
    );
    let started_s = i64::try_from(status.started_unix_s).unwrap_or(i64::MAX);
    started.get_or_create(&Vec::new()).set(started_s);

    let info = gauge_family(
        registry,
        "build_info",
        "Always 1; labels name xlbd's version and the running config's",
    );
    let labels = vec![
        ("version", env!("CARGO_PKG_VERSION").to_owned()),
        ("config_version", status.config_version.clone()),
    ];
    info.get_or_create(&labels).set(1);
}

/// Maglev table swaps and the slots they moved, per VIP.
fn tables(registry: &mut Registry, status: &DaemonStatus) {
    let swaps = counter_family(
        registry,
        "maglev_table_swaps",
        "Rebuilt Maglev tables swapped in for a VIP since xlbd started",
    );
    let moved = counter_family(
        registry,
        "maglev_slots_moved",
        "Table slots that changed backend in those swaps",
    );
    for (vip, row) in &status.tables {
        let labels = vec![("vip", vip.clone())];
        swaps.get_or_create(&labels).inc_by(row.swaps_total);
        moved.get_or_create(&labels).inc_by(row.slots_moved_total);
    }
}

fn backend_labels(vip: &str, backend: std::net::IpAddr) -> Labels {
    vec![("vip", vip.to_owned()), ("backend", backend.to_string())]
}

/// The config's word for a state, used as the `state` label.
pub fn state_label(state: BackendState) -> &'static str {
    match state {
        BackendState::Ready => "ready",
        BackendState::Drain => "drain",
        BackendState::Maint => "maint",
    }
}
