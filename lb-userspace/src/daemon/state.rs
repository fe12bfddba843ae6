//! The running daemon: its data plane, the config it runs, and reloads.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use tracing::{error, info, warn};

use crate::autoscale::Autoscaler;
use crate::config::Config;
use crate::dataplane::from_config::{Startup, desired_state};
use crate::dataplane::{Dataplane, Health};
use crate::health::HealthChecker;
use crate::load::LoadTracker;
use crate::objects;

use super::overrides::Overrides;
use super::status::{DaemonStatus, ReloadOutcome};
use super::systemd;
use crate::dataplane::DesiredState;

mod announcing;
mod autoscale;
mod operator;

/// Where the daemon's config comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    /// A file, read again at each reload.
    File(PathBuf),
    /// Text handed over by a source such as etcd; `origin` names it in
    /// messages (`etcd:/xlb/config@42`).
    Text {
        /// What to call the text in errors and logs.
        origin: String,
        /// The YAML.
        text: String,
    },
}

impl ConfigSource {
    /// The file, or the origin, as the status file shows it.
    pub fn name(&self) -> PathBuf {
        match self {
            ConfigSource::File(path) => path.clone(),
            ConfigSource::Text { origin, .. } => PathBuf::from(origin),
        }
    }

    /// Loads and validates the config, logging its warnings.
    ///
    /// # Errors
    ///
    /// When it cannot be read or is invalid, with every problem's place.
    pub fn load(&self) -> anyhow::Result<Config> {
        match self {
            ConfigSource::File(path) => load_config(path),
            ConfigSource::Text { origin, text } => {
                let loaded = Config::from_str(text, origin)?;
                for issue in &loaded.warnings {
                    warn!(%issue, "config warning");
                }
                Ok(loaded.config)
            }
        }
    }
}

/// xlbd between start and exit.
pub struct Daemon {
    source: ConfigSource,
    status_file: PathBuf,
    startup: Startup,
    dataplane: Dataplane,
    // Kept across reloads: a backend found down stays down until its
    // checks pass, whatever the new config says.
    health: Health,
    status: DaemonStatus,
    // The running config's state, before overrides; see `operator`.
    desired: DesiredState,
    overrides: Overrides,
    // Probes every backend; its view decides `health` and slow-start weights.
    checker: HealthChecker,
    // Scrapes the load backends report; its view scales their weights.
    load: LoadTracker,
    // Keeps the served VIPs' routes for the routing daemon, if configured.
    announcer: Option<crate::announce::Announcer>,
    // VIP addresses with a backend taking new flows, after the last apply.
    servable: std::collections::BTreeSet<std::net::IpAddr>,
    // Whether an interface lost the program this daemon attached.
    dataplane_lost: bool,
    // Sizes the autoscaled pools; its standby phases bend `desired`.
    autoscaler: Autoscaler,
    // Cost tiers of the pools with `cost_aware`, from the running config.
    cost_aware: std::collections::BTreeMap<String, crate::config::CostAware>,
    // Automatic canary rollbacks since start.
    rollbacks: super::canary::Rollbacks,
}

/// The `cost_aware` settings of `config`'s pools, by pool name.
fn cost_aware(config: &Config) -> std::collections::BTreeMap<String, crate::config::CostAware> {
    let pools = config.pools.iter();
    pools
        .filter_map(|(name, pool)| Some((name.clone(), pool.cost_aware.clone()?)))
        .collect()
}

impl Daemon {
    /// Loads `config_path`, opens or adopts the data plane, writes the
    /// config into the maps, attaches, and reports ready.
    ///
    /// # Errors
    ///
    /// When the config is invalid or the data plane cannot be set up.
    pub fn start(config_path: &Path, status_file: &Path) -> anyhow::Result<Self> {
        Self::start_from(ConfigSource::File(config_path.to_owned()), status_file)
    }

