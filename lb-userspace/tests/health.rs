//! Health checks against real sockets on 127.0.0.0/8: TCP and HTTP probes,
//! rise and fall counted probe by probe, timeouts, detection time, reloads,
//! panic mode, and the config keys behind them. Each test has its own
//! loopback address and a time limit.

use std::time::{Duration, Instant};

use xlb::health::{HealthChecker, HealthState, ProbeOutcome};

#[path = "health/support.rs"]
mod support;
use support::{
    Answer, HttpServer, Listener, bounded, closed_port, config, loopback, until, wait_for,
};

fn tcp_pool(backends: &[std::net::IpAddr], port: u16, timing: &str) -> String {
    let list: Vec<String> = backends
        .iter()
        .map(|b| format!("{{address: {b}}}"))
        .collect();
    format!(
        "  web:\n    backends: [{}]\n    health_check: {{kind: tcp, port: {port}, {timing}}}\n",
        list.join(", ")
    )
}

#[tokio::test]
async fn a_listening_backend_stays_up_and_only_its_passes_are_counted() {
    bounded(async {
        let ip = loopback(11);
        let listener = Listener::open(ip, 0);
        let timing = "interval: 100ms, timeout: 100ms";
        let checker = HealthChecker::new(&config(&tcp_pool(&[ip], listener.addr.port(), timing)));
        let metrics = checker.metrics();
        until(|| metrics.probes("web", ip, ProbeOutcome::Ok) >= 3).await;

        let counts = metrics.snapshot();
        assert_eq!(counts.transitions_total.len(), 0, "{counts:?}");
        assert_eq!(counts.probes_total.len(), 1, "only passes: {counts:?}");
        assert!(checker.view().is_up("web", ip));
    })
    .await;
}

#[tokio::test]
async fn a_closed_backend_goes_down_after_exactly_fall_failures_and_back_after_rise() {
    bounded(async {
        let ip = loopback(12);
        let listener = Listener::open(ip, 0);
        let port = listener.addr.port();
        let timing = "interval: 300ms, timeout: 300ms, fall: 3, rise: 2";
        let checker = HealthChecker::new(&config(&tcp_pool(&[ip], port, timing)));
        let (metrics, mut views) = (checker.metrics(), checker.subscribe());
        until(|| metrics.probes("web", ip, ProbeOutcome::Ok) >= 1).await;

        drop(listener);
        let view = wait_for(&mut views, "web", ip, HealthState::Down).await;
        assert_eq!(metrics.probes("web", ip, ProbeOutcome::Refused), 3);
        let reason = &view.get("web", ip).expect("configured").reason;
        assert_eq!(reason, "3 consecutive failures: connection refused");

        // Counted while nothing listens, so no pass can slip in between.
        let passes_before = metrics.probes("web", ip, ProbeOutcome::Ok);
        let _listener = Listener::open(ip, port);
        let view = wait_for(&mut views, "web", ip, HealthState::Up).await;
        let passes = metrics.probes("web", ip, ProbeOutcome::Ok) - passes_before;
        assert_eq!(passes, 2, "up after exactly rise passes");
        let backend = view.get("web", ip).expect("configured");
        assert_eq!(backend.reason, "2 consecutive successes");
        assert!(backend.ramp_from.is_some(), "back from down: slow start");

        let transitions = metrics.snapshot().transitions_total;
        let count = |to| transitions.get(&("web".to_owned(), ip, to)).copied();
        assert_eq!(
            (count(HealthState::Down), count(HealthState::Up)),
            (Some(1), Some(1))
        );
    })
    .await;
}

/// A config with one HTTP-checked pool per `(name, settings)`, all on the
/// backend `ip` at `port`.
fn http_pools(ip: std::net::IpAddr, port: u16, pools: &[(&str, &str)]) -> String {
    let mut text = String::new();
    for (name, settings) in pools {
        text += &format!(
            "  {name}:\n    backends: [{{address: {ip}}}]\n    health_check: {{kind: http, \
             port: {port}, interval: 150ms, timeout: 150ms, fall: 2, rise: 1, {settings}}}\n"
        );
    }
    text
}

const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nstatus: ok";
const ERROR: &str = "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n";
const REDIRECT: &str = "HTTP/1.1 302 Found\r\nlocation: /elsewhere\r\ncontent-length: 0\r\n\r\n";
const MOVED: &str =
    "HTTP/1.1 301 Moved Permanently\r\nlocation: /elsewhere\r\ncontent-length: 0\r\n\r\n";

