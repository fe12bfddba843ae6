//! One pool's autoscaler: the rate it measures, the engine, the forecast,
//! and the actuator it drives.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use tracing::info;

use crate::config::{Actuator, Autoscale, PoolConfig, ScaleSignal};

use super::engine::{Decision, Direction, Engine, Inputs};
use super::exec::{self, ExecActuator};
use super::forecast::Forecaster;
use super::standby::{Move, StandbyPool};

/// What the daemon read for one pool at one evaluation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PoolReadings {
    /// The pool's VIPs' `new_flows` counters, summed; `None` when the maps
    /// could not be read.
    pub new_flows_total: Option<u64>,
    /// Smoothed load (1 = full) of each backend with a good reading.
    pub load: BTreeMap<IpAddr, f64>,
}

/// Who carries out a pool's decisions.
#[derive(Debug)]
pub(super) enum PoolActuator {
    /// Standby backends of the pool.
    Standby(StandbyPool),
    /// A command; `current` is the count last asked for.
    Exec {
        actuator: ExecActuator,
        current: u32,
    },
}

/// The autoscaler of one pool.
#[derive(Debug)]
pub(super) struct PoolScaler {
    pub config: Autoscale,
    pub engine: Engine,
    pub forecaster: Option<Forecaster>,
    pub actuator: PoolActuator,
    pub next_at: Instant,
    // The last (time, counter) seen, for the rate.
    last_count: Option<(Instant, u64)>,
    pub actual_rate: Option<f64>,
    pub forecast_rate: Option<f64>,
    pub observed: Option<f64>,
    pub last: Option<Decision>,
    pub decisions_total: BTreeMap<Direction, u64>,
}

impl PoolScaler {
    /// A scaler for `pool` named `name`, starting at `now`.
    pub fn new(name: &str, pool: &PoolConfig, config: &Autoscale, now: Instant) -> Self {
        let base = pool.backends.iter().filter(|b| !b.standby).count();
        let base = u32::try_from(base).unwrap_or(u32::MAX);
        let actuator = match &config.actuator {
            Actuator::Standby {
                drain_timeout,
                drain_idle,
            } => {
                let standby: Vec<IpAddr> = (pool.backends.iter())
                    .filter(|b| b.standby)
                    .map(|b| b.address)
                    .collect();
                let timings = (pool.slow_start, *drain_timeout, *drain_idle);
                PoolActuator::Standby(StandbyPool::new(base, &standby, timings))
            }
            Actuator::Exec {
                command,
                args,
                timeout,
            } => PoolActuator::Exec {
                actuator: ExecActuator::start(exec::Command {
                    pool: name.to_owned(),
                    program: command.clone(),
                    args: args.clone(),
                    timeout: *timeout,
                }),
                current: base.clamp(config.min, config.max),
            },
        };
        let current = match &actuator {
            PoolActuator::Standby(standby) => standby.in_service(),
            PoolActuator::Exec { current, .. } => *current,
        };
        Self {
            config: config.clone(),
            engine: Engine::new(config.clone(), now, current),
            forecaster: config.predictive.as_ref().map(|p| Forecaster::new(p, now)),
            actuator,
            next_at: now,
            last_count: None,
            actual_rate: None,
            forecast_rate: None,
            observed: None,
            last: None,
            decisions_total: BTreeMap::new(),
        }
    }

    /// Backends in service, as the actuator knows them.
    pub fn current(&self) -> u32 {
        match &self.actuator {
            PoolActuator::Standby(standby) => standby.in_service(),
            PoolActuator::Exec { current, .. } => *current,
        }
    }

