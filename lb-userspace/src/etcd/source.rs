//! etcd as xlbd's config source: a thread that reads the config key, then
//! watches it, and hands every value it sees to the daemon, which
//! validates it as a whole before applying it.
//!
//! The thread never gives up: when etcd is unreachable or the watch
//! breaks, it reports that, waits, and watches again from one past the
//! last revision it saw, so no write is missed and the daemon keeps its
//! last good config meanwhile. When that revision has been compacted
//! away, it reads the key again and watches from the revision of that
//! read (the read returns the value current at that revision).

use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{debug, info};

use super::client::{EtcdClient, EtcdError, WatchEvent};

/// Wait before reconnecting after an error; doubles up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_millis(250);
/// See [`RETRY_MIN`].
const RETRY_MAX: Duration = Duration::from_secs(5);

/// What the source thread tells the daemon.
#[derive(Debug)]
pub enum Update {
    /// The key holds `text` as of `revision`; validate and apply it.
    Config {
        /// The value, as written (not yet validated).
        text: String,
        /// Revision of the read or the write it comes from.
        revision: i64,
    },
    /// The key is missing, empty or not UTF-8 (the config stays).
    Unusable {
        /// Why, for the log.
        reason: String,
    },
    /// etcd cannot be reached or the watch broke (the config stays).
    Unreachable {
        /// The error, with its chain.
        error: String,
    },
}

/// Starts the thread that reads and watches `key`, sending to the
/// returned channel. It ends when the receiver is dropped and a send
/// fails.
pub fn spawn(client: EtcdClient, key: String) -> mpsc::UnboundedReceiver<Update> {
    let (sender, updates) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("xlbd-etcd".to_owned())
        .spawn(move || follow(&client, &key, &sender))
        .expect("spawning the etcd thread");
    updates
}

fn follow(client: &EtcdClient, key: &str, sender: &mpsc::UnboundedSender<Update>) {
    let mut retry = RETRY_MIN;
    // The revision to watch from next; `None`: read the key first.
    let mut resume: Option<i64> = None;
    loop {
        let update = match follow_once(client, key, sender, &mut resume, &mut retry) {
            Ok(Stopped::Compacted(compact_revision)) => {
                info!(
                    compact_revision,
                    "etcd compacted the revision to resume from; reading again"
                );
                resume = None;
                continue;
            }
            Ok(Stopped::ReceiverGone) => return,
            Err(e) => Update::Unreachable {
                error: format!("{:#}", anyhow::Error::from(e)),
            },
        };
        if sender.send(update).is_err() {
            return;
        }
        std::thread::sleep(retry);
        retry = (retry * 2).min(RETRY_MAX);
    }
}

enum Stopped {
    Compacted(i64),
    ReceiverGone,
}

/// Reads the key and sends it unless there is a revision to resume from,
/// then watches until the watch stops, keeping `resume` one past the last
/// revision seen.
fn follow_once(
    client: &EtcdClient,
    key: &str,
    sender: &mpsc::UnboundedSender<Update>,
    resume: &mut Option<i64>,
    retry: &mut Duration,
) -> Result<Stopped, EtcdError> {
    let start = match *resume {
        Some(revision) => revision,
        None => {
            let got = client.get(key)?;
            let first = match got.value {
                Some(value) => to_update(value, got.revision),
                None => Update::Unusable {
                    reason: format!("key {key} does not exist (revision {})", got.revision),
                },
            };
            if sender.send(first).is_err() {
                return Ok(Stopped::ReceiverGone);
            }
            got.revision + 1
        }
    };
    *resume = Some(start);
    let mut watch = client.watch(key, start)?;
    debug!(key, start, "watching the config key");
    loop {
        let events = watch.changes()?;
        // A watch that delivers is healthy; the next outage waits little.
        *retry = RETRY_MIN;
        for event in events {
            let update = match event {
                WatchEvent::Put { value, revision } => {
                    *resume = Some(revision + 1);
                    to_update(value, revision)
                }
                WatchEvent::Delete { revision } => {
                    *resume = Some(revision + 1);
                    Update::Unusable {
                        reason: format!("key {key} was deleted (revision {revision})"),
                    }
                }
                WatchEvent::Compacted { compact_revision } => {
                    return Ok(Stopped::Compacted(compact_revision));
                }
            };
            if sender.send(update).is_err() {
                return Ok(Stopped::ReceiverGone);
            }
        }
    }
}

fn to_update(value: Vec<u8>, revision: i64) -> Update {
    if value.is_empty() {
        return Update::Unusable {
            reason: format!("the value at revision {revision} is empty"),
        };
    }
    match String::from_utf8(value) {
        Ok(text) => Update::Config { text, revision },
        Err(_) => Update::Unusable {
            reason: format!("the value at revision {revision} is not UTF-8"),
        },
    }
}
