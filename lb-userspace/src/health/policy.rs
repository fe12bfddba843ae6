//! Pure routing rules over a [`HealthView`]: slow start (how much weight a
//! backend that just came up gets) and panic mode (which backends take new
//! flows when too few are healthy).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::{BackendConfig, Share};

use super::view::HealthView;

/// Steps of a slow-start ramp: the weight grows by a tenth of the full
/// weight at a time, so a ramp rebuilds the Maglev tables at most this many
/// times.
pub const RAMP_STEPS: u32 = 10;

/// The weight `addr` in `pool` should get now: `configured_weight`, scaled
/// down while it ramps up after coming up (see [`ramp_weight`]).
pub fn effective_weight(
    view: &HealthView,
    pool: &str,
    addr: IpAddr,
    configured_weight: u32,
    now: Instant,
) -> u32 {
    let ramp_from = view.get(pool, addr).and_then(|b| b.ramp_from);
    let window = view.policy(pool).slow_start;
    match ramp_from {
        Some(from) => ramp_weight(configured_weight, from, window, now),
        None => configured_weight,
    }
}

/// `weight` ramped over `window` from `from`: a tenth of it during the
/// first two tenths of the window, then one tenth more at each tenth, all
/// of it from the window's end. Never 0 for a weight above 0, so a ramping
/// backend keeps its place in the table.
pub fn ramp_weight(weight: u32, from: Instant, window: Duration, now: Instant) -> u32 {
    let step = ramp_step(from, window, now).max(1);
    if step >= RAMP_STEPS || weight == 0 {
        return weight;
    }
    let scaled = u64::from(weight) * u64::from(step) / u64::from(RAMP_STEPS);
    u32::try_from(scaled).unwrap_or(weight).max(1)
}

/// The next moment after `now` at which [`ramp_weight`] changes, if the
/// ramp is not over.
pub fn next_ramp_step(from: Instant, window: Duration, now: Instant) -> Option<Instant> {
    let step = ramp_step(from, window, now);
    if step >= RAMP_STEPS {
        return None;
    }
    // Steps 0 and 1 share a weight, so from step 0 the next change is at 2.
    let next = step.max(1) + 1;
    Some(from + window * next / RAMP_STEPS)
}

/// Whole tenths of `window` elapsed since `from`, at most [`RAMP_STEPS`].
fn ramp_step(from: Instant, window: Duration, now: Instant) -> u32 {
    if window.is_zero() {
        return RAMP_STEPS;
    }
    let elapsed = now.saturating_duration_since(from);
    let step = elapsed.as_nanos() * u128::from(RAMP_STEPS) / window.as_nanos();
    u32::try_from(step).unwrap_or(RAMP_STEPS).min(RAMP_STEPS)
}

/// A pool's backend as panic mode sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolMember {
    /// Its address.
    pub addr: IpAddr,
    /// Whether the operator lets it take new flows (ready, weight above
    /// 0). Drained and maintained backends never count and are never used.
    pub eligible: bool,
}

impl From<&BackendConfig> for PoolMember {
    fn from(backend: &BackendConfig) -> Self {
        Self {
            addr: backend.address,
            eligible: backend.takes_new_flows(),
        }
    }
}

/// The backends of a pool that take new flows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Usable {
    /// Eligible backends that take new flows.
    pub backends: BTreeSet<IpAddr>,
    /// Whether panic mode is on: the eligible backends are all used,
    /// healthy or not.
    pub panic: bool,
    /// Eligible backends passing their checks.
    pub healthy: usize,
    /// Eligible backends.
    pub eligible: usize,
}

/// Which of `members` take new flows in `pool`: the eligible ones that are
/// up, or, when fewer than the pool's panic threshold of them are up, all
/// the eligible ones (rather than overload the few).
pub fn usable_backends(view: &HealthView, pool: &str, members: &[PoolMember]) -> Usable {
    let eligible: Vec<IpAddr> = members
        .iter()
        .filter(|m| m.eligible)
        .map(|m| m.addr)
        .collect();
    let healthy: BTreeSet<IpAddr> = eligible
        .iter()
        .copied()
        .filter(|&addr| view.is_up(pool, addr))
        .collect();
    let threshold = view.policy(pool).panic_threshold;
    let panic = in_panic(threshold, healthy.len(), eligible.len());
    Usable {
        healthy: healthy.len(),
        eligible: eligible.len(),
        backends: if panic {
            eligible.into_iter().collect()
        } else {
            healthy
        },
        panic,
    }
}

/// Whether `healthy` of `eligible` backends is below `threshold`. A pool
/// with no eligible backends is never in panic: there is no one to add.
pub fn in_panic(threshold: Share, healthy: usize, eligible: usize) -> bool {
    if threshold.is_zero() || eligible == 0 {
        return false;
    }
    // healthy / eligible < bp / 10 000, without floats.
    let bp = u128::from(threshold.basis_points());
    (healthy as u128) * 10_000 < bp * (eligible as u128)
}
