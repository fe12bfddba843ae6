//! `xlbd run --etcd`: the daemon's side of the etcd config source. The
//! first good config starts the daemon; each later value is validated as
//! a whole and applied, or refused with the running config kept.

use anyhow::Context as _;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use super::{ConfigSource, Daemon};
use crate::etcd::{EtcdClient, Update, source};

/// Where the config is in etcd.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct EtcdArgs {
    /// etcd endpoints, comma-separated (`host:port`, plain HTTP).
    #[arg(long, requires = "etcd_key")]
    pub etcd: Option<String>,
    /// The key that holds the whole YAML config, e.g. `/xlb/config`.
    #[arg(long, requires = "etcd")]
    pub etcd_key: Option<String>,
}

/// A running etcd source.
pub struct EtcdSource {
    key: String,
    updates: mpsc::UnboundedReceiver<Update>,
}

/// Starts following the key if `--etcd` was given.
///
/// # Errors
///
/// When the endpoints cannot be parsed.
pub fn start(args: &EtcdArgs) -> anyhow::Result<Option<EtcdSource>> {
    let (Some(endpoints), Some(key)) = (&args.etcd, &args.etcd_key) else {
        return Ok(None);
    };
    let client = EtcdClient::new(endpoints)
        .map_err(anyhow::Error::msg)
        .context("--etcd")?;
    info!(endpoints, key, "taking the config from etcd");
    Ok(Some(EtcdSource {
        key: key.clone(),
        updates: source::spawn(client, key.clone()),
    }))
}

impl EtcdSource {
    fn origin(&self, revision: i64) -> String {
        format!("etcd:{}@{revision}", self.key)
    }

    /// Waits for the first value that validates: a fleet node restarting
    /// while etcd holds a bad config waits for a good one rather than
    /// exiting.
    ///
    /// # Errors
    ///
    /// When the source thread is gone.
    pub async fn first_config(&mut self) -> anyhow::Result<ConfigSource> {
        loop {
            let update = self
                .updates
                .recv()
                .await
                .context("the etcd source stopped")?;
            match update {
                Update::Config { text, revision } => {
                    let source = ConfigSource::Text {
                        origin: self.origin(revision),
                        text,
                    };
                    match source.load() {
                        Ok(_) => return Ok(source),
                        Err(e) => error!(
                            error = format!("{e:#}"),
                            "the config in etcd is invalid; waiting for a valid one"
                        ),
                    }
                }
                Update::Unusable { reason } => warn!(reason, "no config in etcd yet"),
                Update::Unreachable { error } => warn!(error, "etcd is unreachable; retrying"),
            }
        }
    }
}

/// The next update, or never without an etcd source.
pub async fn next(source: &mut Option<EtcdSource>) -> (String, Update) {
    let Some(source) = source else {
        return std::future::pending().await;
    };
    match source.updates.recv().await {
        Some(Update::Config { text, revision }) => {
            (source.origin(revision), Update::Config { text, revision })
        }
        Some(update) => (source.key.clone(), update),
        None => std::future::pending().await,
    }
}

/// Applies one update: a config is reloaded (validated as a whole, kept
/// out if invalid); anything else keeps the running config and counts.
pub fn handle(daemon: &mut Daemon, (origin, update): (String, Update)) {
    match update {
        Update::Config { text, .. } => {
            daemon.reload_text(origin, text);
        }
        Update::Unusable { reason } => {
            warn!(
                key = origin,
                reason, "unusable config in etcd; the running config stays"
            );
            daemon.count_source_error();
        }
        Update::Unreachable { error } => {
            warn!(error, "etcd is unreachable; the running config stays");
            daemon.count_source_error();
        }
    }
}
