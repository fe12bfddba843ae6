//! End to end through xlbd with health checks: a backend whose server is
//! killed gets no new connections once its checks fail, and connections
//! to the other backends are untouched. Needs root; never skips.
//!
//! The pool's check is `tcp` every 200 ms with a 100 ms timeout, down
//! after 3 failures: detection should take about 3 × 200 ms; the test
//! allows `DETECTION_LIMIT`.

mod e2e_support;

use std::time::{Duration, Instant};

use e2e_support::*;
use xlb_testbed::xlbd_config::{HealthCheckSpec, Protocol, XlbdConfig};
use xlb_testbed::{RequestStats, plan};

/// How long detection may take before the test fails.
const DETECTION_LIMIT: Duration = Duration::from_secs(5);
/// Successes in a row, none from the dead backend, taken as "detected".
const CLEAN_RUN: usize = 50;
/// Requests sent after detection, all of which must succeed.
const AFTER_DETECTION: usize = 300;

#[test]
fn killed_backend_gets_no_new_connections_once_health_checks_fail() {
    let backends = [(1, 100), (2, 100), (3, 100)];
    let testbed = testbed(3);
    let config = XlbdConfig::for_testbed(&testbed)
        .vip("web", plan::vip_v4(1).into(), 80, Protocol::Tcp)
        .pool("web", &v4_backends(&backends), Some(HealthCheckSpec::FAST));
    let _xlbd = start_xlbd(&testbed, &config);
    let target = plan::vip_socket_v4(1, 80);

    let warm_up = testbed
        .run_requests(target, 60, |_, _| {})
        .expect("requests run");
    assert_eq!(warm_up.failures, 0, "before the kill: {warm_up:?}");
    assert_eq!(warm_up.per_backend.len(), 3, "before the kill: {warm_up:?}");

    let mut survivor = testbed.keep_alive(target).expect("keep-alive connection");
    let survivor_backend = backend_of(&survivor.get().expect("first request"));
    let victim = if survivor_backend == 1 { 2 } else { 1 };

    testbed
        .kill_backend(victim)
        .expect("kill the victim's server");
    let killed_at = Instant::now();

    // Send requests until CLEAN_RUN in a row succeed without the victim.
    let mut during = RequestStats::default();
    let mut clean = 0;
    let mut last_failure = None;
    while clean < CLEAN_RUN {
        assert!(
            killed_at.elapsed() < DETECTION_LIMIT,
            "b{victim} still gets connections {DETECTION_LIMIT:?} after it died: {during:?}"
        );
        let batch = testbed
            .run_requests(target, 1, |_, _| {})
            .expect("request runs");
        let victim_answered = batch.per_backend.contains_key(&plan::backend_name(victim));
        if batch.failures > 0 || victim_answered {
            clean = 0;
            last_failure = Some(killed_at.elapsed());
            during.failures += batch.failures;
        } else {
            clean += 1;
        }
        for (name, n) in batch.per_backend {
            *during.per_backend.entry(name).or_default() += n;
        }
    }
    let detected_after = last_failure.unwrap_or_default();
    println!(
        "b{victim} killed: {} requests failed until it was taken out, last failure {:?} \
         after the kill",
        during.failures, detected_after
    );

    let after = testbed
        .run_requests(target, AFTER_DETECTION, |_, _| {})
        .expect("requests run");
    println!("after detection: {after:?}");
    assert_eq!(
        after.failures, 0,
        "requests failed after detection: {after:?}"
    );
    assert!(
        !after.per_backend.contains_key(&plan::backend_name(victim)),
        "the dead backend answered: {after:?}"
    );
    assert_eq!(after.answered(), AFTER_DETECTION);

    let reply = survivor
        .get()
        .expect("the connection to a live backend still works");
    assert_eq!(reply, plan::backend_reply(survivor_backend));
}
