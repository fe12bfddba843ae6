//! End to end through xlbd with an autoscaler: a pool of one active and two
//! standby backends, target 10 new connections per second per backend.
//! The client raises its rate to 80/s and the standby backends join, one a
//! second (max_step_up 1, cooldown 1s), with a 2 s slow start; the rate
//! falls to 2/s and, after the 3 s stabilisation window, they drain and
//! are released once no flow of theirs was seen for 1 s. Not one request
//! may fail throughout. Needs root; never skips.

mod e2e_support;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use e2e_support::*;
use xlb::autoscale::{AutoscaleRow, PhaseName};
use xlb_testbed::xlbd_config::{Protocol, XlbdConfig};
use xlb_testbed::{Testbed, Xlbd, bins, plan};

/// The pool's autoscaler (the pool is the last thing rendered).
const AUTOSCALE: &str = "    slow_start: 2s
    autoscale:
      interval: 500ms
      min: 1
      max: 3
      scale_out_cooldown: 1s
      scale_in_stabilization: 3s
      max_step_up: 1
      target_tracking: {signal: new_connections, target: 10}
      actuator: {kind: standby, drain_idle: 1s, drain_timeout: 10s}
";

/// Connections per second while busy, and while quiet.
const BUSY_RATE: u32 = 80;
const QUIET_RATE: u32 = 2;
/// How long each phase may take.
const SCALE_OUT_LIMIT: Duration = Duration::from_secs(15);
const SCALE_IN_LIMIT: Duration = Duration::from_secs(20);

/// What the client saw: answers per backend number, failures.
#[derive(Debug, Default)]
struct Seen {
    answers: BTreeMap<usize, usize>,
    sent: usize,
    failures: Vec<String>,
}

#[test]
fn standby_backends_join_under_load_and_leave_drained_without_a_failed_request() {
    let testbed = testbed(3);
    let backends = v4_backends(&[(1, 100), (2, 100), (3, 100)]);
    let config = XlbdConfig::for_testbed(&testbed)
        .vip("web", plan::vip_v4(1).into(), 80, Protocol::Tcp)
        .pool("web", &backends, None);
    let mut yaml = config.render();
    for k in [2, 3] {
        let line = format!("{{address: \"{}\", weight: 100}}", plan::backend_v4(k));
        let standby = format!(
            "{{address: \"{}\", weight: 100, standby: true}}",
            plan::backend_v4(k)
        );
        yaml = yaml.replace(&line, &standby);
    }
    let xlbd = testbed
        .start_xlbd(&(yaml + AUTOSCALE))
        .unwrap_or_else(|err| panic!("xlbd starts: {err:#}"));
    let ctl = Ctl::new(&testbed);
    assert_eq!(in_maps(&xlbd), [addr(1)], "only b1 serves at start");

    let rate = AtomicU32::new(QUIET_RATE);
    let stop = AtomicBool::new(false);
    let seen = Mutex::new(Seen::default());
    std::thread::scope(|scope| {
        scope.spawn(|| client(&testbed, &rate, &stop, &seen));
        // A failed assertion must stop the client, or the scope never ends.
        let _stop = StopOnDrop(&stop);
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(ctl.row().current, 1, "2/s on one backend is below target");

        // Busy: both standby backends join, ramping.
        rate.store(BUSY_RATE, Ordering::Relaxed);
        let busy_from = Instant::now();
        let took = wait(SCALE_OUT_LIMIT, "scale-out to 3", || {
            ctl.row().current == 3 && in_maps(&xlbd).len() == 3
        });
        println!("scale-out to 3 backends {took:?} after the rate rose to {BUSY_RATE}/s");
        let mut b3_weights = Vec::new();
        let ramp_end = Instant::now() + Duration::from_secs(3);
        while Instant::now() < ramp_end {
            b3_weights.push(effective_weight(&xlbd, 3));
            std::thread::sleep(Duration::from_millis(50));
        }
        b3_weights.dedup();
        println!("b3's weight as it joined: {b3_weights:?}");
        assert!(
            b3_weights.first().is_some_and(|w| *w < 100) && b3_weights.last() == Some(&100),
            "b3 did not ramp up with slow start: {b3_weights:?}"
        );
        let answers = seen.lock().expect("client stats").answers.clone();
        for k in [2, 3] {
            assert!(
                answers.get(&k).is_some_and(|&n| n > 10),
                "b{k} answered too little: {answers:?}"
            );
        }
        let busy_for = busy_from.elapsed();

        // Quiet: drained, then released; b1 keeps answering.
        rate.store(QUIET_RATE, Ordering::Relaxed);
        let mut draining_seen = false;
        let took = wait(SCALE_IN_LIMIT, "scale-in to 1 and release", || {
            let row = ctl.row();
            draining_seen |= row.standby.iter().any(|m| m.phase == PhaseName::Draining);
            let released = row.standby.iter().all(|m| m.phase == PhaseName::Released);
            row.current == 1 && released && in_maps(&xlbd) == [addr(1)]
        });
        println!("scale-in and release {took:?} after the rate fell to {QUIET_RATE}/s");
        assert!(
            draining_seen,
            "the standby backends were released without draining"
        );
        std::thread::sleep(Duration::from_secs(1));
        println!("busy phase {busy_for:?}");
    });

    let seen = seen.into_inner().expect("client stats");
    println!(
        "requests: {} sent, {} failed, answers {:?}",
        seen.sent,
        seen.failures.len(),
        seen.answers
    );
    assert!(
        seen.failures.is_empty(),
        "failed requests: {:?}",
        seen.failures
    );
    let row = ctl.row();
    let ups = row.decisions_total.get("up").copied().unwrap_or(0);
    let downs = row.decisions_total.get("down").copied().unwrap_or(0);
    assert!(
        ups >= 2 && downs >= 1,
        "decisions: {:?}",
        row.decisions_total
    );
    let metrics = ctl.metrics(&testbed);
    for family in [
        "xlb_autoscaler_current_backends{pool=\"web\"} 1",
        "xlb_autoscaler_desired_backends{pool=\"web\"} 1",
        "xlb_autoscaler_decisions_total{pool=\"web\",direction=\"up\"}",
        "xlb_autoscaler_actual_rate{pool=\"web\"}",
    ] {
        assert!(metrics.contains(family), "no {family} in:\n{metrics}");
    }
}

