//! xlb's config: one YAML file, parsed and validated before anything is
//! applied.
//!
//! Two steps, and nothing else reads the YAML: [`parse`] turns the text into
//! raw serde structs (unknown keys rejected), then [`validate`] checks them
//! all and builds the typed [`Config`]. Every rejection names the file, line,
//! column and field. `configs/full.yaml` documents every key with its
//! default.

mod actuator;
mod announce;
mod autoscale;
mod check;
mod error;
mod limits;
mod load;
mod parse;
mod pools;
mod raw;
mod routing;
mod routing_check;
mod scaling;
mod syn_guard;
mod types;
mod validate;
mod values;
mod vips;

use std::path::Path;

pub use actuator::{
    DEFAULT_BUCKET, DEFAULT_DRAIN_IDLE, DEFAULT_DRAIN_TIMEOUT, DEFAULT_EXEC_TIMEOUT,
    DEFAULT_HORIZON, DEFAULT_SEASON, HORIZON_RANGE, MAX_SEASON_BUCKETS,
};
pub use announce::Announce;
pub use autoscale::{
    DEFAULT_SCALE_IN_STABILIZATION, DEFAULT_SCALE_INTERVAL, DEFAULT_SCALE_OUT_COOLDOWN,
    DEFAULT_TOLERANCE,
};
pub use check::{CheckReport, check};
pub use error::{ConfigError, Issue};
pub use load::{
    DEFAULT_EWMA_ALPHA, DEFAULT_LOAD_GRACE, DEFAULT_LOAD_METRIC, DEFAULT_LOAD_MIN_INTERVAL,
    DEFAULT_LOAD_PORT, DEFAULT_LOAD_SCALE, DEFAULT_LOAD_STEP, DEFAULT_LOAD_TARGET,
    DEFAULT_MAX_MOVED_SHARE, DEFAULT_MAX_WEIGHT_FACTOR, DEFAULT_MIN_WEIGHT_FACTOR,
};
pub use pools::{
    DEFAULT_CHECK_INTERVAL, DEFAULT_CHECK_PATH, DEFAULT_CHECK_TIMEOUT, DEFAULT_FALL,
    DEFAULT_LOAD_INTERVAL, DEFAULT_LOAD_PATH, DEFAULT_LOAD_TIMEOUT, DEFAULT_RISE, DEFAULT_WEIGHT,
    MAX_SLOW_START, MAX_WEIGHT,
};
pub use routing::{
    Canary, CostAware, DEFAULT_TENANT_BURST, Rollback, SourceAction, SourceRule, TenantLimit,
    share_per_65536,
};
pub use scaling::{Actuator, Autoscale, Predictive, ScalePolicy, ScaleSignal, ScaleStep};
pub use syn_guard::{
    BURST_RANGE, DEFAULT_BURST, DEFAULT_NEW_FLOWS_PER_SECOND, NEW_FLOWS_PER_SECOND_RANGE, SynGuard,
};
pub use types::{
    AttachMode, BackendConfig, BackendState, CheckKind, Config, Encap, HealthCheck, Interface,
    LoadKind, LoadSignal, PoolConfig, Prefix, Protocol, Share, StatusCodes, VipConfig,
};
pub use validate::{
    DEFAULT_CONTROL_SOCKET, DEFAULT_METRICS_LISTEN, DEFAULT_PIN_PATH, FLOW_TABLE_RANGE, MTU_RANGE,
};

/// Parses a share written as a percentage with up to two decimals, as in
/// `5%` or `12.5%` (as `canary.share`).
///
/// # Errors
///
/// When `text` is not such a percentage from 0 % to 100 %.
pub fn parse_percent(text: &str) -> Result<Share, String> {
    values::percent(text)
}

/// A config that passed validation, with what it was warned about.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The validated config.
    pub config: Config,
    /// Findings that do not reject the config, such as undersized tables.
    pub warnings: Vec<Issue>,
}

impl Config {
    /// Reads and validates the config file at `path`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`] when the file cannot be read, otherwise
    /// [`ConfigError::Invalid`] listing every problem.
    pub fn load(path: impl AsRef<Path>) -> Result<Loaded, ConfigError> {
        let path = path.as_ref();
        let text = read_text(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_str(&text, &path.display().to_string())
    }

    /// Validates config `text`; `origin` names it in messages (a file
    /// name, or something like `<inline>`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] listing every problem.
    pub fn from_str(text: &str, origin: &str) -> Result<Loaded, ConfigError> {
        let raw = parse::parse(text, origin).map_err(|issue| ConfigError::Invalid {
            issues: vec![issue],
        })?;
        let (config, warnings) =
            validate::validate(&raw, origin).map_err(|issues| ConfigError::Invalid { issues })?;
        Ok(Loaded { config, warnings })
    }

    /// Every pool `vip` can reach, its own first, then each one's
    /// fallback (one hop), each once.
    pub fn tables_of<'a>(&'a self, vip: &'a VipConfig) -> Vec<&'a str> {
        let mut pools = vip.reachable_pools();
        let fallbacks: Vec<&str> = pools
            .iter()
            .filter_map(|pool| self.pools.get(*pool)?.fallback.as_deref())
            .collect();
        for fallback in fallbacks {
            if !pools.contains(&fallback) {
                pools.push(fallback);
            }
        }
        pools
    }

    /// The pool serving `vip`.
    pub fn pool_of(&self, vip: &VipConfig) -> Option<&PoolConfig> {
        self.pools.get(&vip.pool)
    }

    /// A short version string of the config's content: 16 hex digits of a
    /// hash over its canonical form (the validated values with defaults
    /// filled in, as JSON), so comments, key order and spelled-out defaults
    /// do not change it. Stable across builds; not a cryptographic hash.
    pub fn version(&self) -> String {
        // Serializing plain structs and BTreeMaps cannot fail; an empty
        // string would still hash to a fixed value.
        let canonical = serde_json::to_string(self).unwrap_or_default();
        format!("{:016x}", fnv1a_64(canonical.as_bytes()))
    }
}

/// FNV-1a, 64-bit: tiny, fixed, and enough to tell configs apart.
fn fnv1a_64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Largest config file read, in bytes: a config is kilobytes; this bounds
/// what a wrong path (`/dev/zero`, a log file) can cost.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Reads `path` as UTF-8 text of at most [`MAX_CONFIG_BYTES`]; refuses a
/// named pipe.
fn read_text(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};

    // Opened without blocking: opening a named pipe that has no writer
    // blocks, and xlbd reads its config on its only runtime thread, so a
    // reload would stop health checks, metrics and the control socket.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if file.metadata()?.file_type().is_fifo() {
        return Err(std::io::Error::other("a named pipe, not a file"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            MAX_CONFIG_BYTES >> 20
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        let column = valid.iter().rev().take_while(|b| **b != b'\n').count() + 1;
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("line {line}, column {column}: not UTF-8"),
        )
    })
}
