//! What the results were measured on: CPU model, core count, kernel, and
//! the commit (with a flag for uncommitted changes) and date of the run.

use std::{path::Path, process::Command};

use serde::Serialize;

/// The machine and source tree of one run.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// CPUs this process may run on.
    pub cores: usize,
    /// `uname -r`.
    pub kernel: String,
    /// Short hash of HEAD.
    pub commit: String,
    /// Whether the work tree had uncommitted changes.
    pub dirty: bool,
    /// UTC time of the run, `YYYY-MM-DDTHH:MM:SSZ`.
    pub date: String,
}

impl Machine {
    /// Reads the machine's and the work tree's description; unknown parts
    /// read "unknown".
    pub fn read(repo: &Path) -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, model)| model.trim().to_string())
            })
            .unwrap_or_else(unknown);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| unknown(), |s| s.trim().to_string());
        let git = |args: &[&str]| output(Command::new("git").arg("-C").arg(repo).args(args));
        let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(unknown);
        let dirty =
            git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
        let date = output(Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"]))
            .unwrap_or_else(unknown);
        Self {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel,
            commit,
            dirty,
            date,
        }
    }

    /// The results file's name: `DATE-COMMIT[-dirty].json`.
    pub fn file_name(&self) -> String {
        let day = self.date.get(..10).unwrap_or("unknown");
        let dirty = if self.dirty { "-dirty" } else { "" };
        format!("{day}-{}{dirty}.json", self.commit)
    }
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn unknown() -> String {
    "unknown".into()
}
