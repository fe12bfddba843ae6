//! The factors in force, as the daemon reads them, and their application
//! to the data plane's desired state.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::dataplane::DesiredState;

use super::headroom::scaled_weight;

/// The load factor applied to each backend of each pool with a load
/// signal; a backend not listed keeps its weight.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadView {
    pub(super) factors: BTreeMap<(String, IpAddr), f64>,
    /// Each backend's smoothed load (1 = full), in whole percent so that
    /// the view changes (and the daemon rewrites) only on a visible move;
    /// a backend with no good reading is not listed.
    pub(super) loads_percent: BTreeMap<(String, IpAddr), u32>,
}

impl LoadView {
    /// The factor on the weight of `addr` in `pool` (1 when not steered).
    pub fn factor(&self, pool: &str, addr: IpAddr) -> f64 {
        self.factors
            .get(&(pool.to_owned(), addr))
            .copied()
            .unwrap_or(1.0)
    }
}

impl LoadView {
    /// The smoothed load of `addr` in `pool` (1 = full), if read.
    pub fn load(&self, pool: &str, addr: IpAddr) -> Option<f64> {
        let percent = self.loads_percent.get(&(pool.to_owned(), addr))?;
        Some(f64::from(*percent) / 100.0)
    }

    /// The mean smoothed load of the backends of `pool` that have one.
    pub fn pool_load(&self, pool: &str) -> Option<f64> {
        let loads: Vec<u32> = self
            .loads_percent
            .iter()
            .filter(|((p, _), _)| p == pool)
            .map(|(_, &load)| load)
            .collect();
        let sum: u32 = loads.iter().sum();
        (!loads.is_empty()).then(|| f64::from(sum) / 100.0 / loads.len() as f64)
    }
}

/// Scales the weights of `desired` by the factors of `view`. Runs after
/// the health rules, so a slow-start weight is scaled too.
pub fn steer(view: &LoadView, desired: &mut DesiredState) {
    for vip in &mut desired.vips {
        for backend in &mut vip.backends {
            let factor = view.factor(&vip.pool, backend.addr);
            if factor < 1.0 {
                backend.weight = scaled_weight(backend.weight, factor);
            }
        }
    }
}
