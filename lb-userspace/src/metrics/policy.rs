//! The routing policy's families: canary shares and rollbacks from the
//! daemon's status, and per-table policy counters from `POLICY_STATS`.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::daemon::DaemonStatus;
use crate::dataplane::{DataplaneError, Maps, counters};

use super::families::{Labels, counter_family};

/// `xlb_vip_canary_share_ratio`, `xlb_canary_rollbacks_total`,
/// `xlb_policy_new_flows_total` and `xlb_policy_drops_total`.
///
/// # Errors
///
/// When a `POLICY_STATS` entry cannot be read.
pub fn policy(
    registry: &mut Registry,
    status: &DaemonStatus,
    maps: &Maps,
) -> Result<(), DataplaneError> {
    let share = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    registry.register(
        "vip_canary_share_ratio",
        "Share (0..1) of a VIP's new flows sent to its canary pool",
        share.clone(),
    );
    let rollbacks = counter_family(
        registry,
        "canary_rollbacks",
        "Automatic rollbacks of a VIP's canary to 0 % since xlbd started",
    );
    for canary in &status.canaries {
        let labels = vec![("vip", canary.vip.clone()), ("pool", canary.pool.clone())];
        share
            .get_or_create(&labels)
            .set(f64::from(canary.effective_bp) / 10_000.0);
        let labels = vec![("vip", canary.vip.clone())];
        rollbacks
            .get_or_create(&labels)
            .inc_by(canary.rollbacks_total);
    }

    let new_flows = counter_family(
        registry,
        "policy_new_flows",
        "New flows a table of a VIP sent on by its canary split or its fallback",
    );
    let drops = counter_family(
        registry,
        "policy_drops",
        "Packets of a VIP dropped by its routing policy, by reason",
    );
    for table in &status.vips {
        let c = counters::policy_of(maps, table.id)?;
        let vip = table
            .name
            .split('/')
            .next()
            .unwrap_or(&table.name)
            .to_owned();
        for (kind, value) in [
            ("canary", c.canary_new_flows),
            ("fallback", c.fallback_new_flows),
        ] {
            let labels = vec![
                ("vip", vip.clone()),
                ("pool", table.pool.clone()),
                ("kind", kind.to_owned()),
            ];
            new_flows.get_or_create(&labels).inc_by(value);
        }
        for (reason, value) in [("denied", c.denied), ("tenant_limit", c.rate_limited)] {
            let labels = vec![("vip", vip.clone()), ("reason", reason.to_owned())];
            drops.get_or_create(&labels).inc_by(value);
        }
    }
    Ok(())
}
