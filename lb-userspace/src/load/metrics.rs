//! Counters and gauges of the load tracker, for the metrics exporter.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::scrape::ScrapeOutcome;

/// The tracker's figures, shared with whoever exports them.
#[derive(Debug, Default)]
pub struct LoadMetrics {
    figures: Mutex<LoadFigures>,
}

/// A copy of the figures at one moment; labels are configured pools and
/// backends, and fixed outcomes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadFigures {
    /// `xlb_load_scrapes_total{pool, backend, result}`.
    pub scrapes_total: BTreeMap<(String, IpAddr, ScrapeOutcome), u64>,
    /// `xlb_backend_load{pool, backend}`: the smoothed load (1 = full),
    /// absent without a good reading.
    pub load: BTreeMap<(String, IpAddr), f64>,
    /// `xlb_backend_load_factor{pool, backend}`: factor on the weight.
    pub factor: BTreeMap<(String, IpAddr), f64>,
    /// `xlb_load_weight_changes_total{pool, backend}`.
    pub changes_total: BTreeMap<(String, IpAddr), u64>,
    /// When the last good reading came, for
    /// `xlb_backend_load_age_seconds{pool, backend}`.
    pub last_good: BTreeMap<(String, IpAddr), Instant>,
}

impl LoadMetrics {
    /// A copy of the figures.
    pub fn snapshot(&self) -> LoadFigures {
        self.lock().clone()
    }

    /// Scrapes of `addr` in `pool` that ended with `outcome`.
    pub fn scrapes(&self, pool: &str, addr: IpAddr, outcome: ScrapeOutcome) -> u64 {
        let key = (pool.to_owned(), addr, outcome);
        self.lock().scrapes_total.get(&key).copied().unwrap_or(0)
    }

    pub(super) fn count_scrape(
        &self,
        key: &(String, IpAddr),
        outcome: ScrapeOutcome,
        load: Option<f64>,
    ) {
        let mut figures = self.lock();
        *figures
            .scrapes_total
            .entry((key.0.clone(), key.1, outcome))
            .or_default() += 1;
        if outcome == ScrapeOutcome::Ok {
            figures.last_good.insert(key.clone(), Instant::now());
        }
        match load {
            Some(load) => figures.load.insert(key.clone(), load),
            None => figures.load.remove(key),
        };
    }

    pub(super) fn set_factor(&self, key: &(String, IpAddr), factor: f64, changed: bool) {
        let mut figures = self.lock();
        figures.factor.insert(key.clone(), factor);
        if changed {
            *figures.changes_total.entry(key.clone()).or_default() += 1;
        }
    }

    /// Drops the gauges of backends `keep` says are gone.
    pub(super) fn retain(&self, keep: impl Fn(&(String, IpAddr)) -> bool) {
        let mut figures = self.lock();
        figures.load.retain(|key, _| keep(key));
        figures.factor.retain(|key, _| keep(key));
        figures.last_good.retain(|key, _| keep(key));
    }

    fn lock(&self) -> MutexGuard<'_, LoadFigures> {
        // Figures stay meaningful after a panic elsewhere: take them anyway.
        self.figures.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
