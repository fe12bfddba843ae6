//! xlbd at 1000 VIPs x 100 backends: its memory idle, and the time to
//! apply a reload that changes one VIP.
//!
//! One pool of 100 IPv4 backends serves 1000 TCP VIPs, so the maps hold
//! 100 000 backend slots. The limits are the largest (1024 VIPs, 131 072
//! slots): a changed VIP takes its new id and slots before the old ones are
//! freed, so a node at its limits cannot change a VIP in one reload. Every
//! VIP has a 10 007-slot Maglev table (100 slots per backend, the least
//! that keeps shares even): at the default 65 537 slots, xlbd's first
//! apply would write 65 million `MAGLEV` entries one system call each.
//! No health checks and no traffic: the backends need not exist.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use xlb_testbed::xlbd_config::{ENCAP_SOURCE_V4, METRICS_LISTEN, XlbdConfig};
use xlb_testbed::{Testbed, TestbedOptions, Xlbd};

use crate::figure::{Figure, median};

/// VIPs in the config.
const VIPS: u32 = 1000;
/// Backends in the one pool every VIP uses.
const BACKENDS: u32 = 100;
/// Maglev slots per VIP, a prime.
const TABLE_SIZE: u32 = 10_007;
/// The VIP whose port the reloads change.
const CHANGED_VIP: u32 = 500;
/// Reloads timed; the figure is their median.
const RELOADS: usize = 5;
/// Pause after each reload, past the file watch's 300 ms debounce.
const SETTLE: Duration = Duration::from_secs(1);
/// How long xlbd is left alone before its memory is read.
const IDLE: Duration = Duration::from_secs(3);

/// Starts xlbd on the big config, reads its RSS, then times `RELOADS`
/// reloads.
///
/// # Errors
///
/// When the testbed or xlbd fails, or a reload is refused.
pub fn run() -> anyhow::Result<Vec<Figure>> {
    eprintln!("control: xlbd with {VIPS} VIPs x {BACKENDS} backends");
    let testbed = Testbed::new(TestbedOptions {
        backends: 1,
        backend_bin: Some(env!("CARGO_BIN_EXE_xlb-backend").into()),
        ..Default::default()
    })
    .context("building the testbed")?;
    let base = XlbdConfig::for_testbed(&testbed);

    let started = Instant::now();
    let xlbd = testbed.start_xlbd(&config(&base, 80))?;
    let start_s = started.elapsed().as_secs_f64();
    let cpu_before = cpu_ticks(xlbd.pid())?;
    std::thread::sleep(IDLE);
    let idle_ticks = cpu_ticks(xlbd.pid())? - cpu_before;
    eprintln!("control: xlbd used {idle_ticks} CPU ticks while idle for {IDLE:?}");
    let (rss_kib, hwm_kib) = memory_kib(xlbd.pid())?;

    let mut reload_ms = Vec::new();
    let mut changes = Vec::new();
    for round in 0..RELOADS {
        let port = if round % 2 == 0 { 8080 } else { 80 };
        let (ms, n) = timed_reload(&xlbd, &config(&base, port))?;
        reload_ms.push(ms);
        changes.push(n);
        std::thread::sleep(SETTLE);
    }
    testbed.teardown();

    let runs: Vec<String> = reload_ms.iter().map(|ms| format!("{ms:.1}")).collect();
    let shape = format!("{VIPS} VIPs x {BACKENDS} backends, {TABLE_SIZE}-slot tables");
    Ok(vec![
        Figure::new(
            "reload changing 1 of 1000 VIPs",
            median(&reload_ms),
            "ms",
            format!(
                "{shape}; one VIP's port changed; xlbd's own read, validate and apply time; \
                 median of {RELOADS} (ms: {}; map writes: {changes:?})",
                runs.join(" ")
            ),
        ),
        Figure::new(
            "xlbd RSS idle, 1000 VIPs x 100 backends",
            rss_kib as f64 / 1024.0,
            "MiB",
            format!(
                "{shape}; VmRSS {}s after ready (peak VmHWM {:.1} MiB)",
                IDLE.as_secs(),
                hwm_kib as f64 / 1024.0
            ),
        ),
        Figure::new(
            "xlbd start to ready, 1000 VIPs x 100 backends",
            start_s,
            "s",
            format!("{shape}; spawn to the status file naming its pid"),
        ),
    ])
}

/// Writes `yaml` over xlbd's config and sends SIGHUP; returns xlbd's own
/// time for the reload and its map writes. (xlbd's file watch may reload
/// once more after its debounce, finding nothing to change: the caller
/// waits that out.)
fn timed_reload(xlbd: &Xlbd, yaml: &str) -> anyhow::Result<(f64, usize)> {
    let before = xlbd.status()?.reload_generation;
    write_atomically(xlbd.config_path(), yaml)?;
    xlbd.process().signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = xlbd.status()?;
        if status.reload_generation > before {
            let outcome = status.last_reload.context("no reload outcome")?;
            ensure!(outcome.ok, "reload refused: {:?}", outcome.error);
            ensure!(outcome.changes > 0, "the reload changed nothing");
            return Ok((outcome.duration_us as f64 / 1e3, outcome.changes));
        }
        if Instant::now() > deadline {
            bail!("xlbd did not reload within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The config: `VIPS` VIPs on one pool, VIP `CHANGED_VIP` on `port`.
fn config(base: &XlbdConfig, port: u16) -> String {
    let mut out = format!(
        "interfaces:\n  - name: eth0\n    mode: native\n\
         pin_path: {}\ncontrol_socket: {}\nmetrics_listen: {METRICS_LISTEN}\n\
         encap: {{source_v4: {ENCAP_SOURCE_V4}}}\n\
         limits: {{vips: {}, backends: {}}}\nvips:\n",
        base.pin_path.display(),
        base.control_socket.display(),
        lb_common::MAX_VIPS,
        lb_common::MAX_BACKENDS,
    );
    for i in 0..VIPS {
        let port = if i == CHANGED_VIP { port } else { 80 };
        out += &format!(
            "  - {{name: v{i}, address: \"{}\", port: {port}, protocol: tcp, pool: big, \
             table_size: {TABLE_SIZE}}}\n",
            addr(198, 18, i)
        );
    }
    out += "pools:\n  big:\n    backends:\n";
    for j in 0..BACKENDS {
        out += &format!(
            "      - {{address: \"{}\", weight: 100}}\n",
            addr(10, 200, j)
        );
    }
    out
}

/// `a.b.x.y` with 200 hosts per /24, from 1.
fn addr(a: u8, b: u8, n: u32) -> IpAddr {
    let (x, y) = ((n / 200) as u8, (n % 200 + 1) as u8);
    IpAddr::V4(Ipv4Addr::new(a, b, x, y))
}

/// (VmRSS, VmHWM) of process `pid`, in KiB.
fn memory_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("{path} has no {name}"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// User plus system CPU time of process `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // Fields after the parenthesised command name; utime and stime are
    // the 14th and 15th of the line.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(tick(11) + tick(12))
}

fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, text).with_context(|| format!("writing {}", temp.display()))?;
    std::fs::rename(&temp, path).with_context(|| format!("renaming to {}", path.display()))
}