/// Sets the flag when dropped, also on a panic.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The weight b`k`'s table was built with, 0 when it is not in the maps.
fn effective_weight(xlbd: &Xlbd, k: usize) -> u32 {
    let status = xlbd.status().expect("xlbd status");
    let mut backends = status.vips.iter().flat_map(|v| &v.backends);
    backends
        .find(|b| b.address == addr(k))
        .map_or(0, |b| b.effective_weight)
}

fn addr(k: usize) -> IpAddr {
    plan::backend_v4(k).into()
}

/// The backends of the pool in the maps, as `xlbctl backend list` shows.
fn in_maps(xlbd: &Xlbd) -> Vec<IpAddr> {
    let status = xlbd.status().expect("xlbd status");
    let mut out: Vec<IpAddr> = status
        .vips
        .iter()
        .flat_map(|v| &v.backends)
        .map(|b| b.address)
        .collect();
    out.sort();
    out
}

/// Polls `done` every 50 ms; returns how long it took.
fn wait(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "no {what} after {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

/// Paces new connections to the VIP at `rate` per second until `stop`.
fn client(testbed: &Testbed, rate: &AtomicU32, stop: &AtomicBool, seen: &Mutex<Seen>) {
    let vip = plan::vip_socket_v4(1, 80);
    testbed
        .in_ns(testbed.client_ns(), || {
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let result = get(vip);
                let mut seen = seen.lock().expect("client stats");
                seen.sent += 1;
                match result {
                    Ok(reply) => *seen.answers.entry(backend_of(&reply)).or_default() += 1,
                    Err(e) => seen.failures.push(format!("{e}")),
                }
                drop(seen);
                next += Duration::from_secs(1) / rate.load(Ordering::Relaxed).max(1);
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                } else {
                    next = Instant::now();
                }
            }
        })
        .expect("enter the client namespace");
}

/// One GET on a new connection; the body, e.g. "backend b2\n".
fn get(target: SocketAddr) -> std::io::Result<String> {
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&target, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(b"GET / HTTP/1.1\r\nhost: vip\r\nconnection: close\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    match answer.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => Ok(body.to_owned()),
        _ => Err(std::io::Error::other(format!("bad answer {answer:?}"))),
    }
}

/// xlbctl pointed at this testbed's xlbd.
struct Ctl {
    program: std::path::PathBuf,
    socket: String,
}

impl Ctl {
    fn new(testbed: &Testbed) -> Self {
        Self {
            program: bins::locate("xlbctl").expect("xlbctl is built beside xlbd"),
            socket: testbed.log_dir().join("xlbd.sock").display().to_string(),
        }
    }

    /// `xlbctl autoscaler status -o json`, the pool's row.
    fn row(&self) -> AutoscaleRow {
        let output = std::process::Command::new(&self.program)
            .args([
                "--socket",
                &self.socket,
                "-o",
                "json",
                "autoscaler",
                "status",
            ])
            .output()
            .expect("xlbctl runs");
        assert!(
            output.status.success(),
            "xlbctl: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let rows: Vec<AutoscaleRow> =
            serde_json::from_slice(&output.stdout).expect("xlbctl prints rows");
        rows.into_iter()
            .find(|r| r.pool == "web")
            .expect("a row for pool web")
    }

    /// xlbd's `/metrics`, read inside the LB namespace.
    fn metrics(&self, testbed: &Testbed) -> String {
        let listen = xlb_testbed::xlbd_config::METRICS_LISTEN;
        testbed
            .in_ns(testbed.lb_ns(), || -> std::io::Result<String> {
                let mut stream = TcpStream::connect(listen)?;
                stream.set_read_timeout(Some(Duration::from_secs(5)))?;
                stream.write_all(
                    b"GET /metrics HTTP/1.1\r\nhost: xlbd\r\nconnection: close\r\n\r\n",
                )?;
                let mut answer = String::new();
                stream.read_to_string(&mut answer)?;
                Ok(answer)
            })
            .expect("enter the LB namespace")
            .unwrap_or_else(|e| panic!("read xlbd's metrics: {e}"))
    }
}
