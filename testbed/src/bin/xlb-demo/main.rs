//! xlb-demo: xlb on real traffic in a throwaway network. Builds a testbed
//! with 4 backends, runs xlbd with configs/demo.yaml, and shows weighted
//! spreading, health-based failover, recovery and a weight change, with
//! the numbers. Tears everything down at the end and on Ctrl-C.
//!
//! Run it with `cargo xtask demo` (as root), which builds it first.

mod show;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use xlb::config::Config;
use xlb_testbed::xlbd_config::{set_backend_weight, set_top_level_key};
use xlb_testbed::{RequestStats, Testbed, TestbedOptions, Xlbd, plan};

/// Show xlb balancing real HTTP traffic in network namespaces.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The config to run, e.g. `--config configs/demo.yaml`.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/demo.yaml"))]
    config: PathBuf,
    /// New connections in each measured step, e.g. `--requests 3000`.
    #[arg(long, default_value_t = 3000)]
    requests: usize,
}

/// The backend whose server the demo kills.
const VICTIM: usize = 2;
/// The backend whose weight the demo changes, and its new weight.
const REWEIGHTED: (usize, u32) = (1, 400);
/// Successes in a row, none from the victim, taken as "failover done".
const CLEAN_RUN: usize = 50;
/// How long failover may take before the demo gives up on it.
const FAILOVER_LIMIT: Duration = Duration::from_secs(10);

