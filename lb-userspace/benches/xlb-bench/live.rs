//! Throughput over a veth pair: a generator network namespace injects
//! frames with `BPF_F_TEST_XDP_LIVE_FRAMES` (`xlb_gen`, run by test-run,
//! writes the frame's headers afresh and sends it out of the generator's
//! veth end: the kernel recycles the pages without restoring their bytes,
//! and xlb rewrites headers in place), and the
//! program under test runs in native XDP on the other end. The rate is the
//! receiving end's XDP packet count (`ethtool -S`, `xdp_packets`) over the
//! generator's wall time, for `xlb` and for a trivial `XDP_TX` program in
//! turn, on the same frames in the same run.
//!
//! Every packet `xlb` sees must be forwarded (its `STATS` are checked).
//! The frame is one tracked IPv4 flow to `V4_TCP`; `xlb` encapsulates it and
//! sends it back to the generator's end, which has no XDP program, so the
//! veth drops it there (Linux 6.18 `veth_xdp_xmit` needs an XDP program or
//! GRO on the peer): only the receiving side's work is measured.

use std::{
    fs::File,
    os::fd::AsRawFd as _,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail, ensure};
use aya::{
    Ebpf,
    maps::Array,
    programs::{Xdp, XdpMode},
};
use serde::Serialize;
use xlb::testrun::{BPF_F_TEST_XDP_LIVE_FRAMES, TestRunOptions, test_run_fd};

use crate::{flows::Client, measure::prog_fd};

/// Frames per timed injection.
const FRAMES: u32 = 2_000_000;
/// Timed injections per program; the report gives the median.
const RUNS: usize = 3;
/// Frames per test-run batch (the kernel's default is 64).
const BATCH: u32 = 256;
/// Header bytes `xlb_gen` restores in every frame (its `GEN_FRAME_LEN`).
const GEN_FRAME_LEN: usize = 54;

/// One line of the throughput report.
#[derive(Clone, Debug, Serialize)]
pub struct LiveRow {
    /// Program on the receiving veth end.
    pub program: &'static str,
    /// Median over runs of frames it processed per second, in millions.
    pub mpps: f64,
    /// Every run's figure.
    pub runs_mpps: Vec<f64>,
}

/// The namespace and veth pair, removed on drop.
struct Testbed {
    netns: String,
    lb_end: String,
    gen_end: String,
}

impl Testbed {
    /// Creates the generator namespace and a veth pair whose `lb_end` stays
    /// in this thread's namespace.
    fn create() -> anyhow::Result<Self> {
        let pid = std::process::id();
        let bed = Self {
            netns: format!("xlbgen{pid}"),
            lb_end: format!("xlbl{pid}"),
            gen_end: format!("xlbg{pid}"),
        };
        ip(&["netns", "add", &bed.netns])?;
        let pair = [
            "link",
            "add",
            &bed.lb_end,
            "type",
            "veth",
            "peer",
            "name",
            &bed.gen_end,
            "netns",
            &bed.netns,
        ];
        ip(&pair)?;
        ip(&["link", "set", &bed.lb_end, "up"])?;
        ip(&["-n", &bed.netns, "link", "set", &bed.gen_end, "up"])?;
        Ok(bed)
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        // Deleting the namespace deletes the generator end and so the pair.
        let _ = ip(&["netns", "del", &self.netns]);
    }
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("ip")
        .args(args)
        .status()
        .context("running ip")?;
    ensure!(
        status.success(),
        "ip {} failed with {status}",
        args.join(" ")
    );
    Ok(())
}

/// Runs the throughput comparison.
///
/// # Errors
///
/// Fails when the testbed cannot be made, a program cannot be attached, or
/// an injection fails.
pub fn run() -> anyhow::Result<Vec<LiveRow>> {
    let mut lb = crate::dataplane::bench_lb(65_536);
    let bed = Testbed::create()?;
    let mut baseline =
        Ebpf::load(xlb::objects::XLB_BASELINE).context("loading the baseline object")?;
    let frame = Client::LiveV4(7).frame(false);
    let template: [u8; GEN_FRAME_LEN] = frame
        .get(..GEN_FRAME_LEN)
        .and_then(|head| head.try_into().ok())
        .context("the injected frame is shorter than xlb_gen's template")?;
    {
        let mut templates: Array<_, [u8; GEN_FRAME_LEN]> = baseline
            .map_mut("GEN_FRAME")
            .context("map GEN_FRAME is missing")?
            .try_into()
            .context("GEN_FRAME is not an array")?;
        templates
            .set(0, template, 0)
            .context("writing the generator's frame")?;
    }
    let generator: &mut Xdp = program(&mut baseline, "xlb_gen")?;
    generator.load().context("loading xlb_gen")?;
    let gen_fd = prog_fd(generator)?;
    let tx: &mut Xdp = program(&mut baseline, "xlb_tx")?;
    tx.load().context("loading xlb_tx")?;

    let mut rows = Vec::new();
    let xlb = program(&mut lb.ebpf, "xlb")?;
    let link = xlb
        .attach(&bed.lb_end, XdpMode::Driver)
        .context("attaching xlb to the veth in native mode")?;
    let before = lb.stats();
    let runs = timed_runs(&bed, gen_fd, &frame)?;
    check_all_forwarded(&lb, &before)?;
    rows.push(row("xlb", runs));
    program(&mut lb.ebpf, "xlb")?
        .detach(link)
        .context("detaching xlb")?;

    let tx: &mut Xdp = program(&mut baseline, "xlb_tx")?;
    let link = tx
        .attach(&bed.lb_end, XdpMode::Driver)
        .context("attaching xlb_tx to the veth in native mode")?;
    let runs = timed_runs(&bed, gen_fd, &frame)?;
    rows.push(row("xlb_tx (trivial)", runs));
    program(&mut baseline, "xlb_tx")?
        .detach(link)
        .context("detaching xlb_tx")?;
    drop(bed);
    Ok(rows)
}

