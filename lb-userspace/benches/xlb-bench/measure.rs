//! Timing one case: kernel-measured ns per packet through
//! `BPF_PROG_TEST_RUN`, for `xlb` and a trivial program on the same frames,
//! with a check that every `xlb` packet took the intended path.
//!
//! Method: one packet per call (`repeat` = 1), and the kernel's own
//! `duration` of that run, so system-call and copy costs stay out of the
//! figure. `repeat` > 1 would rerun the program on its own output: after
//! the first pass an encapsulating program sees the encapsulated frame.
//! Only frames a program leaves untouched (PASS) may use `repeat`, and the
//! `repeat` rows say so.

use std::os::fd::{AsFd as _, AsRawFd as _};

use anyhow::{Context as _, bail, ensure};
use aya::programs::Xdp;
use lb_common::Stat;
use xlb::testrun::{TestRunOptions, test_run_fd};

use crate::xlb_harness::Lb;

/// How packets go through the test run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// One call per packet, each on a fresh copy of its frame.
    OnePerCall,
    /// One call running the program `repeat` times on one buffer; only for
    /// frames the program does not change.
    Repeat,
}

impl Method {
    /// Name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Method::OnePerCall => "one packet per call",
            Method::Repeat => "repeat on one buffer",
        }
    }
}

/// What every packet of a case must do in `xlb`.
#[derive(Clone, Copy, Debug)]
pub struct Intended {
    /// The one counter each packet moves.
    pub stat: Stat,
    /// VIP whose `new_flows` counter is checked, if any.
    pub vip_id: Option<u32>,
    /// Each packet creates a flow (else none may).
    pub new_flow: bool,
}

/// The file descriptor of a loaded XDP program, for `test_run_fd`.
///
/// # Errors
///
/// Fails when the program is not loaded.
pub fn prog_fd(prog: &Xdp) -> anyhow::Result<u32> {
    let fd = prog.fd().context("program has no file descriptor")?;
    Ok(fd.as_fd().as_raw_fd() as u32)
}

/// Mean kernel ns per packet of `fd` over `frames`, and the XDP action
/// every run returned.
///
/// # Errors
///
/// Fails when a run fails or the actions differ between packets.
pub fn time_frames(fd: u32, frames: &[Vec<u8>], method: Method) -> anyhow::Result<(f64, u32)> {
    let first = frames.first().context("a case needs at least one frame")?;
    if method == Method::Repeat {
        let opts = TestRunOptions {
            repeat: frames.len() as u32,
            ..TestRunOptions::default()
        };
        let out = test_run_fd(fd, first, opts).context("repeated test run")?;
        return Ok((f64::from(out.duration_ns), out.action));
    }

    let mut total_ns = 0u64;
    let mut action = None;
    for frame in frames {
        let out = test_run_fd(fd, frame, TestRunOptions::default()).context("test run")?;
        total_ns += u64::from(out.duration_ns);
        match action {
            None => action = Some(out.action),
            Some(a) if a != out.action => bail!("action {} after {a}", out.action),
            Some(_) => {}
        }
    }
    Ok((total_ns as f64 / frames.len() as f64, action.unwrap_or(0)))
}

/// Counters of `xlb` before a run, to check the path taken after it.
pub struct PathCheck {
    stats: Vec<u64>,
    new_flows: u64,
    intended: Intended,
}

impl PathCheck {
    /// Reads the counters the check compares.
    pub fn before(lb: &Lb, intended: Intended) -> Self {
        Self {
            stats: lb.stats(),
            new_flows: new_flows(lb, intended.vip_id),
            intended,
        }
    }

    /// Checks that `packets` runs each moved only the intended counter, and
    /// created a flow each (or none) as intended.
    ///
    /// # Errors
    ///
    /// Names the counter that moved otherwise.
    pub fn after(&self, lb: &Lb, packets: u64) -> anyhow::Result<()> {
        let stats = lb.stats();
        for (i, stat) in Stat::ALL.iter().enumerate() {
            let moved = stats[i] - self.stats[i];
            let want = if *stat == self.intended.stat {
                packets
            } else {
                0
            };
            ensure!(
                moved == want,
                "STATS[{stat:?}] moved by {moved}, expected {want}: not every packet took the \
                 intended path"
            );
        }
        let created = new_flows(lb, self.intended.vip_id) - self.new_flows;
        let want = if self.intended.new_flow { packets } else { 0 };
        ensure!(
            created == want,
            "{created} new flows counted, expected {want}"
        );
        Ok(())
    }
}

fn new_flows(lb: &Lb, vip_id: Option<u32>) -> u64 {
    vip_id.map_or(0, |id| lb.traffic("VIP_STATS", id).new_flows)
}

/// Median of `values` (0 for none).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}