fn main() {
    if let Err(err) = run(&Args::parse()) {
        eprintln!("xlb-demo: {err:#}");
        // Dropping the testbed already tore it down.
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<()> {
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("read config {}", args.config.display()))?;
    let origin = args.config.display().to_string();

    show::heading("Building the testbed");
    println!("  4 backends, a client, a router and the LB node, each in its own namespace;");
    println!("  xlb_decap on every backend strips the LB's IP-in-IP header.");
    let testbed = Testbed::new(TestbedOptions {
        backends: 4,
        attach_decap: true,
        ..Default::default()
    })
    .context("build the testbed")?;
    print!("{}", testbed.describe());

    let mut yaml = render(&testbed, &text);
    let config = parse(&yaml, &origin)?;
    let vip = config
        .vips
        .first()
        .with_context(|| format!("{origin} has no VIP"))?
        .clone();
    if vip.protocol.name() != "tcp" || vip.port == 0 {
        bail!("the demo drives HTTP: the first VIP of {origin} must be TCP on one port");
    }
    let target = SocketAddr::new(vip.address, vip.port);

    show::heading(&format!("Starting xlbd with {origin}"));
    let xlbd = testbed.start_xlbd(&yaml).context("start xlbd")?;
    println!(
        "  xlbd pid {} attached to eth0 in {}; pins in {}",
        xlbd.pid(),
        testbed.lb_ns(),
        testbed.pin_path().display()
    );
    println!("  VIP {} {target}/tcp -> pool {}", vip.name, vip.pool);
    let mut weights = show::pool_weights(&config, &vip.pool);

    show::heading(&format!(
        "1. {} new connections to http://{target}/",
        args.requests
    ));
    let first = measure(&testbed, target, args.requests)?;
    show::share_table(&first, &weights);
    show::not_taking_new_flows(&config, &vip.pool);

    show::heading(&format!("2. Failover: b{VICTIM}'s server is killed"));
    let (during, detected) = failover(&testbed, target)?;
    println!(
        "  b{VICTIM} taken out of rotation {} ms after the kill; {} requests failed meanwhile",
        detected.as_millis(),
        during.failures
    );
    println!("  b{VICTIM} is down, so it counts as weight 0 now:");
    let victim = plan::backend_name(VICTIM);
    let without_victim: Vec<(String, u32)> = weights
        .iter()
        .map(|(name, w)| (name.clone(), if *name == victim { 0 } else { *w }))
        .collect();
    let second = measure(&testbed, target, args.requests / 2)?;
    show::share_table(&second, &without_victim);

    show::heading(&format!(
        "3. b{VICTIM} restarts; its health checks bring it back"
    ));
    let back = recovery(&testbed, target)?;
    println!(
        "  b{VICTIM} answers again {} ms after its restart",
        back.as_millis()
    );

    let (k, weight) = REWEIGHTED;
    show::heading(&format!(
        "4. b{k}'s weight set to {weight} (config rewritten, SIGHUP)"
    ));
    yaml = set_backend_weight(&yaml, plan::backend_v4(k).into(), weight)?;
    xlbd.reload(&yaml).context("reload xlbd")?;
    weights = show::pool_weights(&parse(&yaml, &origin)?, &vip.pool);
    let fourth = measure(&testbed, target, args.requests)?;
    show::share_table(&fourth, &weights);

    summary(&xlbd, &during, &[&first, &second, &fourth]);
    show::heading("Tearing down");
    testbed.teardown();
    println!("  namespaces, processes and pins removed");
    Ok(())
}

/// `text` with the pin path and control socket of this testbed.
fn render(testbed: &Testbed, text: &str) -> String {
    let pin = testbed.pin_path().display().to_string();
    let socket = testbed.log_dir().join("xlbd.sock").display().to_string();
    let yaml = set_top_level_key(text, "pin_path", &pin);
    set_top_level_key(&yaml, "control_socket", &socket)
}

fn parse(yaml: &str, origin: &str) -> Result<Config> {
    Ok(Config::from_str(yaml, origin)
        .with_context(|| format!("config {origin}"))?
        .config)
}

/// Sends `n` requests over new connections, with a progress bar.
fn measure(testbed: &Testbed, target: SocketAddr, n: usize) -> Result<RequestStats> {
    let bar = show::bar(n);
    let progress = bar.clone();
    let stats =
        testbed.run_requests(target, n, move |done, _| progress.set_position(done as u64))?;
    bar.finish();
    Ok(stats)
}

/// Kills the victim and sends requests until `CLEAN_RUN` in a row succeed
/// without it; returns what was seen and when the last failure was.
fn failover(testbed: &Testbed, target: SocketAddr) -> Result<(RequestStats, Duration)> {
    let victim = plan::backend_name(VICTIM);
    testbed.kill_backend(VICTIM)?;
    let killed = Instant::now();
    let mut seen = RequestStats::default();
    let (mut clean, mut last_failure) = (0, Duration::ZERO);
    while clean < CLEAN_RUN {
        if killed.elapsed() > FAILOVER_LIMIT {
            bail!(
                "b{VICTIM} still got connections {FAILOVER_LIMIT:?} after it died ({seen:?}); \
                 are health checks on?"
            );
        }
        let one = testbed.run_requests(target, 1, |_, _| {})?;
        if one.failures > 0 || one.per_backend.contains_key(&victim) {
            clean = 0;
            last_failure = killed.elapsed();
        } else {
            clean += 1;
        }
        seen.failures += one.failures;
        for (name, n) in one.per_backend {
            *seen.per_backend.entry(name).or_default() += n;
        }
    }
    Ok((seen, last_failure))
}

/// Restarts the victim and waits until it answers through the VIP.
fn recovery(testbed: &Testbed, target: SocketAddr) -> Result<Duration> {
    let victim = plan::backend_name(VICTIM);
    testbed.start_backend(VICTIM)?;
    let started = Instant::now();
    while started.elapsed() < FAILOVER_LIMIT {
        let one = testbed.run_requests(target, 1, |_, _| {})?;
        if one.per_backend.contains_key(&victim) {
            return Ok(started.elapsed());
        }
    }
    bail!("b{VICTIM} did not come back within {FAILOVER_LIMIT:?}")
}

/// The totals and the data plane's own counters.
fn summary(xlbd: &Xlbd, failover: &RequestStats, measured: &[&RequestStats]) {
    show::heading("Summary");
    let answered: usize = measured.iter().map(|s| s.answered()).sum();
    let failed: usize = measured.iter().map(|s| s.failures).sum();
    println!("  measured steps: {answered} requests answered, {failed} failed");
    println!(
        "  failover: {} failed before b{VICTIM} was taken out, {} answered meanwhile",
        failover.failures,
        failover.answered()
    );
    match xlbd.counters() {
        Ok(counters) => {
            for (stat, n) in counters.stats.iter().filter(|(_, n)| *n > 0) {
                println!(
                    "  {:<6} {:<14} {n:>8} packets",
                    stat.action(),
                    stat.reason()
                );
            }
            println!("  new flows tracked: {}", counters.vip_new_flows());
        }
        Err(err) => println!("  counters unreadable: {err:#}"),
    }
}
