//! Every pool's autoscaler, as the daemon holds them: kept across reloads,
//! woken when one is due, and laid over the desired state.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use tracing::info;

use crate::config::Config;
use crate::dataplane::DesiredState;

use super::pool::{PoolActuator, PoolReadings, PoolScaler};
use super::standby::PhaseName;
use super::status::{AutoscaleRow, MemberRow};

/// The autoscalers of the pools with an `autoscale` section.
#[derive(Debug, Default)]
pub struct Autoscaler {
    pools: BTreeMap<String, PoolScaler>,
}

impl Autoscaler {
    /// Autoscalers for `config`'s pools, starting at `now`. Needs a tokio
    /// runtime when a pool uses the exec actuator.
    pub fn new(config: &Config, now: Instant) -> Self {
        let mut scaler = Self::default();
        scaler.update_config(config, now);
        scaler
    }

    /// Takes a reloaded config: a pool whose `autoscale` section and
    /// backends are unchanged keeps its state; a changed one starts over,
    /// keeping its standby backends where they were.
    pub fn update_config(&mut self, config: &Config, now: Instant) {
        let mut next = BTreeMap::new();
        for (name, pool) in &config.pools {
            let Some(autoscale) = &pool.autoscale else {
                continue;
            };
            let mut fresh = PoolScaler::new(name, pool, autoscale, now);
            if let Some(old) = self.pools.remove(name) {
                if let (PoolActuator::Standby(new), PoolActuator::Standby(old)) =
                    (&mut fresh.actuator, &old.actuator)
                {
                    new.carry_over(old);
                }
                if old.config == *autoscale {
                    fresh.last = old.last;
                    fresh.decisions_total = old.decisions_total;
                    fresh.forecaster = old.forecaster;
                    fresh.engine = old.engine;
                }
            }
            next.insert(name.clone(), fresh);
        }
        self.pools = next;
    }

    /// Whether any pool is autoscaled.
    pub fn is_empty(&self) -> bool {
        self.pools.is_empty()
    }

    /// The next moment a pool needs the daemon; `None` with no pools.
    pub fn next_wake(&self, now: Instant) -> Option<Instant> {
        self.pools.values().map(|p| p.next_wake(now)).min()
    }

    /// Standby backends that drain, as (pool, address, idle time after
    /// which a flow no longer counts): whose flows to count.
    pub fn draining(&self) -> Vec<(String, IpAddr, Duration)> {
        let mut out = Vec::new();
        for (name, pool) in &self.pools {
            if let PoolActuator::Standby(standby) = &pool.actuator {
                let idle = standby.drain_idle();
                out.extend(standby.draining().map(|addr| (name.clone(), addr, idle)));
            }
        }
        out
    }

    /// Pools due at `now`, whose readings the daemon must gather.
    pub fn due(&self, now: Instant) -> Vec<String> {
        let due =
            |(name, pool): (&String, &PoolScaler)| (pool.next_at <= now).then(|| name.clone());
        self.pools.iter().filter_map(due).collect()
    }

    /// Evaluates the due pools with their `readings`, then advances the
    /// standby phases with `flows` (tracked flows of a draining backend).
    /// Returns whether the maps need writing.
    pub fn tick(
        &mut self,
        now: Instant,
        readings: &BTreeMap<String, PoolReadings>,
        flows: &BTreeMap<(String, IpAddr), usize>,
    ) -> bool {
        let mut write = false;
        for (name, pool) in &mut self.pools {
            if let Some(readings) = readings.get(name) {
                let moves = pool.evaluate(name, now, readings);
                write |= !moves.is_empty();
                log_moves(name, &moves);
            }
            if let PoolActuator::Standby(standby) = &mut pool.actuator {
                let count = |addr: IpAddr| flows.get(&(name.clone(), addr)).copied();
                let moves = standby.advance(now, count);
                write |= !moves.is_empty();
                log_moves(name, &moves);
                // A joiner's weight steps up on its own schedule.
                write |= standby.members().any(|(_, p)| p == PhaseName::Joining);
            }
        }
        write
    }

    /// Applies the standby phases to `desired` at `now`.
    pub fn steer(&self, desired: &mut DesiredState, now: Instant) {
        for (name, pool) in &self.pools {
            if let PoolActuator::Standby(standby) = &pool.actuator {
                standby.steer(name, desired, now);
            }
        }
    }

    /// One row per pool, for the status, the metrics and xlbctl.
    pub fn rows(&self) -> Vec<AutoscaleRow> {
        let milli = |v: Option<f64>| v.map(|v| (v.clamp(0.0, 1e15) * 1000.0).round() as u64);
        let mut rows = Vec::new();
        for (name, pool) in &self.pools {
            let mut row = AutoscaleRow {
                pool: name.clone(),
                signal: pool.config.policy.signal().name().to_owned(),
                current: pool.current(),
                desired: pool.last.as_ref().map_or(pool.current(), |d| d.desired),
                min: pool.config.min,
                max: pool.config.max,
                observed_milli: milli(pool.observed),
                actual_rate_milli: milli(pool.actual_rate),
                forecast_rate_milli: milli(pool.forecast_rate),
                reason: pool.last.as_ref().map(|d| d.reason.clone()),
                decisions_total: (pool.decisions_total.iter())
                    .map(|(d, n)| (d.name().to_owned(), *n))
                    .collect(),
                ..AutoscaleRow::default()
            };
            match &pool.actuator {
                PoolActuator::Standby(standby) => {
                    row.actuator = "standby".to_owned();
                    let member = |(backend, phase)| MemberRow { backend, phase };
                    row.standby = standby.members().map(member).collect();
                }
                PoolActuator::Exec { actuator, .. } => {
                    let figures = actuator.figures();
                    row.actuator = "exec".to_owned();
                    row.exec_succeeded_total = figures.succeeded_total;
                    row.exec_failed_total = figures.failed_total;
                    row.exec_last_error = figures.last_error;
                }
            }
            rows.push(row);
        }
        rows
    }
}

fn log_moves(pool: &str, moves: &[super::standby::Move]) {
    for m in moves {
        info!(pool, backend = %m.backend, from = ?m.from, to = ?m.to, reason = m.reason,
            "standby backend moved");
    }
}
