//! The autoscaler's families, from the rows of the daemon's status.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::daemon::DaemonStatus;

/// A label set: (name, value) pairs.
type Labels = Vec<(&'static str, String)>;

/// Desired and current sizes, forecast and actual rates, and decisions
/// by direction, per autoscaled pool.
pub(super) fn autoscale(registry: &mut Registry, status: &DaemonStatus) {
    let gauge = |registry: &mut Registry, name: &str, help: &str| {
        let family = Family::<Labels, Gauge>::default();
        registry.register(name, help, family.clone());
        family
    };
    let rate = |registry: &mut Registry, name: &str, help: &str| {
        let family = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        registry.register(name, help, family.clone());
        family
    };
    let desired = gauge(
        registry,
        "autoscaler_desired_backends",
        "Backends the pool's last autoscaler decision asked for",
    );
    let current = gauge(
        registry,
        "autoscaler_current_backends",
        "Backends of the pool in service",
    );
    let forecast = rate(
        registry,
        "autoscaler_forecast_rate",
        "Highest new-connection rate per second forecast over the horizon; \
         absent without a forecast",
    );
    let actual = rate(
        registry,
        "autoscaler_actual_rate",
        "New connections per second through the pool's VIPs",
    );
    let decisions = Family::<Labels, Counter>::default();
    registry.register(
        "autoscaler_decisions",
        "Autoscaler decisions by direction (up, down, hold)",
        decisions.clone(),
    );
    let per_second = |milli: u64| milli as f64 / 1000.0;
    for row in &status.autoscale {
        let labels = vec![("pool", row.pool.clone())];
        desired.get_or_create(&labels).set(i64::from(row.desired));
        current.get_or_create(&labels).set(i64::from(row.current));
        if let Some(milli) = row.forecast_rate_milli {
            forecast.get_or_create(&labels).set(per_second(milli));
        }
        if let Some(milli) = row.actual_rate_milli {
            actual.get_or_create(&labels).set(per_second(milli));
        }
        for (direction, total) in &row.decisions_total {
            let mut labels = labels.clone();
            labels.push(("direction", direction.clone()));
            decisions.get_or_create(&labels).inc_by(*total);
        }
    }
}