#[tokio::test]
async fn http_checks_judge_the_status_without_following_redirects() {
    bounded(async {
        let ip = loopback(13);
        let server = HttpServer::start(
            ip,
            &[
                ("/ok", Answer::Raw(OK)),
                ("/elsewhere", Answer::Raw(OK)),
                ("/error", Answer::Raw(ERROR)),
                ("/moved", Answer::Raw(REDIRECT)),
                ("/old", Answer::Raw(MOVED)),
            ],
        );
        let pools = [
            ("web", "path: /ok"),
            ("error", "path: /error"),
            ("moved", "path: /moved, expect_status: \"200\""),
            ("lax", "path: /moved"),
            ("permanent", "path: /old, expect_status: \"200-299\""),
        ];
        let checker = HealthChecker::new(&config(&http_pools(ip, server.addr.port(), &pools)));
        let (metrics, mut views) = (checker.metrics(), checker.subscribe());

        let view = wait_for(&mut views, "error", ip, HealthState::Down).await;
        let reason = &view.get("error", ip).expect("configured").reason;
        assert_eq!(
            reason,
            "2 consecutive failures: status 500 is not in 200-399"
        );
        let view = wait_for(&mut views, "moved", ip, HealthState::Down).await;
        let reason = &view.get("moved", ip).expect("configured").reason;
        assert_eq!(reason, "2 consecutive failures: status 302 is not in 200");
        let view = wait_for(&mut views, "permanent", ip, HealthState::Down).await;
        let reason = &view.get("permanent", ip).expect("configured").reason;
        assert_eq!(
            reason,
            "2 consecutive failures: status 301 is not in 200-299"
        );

        // Each pool probes on its own schedule: wait for both up pools.
        until(|| {
            let ok = |pool| metrics.probes(pool, ip, ProbeOutcome::Ok) >= 2;
            ok("lax") && ok("web")
        })
        .await;
        let view = checker.view();
        assert!(view.is_up("web", ip) && view.is_up("lax", ip), "{view:?}");
        assert!(metrics.probes("web", ip, ProbeOutcome::Ok) >= 2);
        assert!(metrics.probes("error", ip, ProbeOutcome::BadStatus) >= 2);

        // Only the health path is asked for: the redirect is not followed.
        let paths = server.paths.lock().expect("path log").clone();
        let moved = paths.iter().filter(|p| *p == "/moved").count();
        assert!(moved >= 4, "{paths:?}");
        assert!(
            paths.iter().filter(|p| *p == "/old").count() >= 2,
            "{paths:?}"
        );
        assert!(!paths.iter().any(|p| p == "/elsewhere"), "{paths:?}");
    })
    .await;
}

#[tokio::test]
async fn http_checks_can_require_text_in_the_body() {
    bounded(async {
        let ip = loopback(14);
        let server = HttpServer::start(ip, &[("/healthz", Answer::Raw(OK))]);
        let pools = [
            ("web", "body_contains: \"status: ok\""),
            ("strict", "body_contains: ready"),
        ];
        let checker = HealthChecker::new(&config(&http_pools(ip, server.addr.port(), &pools)));
        let (metrics, mut views) = (checker.metrics(), checker.subscribe());

        let view = wait_for(&mut views, "strict", ip, HealthState::Down).await;
        let reason = &view.get("strict", ip).expect("configured").reason;
        assert_eq!(
            reason,
            "2 consecutive failures: body does not contain \"ready\""
        );
        until(|| metrics.probes("web", ip, ProbeOutcome::Ok) >= 2).await;
        assert!(checker.view().is_up("web", ip));
        assert_eq!(metrics.probes("web", ip, ProbeOutcome::BodyMismatch), 0);
    })
    .await;
}

#[tokio::test]
async fn a_server_that_never_answers_fails_each_probe_at_its_timeout() {
    bounded(async {
        let ip = loopback(15);
        let server = HttpServer::start(ip, &[("/healthz", Answer::Silence)]);
        let pools = format!(
            "  web:\n    backends: [{{address: {ip}}}]\n    health_check: {{kind: http, \
             port: {}, interval: 400ms, timeout: 300ms, fall: 2}}\n",
            server.addr.port()
        );
        let started = Instant::now();
        let checker = HealthChecker::new(&config(&pools));
        let (metrics, mut views) = (checker.metrics(), checker.subscribe());

        let view = wait_for(&mut views, "web", ip, HealthState::Down).await;
        let took = started.elapsed();
        eprintln!("two silent probes took the backend down in {took:?}");
        // Probes start at 0 and 400ms; the second times out at 700ms.
        assert!(took >= Duration::from_millis(650), "too early: {took:?}");
        assert!(took < Duration::from_secs(2), "too late: {took:?}");
        assert_eq!(metrics.probes("web", ip, ProbeOutcome::Timeout), 2);
        let reason = &view.get("web", ip).expect("configured").reason;
        assert_eq!(reason, "2 consecutive failures: no answer within 300ms");
    })
    .await;
}

