//! What a testbed owns, how it is torn down, and the global list of live
//! testbeds that the Ctrl-C handler tears down.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError};
use std::time::Duration;

use anyhow::Result;

use crate::names::{self, BPFFS_ROOT, PIN_DIR_PREFIX};
use crate::netns;
use crate::process::{self, Process};

/// How long spawned processes get to end after SIGTERM at teardown.
const STOP_GRACE: Duration = Duration::from_millis(500);

/// Everything one testbed created, shared with the Ctrl-C handler.
#[derive(Debug)]
pub(crate) struct Resources {
    pub prefix: String,
    /// Namespaces in creation order; some may not exist yet.
    pub namespaces: Vec<String>,
    pub pin_dir: PathBuf,
    pub log_dir: PathBuf,
    pub keep_logs: bool,
    pub processes: Mutex<Vec<Process>>,
    /// Set once torn down; held during teardown so a second caller (the
    /// Ctrl-C handler racing a Drop) waits for the first to finish.
    torn_down: Mutex<bool>,
}

impl Resources {
    pub fn new(prefix: String, namespaces: Vec<String>, log_dir: PathBuf, keep_logs: bool) -> Self {
        let pin_dir = Path::new(BPFFS_ROOT).join(format!("{PIN_DIR_PREFIX}{prefix}"));
        Resources {
            prefix,
            namespaces,
            pin_dir,
            log_dir,
            keep_logs,
            processes: Mutex::new(Vec::new()),
            torn_down: Mutex::new(false),
        }
    }

    pub fn processes(&self) -> MutexGuard<'_, Vec<Process>> {
        self.processes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops processes, deletes namespaces, removes the pin directory and
    /// (unless kept) the log directory. Only the first call does anything.
    pub fn teardown(&self) {
        let mut torn_down = self
            .torn_down
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *torn_down {
            return;
        }
        *torn_down = true;
        let processes: Vec<Process> = self.processes().drain(..).collect();
        process::stop_all(&processes, STOP_GRACE);
        for ns in self.namespaces.iter().rev() {
            delete_netns(ns);
        }
        remove_pin_dir(&self.pin_dir);

        let keep = self.keep_logs || std::thread::panicking();
        if keep {
            eprintln!(
                "xlb-testbed {}: logs kept in {}",
                self.prefix,
                self.log_dir.display()
            );
        } else if let Err(err) = std::fs::remove_dir_all(&self.log_dir)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.log_dir.display(), %err, "cannot remove log dir");
        }
        tracing::info!(prefix = %self.prefix, "testbed torn down");
    }
}

/// Kills what still runs in namespace `ns` (processes started by this
/// testbed or by its callers there), then deletes it. Deleting a namespace
/// deletes its veths and bridge.
fn delete_netns(ns: &str) {
    if !netns::netns_path(ns).exists() {
        return;
    }
    for pid in netns::pids_in_netns(ns) {
        // SAFETY: plain kill(2) on a pid read from /proc just now; the only
        // processes in this namespace are ones the testbed's users started.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    if let Err(err) = netns::exec_ip(&["netns", "del", ns]) {
        tracing::warn!(%ns, err = format!("{err:#}"), "cannot delete namespace");
    }
}

/// Removes a pin directory on bpffs; pins are files that unlink like any.
fn remove_pin_dir(dir: &Path) {
    if let Err(err) = std::fs::remove_dir_all(dir)
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), %err, "cannot remove pin dir");
    }
}

static LIVE: Mutex<Vec<Arc<Resources>>> = Mutex::new(Vec::new());
static CTRLC: Once = Once::new();

fn live() -> MutexGuard<'static, Vec<Arc<Resources>>> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Adds a testbed to the live list.
pub(crate) fn register(resources: Arc<Resources>) {
    live().push(resources);
}

/// Tears a testbed down and drops it from the live list.
pub(crate) fn release(resources: &Arc<Resources>) {
    resources.teardown();
    live().retain(|r| !Arc::ptr_eq(r, resources));
}

/// Tears down every live testbed of this process. For callers with their
/// own signal handling; the testbed's Ctrl-C handler calls it too.
pub fn teardown_all() {
    let all: Vec<Arc<Resources>> = live().drain(..).collect();
    for resources in all {
        resources.teardown();
    }
}

/// Installs (once) a Ctrl-C / SIGTERM handler that tears down every live
/// testbed and exits with 130. A program that already set a handler with
/// the ctrlc crate keeps its own and should call `teardown_all` from it.
pub(crate) fn install_ctrlc_handler() {
    CTRLC.call_once(|| {
        let installed = ctrlc::set_handler(|| {
            eprintln!("xlb-testbed: interrupted, tearing down");
            teardown_all();
            std::process::exit(130);
        });
        if let Err(err) = installed {
            tracing::warn!(%err, "testbed ctrl-c handler not installed");
        }
    });
}

/// What `cleanup_stale` removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StaleCleanup {
    /// Namespaces of dead runs that were deleted.
    pub namespaces: Vec<String>,
    /// Pin directories of dead runs that were removed.
    pub pin_dirs: Vec<PathBuf>,
}

/// Removes leftovers of dead runs: namespaces named by the testbed scheme
/// (see `names`) whose creating process is gone, with any process still in
/// them, and their pin directories under /sys/fs/bpf. Log directories are
/// left for reading.
///
/// # Errors
/// Never fails today; the `Result` leaves room for reporting.
pub fn cleanup_stale() -> Result<StaleCleanup> {
    let dead = |prefix: &str| {
        names::prefix_pid(prefix)
            .is_some_and(|pid| pid != std::process::id() && !names::pid_alive(pid))
    };
    let mut report = StaleCleanup::default();

    for ns in netns::list_netns() {
        if names::parse_netns(&ns).is_some_and(|(prefix, _)| dead(prefix)) {
            delete_netns(&ns);
            report.namespaces.push(ns);
        }
    }

    if let Ok(entries) = std::fs::read_dir(BPFFS_ROOT) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.strip_prefix(PIN_DIR_PREFIX).is_some_and(dead) {
                remove_pin_dir(&entry.path());
                report.pin_dirs.push(entry.path());
            }
        }
    }

    if !report.namespaces.is_empty() || !report.pin_dirs.is_empty() {
        tracing::info!(
            namespaces = report.namespaces.len(),
            pin_dirs = report.pin_dirs.len(),
            "removed leftovers of dead testbeds"
        );
    }
    Ok(report)
}
