//! `xlbctl stats`: packets by outcome (pass, tx, drop, and why), summed
//! over every possible CPU; `--watch` prints rates per second.

use std::time::{Duration, Instant};

use lb_common::Stat;
use serde::Serialize;

use crate::dataplane::counters;

use super::output::{self, Format};
use super::{Context, parse_duration};

/// Options of `stats`.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Print rates per second every `--interval` until interrupted.
    #[arg(long)]
    watch: bool,
    /// Time between samples of `--watch`, e.g. `2s`.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    interval: Duration,
    /// Stop `--watch` after this many samples.
    #[arg(long)]
    count: Option<u64>,
}

/// One outcome.
#[derive(Debug, Serialize)]
struct Row {
    action: &'static str,
    reason: &'static str,
    /// Packets in total, or per second with `--watch`.
    packets: u64,
}

/// Runs `stats`.
///
/// # Errors
///
/// When the `STATS` map cannot be read.
pub fn run(context: &Context, args: &StatsArgs) -> anyhow::Result<()> {
    let maps = context.maps()?;
    let mut previous = counters::stats(&maps)?;
    if !args.watch {
        return show(context.format, &previous, None);
    }
    let mut samples = 0;
    let mut at = Instant::now();
    while args.count.is_none_or(|n| samples < n) {
        std::thread::sleep(args.interval);
        let now = counters::stats(&maps)?;
        let seconds = at.elapsed().as_secs_f64().max(1e-3);
        at = Instant::now();
        let rates: Vec<(Stat, u64)> = now
            .iter()
            .zip(&previous)
            .map(|(&(stat, new), &(_, old))| {
                (
                    stat,
                    (new.saturating_sub(old) as f64 / seconds).round() as u64,
                )
            })
            .collect();
        show(context.format, &rates, Some(seconds))?;
        previous = now;
        samples += 1;
    }
    Ok(())
}

fn show(format: Format, stats: &[(Stat, u64)], rate_over_s: Option<f64>) -> anyhow::Result<()> {
    let rows: Vec<Row> = stats
        .iter()
        .map(|&(stat, packets)| Row {
            action: stat.action(),
            reason: stat.reason(),
            packets,
        })
        .collect();
    if format == Format::Json {
        // One compact document per line under --watch, for streaming.
        if rate_over_s.is_some() {
            println!("{}", serde_json::to_string(&rows)?);
            return Ok(());
        }
        return output::json(&rows);
    }
    let unit = if rate_over_s.is_some() {
        "PACKETS/S"
    } else {
        "PACKETS"
    };
    let mut table = output::table(&["ACTION", "REASON", unit], 2);
    for r in &rows {
        table.add_row(vec![
            r.action.to_owned(),
            r.reason.to_owned(),
            r.packets.to_string(),
        ]);
    }
    output::print(&table);
    Ok(())
}
