//! How the demo talks to its reader: headings, progress bars, tables.

use std::net::IpAddr;

use indicatif::{ProgressBar, ProgressStyle};
use xlb::config::Config;
use xlb_testbed::RequestStats;
use xlb_testbed::shares::{format_shares, shares};

/// Prints a numbered step heading.
pub fn heading(text: &str) {
    println!("\n== {text} ==");
}

/// A progress bar for `total` requests.
pub fn bar(total: usize) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    let style = ProgressStyle::with_template(
        "  {bar:40.cyan/blue} {pos:>5}/{len} requests  {per_sec:>12}  {elapsed}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// The testbed name of the backend at `address` ("b2" for 10.0.0.12),
/// or the address itself when it is not a testbed backend.
pub fn backend_name(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) if v4.octets()[..3] == [10, 0, 0] && v4.octets()[3] > 10 => {
            format!("b{}", v4.octets()[3] - 10)
        }
        other => other.to_string(),
    }
}

/// (backend name, weight taking new flows) of pool `pool`; a draining
/// backend has weight 0.
pub fn pool_weights(config: &Config, pool: &str) -> Vec<(String, u32)> {
    config.pools.get(pool).map_or_else(Vec::new, |pool| {
        pool.maglev_backends()
            .iter()
            .map(|b| (backend_name(b.addr), b.weight))
            .collect()
    })
}

/// Prints which backends of `pool` are draining or in maintenance: the
/// share table counts them at weight 0, though the config gives them one.
pub fn not_taking_new_flows(config: &Config, pool: &str) {
    let Some(pool) = config.pools.get(pool) else {
        return;
    };
    for backend in &pool.backends {
        let state = match backend.state {
            xlb::config::BackendState::Ready => continue,
            xlb::config::BackendState::Drain => "draining",
            xlb::config::BackendState::Maint => "in maintenance",
        };
        let name = backend_name(backend.address);
        println!(
            "  {name} is {state} in the config (weight {}): it keeps its flows, takes no new ones",
            backend.weight
        );
    }
}

/// Prints the share table of `stats` against `weights`, and the failures.
pub fn share_table(stats: &RequestStats, weights: &[(String, u32)]) {
    print!("{}", format_shares(&shares(stats, weights)));
    let others: usize = stats
        .per_backend
        .iter()
        .filter(|(name, _)| !weights.iter().any(|(w, _)| w == *name))
        .map(|(_, n)| n)
        .sum();
    if others > 0 {
        println!("  answers from backends outside the pool: {others}");
    }
    println!(
        "  {} requests answered, {} failed",
        stats.answered(),
        stats.failures
    );
    for error in &stats.errors {
        println!("    failure: {error}");
    }
}