    /// [`Daemon::start`] with the config from `source`.
    ///
    /// # Errors
    ///
    /// When the config is invalid or the data plane cannot be set up.
    pub fn start_from(source: ConfigSource, status_file: &Path) -> anyhow::Result<Self> {
        let config = source.load()?;
        let startup = Startup::from_config(&config);
        let desired = desired_state(&config)?;
        info!(
            config = %source.name().display(),
            version = env!("CARGO_PKG_VERSION"),
            "starting"
        );

        let pins = startup.pins.clone();
        let (flows, limits) = (startup.flow_capacity, startup.limits);
        let mut dataplane = Dataplane::open(pins, objects::XLB, flows, limits)?;
        let checker = HealthChecker::new(&config);
        let load = LoadTracker::new(&config);
        let autoscaler = Autoscaler::new(&config, Instant::now());
        let first = (&checker, &autoscaler);
        let health = match first_apply(&mut dataplane, first, &desired, &startup) {
            Ok(health) => health,
            Err(e) => {
                // A fresh start that failed leaves nothing behind; pins
                // adopted from a running data plane stay, and it forwards on.
                if !dataplane.adopted() {
                    let _ = crate::dataplane::pins::remove_all(dataplane.pins());
                }
                return Err(e);
            }
        };

        let attached = dataplane
            .attachments()
            .iter()
            .map(|a| (a.interface.clone(), a.prog_id))
            .collect();
        let status = DaemonStatus {
            pid: std::process::id(),
            config: source.name(),
            pin_path: startup.pins.root().to_owned(),
            attached,
            started_unix_s: unix_now_s(),
            config_version: config.version(),
            control_socket: Some(config.control_socket.clone()),
            metrics_listen: Some(config.metrics_listen.to_string()),
            ..DaemonStatus::default()
        };
        let announcer = config
            .announce
            .as_ref()
            .map(crate::announce::Announcer::new);
        let mut daemon = Self {
            source,
            status_file: status_file.to_owned(),
            startup,
            dataplane,
            health,
            status,
            desired,
            overrides: Overrides::default(),
            checker,
            load,
            announcer,
            servable: Default::default(),
            dataplane_lost: false,
            autoscaler,
            cost_aware: cost_aware(&config),
            rollbacks: Default::default(),
        };
        // Announces what the first apply can serve (no map changes).
        daemon.reapply()?;
        daemon.publish();
        systemd::ready();
        systemd::status("serving");
        info!("ready");
        Ok(daemon)
    }

    /// The config file this daemon reads, if it reads one.
    pub fn config_path(&self) -> Option<&Path> {
        match &self.source {
            ConfigSource::File(path) => Some(path),
            ConfigSource::Text { .. } => None,
        }
    }

    /// Validates `text` (from `origin`) as a whole and applies it, or
    /// keeps the running config if it is refused. A later SIGHUP reapplies
    /// the last text that was applied.
    pub fn reload_text(&mut self, origin: String, text: String) -> ReloadOutcome {
        let previous = std::mem::replace(&mut self.source, ConfigSource::Text { origin, text });
        let outcome = self.reload();
        if !outcome.ok {
            self.source = previous;
        } else {
            self.status.config = self.source.name();
        }
        outcome
    }

    /// The health checker, whose view changes drive [`Daemon::reapply`].
    pub fn checker(&self) -> &HealthChecker {
        &self.checker
    }

    /// The load tracker, whose view changes also drive [`Daemon::reapply`].
    pub fn load(&self) -> &LoadTracker {
        &self.load
    }

    /// The data plane, for readers (the control socket to come).
    pub fn dataplane(&self) -> &Dataplane {
        &self.dataplane
    }

    /// Reads the config again and applies it if it is valid as a whole;
    /// otherwise keeps running the old one. Logs and records the result.
    pub fn reload(&mut self) -> ReloadOutcome {
        systemd::reloading();
        let started = Instant::now();
        let result = self.try_reload();
        let duration_us = started.elapsed().as_micros() as u64;
        let outcome = match result {
            Ok((changes, restart_needed)) => {
                let config = self.source.name();
                info!(changes, config = %config.display(), duration_us, "reloaded");
                self.status.reloads_succeeded_total += 1;
                ReloadOutcome {
                    ok: true,
                    changes,
                    error: None,
                    restart_needed,
                    duration_us,
                }
            }
            Err(e) => {
                let message = format!("{e:#}");
                error!(error = message, "reload failed; the running config stays");
                self.status.reloads_failed_total += 1;
                ReloadOutcome {
                    ok: false,
                    changes: 0,
                    error: Some(message),
                    restart_needed: Vec::new(),
                    duration_us,
                }
            }
        };
        self.status.reload_generation += 1;
        self.status.last_reload = Some(outcome.clone());
        self.publish();
        systemd::ready();
        outcome
    }

