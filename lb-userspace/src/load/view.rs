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
