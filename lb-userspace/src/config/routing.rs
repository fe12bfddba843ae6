//! The validated routing policy: which pool a VIP's new flows reach (by
//! destination port, client prefix and canary share), the tenants' new-flow
//! limits, and a pool's fallback and cost preference.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use super::types::{Prefix, Share};

/// One `source_rules` entry of a VIP: clients in `prefix` get `action`.
/// The longest matching prefix wins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceRule {
    /// Client prefix, of the VIP's address family.
    pub prefix: Prefix,
    /// What happens to those clients' flows.
    pub action: SourceAction,
}

/// What a source rule does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceAction {
    /// Every packet is dropped and counted.
    Deny,
    /// New flows go to `pool` (the VIP's pool when `None`) and spend a
    /// token of `tenant`'s bucket (no limit when `None`); at least one is
    /// set.
    Route {
        /// Pool replacing the VIP's (or port's) pool.
        pool: Option<String>,
        /// Tenant class under `tenants`.
        tenant: Option<String>,
    },
}

impl SourceRule {
    /// The pool this rule sends flows to, if it names one.
    pub fn pool(&self) -> Option<&str> {
        match &self.action {
            SourceAction::Route { pool, .. } => pool.as_deref(),
            SourceAction::Deny => None,
        }
    }

    /// The tenant class this rule charges, if it names one.
    pub fn tenant(&self) -> Option<&str> {
        match &self.action {
            SourceAction::Route { tenant, .. } => tenant.as_deref(),
            SourceAction::Deny => None,
        }
    }
}

/// A VIP's canary: a share of new flows, by flow hash, goes to `pool`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Canary {
    /// The canary pool; not the VIP's own pool.
    pub pool: String,
    /// Share of new flows sent there, as configured (an operator's
    /// `xlbctl vip split` replaces it at run time).
    pub share: Share,
    /// When to set the share to 0 on its own; `None` never does.
    pub rollback: Option<Rollback>,
}

/// Thresholds that roll a canary back to 0 %. At least one is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Rollback {
    /// Share of the canary pool's backends found down by health checks
    /// at or above which it rolls back.
    pub max_down_share: Option<Share>,
    /// Mean load (load signal, 1 = full) of the canary pool's backends
    /// at or above which it rolls back; the pool has a load signal.
    pub max_load: Option<Share>,
}

/// A tenant class's budget of new flows, per CPU (as `syn_guard`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TenantLimit {
    /// New flows per second, per CPU, at least 1.
    pub new_flows_per_second: u32,
    /// New flows a CPU may take at once after a quiet spell, at least 1.
    /// Default [`DEFAULT_TENANT_BURST`].
    pub burst: u32,
}

/// Default `tenants.*.burst`.
pub const DEFAULT_TENANT_BURST: u32 = 10;

/// A pool's preference for cheap backends.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CostAware {
    /// Mean load (load signal, 1 = full) of a cost tier above which new
    /// flows spill over to the next dearer tier, in (0, 1].
    pub spill_load: f64,
    /// Each backend's `cost` label, as a number of at least 0.
    pub cost: BTreeMap<IpAddr, f64>,
}

/// The kernel's canary share, new flows per 65 536, for a share in basis
/// points.
pub fn share_per_65536(share: Share) -> u32 {
    let basis_points = u32::from(share.basis_points());
    (basis_points * 65_536 + 5_000) / 10_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_shares_map_onto_65536ths() {
        let share = |bp| share_per_65536(Share::from_basis_points(bp).unwrap());
        assert_eq!(share(0), 0);
        assert_eq!(share(10_000), 65_536);
        assert_eq!(share(500), 3_277);
        assert_eq!(share(1_000), 6_554);
    }
}
