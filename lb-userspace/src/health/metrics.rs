//! Counters of the health checker, for the metrics exporter to read.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use super::probe::ProbeOutcome;
use super::tracker::HealthState;

/// Labels of the probe-duration histogram: the pool only, so the series
/// stay few however many backends a pool has.
pub type PoolLabel = Vec<(&'static str, String)>;

/// `xlb_health_probe_duration_seconds{pool}`, ready to register.
pub type ProbeDurations = Family<PoolLabel, Histogram, fn() -> Histogram>;

/// The checker's counters, shared with whoever exports them.
#[derive(Debug)]
pub struct HealthMetrics {
    counts: Mutex<HealthCounts>,
    durations: ProbeDurations,
}

impl Default for HealthMetrics {
    fn default() -> Self {
        Self {
            counts: Mutex::default(),
            durations: Family::new_with_constructor(probe_histogram),
        }
    }
}

/// Buckets from 0.5 ms to about 4 s, doubling: a loopback connect takes
/// well under a millisecond, a timeout is at most the check interval.
fn probe_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
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

    /// The probe-duration histogram, shared: registering a clone exports
    /// the live values.
    pub fn durations(&self) -> ProbeDurations {
        self.durations.clone()
    }

    pub(super) fn count_probe(
        &self,
        pool: &str,
        addr: IpAddr,
        outcome: ProbeOutcome,
        took: Duration,
    ) {
        let key = (pool.to_owned(), addr, outcome);
        *self.lock().probes_total.entry(key).or_default() += 1;
        self.durations
            .get_or_create(&vec![("pool", pool.to_owned())])
            .observe(took.as_secs_f64());
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
