//! The data-plane cases: non-VIP traffic, tracked IPv4 and IPv6 flows, and
//! new-flow SYNs into an empty and a full connection table, each beside a
//! trivial program (`xlb_pass` or `xlb_tx`) run on the same frames.

use anyhow::{Context as _, ensure};
use aya::{Ebpf, programs::Xdp};
use lb_common::Stat;
use serde::Serialize;

use crate::{
    flows::{self, Client},
    measure::{Intended, Method, PathCheck, median, prog_fd, time_frames},
    xlb_frames::{TCP, ether4, ipv4, tcp},
    xlb_harness::Lb,
    xlb_world::{CLIENT4, V4_DF, V4_TCP, V6_TCP},
};

/// Timed runs per case; the report gives their median.
pub const RUNS: u32 = 7;
/// Packets per timed run.
pub const PACKETS: u32 = 50_000;
/// Live-flow counts of the tracked and full-table cases.
pub const LIVE_FLOWS: [u32; 3] = [10_000, 100_000, 1_000_000];
/// Live-flow count of the largest full-table case (the 4M table).
pub const LARGEST_TABLE: u32 = 4 * 1024 * 1024;
/// `FLOWS` capacity of the empty-table cases.
const EMPTY_CAPACITY: u32 = 1_000_000;

/// One line of the report.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// What was sent.
    pub case: String,
    /// Flows in `FLOWS` when the case ran.
    pub live_flows: u32,
    /// How packets went through the test run ([`Method::name`]).
    pub method: &'static str,
    /// Median over runs of `xlb`'s mean ns per packet.
    pub xlb_ns: f64,
    /// The trivial program measured beside it.
    pub baseline: &'static str,
    /// Median over runs of the baseline's mean ns per packet.
    pub baseline_ns: f64,
    /// `xlb_ns / baseline_ns`.
    pub ratio: f64,
    /// `xlb_ns - baseline_ns`: what xlb adds to an empty program.
    pub extra_ns: f64,
    /// Every run's `xlb` figure, for the noise.
    pub xlb_runs_ns: Vec<f64>,
    /// The counter every packet moved (checked after each run).
    pub path: &'static str,
}

/// The trivial programs of `XLB_BASELINE`, loaded.
struct Baselines {
    _ebpf: Ebpf,
    pass_fd: u32,
    tx_fd: u32,
}

impl Baselines {
    fn load() -> anyhow::Result<Self> {
        let mut ebpf =
            Ebpf::load(xlb::objects::XLB_BASELINE).context("loading the baseline object")?;
        let mut fds = [0u32; 2];
        for (fd, name) in fds.iter_mut().zip(["xlb_pass", "xlb_tx"]) {
            let prog: &mut Xdp = ebpf
                .program_mut(name)
                .with_context(|| format!("program {name} is missing"))?
                .try_into()
                .with_context(|| format!("program {name} is not XDP"))?;
            prog.load().with_context(|| format!("loading {name}"))?;
            *fd = prog_fd(prog)?;
        }
        Ok(Self {
            _ebpf: ebpf,
            pass_fd: fds[0],
            tx_fd: fds[1],
        })
    }

    /// The trivial program with the action `stat` gives, and its name.
    fn beside(&self, stat: Stat) -> (u32, &'static str) {
        if stat.action() == "pass" {
            (self.pass_fd, "xlb_pass")
        } else {
            (self.tx_fd, "xlb_tx")
        }
    }
}

/// What one case sends and must do.
struct Spec {
    case: String,
    live_flows: u32,
    method: Method,
    intended: Intended,
}

