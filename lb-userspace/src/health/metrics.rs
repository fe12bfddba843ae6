//! Counters of the health checker, for the metrics exporter to read.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use super::probe::ProbeOutcome;
use super::tracker::HealthState;

/// The checker's counters, shared with whoever exports them.
#[derive(Debug, Default)]
pub struct HealthMetrics {
    counts: Mutex<HealthCounts>,
}

/// A copy of the counters at one moment. Labels are bounded: configured
/// pools and backends, and fixed enums.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthCounts {
    /// `xlb_health_transitions_total{pool, backend, to}`: health flips.
    pub transitions_total: BTreeMap<(String, IpAddr, HealthState), u64>,
    /// `xlb_health_probes_total{pool, backend, result}`: probes run.
    pub probes_total: BTreeMap<(String, IpAddr, ProbeOutcome), u64>,
    /// `xlb_pool_panic{pool}`: 1 while the pool is in panic mode.
    pub panic: BTreeMap<String, bool>,
    /// `xlb_pool_panics_total{pool}`: times the pool entered panic mode.
    pub panics_total: BTreeMap<String, u64>,
}

impl HealthMetrics {
    /// A copy of the counters.
    pub fn snapshot(&self) -> HealthCounts {
        self.lock().clone()
    }

    /// Probes of `addr` in `pool` that ended with `outcome`.
    pub fn probes(&self, pool: &str, addr: IpAddr, outcome: ProbeOutcome) -> u64 {
        let key = (pool.to_owned(), addr, outcome);
        self.lock().probes_total.get(&key).copied().unwrap_or(0)
    }

    pub(super) fn count_probe(&self, pool: &str, addr: IpAddr, outcome: ProbeOutcome) {
        let key = (pool.to_owned(), addr, outcome);
        *self.lock().probes_total.entry(key).or_default() += 1;
    }

    pub(super) fn count_transition(&self, pool: &str, addr: IpAddr, to: HealthState) {
        let key = (pool.to_owned(), addr, to);
        *self.lock().transitions_total.entry(key).or_default() += 1;
    }

    /// Records whether `pool` is in panic mode; returns whether that
    /// changed.
    pub(super) fn set_panic(&self, pool: &str, panic: bool) -> bool {
        let mut counts = self.lock();
        let before = counts.panic.insert(pool.to_owned(), panic).unwrap_or(false);
        if panic && !before {
            *counts.panics_total.entry(pool.to_owned()).or_default() += 1;
        }
        before != panic
    }

    pub(super) fn forget_pool(&self, pool: &str) {
        self.lock().panic.remove(pool);
    }

    /// Drops the panic gauges of pools `keep` says are gone.
    pub(super) fn retain_pools(&self, keep: impl Fn(&str) -> bool) {
        self.lock().panic.retain(|pool, _| keep(pool));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HealthCounts> {
        // Counters stay meaningful after a panic elsewhere: take them anyway.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
