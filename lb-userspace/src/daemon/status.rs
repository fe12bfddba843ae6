//! The daemon's state as others may read it: a small JSON file rewritten
//! after start and after each reload. `xlbd reload` waits on it to return
//! the reload's result as its exit status; the reload counters are the
//! source for the `xlb_config_reloads_total` metric.
//!
//! Limitation: a file, because the control socket for xlbctl comes in a
//! later change; that socket will serve this same structure.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the status file goes unless `--status-file` says otherwise.
pub const DEFAULT_STATUS_FILE: &str = "/run/xlbd/status.json";

/// What `xlbd` reports about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Result of the last reload, if any: `None` before the first.
    pub last_reload: Option<ReloadOutcome>,
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