/// Runs every case and returns the report lines.
///
/// # Errors
///
/// Fails when a program cannot be loaded or run, or a packet took another
/// path than intended.
pub fn run() -> anyhow::Result<Vec<Row>> {
    let base = Baselines::load()?;
    let mut rows = Vec::new();

    let mut lb = bench_lb(EMPTY_CAPACITY);
    for method in [Method::OnePerCall, Method::Repeat] {
        rows.push(non_vip_pass(&mut lb, &base, method)?);
    }
    rows.push(new_syns(&mut lb, &base, 0, "new-flow SYN, empty table")?);
    drop(lb);

    for live in LIVE_FLOWS {
        // Room to spare for the tracked rows: an LRU map filled to its
        // capacity evicts a few entries early (free nodes sit on other
        // CPUs' lists), and a timed packet must never miss its flow.
        let mut lb = filled_lb(live + live / 8 + 1024, live)?;
        for v6 in [false, true] {
            rows.push(tracked(&mut lb, &base, live, v6)?);
        }
        drop(lb);

        let mut lb = filled_lb(live, live)?;
        let case = "new-flow SYN, full table (evicts)";
        rows.push(new_syns(&mut lb, &base, live, case)?);
    }

    // The largest table only for new flows: filling it twice would double
    // the run's longest step for tracked rows that say little more.
    let mut lb = filled_lb(LARGEST_TABLE, LARGEST_TABLE)?;
    let case = "new-flow SYN, full table (evicts)";
    rows.push(new_syns(&mut lb, &base, LARGEST_TABLE, case)?);
    Ok(rows)
}

/// Instructions the verifier processed when it accepted `xlb` (the
/// kernel's `verified_insns`, Linux 5.16+), for the report.
///
/// # Errors
///
/// Fails when the program's info cannot be read or lacks the count.
pub fn verified_insns() -> anyhow::Result<u32> {
    let lb = bench_lb(65_536);
    let info = lb.prog().info().context("reading xlb's program info")?;
    info.verified_instruction_count()
        .context("the kernel reports no verified_insns for xlb")
}

/// Bytes of kernel memory one `FLOWS` entry costs: the map's `memlock`
/// (fdinfo; on 6.x kernels `map_mem_usage`, which for this preallocated
/// LRU map counts buckets and elements) at two capacities, over the
/// difference in entries. Returns (bytes per entry, memlock at each size).
///
/// # Errors
///
/// Fails when fdinfo cannot be read or has no `memlock` line.
pub fn flow_entry_bytes() -> anyhow::Result<(f64, [(u32, u64); 2])> {
    let sizes = [1024 * 1024, LARGEST_TABLE];
    let mut memlock = [(0, 0); 2];
    for (out, &size) in memlock.iter_mut().zip(&sizes) {
        let lb = bench_lb(size);
        *out = (size, flows::memlock(&lb)?);
    }
    let [(small, a), (large, b)] = memlock;
    let per_entry = (b as f64 - a as f64) / f64::from(large - small);
    Ok((per_entry, memlock))
}

/// [`bench_lb`] with `live` flows written into `FLOWS`.
fn filled_lb(capacity: u32, live: u32) -> anyhow::Result<Lb> {
    let mut lb = bench_lb(capacity);
    let started = std::time::Instant::now();
    flows::fill(&mut lb, live)?;
    let took = started.elapsed();
    eprintln!("bench: {live} live flows written into a table of {capacity} in {took:?}");
    Ok(lb)
}

/// `xlb` with room for `capacity` flows, serving `V4_TCP` and `V6_TCP`.
pub fn bench_lb(capacity: u32) -> Lb {
    let mut lb = Lb::load_with_flow_capacity(capacity);
    lb.add_vip(&V4_TCP);
    lb.add_vip(&V6_TCP);
    lb
}

fn non_vip_pass(lb: &mut Lb, base: &Baselines, method: Method) -> anyhow::Result<Row> {
    let segment = tcp(40_000, 80, false, 0);
    let frame = ether4(&ipv4(CLIENT4, [192, 0, 2, 99], TCP, &segment, V4_DF));
    let spec = Spec {
        case: "non-VIP traffic (PASS)".into(),
        live_flows: 0,
        method,
        intended: Intended {
            stat: Stat::PassNotVip,
            vip_id: None,
            new_flow: false,
        },
    };
    let frames = vec![frame; PACKETS as usize];
    measure(lb, base, &spec, |_| Ok(frames.clone()), |_, _| Ok(()))
}

