//! Watching the config file for changes.
//!
//! The directory is watched rather than the file, because editors and
//! config management replace files by renaming a new one over the old,
//! which ends a watch on the file itself. Bursts of events (an editor
//! writes, renames and touches) are debounced into one reload.

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
        })
    }

    /// Waits for the next change, then for the file to be quiet for
    /// [`DEBOUNCE`].
    pub async fn changed(&mut self) {
        if self.events.recv().await.is_none() {
            // The watcher is gone; never report a change again.
            std::future::pending::<()>().await;
        }
        loop {
            match tokio::time::timeout(DEBOUNCE, self.events.recv()).await {
                Ok(Some(())) => continue,
                _ => return,
            }
        }
    }
}
