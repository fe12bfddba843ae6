//! The exec actuator: runs `COMMAND ARGS... POOL COUNT` (a `kubectl scale`
//! wrapper, a cloud CLI) on its own task, so the daemon loop never waits on
//! it. Each attempt has a timeout and is killed after it; a failed attempt
//! is logged, counted and retried with exponential backoff until it
//! succeeds or a newer count replaces it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

/// First wait after a failed attempt; doubled each time up to
/// [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What the exec task of one pool has done, shared with the daemon.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecFigures {
    /// The count the last successful run set; `None` before one.
    pub applied: Option<u32>,
    /// Runs that exited 0.
    pub succeeded_total: u64,
    /// Runs that failed: non-zero exit, timeout, or not started.
    pub failed_total: u64,
    /// Why the last failed run failed.
    pub last_error: Option<String>,
}

/// The command of one pool and its task. Dropping it stops the task (a run
/// in flight is killed, as its child is `kill_on_drop`).
#[derive(Debug)]
pub struct ExecActuator {
    wanted: watch::Sender<Option<u32>>,
    figures: Arc<Mutex<ExecFigures>>,
    task: tokio::task::JoinHandle<()>,
}

/// What is run, for one pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// Pool name, the last argument but one.
    pub pool: String,
    /// Program.
    pub program: PathBuf,
    /// Arguments before the pool and count.
    pub args: Vec<String>,
    /// Longest run of one attempt.
    pub timeout: Duration,
}

impl ExecActuator {
    /// Starts the task of `command`. Needs a tokio runtime.
    pub fn start(command: Command) -> Self {
        let (wanted, receiver) = watch::channel(None);
        let figures = Arc::new(Mutex::new(ExecFigures::default()));
        let task = tokio::spawn(run(command, receiver, Arc::clone(&figures)));
        Self {
            wanted,
            figures,
            task,
        }
    }

    /// Asks for `count` backends; a run for an older count in flight
    /// finishes, then this one follows.
    pub fn request(&self, count: u32) {
        self.wanted.send_if_modified(|wanted| {
            let changed = *wanted != Some(count);
            *wanted = Some(count);
            changed
        });
    }

    /// A copy of what the task has done.
    pub fn figures(&self) -> ExecFigures {
        lock(&self.figures).clone()
    }
}

impl Drop for ExecActuator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(figures: &Mutex<ExecFigures>) -> MutexGuard<'_, ExecFigures> {
    figures.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn run(
    command: Command,
    mut wanted: watch::Receiver<Option<u32>>,
    figures: Arc<Mutex<ExecFigures>>,
) {
    loop {
        if wanted.changed().await.is_err() {
            return;
        }
        let Some(mut count) = *wanted.borrow_and_update() else {
            continue;
        };
        let mut backoff = FIRST_BACKOFF;
        loop {
            match run_once(&command, count).await {
                Ok(()) => {
                    info!(pool = command.pool, count, "autoscaler command succeeded");
                    let mut figures = lock(&figures);
                    figures.applied = Some(count);
                    figures.succeeded_total += 1;
                    break;
                }
                Err(error) => {
                    warn!(pool = command.pool, count, error, retry_in = ?backoff,
                        "autoscaler command failed");
                    let mut f = lock(&figures);
                    f.failed_total += 1;
                    f.last_error = Some(error);
                }
            }
            // Wait out the backoff, unless a newer count comes first.
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                changed = wanted.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
            if let Some(newer) = *wanted.borrow_and_update() {
                count = newer;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// One attempt: the command with the pool and count appended, within the
/// timeout.
async fn run_once(command: &Command, count: u32) -> Result<(), String> {
    let mut child = tokio::process::Command::new(&command.program);
    child
        .args(&command.args)
        .arg(&command.pool)
        .arg(count.to_string())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let started = child.output();
    match tokio::time::timeout(command.timeout, started).await {
        Err(_) => Err(format!("timed out after {:?}", command.timeout)),
        Ok(Err(error)) => Err(format!("cannot run {}: {error}", command.program.display())),
        Ok(Ok(output)) if output.status.success() => Ok(()),
        Ok(Ok(output)) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: String = stderr.trim().chars().rev().take(200).collect();
            let tail: String = tail.chars().rev().collect();
            Err(format!("{}: {tail}", output.status))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(script: &str, timeout: Duration) -> Command {
        Command {
            pool: "web".to_owned(),
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".to_owned(), script.to_owned(), "sh".to_owned()],
            timeout,
        }
    }

    #[tokio::test]
    async fn a_command_gets_the_pool_and_the_count() {
        let out = std::env::temp_dir().join(format!("xlb-exec-{}", std::process::id()));
        let script = format!("echo \"$1 $2\" > {}", out.display());
        let actuator = ExecActuator::start(command(&script, Duration::from_secs(5)));
        actuator.request(3);
        for _ in 0..100 {
            if actuator.figures().applied == Some(3) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            actuator.figures().applied,
            Some(3),
            "{:?}",
            actuator.figures()
        );
        let written = std::fs::read_to_string(&out).expect("the command wrote its arguments");
        assert_eq!(written.trim(), "web 3");
        let _ = std::fs::remove_file(out);
    }

    #[tokio::test]
    async fn a_hanging_command_times_out_and_is_retried() {
        let actuator = ExecActuator::start(command("sleep 5", Duration::from_millis(100)));
        actuator.request(2);
        for _ in 0..200 {
            if actuator.figures().failed_total >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let figures = actuator.figures();
        assert!(figures.failed_total >= 2, "{figures:?}");
        assert_eq!(figures.applied, None);
        assert!(
            figures
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("timed out"))
        );
    }
}
