//! The load tracker against endpoints that go bad in every way the scrape
//! knows (hang, trickle, 500, garbage, non-UTF-8, an endless body, nothing
//! listening): each time the last good factor holds for the grace, then
//! the configured weight returns, and the failure is counted by kind.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use xlb::config::Config;
use xlb::load::{LoadTracker, ScrapeOutcome};

#[path = "load/support.rs"]
#[expect(dead_code, reason = "load.rs uses the rest of the support")]
mod support;
use support::{Answer, Server, bounded, loopback, ok, until};

/// How long a bad reading may hold the last good factor.
const GRACE: Duration = Duration::from_secs(1);

fn config(ip: IpAddr, port: u16) -> Config {
    let text = format!(
        "interfaces: [{{name: lo}}]\n\
         encap: {{source_v4: 10.255.0.1}}\n\
         vips: [{{name: web, address: 10.100.0.1, port: 80, protocol: tcp, pool: web}}]\n\
         pools:\n  web:\n    backends: [{{address: {ip}}}]\n\
         \x20   load_signal: {{port: {port}, interval: 100ms, timeout: 100ms, ewma_alpha: 1, \
         min_interval: 100ms, max_moved_share: 1, grace: 1s}}\n"
    );
    match Config::from_str(&text, "load.yaml") {
        Ok(loaded) => loaded.config,
        Err(err) => panic!("test config is invalid:\n{err}\n{text}"),
    }
}

/// How an endpoint goes bad: an answer, or `None` for no listener at all.
fn cases() -> Vec<(&'static str, Option<Answer>, ScrapeOutcome)> {
    vec![
        ("hang", Some(Answer::Hang), ScrapeOutcome::Timeout),
        ("trickle", Some(Answer::Trickle), ScrapeOutcome::Timeout),
        (
            "status 500",
            Some(Answer::Body(500, b"DCGM_FI_DEV_GPU_UTIL 10\n".to_vec())),
            ScrapeOutcome::HttpError,
        ),
        (
            "garbage",
            Some(ok("<html>502 bad gateway</html>")),
            ScrapeOutcome::ParseError,
        ),
        (
            "non-utf-8",
            Some(Answer::Body(200, vec![0xff, 0xfe, 0x80])),
            ScrapeOutcome::ParseError,
        ),
        (
            "endless body",
            Some(Answer::Unsized(64 * 1024 * 1024)),
            ScrapeOutcome::TooLarge,
        ),
        ("nothing listening", None, ScrapeOutcome::ConnectError),
    ]
}

/// Drives one case on 127.0.0.`last`; panics naming `what` on failure.
async fn falls_back(last: u8, what: &str, bad: Option<Answer>, outcome: ScrapeOutcome) {
    let ip = loopback(last);
    let server = Server::start(ip, gpu(95)).await;
    let tracker = LoadTracker::new(&config(ip, server.addr.port()));
    let metrics = tracker.metrics();
    until(|| tracker.view().factor("web", ip) < 0.2).await;

    let bad_since = Instant::now();
    let server = match bad {
        Some(answer) => {
            server.set(answer);
            Some(server)
        }
        None => {
            drop(server);
            None
        }
    };
    tokio::time::sleep(GRACE / 2).await;
    let held = tracker.view().factor("web", ip);
    assert!(held < 0.2, "{what}: not held within the grace ({held})");
    until(|| tracker.view().factor("web", ip) == 1.0).await;
    let after = bad_since.elapsed();
    // The grace runs from the last good reading, up to one interval before.
    assert!(
        after >= GRACE - Duration::from_millis(100),
        "{what}: back after {after:?}"
    );
    assert!(
        after < GRACE + Duration::from_millis(700),
        "{what}: back after {after:?}"
    );
    let counted = metrics.scrapes("web", ip, outcome);
    assert!(
        counted >= 3,
        "{what}: {counted} scrapes counted as {outcome:?}"
    );
    drop(server);
}

fn gpu(percent: u32) -> Answer {
    ok(&format!(
        "# TYPE DCGM_FI_DEV_GPU_UTIL gauge\nDCGM_FI_DEV_GPU_UTIL{{gpu=\"0\"}} {percent}\n"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_bad_endpoint_falls_back_to_the_configured_weight_after_the_grace() {
    bounded(async {
        let mut running = Vec::new();
        for (i, (what, bad, outcome)) in cases().into_iter().enumerate() {
            let last = 30 + i as u8;
            running.push((what, tokio::spawn(falls_back(last, what, bad, outcome))));
        }
        for (what, case) in running {
            if let Err(err) = case.await {
                std::panic::resume_unwind(
                    err.try_into_panic()
                        .unwrap_or_else(|_| Box::new(format!("{what}: cancelled"))),
                );
            }
        }
    })
    .await;
}