fn tracked(lb: &mut Lb, base: &Baselines, live: u32, v6: bool) -> anyhow::Result<Row> {
    // Flows spread over the whole table, so lookups miss the CPU caches as
    // they would with real traffic; a multiplicative step visits them in a
    // scattered order.
    let half = u64::from(live / 2);
    let sample: Vec<Client> = (0..u64::from(PACKETS))
        .map(|j| {
            let n = (j * 2_654_435_761 % half) as u32 * 2 + u32::from(v6);
            flows::live(n)
        })
        .collect();
    let vip = if v6 { V6_TCP } else { V4_TCP };
    let family = if v6 { "IPv6" } else { "IPv4" };
    let rewritten = flows::ensure_tracked(lb, &sample)?;
    if rewritten > 0 {
        eprintln!(
            "bench: {rewritten} sampled {family} flows were evicted while filling; rewritten"
        );
    }
    let spec = Spec {
        case: format!("tracked {family} flow (encap + TX)"),
        live_flows: live,
        method: Method::OnePerCall,
        intended: Intended {
            stat: Stat::TxForwarded,
            vip_id: Some(vip.id),
            new_flow: false,
        },
    };
    let frames: Vec<Vec<u8>> = sample.iter().map(|c| c.frame(false)).collect();
    measure(lb, base, &spec, |_| Ok(frames.clone()), |_, _| Ok(()))
}

fn new_syns(lb: &mut Lb, base: &Baselines, live: u32, case: &str) -> anyhow::Result<Row> {
    let spec = Spec {
        case: case.into(),
        live_flows: live,
        method: Method::OnePerCall,
        intended: Intended {
            stat: Stat::TxForwarded,
            vip_id: Some(V4_TCP.id),
            new_flow: true,
        },
    };
    let clients = |run: u32| -> Vec<Client> {
        (0..PACKETS)
            .map(|j| Client::New(run * PACKETS + j))
            .collect()
    };
    let frames = |run| Ok(clients(run).iter().map(|c| c.frame(true)).collect());
    // An empty table stays empty: each run's flows go once it is timed.
    let empty = live == 0;
    let after = |lb: &mut Lb, run| {
        if empty {
            flows::forget(lb, &clients(run))?;
        }
        Ok(())
    };
    measure(lb, base, &spec, frames, after)
}

/// Times `spec` for `RUNS` runs of `frames(run)`, `xlb` then its baseline,
/// checking the path after every `xlb` run and calling `after` last.
fn measure(
    lb: &mut Lb,
    base: &Baselines,
    spec: &Spec,
    mut frames: impl FnMut(u32) -> anyhow::Result<Vec<Vec<u8>>>,
    mut after: impl FnMut(&mut Lb, u32) -> anyhow::Result<()>,
) -> anyhow::Result<Row> {
    let xlb_fd = prog_fd(lb.prog())?;
    let (base_fd, baseline) = base.beside(spec.intended.stat);
    let want_action = action_code(spec.intended.stat);
    let what = format!("{} with {} live flows", spec.case, spec.live_flows);
    let (mut xlb_ns, mut base_ns) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        let batch = frames(run)?;
        let check = PathCheck::before(lb, spec.intended);
        let (ns, action) = time_frames(xlb_fd, &batch, spec.method)
            .with_context(|| format!("timing xlb on {what}"))?;
        ensure!(
            action == want_action,
            "{what}: xlb returned action {action}"
        );
        check
            .after(lb, batch.len() as u64)
            .with_context(|| format!("{what}, run {run}"))?;
        let (bns, _) = time_frames(base_fd, &batch, spec.method)
            .with_context(|| format!("timing {baseline} on {what}"))?;
        xlb_ns.push(ns);
        base_ns.push(bns);
        after(lb, run)?;
    }
    let (x, b) = (median(&xlb_ns), median(&base_ns));
    Ok(Row {
        case: spec.case.clone(),
        live_flows: spec.live_flows,
        method: spec.method.name(),
        xlb_ns: x,
        baseline,
        baseline_ns: b,
        ratio: if b > 0.0 { x / b } else { f64::NAN },
        extra_ns: x - b,
        xlb_runs_ns: xlb_ns,
        path: spec.intended.stat.reason(),
    })
}

/// The XDP action code of `stat`'s outcome.
fn action_code(stat: Stat) -> u32 {
    match stat.action() {
        "pass" => 2,
        "tx" => 3,
        _ => 1,
    }
}
