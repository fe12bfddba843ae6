//! The config as written: serde structs that mirror the YAML keys.
//!
//! Nothing outside `config` sees these. Unknown keys are errors. Scalars that
//! validation looks at are wrapped in [`Spanned`] so a rejection can name
//! their line; keys that are required are still `Option` here, so a missing
//! one is reported at its parent's line rather than wherever the parser
//! happened to stop. Enumerations are parsed by serde, which names the
//! allowed values in its error.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{Deserializer, Error as _};
use serde_saphyr::Spanned;

use super::types::{AttachMode, BackendState, LoadKind, Protocol};
use super::values;

/// A scalar with the place it was written.
pub(super) type At<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub interfaces: Option<At<Vec<At<RawInterface>>>>,
    pub pin_path: Option<At<String>>,
    pub control_socket: Option<At<String>>,
    pub metrics_listen: Option<At<String>>,
    pub flow_table_size: Option<At<u32>>,
    pub limits: Option<At<RawLimits>>,
    pub syn_guard: Option<At<RawSynGuard>>,
    pub encap: Option<At<RawEncap>>,
    pub vips: Option<At<Vec<At<RawVip>>>>,
    #[serde(default)]
    pub pools: BTreeMap<PoolName, At<RawPool>>,
    pub announce: Option<At<RawAnnounce>>,
    #[serde(default)]
    pub tenants: BTreeMap<PoolName, At<RawTenant>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTenant {
    pub new_flows_per_second: Option<At<u32>>,
    pub burst: Option<At<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub vips: Option<At<u32>>,
    pub backends: Option<At<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSynGuard {
    pub new_flows_per_second: Option<At<u32>>,
    pub burst: Option<At<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAnnounce {
    pub table: Option<At<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInterface {
    pub name: Option<At<String>>,
    #[serde(default)]
    pub mode: AttachMode,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEncap {
    pub source_v4: Option<At<String>>,
    pub source_v6: Option<At<String>>,
    pub mtu: Option<At<u32>>,
    pub gateway_mac: Option<At<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVip {
    pub name: Option<At<String>>,
    pub address: Option<At<String>>,
    pub port: Option<At<u16>>,
    pub protocol: Option<At<Protocol>>,
    pub pool: Option<At<String>>,
    #[serde(default)]
    pub source_affinity: bool,
    pub table_size: Option<At<u32>>,
    #[serde(default)]
    pub port_pools: BTreeMap<u16, At<String>>,
    pub source_rules: Option<At<Vec<At<RawSourceRule>>>>,
    pub canary: Option<At<RawCanary>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSourceRule {
    pub prefix: Option<At<String>>,
    pub pool: Option<At<String>>,
    pub tenant: Option<At<String>>,
    pub deny: Option<At<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCanary {
    pub pool: Option<At<String>>,
    pub share: Option<At<String>>,
    pub rollback: Option<At<RawRollback>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRollback {
    pub max_down_share: Option<At<f64>>,
    pub max_load: Option<At<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPool {
    pub backends: Option<At<Vec<At<RawBackend>>>>,
    pub health_check: Option<At<RawHealthCheck>>,
    pub load_signal: Option<At<RawLoadSignal>>,
    pub panic_threshold: Option<At<f64>>,
    pub slow_start: Option<At<String>>,
    pub autoscale: Option<At<RawAutoscale>>,
    pub fallback: Option<At<String>>,
    pub cost_aware: Option<At<RawCostAware>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCostAware {
    pub spill_load: Option<At<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackend {
    pub address: Option<At<String>>,
    pub weight: Option<At<u32>>,
    #[serde(default)]
    pub state: BackendState,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub standby: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHealthCheck {
    #[serde(default)]
    pub kind: CheckKindName,
    pub interval: Option<At<String>>,
    pub timeout: Option<At<String>>,
    pub rise: Option<At<u32>>,
    pub fall: Option<At<u32>>,
    pub path: Option<At<String>>,
    pub port: Option<At<u16>>,
    pub expect_status: Option<At<String>>,
    pub body_contains: Option<At<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLoadSignal {
    pub metric: Option<At<String>>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub kind: LoadKind,
    pub scale: Option<At<f64>>,
    pub target: Option<At<f64>>,
    pub port: Option<At<u16>>,
    pub url_path: Option<At<String>>,
    pub interval: Option<At<String>>,
    pub timeout: Option<At<String>>,
    pub ewma_alpha: Option<At<f64>>,
    pub min_weight_factor: Option<At<f64>>,
    pub max_weight_factor: Option<At<f64>>,
    pub step: Option<At<f64>>,
    pub min_interval: Option<At<String>>,
    pub max_moved_share: Option<At<f64>>,
    pub grace: Option<At<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAutoscale {
    pub interval: Option<At<String>>,
    pub min: Option<At<u32>>,
    pub max: Option<At<u32>>,
    pub scale_out_cooldown: Option<At<String>>,
    pub scale_in_stabilization: Option<At<String>>,
    pub max_step_up: Option<At<u32>>,
    pub max_step_down: Option<At<u32>>,
    pub target_tracking: Option<At<RawTargetTracking>>,
    pub step_scaling: Option<At<RawStepScaling>>,
    pub predictive: Option<At<RawPredictive>>,
    pub actuator: Option<At<RawActuator>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTargetTracking {
    pub signal: Option<At<SignalName>>,
    pub metric: Option<At<String>>,
    pub target: Option<At<f64>>,
    pub tolerance: Option<At<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStepScaling {
    pub signal: Option<At<SignalName>>,
    pub metric: Option<At<String>>,
    pub steps: Option<At<Vec<At<RawStep>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    pub above: Option<At<f64>>,
    pub below: Option<At<f64>>,
    pub add: Option<At<u32>>,
    pub remove: Option<At<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPredictive {
    pub horizon: Option<At<String>>,
    pub season: Option<At<String>>,
    pub bucket: Option<At<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawActuator {
    #[serde(default)]
    pub kind: ActuatorName,
    pub drain_timeout: Option<At<String>>,
    pub drain_idle: Option<At<String>>,
    pub command: Option<At<String>>,
    #[serde(default)]
    pub args: Vec<String>,
    pub timeout: Option<At<String>>,
}

/// `autoscale.*.signal` as written; validation pairs it with the pool's
/// load signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum SignalName {
    NewConnections,
    Gpu,
    Cpu,
    VllmWaiting,
    Gauge,
}

/// `autoscale.actuator.kind` as written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum ActuatorName {
    #[default]
    Standby,
    Exec,
}

/// `health_check.kind` as written; validation pairs it with `path`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum CheckKindName {
    #[default]
    Tcp,
    Http,
}

/// A pool's name, checked while it is parsed so that a bad name is
/// reported at the key itself.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct PoolName(pub String);

impl<'de> Deserialize<'de> for PoolName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        values::name(&name).map_err(D::Error::custom)?;
        Ok(PoolName(name))
    }
}
