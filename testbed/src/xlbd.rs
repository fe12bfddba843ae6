//! Running xlbd in the LB namespace: start with a config, reload, kill,
//! and read the counters it pins.
//!
//! xlbd runs like every testbed process: entering only the network
//! namespace (see `netns`), so it sees the host's bpffs and pins there.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lb_common::{Stat, TrafficCounters};
use xlb::daemon::DaemonStatus;
use xlb::dataplane::{Maps, PinDir, counters};

use crate::process::Process;
use crate::testbed::Testbed;

/// How long xlbd may take from start to ready (a debug build loads and
/// verifies the program, and writes Maglev tables slot by slot).
pub const XLBD_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a reload may take.
pub const XLBD_RELOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// A running xlbd in a testbed's LB namespace. The testbed stops it at
/// teardown; the pins stay until the testbed's pin directory goes.
#[derive(Clone, Debug)]
pub struct Xlbd {
    process: Process,
    config_path: PathBuf,
    status_path: PathBuf,
    pin_path: PathBuf,
}

impl Testbed {
    /// Writes `config` (YAML) to `LOG_DIR/xlbd.yaml` and starts `xlbd run`
    /// with it in the LB namespace, then waits until xlbd reports ready
    /// (its status file names its pid). Calling it again after a kill
    /// starts a new xlbd, which adopts the pinned data plane.
    ///
    /// # Errors
    /// When xlbd is not found, exits, or is not ready within
    /// `XLBD_READY_TIMEOUT`; the message carries its log.
    pub fn start_xlbd(&self, config: &str) -> Result<Xlbd> {
        let config_path = self.log_dir().join("xlbd.yaml");
        let status_path = self.log_dir().join("xlbd-status.json");
        write_atomically(&config_path, config)?;
        // A status file of an earlier xlbd must not pass for this one's.
        let _ = std::fs::remove_file(&status_path);

        let xlbd = self.xlbd_path()?;
        let config_arg = config_path.to_string_lossy().into_owned();
        let status_arg = status_path.to_string_lossy().into_owned();
        let args = ["run", "--config", &config_arg, "--status-file", &status_arg];
        let process = self.spawn_labeled(self.lb_ns(), "xlbd", &xlbd, &args)?;
        let daemon = Xlbd {
            process,
            config_path,
            status_path,
            pin_path: self.pin_path().to_path_buf(),
        };
        daemon.wait_ready()?;
        tracing::info!(pid = daemon.pid(), "xlbd ready");
        Ok(daemon)
    }
}

impl Xlbd {
    /// xlbd's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The process, for its log and state.
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// The config file xlbd reads.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The status file xlbd writes (xlbctl's `--status-file`).
    pub fn status_path(&self) -> &Path {
        &self.status_path
    }

    /// The status xlbd last wrote.
    ///
    /// # Errors
    /// When the status file is missing or unreadable.
    pub fn status(&self) -> Result<DaemonStatus> {
        DaemonStatus::read(&self.status_path)
            .with_context(|| format!("read xlbd status {}", self.status_path.display()))
    }

    fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + XLBD_READY_TIMEOUT;
        loop {
            if self.status().is_ok_and(|s| s.pid == self.pid()) {
                return Ok(());
            }
            if let Some(status) = self.process.exit_status() {
                bail!(
                    "xlbd exited ({status}) before it was ready; log {}:\n{}",
                    self.process.log_path().display(),
                    self.process.log_tail(30)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "xlbd was not ready after {XLBD_READY_TIMEOUT:?}; log:\n{}",
                    self.process.log_tail(30)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Replaces the config file with `config`, sends SIGHUP, and waits
    /// until xlbd reports a successful reload.
    ///
    /// # Errors
    /// When xlbd does not report a reload in time or reports a failure.
    pub fn reload(&self, config: &str) -> Result<()> {
        let before = self.status()?.reload_generation;
        write_atomically(&self.config_path, config)?;
        self.process.signal(libc::SIGHUP);

        let deadline = Instant::now() + XLBD_RELOAD_TIMEOUT;
        loop {
            // xlbd also reloads on its own when the file changes; the
            // generation grows with each, and the last must be good.
            if let Ok(status) = self.status()
                && status.reload_generation > before
            {
                match status.last_reload {
                    Some(outcome) if outcome.ok => return Ok(()),
                    Some(outcome) => bail!(
                        "xlbd refused the reload: {}",
                        outcome.error.unwrap_or_default()
                    ),
                    None => bail!("xlbd reported a reload without its result"),
                }
            }
            if !self.process.is_running() {
                bail!(
                    "xlbd exited during a reload; log:\n{}",
                    self.process.log_tail(30)
                );
            }
            if Instant::now() >= deadline {
                bail!("xlbd did not reload within {XLBD_RELOAD_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills xlbd with SIGKILL (a crash); the data plane stays pinned.
    ///
    /// # Errors
    /// When it cannot be reaped.
    pub fn kill(&self) -> Result<()> {
        self.process.kill()
    }

    /// Reads the counters from the pinned maps (works while no xlbd runs).
    ///
    /// # Errors
    /// When the pinned maps cannot be opened or read.
    pub fn counters(&self) -> Result<Counters> {
        read_counters(&self.pin_path)
    }
}

/// The data plane's counters, summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets by outcome, in `Stat::ALL` order.
    pub stats: Vec<(Stat, u64)>,
    /// Traffic of every VIP id.
    pub vips: Vec<TrafficCounters>,
}

impl Counters {
    /// Packets counted under `stat`.
    pub fn get(&self, stat: Stat) -> u64 {
        self.stats
            .iter()
            .find(|(s, _)| *s == stat)
            .map_or(0, |(_, n)| *n)
    }

    /// New flows entered for all VIPs together.
    pub fn vip_new_flows(&self) -> u64 {
        self.vips.iter().map(|v| v.new_flows).sum()
    }

    /// Packets forwarded for all VIPs together.
    pub fn vip_packets(&self) -> u64 {
        self.vips.iter().map(|v| v.packets).sum()
    }
}

/// Reads the `STATS` and `VIP_STATS` maps pinned under `pin_path`.
///
/// # Errors
/// When the pinned maps cannot be opened or read.
pub fn read_counters(pin_path: &Path) -> Result<Counters> {
    let maps = Maps::open_pinned(&PinDir::new(pin_path))
        .with_context(|| format!("open the maps pinned in {}", pin_path.display()))?;
    Ok(Counters {
        stats: counters::stats(&maps).context("read STATS")?,
        vips: counters::vip_traffic(&maps).context("read VIP_STATS")?,
    })
}

/// Writes `text` to `path` through a temporary file and a rename, so xlbd
/// never reads half a config.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, text).with_context(|| format!("write {}", temp.display()))?;
    std::fs::rename(&temp, path).with_context(|| format!("rename to {}", path.display()))
}
