//! `xlbd check CONFIG`: validate a config file without touching the
//! kernel, as `nginx -t` does.

use std::fmt;
use std::path::Path;

use super::{Config, ConfigError, Issue};

/// What `check` found in a valid config: a summary and the warnings.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// The file, as given.
    pub origin: String,
    /// The validated config.
    pub config: Config,
    /// Findings that do not reject the config.
    pub warnings: Vec<Issue>,
}

/// Loads and validates the config at `path`; reads nothing but the file.
///
/// # Errors
///
/// [`ConfigError`] when the file cannot be read or is invalid; its Display
/// lists every problem with file, line and field.
pub fn check(path: &Path) -> Result<CheckReport, ConfigError> {
    let loaded = Config::load(path)?;
    Ok(CheckReport {
        origin: path.display().to_string(),
        config: loaded.config,
        warnings: loaded.warnings,
    })
}

impl fmt::Display for CheckReport {
    /// One line per warning, then `FILE: ok: ...` with the counts and the
    /// config version.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for warning in &self.warnings {
            writeln!(f, "warning: {warning}")?;
        }
        let config = &self.config;
        let backends: usize = config.pools.values().map(|p| p.backends.len()).sum();
        write!(
            f,
            "{}: ok: {} interfaces, {} VIPs, {} pools, {} backends; version {}",
            self.origin,
            config.interfaces.len(),
            config.vips.len(),
            config.pools.len(),
            backends,
            config.version()
        )
    }
}
