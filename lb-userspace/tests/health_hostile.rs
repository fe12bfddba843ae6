//! Health probes against hostile targets on 127.0.0.0/8: one that accepts
//! and never answers, one that resets on accept, one that resets after the
//! request, one that answers just under and one just over the timeout, a
//! trickle, a gigabyte body, a 500 and garbage. Every probe ends by its
//! timeout (measured probe by probe), and the checker counts each by its
//! result.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use xlb::config::StatusCodes;
use xlb::health::{HealthChecker, HealthState, ProbeKind, ProbeOutcome, ProbeSpec, probe};

#[path = "health/support.rs"]
#[expect(dead_code, reason = "health.rs uses the rest of the support")]
mod support;
use support::{bounded, config, loopback, until};

#[path = "hostile/servers.rs"]
mod servers;
use servers::{Behaviour, HostileServers};

/// The probe timeout these tests use.
const TIMEOUT: Duration = Duration::from_millis(300);

/// How much later than its timeout a probe may end: scheduling on a busy
/// two-core machine, nothing more.
const SLACK: Duration = Duration::from_millis(100);

/// Answers 100 ms inside the timeout, and 100 ms past it.
const JUST_UNDER: Duration = Duration::from_millis(200);
const JUST_OVER: Duration = Duration::from_millis(400);

/// Each target, and how a probe of it that reads the body may end.
fn expected() -> Vec<(Behaviour, &'static [ProbeOutcome])> {
    use ProbeOutcome::{BadStatus, BodyMismatch, ConnectError, HttpError, Ok, Timeout};
    vec![
        (Behaviour::NeverAnswer, &[Timeout]),
        // The reset races the end of the client's connect: it fails the
        // connect, or the request written on the connection.
        (Behaviour::ResetOnAccept, &[ConnectError, HttpError]),
        (Behaviour::ResetAfterRequest, &[HttpError]),
        (Behaviour::Slow(JUST_UNDER), &[Ok]),
        (Behaviour::Slow(JUST_OVER), &[Timeout]),
        (Behaviour::Trickle, &[Timeout]),
        (Behaviour::Gigabyte, &[BodyMismatch]),
        (Behaviour::Status500, &[BadStatus]),
        (Behaviour::Garbage, &[HttpError]),
    ]
}

/// An HTTP probe that reads the body for `text`, so a trickle or a
/// gigabyte must be read, not just its head.
fn http_probe(target: std::net::SocketAddr, text: &str) -> ProbeSpec {
    ProbeSpec {
        target,
        timeout: TIMEOUT,
        kind: ProbeKind::Http {
            path: "/healthz".to_owned(),
            expect_status: StatusCodes::default(),
            body_contains: Some(text.to_owned()),
        },
    }
}

#[tokio::test]
async fn every_probe_of_a_hostile_target_ends_by_its_timeout() {
    bounded(async {
        let cases = expected();
        let behaviours: Vec<Behaviour> = cases.iter().map(|c| c.0).collect();
        let servers = HostileServers::start(loopback(40), &behaviours);

        for round in 0..3 {
            for &(behaviour, want) in &cases {
                let spec = http_probe(servers.addr(behaviour), "DCGM");
                let started = Instant::now();
                let result = probe(&spec).await;
                let took = started.elapsed();
                let got = result
                    .as_ref()
                    .map_or_else(|f| f.outcome, |_| ProbeOutcome::Ok);
                assert!(
                    want.contains(&got),
                    "{behaviour:?} round {round}: {result:?}"
                );
                assert!(took <= TIMEOUT + SLACK, "{behaviour:?} took {took:?}");
                if got == ProbeOutcome::Timeout {
                    assert!(took >= TIMEOUT, "{behaviour:?} timed out early: {took:?}");
                }
            }
        }

        // A TCP probe only needs the accept: a silent target passes.
        let silent = servers.addr(Behaviour::NeverAnswer);
        let tcp = ProbeSpec {
            target: silent,
            timeout: TIMEOUT,
            kind: ProbeKind::Tcp,
        };
        assert_eq!(probe(&tcp).await, Ok(()));
    })
    .await;
}

