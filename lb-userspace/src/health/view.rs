//! What the checks found, as the daemon reads it: one value published on a
//! `watch` channel each time a backend flips or the config changes.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::{Config, Share};

use super::tracker::HealthState;

/// Health of every configured backend, and each pool's routing policy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HealthView {
    pub(super) backends: BTreeMap<(String, IpAddr), BackendHealth>,
    pub(super) pools: BTreeMap<String, PoolPolicy>,
}

/// One backend of one pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendHealth {
    /// Up or down.
    pub state: HealthState,
    /// When it entered `state` (or was first seen).
    pub since: Instant,
    /// Why it is in `state`, as in "3 consecutive failures: connect
    /// refused", "not checked", "added".
    pub reason: String,
    /// When it came up after the checker started (added by a reload, or
    /// back from down); slow start ramps from here. `None` for backends up
    /// since the start and for backends that are down.
    pub ramp_from: Option<Instant>,
}

/// How a pool routes around unhealthy backends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolPolicy {
    /// Below this share of healthy backends, route to all (0: never).
    pub panic_threshold: Share,
    /// Slow-start window (0: off).
    pub slow_start: Duration,
}

impl PoolPolicy {
    /// Every pool's policy in `config`.
    pub fn from_config(config: &Config) -> BTreeMap<String, PoolPolicy> {
        let policy = |(name, pool): (&String, &crate::config::PoolConfig)| {
            let policy = PoolPolicy {
                panic_threshold: pool.panic_threshold,
                slow_start: pool.slow_start,
            };
            (name.clone(), policy)
        };
        config.pools.iter().map(policy).collect()
    }
}

impl HealthView {
    /// Whether `addr` in `pool` passes its checks. A backend the view does
    /// not know (not configured yet) counts as up.
    pub fn is_up(&self, pool: &str, addr: IpAddr) -> bool {
        self.get(pool, addr)
            .is_none_or(|backend| backend.state == HealthState::Up)
    }

    /// The health of `addr` in `pool`, if configured.
    pub fn get(&self, pool: &str, addr: IpAddr) -> Option<&BackendHealth> {
        self.backends.get(&(pool.to_owned(), addr))
    }

    /// Every backend as (pool, address, health), by pool then address.
    pub fn iter(&self) -> impl Iterator<Item = (&str, IpAddr, &BackendHealth)> {
        self.backends
            .iter()
            .map(|((pool, addr), health)| (pool.as_str(), *addr, health))
    }

    /// The policy of `pool`; the default (no panic mode, no slow start)
    /// for a pool the view does not know.
    pub fn policy(&self, pool: &str) -> PoolPolicy {
        self.pools.get(pool).copied().unwrap_or_default()
    }

    /// The earliest moment after `now` at which a slow-start weight
    /// changes: when the daemon should apply the view again. `None` when
    /// nothing is ramping.
    pub fn next_weight_change(&self, now: Instant) -> Option<Instant> {
        self.iter()
            .filter_map(|(pool, _, backend)| {
                let window = self.policy(pool).slow_start;
                super::policy::next_ramp_step(backend.ramp_from?, window, now)
            })
            .min()
    }
}