/// Checks that every injected packet `xlb` counted since `before` (its
/// `STATS`) was forwarded: the first enters the flow, every later one is a
/// tracked packet of it.
fn check_all_forwarded(lb: &crate::xlb_harness::Lb, before: &[u64]) -> anyhow::Result<()> {
    use lb_common::Stat;

    let after = lb.stats();
    let moved = |stat: Stat| {
        let i = Stat::ALL.iter().position(|s| *s == stat).unwrap_or(0);
        after[i] - before[i]
    };
    let forwarded = moved(Stat::TxForwarded);
    ensure!(forwarded > 0, "xlb forwarded none of the injected frames");
    // The kernel's own traffic on the new link (IPv6 neighbour discovery)
    // passes as non-VIP: a handful of packets, never an injected one.
    let others = moved(Stat::PassNotVip);
    ensure!(
        others <= forwarded / 10_000,
        "veth run: {others} packets passed as non-VIP beside {forwarded} forwarded"
    );
    for stat in Stat::ALL {
        if stat != Stat::TxForwarded && stat != Stat::PassNotVip {
            let n = moved(stat);
            ensure!(
                n == 0,
                "veth run: {n} packets counted under {stat:?}, not forwarded"
            );
        }
    }
    eprintln!("bench: veth run: {forwarded} packets forwarded, {others} non-VIP passed");
    Ok(())
}

fn program<'a>(ebpf: &'a mut Ebpf, name: &str) -> anyhow::Result<&'a mut Xdp> {
    ebpf.program_mut(name)
        .with_context(|| format!("program {name} is missing"))?
        .try_into()
        .with_context(|| format!("program {name} is not XDP"))
}

fn row(program: &'static str, runs_mpps: Vec<f64>) -> LiveRow {
    LiveRow {
        program,
        mpps: crate::measure::median(&runs_mpps),
        runs_mpps,
    }
}

/// Mpps the receiving end processed in each of `RUNS` injections.
fn timed_runs(bed: &Testbed, gen_fd: u32, frame: &[u8]) -> anyhow::Result<Vec<f64>> {
    let mut mpps = Vec::new();
    for _ in 0..RUNS {
        let before = xdp_packets(&bed.lb_end)?;
        let elapsed = inject(bed, gen_fd, frame)?;
        let received = xdp_packets(&bed.lb_end)? - before;
        mpps.push(received as f64 / elapsed.as_secs_f64() / 1e6);
    }
    Ok(mpps)
}

/// Injects `FRAMES` copies of `frame` from the generator namespace; returns
/// the wall time.
fn inject(bed: &Testbed, gen_fd: u32, frame: &[u8]) -> anyhow::Result<Duration> {
    let netns = format!("/run/netns/{}", bed.netns);
    let gen_end = bed.gen_end.clone();
    let frame = frame.to_vec();
    let worker = std::thread::spawn(move || -> anyhow::Result<Duration> {
        let ns = File::open(&netns).with_context(|| format!("opening {netns}"))?;
        // SAFETY: setns(2) on a namespace file we hold open; it changes only
        // this (short-lived) thread's network namespace.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            bail!("setns into {netns}: {}", std::io::Error::last_os_error());
        }
        let name = std::ffi::CString::new(gen_end.clone()).context("interface name")?;
        // SAFETY: `name` is a valid C string for the call's duration.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        ensure!(
            ifindex != 0,
            "no interface {gen_end} in the generator namespace"
        );
        let opts = TestRunOptions {
            repeat: FRAMES,
            ingress_ifindex: ifindex,
            flags: BPF_F_TEST_XDP_LIVE_FRAMES,
            batch_size: BATCH,
        };
        let started = Instant::now();
        test_run_fd(gen_fd, &frame, opts).context("live-frame injection")?;
        Ok(started.elapsed())
    });
    worker
        .join()
        .map_err(|_| anyhow::anyhow!("the generator thread panicked"))?
}

/// Sum of the `xdp_packets` counters of `dev` (`ethtool -S`).
fn xdp_packets(dev: &str) -> anyhow::Result<u64> {
    let out = Command::new("ethtool")
        .args(["-S", dev])
        .output()
        .context("running ethtool")?;
    ensure!(out.status.success(), "ethtool -S {dev} failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let total = text
        .lines()
        .filter(|l| l.trim_start().contains("xdp_packets"))
        .filter_map(|l| l.rsplit(':').next()?.trim().parse::<u64>().ok())
        .sum();
    Ok(total)
}
