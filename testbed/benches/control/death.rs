//! Time from a backend's death to the last new connection xlb sends it.
//!
//! Three backends behind one VIP, health-checked every 200 ms with fall 3.
//! A client in the client namespace opens new TCP connections to the VIP
//! one after another (a connect, then a close with RST so no TIME_WAIT
//! piles up, 1 ms apart). Backend b2's server is killed; from then on a
//! connection xlb sends to b2 is refused by b2's kernel. The figure is the
//! time from the kill to the last refused connect, median of `ROUNDS`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use socket2::{Domain, Socket, Type};
use xlb_testbed::xlbd_config::{BackendSpec, HealthCheckSpec, Protocol, XlbdConfig};
use xlb_testbed::{Testbed, TestbedOptions, Xlbd, plan};

use crate::figure::{Figure, median};

/// Kills measured; the figure is their median.
const ROUNDS: usize = 3;
/// The backend killed each round.
const VICTIM: usize = 2;
/// Traffic before the kill, to be sure every backend takes connections.
const BEFORE_KILL: Duration = Duration::from_millis(500);
/// Traffic after the kill: the health check needs about 600 ms.
const AFTER_KILL: Duration = Duration::from_millis(2500);
/// Pause between two connects.
const PACE: Duration = Duration::from_millis(1);

/// Measures `ROUNDS` kills.
///
/// # Errors
///
/// When the testbed or xlbd fails, or a round sees no refused connection
/// (the kill was not observed).
pub fn run() -> anyhow::Result<Vec<Figure>> {
    eprintln!("control: death to last connection ({ROUNDS} kills)");
    let testbed = Testbed::new(TestbedOptions {
        backends: 3,
        backend_bin: Some(env!("CARGO_BIN_EXE_xlb-backend").into()),
        attach_decap: true,
        ..Default::default()
    })
    .context("building the testbed")?;
    let backends: Vec<BackendSpec> = (1..=3).map(|k| BackendSpec::v4(k, 100)).collect();
    let config = XlbdConfig::for_testbed(&testbed)
        .vip("web", plan::vip_v4(1).into(), 80, Protocol::Tcp)
        .pool("web", &backends, Some(HealthCheckSpec::FAST));
    let xlbd = testbed.start_xlbd(&config.render())?;
    let target = plan::vip_socket_v4(1, 80);

    let mut rounds_ms = Vec::new();
    let mut refused = Vec::new();
    for round in 0..ROUNDS {
        wait_healthy(&xlbd, VICTIM, true)?;
        let (last_ms, count) = one_kill(&testbed, target)?;
        eprintln!(
            "control: round {round}: last connection to b{VICTIM} {last_ms:.0} ms after its \
             death ({count} refused)"
        );
        rounds_ms.push(last_ms);
        refused.push(count);
        testbed
            .start_backend(VICTIM)
            .context("restarting the backend")?;
    }
    testbed.teardown();

    let runs: Vec<String> = rounds_ms.iter().map(|ms| format!("{ms:.0}")).collect();
    let method = format!(
        "server killed under back-to-back new connections, health interval 200 ms, fall 3; \
         median of {ROUNDS} (ms: {}; refused connections: {refused:?})",
        runs.join(" ")
    );
    Ok(vec![Figure::new(
        "backend death to its last new connection",
        median(&rounds_ms),
        "ms",
        method,
    )])
}

/// Kills the victim under traffic; returns the ms from its death to the
/// last refused connect, and how many were refused.
fn one_kill(testbed: &Testbed, target: SocketAddr) -> anyhow::Result<(f64, usize)> {
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let (failures, killed_at) = std::thread::scope(|scope| {
        let client = scope
            .spawn(|| testbed.in_ns(testbed.client_ns(), || connect_until(target, start, &stop)));
        std::thread::sleep(BEFORE_KILL);
        let killed = testbed.kill_backend(VICTIM).map(|()| start.elapsed());
        std::thread::sleep(AFTER_KILL);
        stop.store(true, Ordering::Relaxed);
        let failures = client
            .join()
            .map_err(|_| anyhow::anyhow!("the client panicked"));
        (failures, killed)
    });
    let killed_at = killed_at.context("killing the backend")?;
    let failures = failures?
        .context("entering the client namespace")?
        .context("connecting to the VIP")?;
    let (before, after): (Vec<Duration>, Vec<Duration>) =
        failures.into_iter().partition(|&t| t < killed_at);
    ensure!(
        before.len() < 5,
        "{} connections failed before the kill: the testbed is not sound",
        before.len()
    );
    let Some(last) = after.last() else {
        bail!("no connection was refused after the kill: b{VICTIM} took none");
    };
    let ms = (*last - killed_at).as_secs_f64() * 1e3;
    Ok((ms, after.len()))
}

/// Opens and resets connections to `target` until `stop`; returns when
/// (since `start`) each failed one was attempted.
fn connect_until(
    target: SocketAddr,
    start: Instant,
    stop: &AtomicBool,
) -> anyhow::Result<Vec<Duration>> {
    let mut failures = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let at = start.elapsed();
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).context("tcp socket")?;
        // Close with RST: thousands of connects must not exhaust the
        // client's ports with TIME_WAIT entries.
        socket
            .set_linger(Some(Duration::ZERO))
            .context("SO_LINGER")?;
        if socket
            .connect_timeout(&target.into(), Duration::from_millis(500))
            .is_err()
        {
            failures.push(at);
        }
        drop(socket);
        std::thread::sleep(PACE);
    }
    Ok(failures)
}

/// Waits (up to 10 s) until xlbd reports backend `k` healthy or not.
fn wait_healthy(xlbd: &Xlbd, k: usize, healthy: bool) -> anyhow::Result<()> {
    let address = std::net::IpAddr::from(plan::backend_v4(k));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = xlbd.status()?;
        let up = status
            .vips
            .iter()
            .flat_map(|v| &v.backends)
            .any(|b| b.address == address && b.healthy);
        if up == healthy {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("backend b{k} not healthy={healthy} within 10 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
