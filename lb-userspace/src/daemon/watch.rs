//! Watching the config file for changes.
//!
//! The directory is watched rather than the file, because editors and
//! config management replace files by renaming a new one over the old,
//! which ends a watch on the file itself. Bursts of events (an editor
//! writes, renames and touches) are debounced into one reload.
//!
//! [`ConfigWatch::changed`] is cancel-safe: the daemon's loop selects on
//! it beside timers and health updates, which often fire while a change
//! is being debounced; a change seen before such a cancel is kept and
//! reported by the next call.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// How long the file must stay quiet before a change triggers a reload.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// A running watch; dropping it stops watching.
pub struct ConfigWatch {
    _watcher: RecommendedWatcher,
    events: mpsc::UnboundedReceiver<()>,
    /// A change was seen and is being debounced (kept across cancels).
    pending: bool,
}

impl ConfigWatch {
    /// Starts watching `config`.
    ///
    /// # Errors
    ///
    /// When inotify cannot watch the file's directory.
    pub fn start(config: &Path) -> notify::Result<Self> {
        let dir = match config.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        let name = config.file_name().map(ToOwned::to_owned);
        let (sender, events) = mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                let relevant = matches!(
                    event.kind,
                    EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
                );
                let ours = event
                    .paths
                    .iter()
                    .any(|path| path.file_name() == name.as_deref());
                if relevant && ours {
                    let _ = sender.send(());
                }
            })?;
        watcher.watch(&dir, RecursiveMode::NonRecursive)?;
        Ok(Self {
            _watcher: watcher,
            events,
            pending: false,
        })
    }

    /// Waits for the next change, then for the file to be quiet for
    /// [`DEBOUNCE`]. Cancel-safe: dropped mid-debounce, the next call
    /// debounces the same change again instead of losing it.
    pub async fn changed(&mut self) {
        if !self.pending {
            if self.events.recv().await.is_none() {
                // The watcher is gone; never report a change again.
                std::future::pending::<()>().await;
            }
            self.pending = true;
        }
        while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, self.events.recv()).await {}
        self.pending = false;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{ConfigWatch, DEBOUNCE};

    #[tokio::test]
    async fn a_change_seen_before_a_cancel_is_reported_by_the_next_call() {
        let dir = std::env::temp_dir().join(format!("xlb-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config = dir.join("xlb.yaml");
        std::fs::write(&config, "a").expect("first write");
        let mut watch = ConfigWatch::start(&config).expect("watch");

        std::fs::write(&config, "b").expect("second write");
        // Another branch of the daemon's select fires mid-debounce.
        let cancelled = tokio::time::timeout(DEBOUNCE / 3, watch.changed()).await;
        assert!(cancelled.is_err(), "cancelled before the debounce ended");

        let reported = tokio::time::timeout(Duration::from_secs(5), watch.changed()).await;
        std::fs::remove_dir_all(&dir).expect("remove temp dir");
        assert!(reported.is_ok(), "the change survives the cancel");
    }
}
