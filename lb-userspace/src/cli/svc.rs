//! `xlbctl svc list`: each VIP with its backends below it, as
//! `ipvsadm -Ln` shows them.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::model::{self, Service, Traffic, endpoint};
use super::output::{self, Format, opt};
use super::{Context, parse_duration};
use crate::config::Share;
use crate::daemon::canary::CanaryRow;

/// `xlbctl svc ...`.
#[derive(Debug, clap::Subcommand)]
pub enum SvcCommand {
    /// List VIPs and their backends: `xlbctl svc list --rate`.
    List(ListArgs),
}

/// Options of `svc list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Show packets, bytes and new flows (totals since the maps were made).
    #[arg(long, conflicts_with = "rate")]
    pub stats: bool,
    /// Show packets, bytes and new flows per second, measured over
    /// `--interval`.
    #[arg(long)]
    pub rate: bool,
    /// Measuring time of `--rate`, e.g. `2s`.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
}

/// Runs `svc`.
///
/// # Errors
///
/// When the maps cannot be read.
pub fn run(context: &Context, command: &SvcCommand) -> anyhow::Result<()> {
    let SvcCommand::List(args) = command;
    let maps = context.maps()?;
    let mut services = model::services(&maps, context.vip_views(), true)?;
    if args.rate {
        let start = Instant::now();
        std::thread::sleep(args.interval);
        let later = model::services(&maps, context.vip_views(), false)?;
        let seconds = start.elapsed().as_secs_f64();
        to_rates(&mut services, &later, seconds);
    }
    match context.format {
        Format::Json if args.rate => output::json(&RateView {
            interval_s: args.interval.as_secs_f64(),
            vips: &services,
        }),
        Format::Json => output::json(&services),
        Format::Table => {
            let canaries = context
                .status
                .as_ref()
                .map_or(&[][..], |s| s.canaries.as_slice());
            print_table(&services, canaries, args.stats || args.rate, args.rate);
            Ok(())
        }
    }
}

#[derive(Serialize)]
struct RateView<'a> {
    /// Measuring time; the traffic figures are per second.
    interval_s: f64,
    vips: &'a [Service],
}

/// Replaces each traffic figure by its rate per second between `services`
/// and `later`.
fn to_rates(services: &mut [Service], later: &[Service], seconds: f64) {
    let rate = |old: Traffic, new: Traffic| Traffic {
        packets: per_second(old.packets, new.packets, seconds),
        bytes: per_second(old.bytes, new.bytes, seconds),
        new_flows: per_second(old.new_flows, new.new_flows, seconds),
    };
    for service in services {
        let Some(now) = later.iter().find(|s| s.id == service.id) else {
            continue;
        };
        service.traffic = rate(service.traffic, now.traffic);
        for member in &mut service.backends {
            if let Some(m) = now.backends.iter().find(|m| m.id == member.id) {
                member.traffic = rate(member.traffic, m.traffic);
            }
        }
    }
}

fn per_second(old: u64, new: u64, seconds: f64) -> u64 {
    (new.saturating_sub(old) as f64 / seconds.max(1e-3)).round() as u64
}

fn print_table(services: &[Service], canaries: &[CanaryRow], traffic: bool, rate: bool) {
    let mut header = vec![
        "VIP / BACKEND",
        "NAME",
        "WEIGHT",
        "EFFECTIVE",
        "STATE",
        "FLOWS",
    ];
    if traffic {
        header.extend(if rate {
            ["PKTS/S", "BYTES/S", "NEWFLOWS/S"]
        } else {
            ["PACKETS", "BYTES", "NEWFLOWS"]
        });
    }
    let mut table = output::table(&header, 2);
    for service in services {
        let mut row = vec![
            endpoint(service.address, service.port, &service.protocol),
            format!(
                "{} (pool {})",
                opt(service.name.as_ref()),
                opt(service.pool.as_ref())
            ),
            String::new(),
            String::new(),
            String::new(),
            service.flows.to_string(),
        ];
        if traffic {
            row.extend(figures(service.traffic));
        }
        table.add_row(row);
        let canary = canaries
            .iter()
            .find(|c| service.name.as_ref() == Some(&c.vip));
        if let Some(canary) = canary {
            table.add_row(vec![format!("  canary {}", canary_text(canary))]);
        }
        for member in &service.backends {
            let mut row = vec![
                format!("  -> {}", member.address),
                format!("#{}", member.id),
                opt(member.weight),
                opt(member.effective_weight),
                state_text(member),
                member.flows.to_string(),
            ];
            if traffic {
                row.extend(figures(member.traffic));
            }
            table.add_row(row);
        }
    }
    output::print(&table);
}

/// `pool P at 5% (config 10%)`, with the rollbacks if any.
fn canary_text(canary: &CanaryRow) -> String {
    let percent =
        |bp: u16| crate::daemon::canary::percent(Share::from_basis_points(bp).unwrap_or_default());
    let mut text = format!(
        "-> pool {} at {} (config {})",
        canary.pool,
        percent(canary.effective_bp),
        percent(canary.configured_bp)
    );
    if canary.rollbacks_total > 0 {
        let why = canary.last_rollback.as_deref().unwrap_or("?");
        text += &format!(", rolled back {}x, last: {why}", canary.rollbacks_total);
    }
    text
}

fn figures(t: Traffic) -> [String; 3] {
    [
        t.packets.to_string(),
        t.bytes.to_string(),
        t.new_flows.to_string(),
    ]
}

fn state_text(member: &model::Member) -> String {
    let mut text = member.state.clone();
    if !member.healthy {
        text.push_str(",unhealthy");
    }
    if member.operator.is_some() {
        text.push('*');
    }
    text
}
