//! What the autoscaler shows: one row per pool, in the daemon's status,
//! the metrics and `xlbctl autoscaler status`. Rates and signals are in
//! thousandths so the rows compare exactly.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::standby::PhaseName;

/// One autoscaled pool.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AutoscaleRow {
    /// Pool name.
    pub pool: String,
    /// The policy's signal (`new_connections`, `gpu`, a metric name...).
    pub signal: String,
    /// `standby` or `exec`.
    pub actuator: String,
    /// Backends in service now.
    pub current: u32,
    /// Backends the last decision asked for.
    pub desired: u32,
    /// Fewest backends.
    pub min: u32,
    /// Most backends.
    pub max: u32,
    /// The signal at the last decision, in thousandths; `None` without a
    /// reading.
    pub observed_milli: Option<u64>,
    /// The pool's new connections per second, in thousandths.
    pub actual_rate_milli: Option<u64>,
    /// The highest rate forecast over the horizon, in thousandths; `None`
    /// without a forecast (not configured, or less than a season seen).
    pub forecast_rate_milli: Option<u64>,
    /// Why the last decision was made.
    pub reason: Option<String>,
    /// Decisions by direction (`up`, `down`, `hold`).
    pub decisions_total: BTreeMap<String, u64>,
    /// Standby backends and their phase (standby actuator).
    pub standby: Vec<MemberRow>,
    /// Runs of the command that succeeded (exec actuator).
    pub exec_succeeded_total: u64,
    /// Runs of the command that failed (exec actuator).
    pub exec_failed_total: u64,
    /// Why the last failed run failed (exec actuator).
    pub exec_last_error: Option<String>,
}

/// One standby backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRow {
    /// Its address.
    pub backend: IpAddr,
    /// Where it stands.
    pub phase: PhaseName,
}