#[tokio::test]
async fn a_dead_backend_is_detected_within_a_second_at_200ms_and_fall_3() {
    bounded(async {
        let ip = loopback(16);
        let listener = Listener::open(ip, 0);
        let timing = "interval: 200ms, timeout: 200ms, fall: 3";
        let checker = HealthChecker::new(&config(&tcp_pool(&[ip], listener.addr.port(), timing)));
        let (metrics, mut views) = (checker.metrics(), checker.subscribe());
        until(|| metrics.probes("web", ip, ProbeOutcome::Ok) >= 1).await;

        let died = Instant::now();
        drop(listener);
        wait_for(&mut views, "web", ip, HealthState::Down).await;
        let detection = died.elapsed();
        eprintln!("detection time (interval 200ms, fall 3): {detection:?}");
        assert!(detection < Duration::from_secs(3), "{detection:?}");
    })
    .await;
}

#[tokio::test]
async fn a_reload_keeps_a_down_backend_down_and_ramps_new_ones() {
    bounded(async {
        let (dead, alive, gone) = (loopback(17), loopback(18), loopback(19));
        let port = closed_port(dead).port();
        let _alive = Listener::open(alive, port);
        let _gone = Listener::open(gone, port);
        let timing = "interval: 200ms, timeout: 200ms, fall: 2, rise: 2";
        let mut checker = HealthChecker::new(&config(&tcp_pool(&[dead, gone], port, timing)));
        let mut views = checker.subscribe();
        let before = wait_for(&mut views, "web", dead, HealthState::Down).await;
        let down_since = before.get("web", dead).expect("configured").since;
        assert_eq!(before.get("web", gone).expect("configured").ramp_from, None);

        // A new timing restarts the probes of the backends that stay.
        let timing = "interval: 250ms, timeout: 200ms, fall: 2, rise: 2";
        checker.update_config(&config(&tcp_pool(&[dead, alive], port, timing)));
        let after = checker.view();
        let dead_after = after.get("web", dead).expect("still configured");
        assert_eq!(
            (dead_after.state, dead_after.since),
            (HealthState::Down, down_since)
        );
        let added = after.get("web", alive).expect("added");
        assert_eq!(added.state, HealthState::Up);
        assert!(added.ramp_from.is_some(), "added by a reload: slow start");
        assert!(after.get("web", gone).is_none(), "removed");

        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(!checker.view().is_up("web", dead), "down until checks pass");
    })
    .await;
}

#[tokio::test]
async fn removing_a_check_brings_its_down_backend_up_once() {
    bounded(async {
        let ip = loopback(24);
        let port = closed_port(ip).port();
        let timing = "interval: 100ms, timeout: 100ms, fall: 1";
        let mut checker = HealthChecker::new(&config(&tcp_pool(&[ip], port, timing)));
        let (metrics, mut views) = (checker.metrics(), checker.subscribe());
        wait_for(&mut views, "web", ip, HealthState::Down).await;

        checker.update_config(&config(&format!(
            "  web:\n    backends: [{{address: {ip}}}]\n"
        )));
        let view = checker.view();
        let backend = view.get("web", ip).expect("still configured");
        assert_eq!(backend.state, HealthState::Up);
        assert_eq!(backend.reason, "no longer checked");
        let up = ("web".to_owned(), ip, HealthState::Up);
        assert_eq!(metrics.snapshot().transitions_total.get(&up), Some(&1));
    })
    .await;
}

#[tokio::test]
async fn a_backend_known_down_at_start_needs_rise_passes() {
    bounded(async {
        let ip = loopback(20);
        let listener = Listener::open(ip, 0);
        let timing = "interval: 200ms, timeout: 200ms, rise: 3";
        let config = config(&tcp_pool(&[ip], listener.addr.port(), timing));
        let checker = HealthChecker::with_known_down(&config, &[("web".to_owned(), ip)]);
        let (metrics, mut views) = (checker.metrics(), checker.subscribe());
        assert!(!checker.view().is_up("web", ip));

        wait_for(&mut views, "web", ip, HealthState::Up).await;
        assert_eq!(metrics.probes("web", ip, ProbeOutcome::Ok), 3);
    })
    .await;
}

