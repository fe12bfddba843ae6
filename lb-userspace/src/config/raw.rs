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
    pub encap: Option<At<RawEncap>>,
    pub vips: Option<At<Vec<At<RawVip>>>>,
    #[serde(default)]
    pub pools: BTreeMap<PoolName, At<RawPool>>,
    pub announce: Option<At<RawAnnounce>>,
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPool {
    pub backends: Option<At<Vec<At<RawBackend>>>>,
    pub health_check: Option<At<RawHealthCheck>>,
    pub load_signal: Option<At<RawLoadSignal>>,
    pub panic_threshold: Option<At<f64>>,
    pub slow_start: Option<At<String>>,
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
