//! Families read live from the health checker and the load tracker at each
//! scrape: probes move on every interval, whether or not the daemon has
//! published a new status since.

use std::sync::atomic::AtomicU64;
use std::time::Instant;

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::daemon::status::load_rows;
use crate::health::HealthMetrics;
use crate::load::LoadMetrics;

use super::families::{Labels, counter_family, gauge_family};

/// A gauge family with float values.
type FloatFamily = Family<Labels, Gauge<f64, AtomicU64>>;

fn float_family(registry: &mut Registry, name: &str, help: &str) -> FloatFamily {
    let family = FloatFamily::default();
    registry.register(name, help, family.clone());
    family
}

/// Probes by result, their durations, and panic mode per pool.
pub(super) fn health(registry: &mut Registry, metrics: &HealthMetrics) {
    let counts = metrics.snapshot();
    let probes = counter_family(
        registry,
        "health_probes",
        "Health probes of a backend, by result",
    );
    for ((pool, backend, outcome), total) in &counts.probes_total {
        let labels = vec![
            ("pool", pool.clone()),
            ("backend", backend.to_string()),
            ("result", outcome.name().to_owned()),
        ];
        probes.get_or_create(&labels).inc_by(*total);
    }
    registry.register(
        "health_probe_duration_seconds",
        "Time a health probe took, connect to verdict, per pool",
        metrics.durations(),
    );

    let panic = gauge_family(
        registry,
        "pool_panic",
        "1 while too few of the pool's backends are healthy and new flows go to all of them",
    );
    for (pool, on) in &counts.panic {
        panic
            .get_or_create(&vec![("pool", pool.clone())])
            .set(i64::from(*on));
    }
    let panics = counter_family(registry, "pool_panics", "Times a pool entered panic mode");
    for (pool, total) in &counts.panics_total {
        panics
            .get_or_create(&vec![("pool", pool.clone())])
            .inc_by(*total);
    }
}

/// What the load signals show: scrapes by result, smoothed load, weight
/// factor and its moves, and the age of the last good reading, per backend
/// of each pool with a signal.
pub(super) fn load(registry: &mut Registry, metrics: &LoadMetrics) {
    let figures = metrics.snapshot();
    let scrapes = counter_family(
        registry,
        "load_scrapes",
        "Scrapes of a backend's load signal, by result",
    );
    let load = float_family(
        registry,
        "backend_load_ratio",
        "Smoothed load a backend reports (1 = full); absent without a good reading",
    );
    let factor = float_family(
        registry,
        "backend_load_factor_ratio",
        "Factor the load signal puts on the backend's weight (1 = all of it)",
    );
    let changes = counter_family(
        registry,
        "load_weight_changes",
        "Moves of a backend's load factor",
    );
    for row in load_rows(&figures) {
        let labels = vec![
            ("pool", row.pool.clone()),
            ("backend", row.backend.to_string()),
        ];
        for (result, total) in &row.scrapes_total {
            let mut labels = labels.clone();
            labels.push(("result", result.clone()));
            scrapes.get_or_create(&labels).inc_by(*total);
        }
        if let Some(bp) = row.load_bp {
            load.get_or_create(&labels).set(f64::from(bp) / 10_000.0);
        }
        factor
            .get_or_create(&labels)
            .set(f64::from(row.factor_bp) / 10_000.0);
        changes
            .get_or_create(&labels)
            .inc_by(row.weight_changes_total);
    }

    let age = float_family(
        registry,
        "backend_load_age_seconds",
        "Seconds since the backend's last good load reading; absent before the first",
    );
    let now = Instant::now();
    for ((pool, backend), at) in &figures.last_good {
        let labels = vec![("pool", pool.clone()), ("backend", backend.to_string())];
        age.get_or_create(&labels)
            .set(now.saturating_duration_since(*at).as_secs_f64());
    }
}
