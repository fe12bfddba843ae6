//! Processes a testbed started inside its namespaces (backends, xlbd), each
//! logging stdout and stderr to one file.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::netns;

/// How often waits poll a child for its exit.
const POLL: Duration = Duration::from_millis(20);

/// A process running in a testbed namespace. Clones share the process; the
/// testbed keeps one and stops it at teardown.
#[derive(Clone, Debug)]
pub struct Process {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    label: String,
    ns: String,
    pid: u32,
    log_path: PathBuf,
    child: Mutex<Child>,
}

impl Process {
    /// Starts `program` with `args` in namespace `ns`, appending its output
    /// to `log_path`.
    ///
    /// # Errors
    /// When the log file cannot be created or the program cannot start.
    pub(crate) fn spawn(
        ns: &str,
        program: &Path,
        args: &[&str],
        label: &str,
        log_path: PathBuf,
    ) -> Result<Process> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("create log file {}", log_path.display()))?;
        let log_err = log
            .try_clone()
            .with_context(|| format!("clone {}", log_path.display()))?;

        let mut command = netns::command(ns, program)?;
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let child = command.spawn().with_context(|| {
            format!(
                "start {label} ({} {}) in namespace {ns}",
                program.display(),
                args.join(" ")
            )
        })?;
        Ok(Process {
            inner: Arc::new(Inner {
                label: label.to_owned(),
                ns: ns.to_owned(),
                pid: child.id(),
                log_path,
                child: Mutex::new(child),
            }),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.inner.pid
    }

    /// The short name given at start ("b1", "xlbd", ...).
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The namespace the process runs in.
    pub fn ns(&self) -> &str {
        &self.inner.ns
    }

    /// The file holding the process's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.inner.log_path
    }

    /// The log so far (empty when unreadable).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.inner.log_path).unwrap_or_default()
    }

    fn child(&self) -> MutexGuard<'_, Child> {
        self.inner
            .child
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The exit status if the process has ended, `None` while it runs.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.child().try_wait().ok().flatten()
    }

    /// Whether the process is still running.
    pub fn is_running(&self) -> bool {
        self.exit_status().is_none()
    }

    /// Waits up to `timeout` for the process to end by itself.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Sends `signal` unless the process has already been reaped.
    pub fn signal(&self, signal: libc::c_int) {
        let mut child = self.child();
        if matches!(child.try_wait(), Ok(None)) {
            // SAFETY: the child is not reaped (try_wait saw it running while
            // we hold its lock), so its pid still names this process.
            unsafe { libc::kill(self.inner.pid as libc::pid_t, signal) };
        }
    }

    /// Kills the process with SIGKILL and reaps it.
    ///
    /// # Errors
    /// When the process cannot be waited for.
    pub fn kill(&self) -> Result<()> {
        self.signal(libc::SIGKILL);
        self.child()
            .wait()
            .with_context(|| format!("wait for {}", self.describe()))?;
        Ok(())
    }

    /// Sends SIGTERM, waits up to `grace`, then kills it.
    ///
    /// # Errors
    /// When the process cannot be waited for.
    pub fn stop(&self, grace: Duration) -> Result<()> {
        self.signal(libc::SIGTERM);
        if self.wait_timeout(grace).is_none() {
            self.kill()?;
        }
        Ok(())
    }

    /// "b1 (pid 1234) in namespace x..-b1", for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} (pid {}) in namespace {}",
            self.inner.label, self.inner.pid, self.inner.ns
        )
    }

    /// The last `lines` lines of the log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// Stops all `processes`: SIGTERM to each, up to `grace` in total for them
/// to end, then SIGKILL to the rest.
pub(crate) fn stop_all(processes: &[Process], grace: Duration) {
    for process in processes {
        process.signal(libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && processes.iter().any(Process::is_running) {
        std::thread::sleep(POLL);
    }
    for process in processes {
        // Teardown goes on whatever happens to one process.
        let _ = process.kill();
    }
}