#[tokio::test]
async fn a_pool_with_too_few_healthy_backends_enters_panic_mode() {
    bounded(async {
        let (up, down_a, down_b) = (loopback(21), loopback(22), loopback(23));
        let listener = Listener::open(up, 0);
        let port = listener.addr.port();
        let timing = "interval: 100ms, timeout: 100ms, fall: 1";
        let pools = tcp_pool(&[up, down_a, down_b], port, timing) + "    panic_threshold: 0.5\n";
        let checker = HealthChecker::new(&config(&pools));
        let (metrics, mut views) = (checker.metrics(), checker.subscribe());
        wait_for(&mut views, "web", down_a, HealthState::Down).await;
        wait_for(&mut views, "web", down_b, HealthState::Down).await;

        let counts = metrics.snapshot();
        assert_eq!(counts.panic.get("web"), Some(&true), "{counts:?}");
        assert_eq!(counts.panics_total.get("web"), Some(&1), "{counts:?}");
    })
    .await;
}

#[test]
fn the_check_settings_default_and_parse_as_documented() {
    use xlb::config::{CheckKind, Share};

    let config = config(
        "  web:\n    backends: [{address: 10.0.0.1}]\n    health_check: {kind: http}\n\
         \x20 api:\n    backends: [{address: 10.0.0.1}]\n    slow_start: 30s\n    \
         panic_threshold: 0.25\n    health_check:\n      kind: http\n      port: 8080\n      \
         expect_status: 200\n      body_contains: ok\n",
    );
    let web = &config.pools["web"];
    let check = web.health_check.as_ref().expect("a check");
    assert_eq!(check.port, Some(80), "the VIP's port");
    let CheckKind::Http {
        expect_status,
        body_contains,
        ..
    } = &check.kind
    else {
        panic!("an http check: {check:?}");
    };
    assert_eq!(
        (expect_status.to_string(), body_contains),
        ("200-399".to_owned(), &None)
    );
    assert_eq!(
        (web.panic_threshold, web.slow_start),
        (Share::ZERO, Duration::ZERO)
    );

    let api = &config.pools["api"];
    let check = api.health_check.as_ref().expect("a check");
    assert_eq!(check.port, Some(8080));
    let CheckKind::Http {
        expect_status,
        body_contains,
        ..
    } = &check.kind
    else {
        panic!("an http check: {check:?}");
    };
    assert_eq!(expect_status.to_string(), "200");
    assert_eq!(body_contains.as_deref(), Some("ok"));
    assert_eq!(api.panic_threshold.basis_points(), 2500);
    assert_eq!(api.slow_start, Duration::from_secs(30));
}

#[test]
fn bad_check_settings_are_rejected_with_line_and_field() {
    let cases = [
        (
            "vips: [{name: all, address: 10.100.0.1, port: 0, protocol: tcp, pool: web}]\n\
             pools:\n  web:\n    backends: [{address: 10.0.0.1}]\n    health_check: {kind: tcp}\n",
            "x.yaml:7:19: pools.web.health_check.port: missing; VIP all serves every port",
        ),
        (
            "pools:\n  web:\n    health_check: {kind: tcp, expect_status: 200-299}\n",
            "x.yaml:5:46: pools.web.health_check.expect_status: applies to http checks only",
        ),
        (
            "pools:\n  web:\n    health_check: {kind: http, expect_status: 2xx}\n",
            "x.yaml:5:47: pools.web.health_check.expect_status: \"2xx\" is not a list of status",
        ),
        (
            "pools:\n  web:\n    panic_threshold: 1.5\n",
            "x.yaml:5:22: pools.web.panic_threshold: 1.5 is not a share from 0 to 1",
        ),
        (
            "pools:\n  web:\n    slow_start: 2h\n",
            "x.yaml:5:17: pools.web.slow_start: 7200s is longer than 3600s",
        ),
    ];
    for (body, want) in cases {
        let text = format!("interfaces: [{{name: lo}}]\nencap: {{source_v4: 10.255.0.1}}\n{body}");
        let err = xlb::config::Config::from_str(&text, "x.yaml").expect_err("invalid");
        assert!(err.to_string().contains(want), "want {want}\ngot  {err}");
    }
}
