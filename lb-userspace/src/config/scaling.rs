//! The validated `autoscale` section of a pool: how many backends it
//! should have, decided from what signal, and who carries it out.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// A pool's autoscaler (see `xlb::autoscale` for how decisions are made).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Autoscale {
    /// Time between two decisions. Default 5s.
    pub interval: Duration,
    /// Fewest backends in service, at least 1. Default 1.
    pub min: u32,
    /// Most backends in service, at least `min`; with the standby
    /// actuator, at most the pool's backends.
    pub max: u32,
    /// Shortest time between two scale-outs. Default 60s.
    pub scale_out_cooldown: Duration,
    /// Scale-in follows the highest recommendation of this window, so a
    /// dip shorter than it removes nothing. Default 5m.
    pub scale_in_stabilization: Duration,
    /// Most backends one decision adds; `None` (the default) is no limit.
    pub max_step_up: Option<u32>,
    /// Most backends one decision removes; `None` (the default) is no
    /// limit.
    pub max_step_down: Option<u32>,
    /// How the signal becomes a recommendation.
    pub policy: ScalePolicy,
    /// Scale out ahead of the forecast new-connection rate, if set.
    pub predictive: Option<Predictive>,
    /// Who brings backends in and out.
    pub actuator: Actuator,
}

/// How a pool's signal becomes a recommended size.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum ScalePolicy {
    /// `ceil(current x observed / target)` when observed is more than
    /// `tolerance` off the target, else the current size.
    TargetTracking {
        /// What is observed.
        signal: ScaleSignal,
        /// The value the signal should sit at, above 0.
        target: f64,
        /// Relative band around the target where nothing changes, in
        /// [0, 1). Default 0.1.
        tolerance: f64,
    },
    /// The first step whose threshold the signal crosses changes the size
    /// by its amount.
    StepScaling {
        /// What is observed.
        signal: ScaleSignal,
        /// Steps in file order; `above` steps are tried highest first,
        /// `below` steps lowest first.
        steps: Vec<ScaleStep>,
    },
}

impl ScalePolicy {
    /// The signal the policy reads.
    pub fn signal(&self) -> &ScaleSignal {
        match self {
            ScalePolicy::TargetTracking { signal, .. }
            | ScalePolicy::StepScaling { signal, .. } => signal,
        }
    }
}

/// What an autoscaler observes about its pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum ScaleSignal {
    /// New connections per second through the pool's VIPs, divided by the
    /// backends in service (from the VIPs' `new_flows` counters).
    NewConnections,
    /// The mean load (value / scale, 1 = full) the pool's `load_signal`
    /// reads, which must be `DCGM_FI_DEV_GPU_UTIL`.
    Gpu,
    /// As `Gpu`, from `node_cpu_seconds_total`.
    Cpu,
    /// As `Gpu`, from `vllm:num_requests_waiting`.
    VllmWaiting,
    /// As `Gpu`, from the named metric, which the load signal must read.
    Gauge(String),
}

impl ScaleSignal {
    /// Lowercase name, as in logs and `xlbctl autoscaler status`.
    pub fn name(&self) -> &str {
        match self {
            ScaleSignal::NewConnections => "new_connections",
            ScaleSignal::Gpu => "gpu",
            ScaleSignal::Cpu => "cpu",
            ScaleSignal::VllmWaiting => "vllm_waiting",
            ScaleSignal::Gauge(metric) => metric,
        }
    }
}

/// One step of a step-scaling policy.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum ScaleStep {
    /// Add `add` backends when the signal is above `above`.
    Above {
        /// Threshold, exclusive.
        above: f64,
        /// Backends added, at least 1.
        add: u32,
    },
    /// Remove `remove` backends when the signal is below `below`.
    Below {
        /// Threshold, exclusive.
        below: f64,
        /// Backends removed, at least 1.
        remove: u32,
    },
}

/// The predictive part: a forecast of the pool's new-connection rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Predictive {
    /// How far ahead to forecast, 15m to 60m. Default 30m.
    pub horizon: Duration,
    /// Length of the seasonal cycle. Default 24h.
    pub season: Duration,
    /// Resolution of the history: rates are averaged over buckets this
    /// long. Default 5m; the season holds at most 1000 of them.
    pub bucket: Duration,
}

/// Who carries out a pool's decisions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Actuator {
    /// The pool's backends marked `standby: true` are brought in (with
    /// slow start) and out (drained first) by the autoscaler.
    Standby {
        /// Longest time a backend drains before it is released anyway.
        /// Default 5m.
        drain_timeout: Duration,
        /// A tracked flow not seen for this long no longer holds a
        /// draining backend. Default 10s.
        drain_idle: Duration,
    },
    /// A command run as `COMMAND ARGS... POOL COUNT`.
    Exec {
        /// Absolute path of the program.
        command: PathBuf,
        /// Arguments before the pool name and count.
        args: Vec<String>,
        /// Longest run of one attempt before it is killed. Default 30s.
        timeout: Duration,
    },
}