    /// Applies the config from its source; returns the map writes made and
    /// the keys that changed but wait for a restart.
    fn try_reload(&mut self) -> anyhow::Result<(usize, Vec<String>)> {
        let config = self.source.load()?;
        let desired = desired_state(&config)?;
        let restart_needed = self.restart_needed(&config);
        if !restart_needed.is_empty() {
            warn!(
                keys = restart_needed.join(", "),
                "these settings only change on restart; the running ones stay"
            );
        }
        self.checker.update_config(&config);
        self.load.update_config(&config);
        self.update_announce(config.announce.as_ref());
        self.autoscaler.update_config(&config, Instant::now());
        let previous_cost = std::mem::replace(&mut self.cost_aware, cost_aware(&config));
        let changes = self.apply_config(desired).inspect_err(|_| {
            self.cost_aware = previous_cost;
        })?;
        self.status.config_version = config.version();
        Ok((changes, restart_needed))
    }

    /// The start-time keys whose values in `config` differ from the
    /// running ones.
    fn restart_needed(&self, config: &Config) -> Vec<String> {
        let startup = Startup::from_config(config);
        let metrics = config.metrics_listen.to_string();
        let changed = [
            ("interfaces", startup.interfaces != self.startup.interfaces),
            ("pin_path", startup.pins != self.startup.pins),
            (
                "flow_table_size",
                startup.flow_capacity != self.startup.flow_capacity,
            ),
            ("limits", startup.limits != self.startup.limits),
            (
                "control_socket",
                self.status.control_socket.as_ref() != Some(&config.control_socket),
            ),
            (
                "metrics_listen",
                self.status.metrics_listen.as_ref() != Some(&metrics),
            ),
        ];
        changed
            .into_iter()
            .filter(|(_, changed)| *changed)
            .map(|(key, _)| key.to_owned())
            .collect()
    }

    /// Counts a config source error (etcd unreachable, key unusable).
    pub fn count_source_error(&mut self) {
        self.status.config_source_errors_total += 1;
        self.publish();
    }

    /// Withdraws the announced VIPs, and logs that the daemon stops and
    /// that the data plane stays.
    pub fn stop(&mut self) {
        systemd::stopping();
        self.withdraw_all();
        info!(
            pin_path = %self.startup.pins.root().display(),
            "stopping; the data plane stays attached (`xlbd detach` removes it)"
        );
    }

    fn publish(&self) {
        if let Err(e) = self.snapshot().write(&self.status_file) {
            warn!(error = %e, file = %self.status_file.display(), "cannot write status file");
        }
    }
}

/// Writes the config into the maps, then attaches: a fresh program never
/// runs on empty maps. Returns the health the maps were written with.
fn first_apply(
    dataplane: &mut Dataplane,
    (checker, autoscaler): (&HealthChecker, &Autoscaler),
    desired: &DesiredState,
    startup: &Startup,
) -> anyhow::Result<Health> {
    let mut steered = desired.clone();
    autoscaler.steer(&mut steered, Instant::now());
    let health = crate::health::steer(&checker.view(), &mut steered, Instant::now());
    let changes = dataplane
        .apply(&steered, &health)
        .context("writing the config into the maps")?;
    info!(changes, vips = desired.vips.len(), "config applied");
    dataplane.attach(&startup.interfaces)?;
    for (interface, _) in &startup.interfaces {
        warn_if_not_forwarding(interface);
    }
    Ok(health)
}

/// Warns when `interface` does not forward a family: the kernel then
/// refuses `bpf_fib_lookup` for packets arriving there
/// (`BPF_FIB_LKUP_RET_FWD_DISABLED`), so xlb can only reach backends
/// through `encap.gateway_mac` and drops (`no_route`) without it.
fn warn_if_not_forwarding(interface: &str) {
    for family in ["ipv4", "ipv6"] {
        let path = format!("/proc/sys/net/{family}/conf/{interface}/forwarding");
        if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == "0") {
            warn!(
                interface,
                family,
                "forwarding is off: the FIB finds no backend MACs; enable it with \
                 sysctl net.{family}.conf.{interface}.forwarding=1 or set encap.gateway_mac"
            );
        }
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
fn unix_now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Loads and validates the config, logging its warnings.
///
/// # Errors
///
/// When it cannot be read or is invalid; the message lists every problem
/// with file, line and field.
pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    let loaded = Config::load(path)?;
    for issue in &loaded.warnings {
        warn!(%issue, "config warning");
    }
    Ok(loaded.config)
}