    /// Reads the rate and signal, decides, and has the actuator carry it
    /// out. Returns the standby moves made (the maps then need writing).
    pub fn evaluate(&mut self, pool: &str, now: Instant, readings: &PoolReadings) -> Vec<Move> {
        self.next_at = now + self.config.interval;
        self.measure_rate(now, readings.new_flows_total);
        let current = self.current();
        self.observed = self.observe(current, readings);
        let inputs = Inputs {
            current,
            observed: self.observed,
            actual_rate: self.actual_rate,
            forecast_rate: self.forecast_rate,
        };
        let decision = self.engine.decide(now, &inputs);
        *self.decisions_total.entry(decision.direction).or_default() += 1;
        let fmt = |v: Option<f64>| v.map_or("none".to_owned(), |v| format!("{v:.3}"));
        if decision.direction != Direction::Hold {
            info!(
                pool,
                signal = self.config.policy.signal().name(),
                current,
                desired = decision.desired,
                recommended = decision.recommended,
                observed = fmt(self.observed),
                actual_rate = fmt(self.actual_rate),
                forecast_rate = fmt(self.forecast_rate),
                reason = decision.reason,
                direction = decision.direction.name(),
                "autoscaler decision"
            );
        } else {
            tracing::debug!(
                pool,
                current,
                observed = fmt(self.observed),
                reason = decision.reason,
                "autoscaler holds"
            );
        }
        let moves = match &mut self.actuator {
            PoolActuator::Standby(standby) => standby.scale_to(decision.desired, now),
            PoolActuator::Exec { actuator, current } => {
                if decision.desired != *current {
                    actuator.request(decision.desired);
                    *current = decision.desired;
                }
                Vec::new()
            }
        };
        self.last = Some(decision);
        moves
    }

    /// Updates the pool's new-connection rate and the forecast from the
    /// VIPs' counter.
    fn measure_rate(&mut self, now: Instant, count: Option<u64>) {
        let Some(count) = count else {
            self.actual_rate = None;
            return;
        };
        if let Some((at, before)) = self.last_count {
            let seconds = now.saturating_duration_since(at).as_secs_f64();
            // A counter that went back (the maps were recreated) gives no rate.
            self.actual_rate =
                (seconds > 0.0 && count >= before).then(|| (count - before) as f64 / seconds);
        }
        self.last_count = Some((now, count));
        if let (Some(forecaster), Some(rate)) = (&mut self.forecaster, self.actual_rate) {
            forecaster.observe(now, rate);
            self.forecast_rate = forecaster.forecast();
        }
    }

    /// The policy's signal: the rate per backend in service, or the mean
    /// load of the backends in service that have a reading.
    fn observe(&self, current: u32, readings: &PoolReadings) -> Option<f64> {
        match self.config.policy.signal() {
            ScaleSignal::NewConnections => Some(self.actual_rate? / f64::from(current.max(1))),
            _ => {
                let serving: Vec<f64> = (readings.load.iter())
                    .filter(|(addr, _)| self.serves(**addr))
                    .map(|(_, load)| *load)
                    .collect();
                (!serving.is_empty()).then(|| serving.iter().sum::<f64>() / serving.len() as f64)
            }
        }
    }

    /// Whether `addr` takes flows for the pool as the actuator sees it.
    fn serves(&self, addr: IpAddr) -> bool {
        match &self.actuator {
            PoolActuator::Standby(standby) => standby
                .members()
                .find(|(a, _)| *a == addr)
                .is_none_or(|(_, phase)| {
                    use super::standby::PhaseName;
                    matches!(phase, PhaseName::Joining | PhaseName::Active)
                }),
            PoolActuator::Exec { .. } => true,
        }
    }

    /// The next moment this pool needs the daemon: its next evaluation, a
    /// joiner's next weight step, or a drain check.
    pub fn next_wake(&self, now: Instant) -> Instant {
        let mut at = self.next_at;
        if let PoolActuator::Standby(standby) = &self.actuator {
            if let Some(ramp) = standby.next_ramp_step(now) {
                at = at.min(ramp);
            }
            if standby.draining().next().is_some() {
                at = at.min(now + DRAIN_CHECK);
            }
        }
        at
    }
}

/// How often flows of draining backends are counted.
pub const DRAIN_CHECK: Duration = Duration::from_millis(500);
