//! `xlbd reload`: ask the running daemon to reload and wait for the result,
//! so the exit status tells whether the new config runs (systemd's
//! `ExecReload=`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::state::load_config;
use super::status::{DEFAULT_STATUS_FILE, DaemonStatus};
use crate::dataplane::from_config::desired_state;

/// How long to wait for the daemon to finish a reload.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Arguments of `xlbd reload`.
#[derive(Clone, Debug, clap::Args)]
pub struct ReloadArgs {
    /// The running daemon's status file, e.g.
    /// `xlbd reload --status-file /run/xlbd/status.json`.
    #[arg(long, default_value = DEFAULT_STATUS_FILE)]
    pub status_file: PathBuf,
}

/// Validates the daemon's config file, sends SIGHUP and waits until the
/// daemon reports the reload.
///
/// # Errors
///
/// When the config is invalid (the daemon is then not signalled), the
/// daemon cannot be reached, or it reports the reload failed.
pub fn reload(args: &ReloadArgs) -> anyhow::Result<()> {
    let before = DaemonStatus::read(&args.status_file)
        .with_context(|| format!("reading {}", args.status_file.display()))?;
    if before.config.starts_with("etcd:") {
        bail!(
            "xlbd takes its config from {}; change it with `xlbctl config push`",
            before.config.display()
        );
    }
    let config = load_config(&before.config)?;
    desired_state(&config)?;

    let pid = libc::pid_t::try_from(before.pid).context("pid in the status file")?;
    // SAFETY: kill(2) with a pid and a signal number has no memory effects.
    if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
        let error = std::io::Error::last_os_error();
        bail!("signalling xlbd (pid {pid}): {error}");
    }

    let deadline = Instant::now() + RELOAD_TIMEOUT;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let Ok(now) = DaemonStatus::read(&args.status_file) else {
            continue;
        };
        if now.reload_generation <= before.reload_generation {
            continue;
        }
        return match now.last_reload {
            Some(outcome) if outcome.ok => {
                println!("reloaded ({} changes)", outcome.changes);
                warn_restart_needed(&outcome.restart_needed);
                Ok(())
            }
            Some(outcome) => bail!(
                "reload failed: {}",
                outcome.error.unwrap_or_else(|| "unknown error".to_owned())
            ),
            None => bail!("xlbd reported no reload result"),
        };
    }
    bail!("xlbd (pid {pid}) did not finish the reload within {RELOAD_TIMEOUT:?}")
}

/// Tells the operator which changed keys still wait for a restart.
pub fn warn_restart_needed(keys: &[String]) {
    if !keys.is_empty() {
        eprintln!(
            "warning: {} changed but only take effect on restart; the running values stay",
            keys.join(", ")
        );
    }
}
