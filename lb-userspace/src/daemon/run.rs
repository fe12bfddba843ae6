//! `xlbd run`: start the daemon and serve until told to stop.

use std::path::PathBuf;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, warn};

use super::control::{self, next_request};
use super::etcd_source::{self, EtcdArgs};
use super::logging::{self, LogFormat};
use super::status::DEFAULT_STATUS_FILE;
use super::watch::ConfigWatch;
use super::{ConfigSource, Daemon};

/// How often xlbd checks that its program is still attached, which bounds
/// how long a node without a data plane keeps announcing its VIPs.
const DATAPLANE_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Arguments of `xlbd run`.
#[derive(Clone, Debug, clap::Args)]
pub struct RunArgs {
    /// The config file, e.g. `--config /etc/xlb/xlb.yaml`.
    #[arg(long, short, required_unless_present = "etcd", conflicts_with = "etcd")]
    pub config: Option<PathBuf>,
    /// Take the config from etcd instead, and follow its changes:
    /// `--etcd 10.0.0.2:2379,10.0.0.3:2379 --etcd-key /xlb/config`.
    #[command(flatten)]
    pub etcd: EtcdArgs,
    /// Log lines as text or as JSON objects (`--log-format json`).
    #[arg(long, value_enum, default_value_t)]
    pub log_format: LogFormat,
    /// Where to write the daemon's status (read by `xlbd reload`).
    #[arg(long, default_value = DEFAULT_STATUS_FILE)]
    pub status_file: PathBuf,
}

/// Runs the daemon until SIGTERM or SIGINT.
///
/// # Errors
///
/// When start-up fails: invalid config, pinned maps of another build, an
/// interface that runs a program not ours.
pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    logging::init(args.log_format);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: &RunArgs) -> anyhow::Result<()> {
    // Signals first, so a SIGHUP right after readiness is not lost.
    let mut hangup = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;

    let mut etcd = etcd_source::start(&args.etcd)?;
    let source = match (&args.config, &mut etcd) {
        (Some(path), _) => ConfigSource::File(path.clone()),
        (None, Some(etcd)) => etcd.first_config().await?,
        (None, None) => anyhow::bail!("give --config FILE or --etcd ENDPOINTS"),
    };
    // The file watch before the start, which reports readiness: a change
    // written right after that must not be missed.
    let mut watch = match &source {
        ConfigSource::File(path) => match ConfigWatch::start(path) {
            Ok(watch) => Some(watch),
            Err(error) => {
                warn!(%error, "cannot watch the config file; reload with SIGHUP");
                None
            }
        },
        ConfigSource::Text { .. } => None,
    };
    let mut daemon = Daemon::start_from(source, &args.status_file)?;

    // The readers: xlbctl's mutations and the Prometheus endpoint.
    let mut control = control::start(&daemon.snapshot());
    let (readers, state) = tokio::sync::watch::channel(daemon.snapshot());
    let sources = crate::metrics::Sources {
        health: daemon.checker().metrics(),
        load: daemon.load().metrics(),
    };
    let _metrics = crate::metrics::start(&daemon.snapshot(), state, sources).await;
    let mut health = daemon.checker().subscribe();
    let mut load = daemon.load().subscribe();
    let mut dataplane_check = tokio::time::interval(DATAPLANE_CHECK_INTERVAL);

    loop {
        readers.send_replace(daemon.snapshot());
        tokio::select! {
            _ = hangup.recv() => {
                daemon.reload();
            }
            () = changed(&mut watch) => {
                daemon.reload();
            }
            update = etcd_source::next(&mut etcd) => {
                etcd_source::handle(&mut daemon, update);
            }
            Ok(()) = health.changed() => {
                reapply(&mut daemon);
            }
            Ok(()) = load.changed() => {
                reapply(&mut daemon);
            }
            () = slow_start_step(&daemon) => {
                reapply(&mut daemon);
            }
            _ = dataplane_check.tick() => {
                daemon.check_dataplane();
            }
            () = autoscale_due(&daemon) => {
                if let Err(e) = daemon.autoscale() {
                    error!(error = format!("{e:#}"), "applying an autoscaler change failed");
                }
            }
            incoming = next_request(&mut control) => {
                if daemon.handle_control(incoming).is_break() {
                    control::let_replies_out().await;
                    break;
                }
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    daemon.stop();
    Ok(())
}

/// Writes the maps again after a health flip, a slow-start step or a
/// load factor change.
fn reapply(daemon: &mut Daemon) {
    if let Err(e) = daemon.reapply() {
        error!(error = format!("{e:#}"), "applying a health change failed");
    }
}

/// Sleeps until the next slow-start weight step, or forever if none.
async fn slow_start_step(daemon: &Daemon) {
    let now = std::time::Instant::now();
    match daemon.checker().view().next_weight_change(now) {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Sleeps until an autoscaled pool is due, or forever if none is.
async fn autoscale_due(daemon: &Daemon) {
    match daemon.autoscale_due(std::time::Instant::now()) {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

async fn changed(watch: &mut Option<ConfigWatch>) {
    match watch {
        Some(watch) => watch.changed().await,
        None => std::future::pending().await,
    }
}