/// One pool per target, named after its behaviour, HTTP-checked on its
/// port with the body read.
fn pools(servers: &HostileServers, ip: std::net::IpAddr) -> String {
    // The VIP's pool, unchecked.
    let mut text = "  web:\n    backends: [{address: 10.0.0.1}]\n".to_owned();
    for (i, (_, addr)) in servers.addrs.iter().enumerate() {
        let (pool, port) = (pool_name(servers, i), addr.port());
        text += &format!(
            "  {pool}:\n    backends: [{{address: {ip}}}]\n    health_check: {{kind: http, \
             port: {port}, interval: 400ms, timeout: 300ms, fall: 2, rise: 1, \
             body_contains: DCGM}}\n"
        );
    }
    text
}

/// The pool of the `i`th target: its index (two are slow) and behaviour.
fn pool_name(servers: &HostileServers, i: usize) -> String {
    format!("p{i}_{}", servers.addrs[i].0.name().replace('-', "_"))
}

#[tokio::test]
async fn the_checker_counts_each_hostile_probe_by_its_result_and_times_it_out() {
    bounded(async {
        let ip = loopback(41);
        let cases = expected();
        let behaviours: Vec<Behaviour> = cases.iter().map(|c| c.0).collect();
        let servers = HostileServers::start(ip, &behaviours);
        let checker = HealthChecker::new(&config(&pools(&servers, ip)));
        let metrics = checker.metrics();
        let names: Vec<String> = (0..cases.len()).map(|i| pool_name(&servers, i)).collect();
        let probed = |pool: &String| {
            let counts = metrics.snapshot().probes_total;
            let of_pool = counts.iter().filter(|((p, _, _), _)| p == pool);
            of_pool.map(|(_, n)| n).sum::<u64>()
        };
        until(|| names.iter().all(|pool| probed(pool) >= 3)).await;

        let counts = metrics.snapshot().probes_total;
        let view = checker.view();
        for (i, &(_, want)) in cases.iter().enumerate() {
            let pool = pool_name(&servers, i);
            let results: BTreeMap<ProbeOutcome, u64> = counts
                .iter()
                .filter(|((p, _, _), _)| *p == pool)
                .map(|((_, _, outcome), n)| (*outcome, *n))
                .collect();
            assert!(
                results.keys().all(|r| want.contains(r)),
                "{pool}: {results:?}"
            );
            let state = view.get(&pool, ip).expect("configured").state;
            let healthy = want == [ProbeOutcome::Ok];
            let wanted = if healthy {
                HealthState::Up
            } else {
                HealthState::Down
            };
            assert_eq!(state, wanted, "{pool}");
        }
        assert_every_probe_ended_by(&checker, Duration::from_millis(512));
    })
    .await;
}

/// Every observation in the checker's duration histogram is at most
/// `limit`, which must be one of its bucket bounds.
fn assert_every_probe_ended_by(checker: &HealthChecker, limit: Duration) {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register(
        "probe_seconds",
        "probe durations",
        checker.metrics().durations(),
    );
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("parses");
    let mut checked = 0;
    for sample in &scrape.samples {
        let prometheus_parse::Value::Histogram(buckets) = &sample.value else {
            continue;
        };
        let total = buckets.last().expect("a +Inf bucket").count;
        let bound = buckets
            .iter()
            .find(|b| (b.less_than - limit.as_secs_f64()).abs() < 1e-9)
            .expect("the limit is a bucket bound");
        let pool = sample.labels.get("pool").unwrap_or("?");
        assert_eq!(
            bound.count, total,
            "pool {pool}: probes longer than {limit:?}"
        );
        checked += 1;
    }
    assert!(checked > 0, "no histogram in\n{text}");
}
