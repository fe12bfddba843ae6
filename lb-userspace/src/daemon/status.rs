//! The daemon's state as others may read it: a small JSON file rewritten
//! after start and after each reload. `xlbd reload` waits on it to return
//! the reload's result as its exit status; the reload counters are the
//! source for the `xlb_config_reloads_total` metric.
//!
//! Limitation: a file, because the control socket for xlbctl comes in a
//! later change; that socket will serve this same structure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::view::VipView;

/// Where the status file goes unless `--status-file` says otherwise.
pub const DEFAULT_STATUS_FILE: &str = "/run/xlbd/status.json";

/// What `xlbd` reports about itself. Fields added later default when
/// missing, so an older file still reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DaemonStatus {
    /// Process id, so `xlbd reload` knows whom to signal.
    pub pid: u32,
    /// The config file the daemon reads.
    pub config: PathBuf,
    /// The pin directory.
    pub pin_path: PathBuf,
    /// Interfaces with program ids: (interface, prog id).
    pub attached: Vec<(String, u32)>,
    /// Reloads attempted since start; grows by one per reload.
    pub reload_generation: u64,
    /// Reloads that applied a new config.
    pub reloads_succeeded_total: u64,
    /// Reloads refused because the config was invalid or could not be
    /// applied; the running config stayed.
    pub reloads_failed_total: u64,
    /// Times the config source failed (etcd unreachable, its key missing
    /// or not text); the running config stayed. Invalid configs count in
    /// `reloads_failed_total`.
    pub config_source_errors_total: u64,
    /// Result of the last reload, if any: `None` before the first.
    pub last_reload: Option<ReloadOutcome>,
    /// When the daemon started, in seconds since the Unix epoch.
    pub started_unix_s: u64,
    /// `Config::version` of the running config.
    pub config_version: String,
    /// The control socket from the config (fixed until restart; the log
    /// says if it could not be bound).
    pub control_socket: Option<PathBuf>,
    /// The Prometheus endpoint's address from the config (as above).
    pub metrics_listen: Option<String>,
    /// Interfaces with their program and attach mode.
    pub interfaces: Vec<InterfaceView>,
    /// Services with names, ids, weights and states (see `view`).
    pub vips: Vec<VipView>,
    /// Health transitions per backend; filled by the health checker.
    pub health_transitions: Vec<HealthTransitions>,
    /// Load signal figures per backend; filled by the load tracker.
    pub load: Vec<LoadRow>,
    /// Maglev table swaps by VIP name since this xlbd started.
    pub tables: BTreeMap<String, crate::dataplane::TableSwaps>,
    /// One row per autoscaled pool; filled by the autoscaler.
    pub autoscale: Vec<crate::autoscale::AutoscaleRow>,
    /// Each VIP's canary: configured, operator's and effective shares,
    /// rollbacks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canaries: Vec<super::canary::CanaryRow>,
}

/// One interface `xlb` is attached to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceView {
    /// Interface name.
    pub name: String,
    /// Kernel id of the attached program.
    pub prog_id: u32,
    /// `native` or `generic`.
    pub mode: String,
}

/// How often one backend's health flipped since xlbd started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthTransitions {
    /// Pool of the backend (health is kept per pool).
    pub pool: String,
    /// Backend address.
    pub backend: std::net::IpAddr,
    /// Flips from down to up.
    pub to_up_total: u64,
    /// Flips from up to down.
    pub to_down_total: u64,
}

/// What the load signal of one backend shows. Shares are in basis points
/// (1/10 000) so the status compares exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadRow {
    /// Pool of the backend.
    pub pool: String,
    /// Backend address.
    pub backend: std::net::IpAddr,
    /// Smoothed load (10 000 = full); `None` without a good reading.
    pub load_bp: Option<u32>,
    /// Factor on the configured weight (10 000 = all of it).
    pub factor_bp: u32,
    /// Scrapes by result (`ok`, `timeout`, `missing`...).
    pub scrapes_total: BTreeMap<String, u64>,
    /// Times the factor moved.
    pub weight_changes_total: u64,
}

/// The load tracker's figures, one row per backend.
pub fn load_rows(figures: &crate::load::LoadFigures) -> Vec<LoadRow> {
    let bp = |share: f64| (share.clamp(0.0, 400_000.0) * 10_000.0).round() as u32;
    let mut rows: BTreeMap<(String, std::net::IpAddr), LoadRow> = BTreeMap::new();
    for (key, factor) in &figures.factor {
        let row = LoadRow {
            pool: key.0.clone(),
            backend: key.1,
            load_bp: figures.load.get(key).map(|&load| bp(load)),
            factor_bp: bp(*factor),
            scrapes_total: BTreeMap::new(),
            weight_changes_total: figures.changes_total.get(key).copied().unwrap_or(0),
        };
        rows.insert(key.clone(), row);
    }
    for ((pool, backend, outcome), total) in &figures.scrapes_total {
        if let Some(row) = rows.get_mut(&(pool.clone(), *backend)) {
            row.scrapes_total.insert(outcome.name().to_owned(), *total);
        }
    }
    rows.into_values().collect()
}

/// How one reload ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadOutcome {
    /// Whether the new config is now running.
    pub ok: bool,
    /// Map writes made (0 when the config changed nothing the maps hold).
    pub changes: usize,
    /// The error, with file and line, when it failed.
    pub error: Option<String>,
    /// Keys whose new values were not applied: they take a restart
    /// (`interfaces`, `pin_path`, `flow_table_size`, `limits`,
    /// `control_socket`, `metrics_listen`); the running values stay.
    #[serde(default)]
    pub restart_needed: Vec<String>,
    /// How long reading, validating and applying the config took, in
    /// microseconds (signal delivery and the status write left out).
    #[serde(default)]
    pub duration_us: u64,
}

impl DaemonStatus {
    /// Writes the status to `path` atomically (temp file and rename), so a
    /// reader never sees half a file.
    ///
    /// # Errors
    ///
    /// When the directory cannot be created or written.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let temp = path.with_extension("tmp");
        std::fs::write(&temp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&temp, path)
    }

    /// Reads a status file.
    ///
    /// # Errors
    ///
    /// When the file is missing or not a status.
    pub fn read(path: &Path) -> std::io::Result<Self> {
        let bytes = std::fs::read(path)?;
        Ok(serde_json::from_slice(&bytes)?)
    }
}
