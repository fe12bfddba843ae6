//! `xlbctl backend`: list and show backends; drain, ready, maint, weight
//! and reset them through xlbd.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde::Serialize;

use crate::config::BackendState;
use crate::daemon::control::Request;
use crate::dataplane::counters;

use super::model::{self, Member, label};
use super::output::{self, Format, opt};
use super::{Context, parse_duration, socket};

/// `xlbctl backend ...`.
#[derive(Debug, clap::Subcommand)]
pub enum BackendCommand {
    /// Every backend of every VIP: `xlbctl backend list`.
    List,
    /// One backend's details in every VIP: `xlbctl backend show 10.1.0.7`.
    Show {
        /// Backend address.
        address: IpAddr,
    },
    /// Take no new flows, keep tracked ones: `xlbctl backend drain 10.1.0.7 --wait`.
    Drain(DrainArgs),
    /// Take new flows again: `xlbctl backend ready 10.1.0.7`.
    Ready(Target),
    /// Out of service, tracked flows move away: `xlbctl backend maint 10.1.0.7`.
    Maint(Target),
    /// Set the weight: `xlbctl backend weight 10.1.0.7 50`.
    Weight {
        #[command(flatten)]
        target: Target,
        /// The new weight, 0..=10000.
        weight: u32,
    },
    /// Drop the operator's override, back to the config: `xlbctl backend reset 10.1.0.7`.
    Reset(Target),
}

/// Which backend a mutation is for.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// Backend address.
    pub address: IpAddr,
    /// Only in this pool [default: every pool that has the address].
    #[arg(long)]
    pub pool: Option<String>,
}

/// Options of `backend drain`.
#[derive(Debug, clap::Args)]
pub struct DrainArgs {
    #[command(flatten)]
    target: Target,
    /// Return only once the backend has no active tracked flow.
    #[arg(long)]
    wait: bool,
    /// A flow not seen for this long no longer counts as active, e.g. `30s`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    idle: Duration,
    /// Give up waiting after this long, exiting 1, e.g. `5m`.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    timeout: Duration,
}

/// Runs `backend`.
///
/// # Errors
///
/// When the maps cannot be read, xlbd refuses, or a wait times out.
pub fn run(context: &Context, command: &BackendCommand) -> anyhow::Result<()> {
    match command {
        BackendCommand::List => list(context, None),
        BackendCommand::Show { address } => list(context, Some(*address)),
        BackendCommand::Drain(args) => {
            set(context, &args.target, Some(BackendState::Drain), None)?;
            if args.wait {
                wait_drained(context, args)?;
            }
            Ok(())
        }
        BackendCommand::Ready(target) => set(context, target, Some(BackendState::Ready), None),
        BackendCommand::Maint(target) => set(context, target, Some(BackendState::Maint), None),
        BackendCommand::Weight { target, weight } => set(context, target, None, Some(*weight)),
        BackendCommand::Reset(target) => {
            let request = Request::ResetBackend {
                backend: target.address,
                pool: target.pool.clone(),
            };
            report(context, &request)
        }
    }
}

#[derive(Serialize)]
struct Row<'a> {
    vip: String,
    vip_id: u32,
    pool: Option<&'a str>,
    #[serde(flatten)]
    member: &'a Member,
}

fn list(context: &Context, only: Option<IpAddr>) -> anyhow::Result<()> {
    let maps = context.maps()?;
    let services = model::services(&maps, context.vip_views(), true)?;
    let rows: Vec<Row> = services
        .iter()
        .flat_map(|s| {
            s.backends.iter().map(move |member| Row {
                vip: label(s),
                vip_id: s.id,
                pool: s.pool.as_deref(),
                member,
            })
        })
        .filter(|row| only.is_none_or(|a| a == row.member.address))
        .collect();
    if let (Some(address), true) = (only, rows.is_empty()) {
        bail!("backend {address} is in no VIP");
    }
    if context.format == Format::Json {
        return output::json(&rows);
    }
    let header = [
        "BACKEND",
        "VIP",
        "POOL",
        "ID",
        "WEIGHT",
        "EFFECTIVE",
        "STATE",
        "OVERRIDE",
        "UP",
        "IN_TABLE",
        "FLOWS",
        "PACKETS",
        "BYTES",
    ];
    let mut table = output::table(&header, 3);
    for row in &rows {
        let m = row.member;
        let over = m.operator.as_ref().map(|o| {
            let state = o.state.map(|s| crate::metrics::state_label(s).to_owned());
            format!("state={} weight={}", opt(state), opt(o.weight))
        });
        table.add_row(vec![
            m.address.to_string(),
            row.vip.clone(),
            opt(row.pool),
            m.id.to_string(),
            opt(m.weight),
            opt(m.effective_weight),
            m.state.clone(),
            opt(over),
            m.up.to_string(),
            m.in_table.to_string(),
            m.flows.to_string(),
            m.traffic.packets.to_string(),
            m.traffic.bytes.to_string(),
        ]);
    }
    output::print(&table);
    Ok(())
}

fn set(
    context: &Context,
    target: &Target,
    state: Option<BackendState>,
    weight: Option<u32>,
) -> anyhow::Result<()> {
    let request = Request::SetBackend {
        backend: target.address,
        pool: target.pool.clone(),
        state,
        weight,
    };
    report(context, &request)
}

fn report(context: &Context, request: &Request) -> anyhow::Result<()> {
    let response = socket::send(context, request)?;
    match context.format {
        Format::Json => output::json(&response),
        Format::Table => {
            println!("{} ({} changes)", response.message, response.changes);
            Ok(())
        }
    }
}

/// Polls `FLOWS` until no flow to the backend was seen within `--idle`.
fn wait_drained(context: &Context, args: &DrainArgs) -> anyhow::Result<()> {
    let maps = context.maps()?;
    let address = args.target.address;
    let deadline = Instant::now() + args.timeout;
    loop {
        let services = model::services(&maps, context.vip_views(), false)?;
        let ids: Vec<u32> = services
            .iter()
            .filter(|s| {
                args.target
                    .pool
                    .as_deref()
                    .is_none_or(|p| s.pool.as_deref() == Some(p))
            })
            .flat_map(|s| s.backends.iter())
            .filter(|m| m.address == address)
            .map(|m| m.id)
            .collect();
        let now_ns = super::ct::monotonic_ns();
        let idle_ns = u64::try_from(args.idle.as_nanos()).unwrap_or(u64::MAX);
        let active = counters::flows(&maps)?
            .iter()
            .filter(|(_, flow)| ids.contains(&flow.backend_id))
            .filter(|(_, flow)| now_ns.saturating_sub(flow.last_seen_ns) < idle_ns)
            .count();
        if active == 0 {
            println!(
                "backend {address} drained: no flow seen within {:?}",
                args.idle
            );
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "backend {address} still has {active} active flows after {:?}",
                args.timeout
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
