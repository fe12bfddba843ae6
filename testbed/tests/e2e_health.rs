//! Health checks end to end, with real backend processes killed and
//! restarted under xlbd: a backend that flaps for less than `fall` probes
//! stays up; a dead one is out within about a second (interval 200 ms,
//! fall 3); a restarted one comes back under slow start, its share of new
//! connections growing over the window. Needs root; never skips.

mod e2e_support;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use e2e_support::*;
use xlb_testbed::xlbd_config::{HealthCheckSpec, Protocol, XlbdConfig};
use xlb_testbed::{RequestStats, Testbed, Xlbd, plan};

const BACKENDS: [(usize, u32); 3] = [(1, 100), (2, 100), (3, 100)];
/// Slow-start window of the pool.
const SLOW_START: Duration = Duration::from_secs(4);
/// Detection may take this long before the test fails; expected about
/// 3 x 200 ms plus the daemon's reaction.
const DETECTION_LIMIT: Duration = Duration::from_secs(2);

fn config(testbed: &Testbed, check: HealthCheckSpec) -> XlbdConfig {
    let mut config = XlbdConfig::for_testbed(testbed)
        .vip("web", plan::vip_v4(1).into(), 80, Protocol::Tcp)
        .pool("web", &v4_backends(&BACKENDS), Some(check));
    config.pool_mut("web").expect("pool web").slow_start_ms = SLOW_START.as_millis() as u32;
    config
}

/// (healthy, effective weight) of backend `k` as xlbd reports it.
fn backend_state(xlbd: &Xlbd, k: usize) -> (bool, u32) {
    let address: IpAddr = plan::backend_v4(k).into();
    let status = xlbd.status().expect("xlbd status");
    let web = status
        .vips
        .iter()
        .find(|v| v.name == "web")
        .expect("VIP web");
    let backend = web
        .backends
        .iter()
        .find(|b| b.address == address)
        .expect("backend");
    (backend.healthy, backend.effective_weight)
}

/// Times backend `k` went down, by xlbd's count.
fn times_down(xlbd: &Xlbd, k: usize) -> u64 {
    let address: IpAddr = plan::backend_v4(k).into();
    let status = xlbd.status().expect("xlbd status");
    status
        .health_transitions
        .iter()
        .find(|t| t.backend == address)
        .map_or(0, |t| t.to_down_total)
}

/// Polls `done` every 20 ms until it holds; panics after `limit`.
fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

fn share_of(stats: &RequestStats, k: usize) -> f64 {
    let answered = stats.answered().max(1) as f64;
    let of_k = stats
        .per_backend
        .get(&plan::backend_name(k))
        .copied()
        .unwrap_or(0);
    of_k as f64 / answered
}

#[test]
fn flaps_shorter_than_fall_keep_a_backend_up_and_a_dead_one_leaves_within_a_second() {
    let testbed = testbed(3);
    let target = plan::vip_socket_v4(1, 80);
    // Flapping: with fall 5 at 200 ms, an outage must last about a second
    // to count; each flap below lasts one restart of the server.
    let lenient = HealthCheckSpec {
        fall: 5,
        ..HealthCheckSpec::FAST
    };
    let xlbd = start_xlbd(&testbed, &config(&testbed, lenient));
    for flap in 0..4 {
        testbed.kill_backend(1).expect("kill b1");
        testbed.start_backend(1).expect("restart b1");
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(times_down(&xlbd, 1), 0, "flap {flap} marked b1 down");
        assert!(backend_state(&xlbd, 1).0, "b1 healthy after flap {flap}");
    }

    // Detection with the FAST check: fall 3 at 200 ms.
    xlbd.reload(&config(&testbed, HealthCheckSpec::FAST).render())
        .expect("reload with fall 3");
    testbed.kill_backend(2).expect("kill b2");
    let detected = wait_until("b2 marked down", DETECTION_LIMIT, || {
        !backend_state(&xlbd, 2).0
    });
    println!(
        "b2 killed: out of the table after {} ms",
        detected.as_millis()
    );
    let after = testbed
        .run_requests(target, 200, |_, _| {})
        .expect("requests run");
    assert_eq!(after.failures, 0, "after detection: {after:?}");
    assert_eq!(share_of(&after, 2), 0.0, "b2 still answers: {after:?}");
}

#[test]
fn a_restarted_backend_ramps_up_its_share_over_the_slow_start_window() {
    let testbed = testbed(3);
    let target = plan::vip_socket_v4(1, 80);
    let xlbd = start_xlbd(&testbed, &config(&testbed, HealthCheckSpec::FAST));
    testbed.kill_backend(3).expect("kill b3");
    wait_until("b3 marked down", Duration::from_secs(5), || {
        !backend_state(&xlbd, 3).0
    });

    testbed.start_backend(3).expect("restart b3");
    let back = wait_until("b3 back up", Duration::from_secs(5), || {
        backend_state(&xlbd, 3).0
    });
    let up_at = Instant::now();
    println!(
        "b3 restarted: up again after {} ms (rise 2)",
        back.as_millis()
    );

    // Early in the window: a small weight, so a small share.
    let (_, early_weight) = backend_state(&xlbd, 3);
    let early = testbed
        .run_requests(target, 150, |_, _| {})
        .expect("requests run");
    let early_elapsed = up_at.elapsed();
    assert_eq!(early.failures, 0, "{early:?}");
    assert!(
        early_weight < 50,
        "b3's weight right after rise: {early_weight}"
    );

    // After the window: the full weight, an even share.
    std::thread::sleep(SLOW_START.saturating_sub(up_at.elapsed()) + Duration::from_millis(300));
    let (_, full_weight) = backend_state(&xlbd, 3);
    let late = testbed
        .run_requests(target, 450, |_, _| {})
        .expect("requests run");
    assert_eq!(late.failures, 0, "{late:?}");
    assert_eq!(full_weight, 100, "b3's weight after the window");

    let (early_share, late_share) = (share_of(&early, 3), share_of(&late, 3));
    println!(
        "b3's share: {:.1} % in the first {} ms (weight {early_weight}), \
         {:.1} % after the window (weight {full_weight}); 33.3 % at full weight",
        early_share * 100.0,
        early_elapsed.as_millis(),
        late_share * 100.0,
    );
    assert!(early_share < 0.2, "early share {early_share}");
    assert!(
        (late_share - 1.0 / 3.0).abs() < 0.09,
        "late share {late_share}"
    );
}
