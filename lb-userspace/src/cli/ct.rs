//! `xlbctl ct`: the connection table, listed or counted, filtered by VIP
//! or backend; `count` also shows the whole table's inserts and the
//! evictions a full table made (a SYN flood that got past the guard).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use lb_common::{Flow, FlowKey};
use serde::Serialize;

use crate::daemon::view::protocol_name;
use crate::dataplane::counters;
use crate::dataplane::live::key_addr_to_ip;

use super::model::{self, Service, label};
use super::output::{self, Format};
use super::{Context, parse_duration};

/// `xlbctl ct ...`.
#[derive(Debug, clap::Subcommand)]
pub enum CtCommand {
    /// List tracked flows: `xlbctl ct list --vip web --limit 20`.
    List {
        #[command(flatten)]
        filter: Filter,
        /// Print at most this many flows.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Count tracked flows by state and protocol, and the whole table's
    /// inserts and evictions: `xlbctl ct count --backend 10.1.0.7`.
    Count {
        #[command(flatten)]
        filter: Filter,
    },
}

/// Which flows.
#[derive(Debug, clap::Args)]
pub struct Filter {
    /// Only flows of this VIP: a name, `ADDRESS:PORT[/PROTO]` or `#ID`.
    #[arg(long)]
    vip: Option<String>,
    /// Only flows to this backend address.
    #[arg(long)]
    backend: Option<IpAddr>,
    /// A flow not seen for this long counts as idle rather than active.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    idle: Duration,
}

/// One flow as printed.
#[derive(Debug, Serialize)]
struct FlowRow {
    protocol: String,
    client: IpAddr,
    client_port: u16,
    vip: String,
    vip_address: IpAddr,
    vip_port: u16,
    backend: Option<IpAddr>,
    backend_id: u32,
    /// Seconds since a packet of the flow was last seen (1 s resolution).
    idle_s: u64,
    /// `active` or `idle`, by `--idle`.
    state: &'static str,
}

/// Runs `ct`.
///
/// # Errors
///
/// When the maps cannot be read or the VIP is unknown.
pub fn run(context: &Context, command: &CtCommand) -> anyhow::Result<()> {
    let filter = match command {
        CtCommand::List { filter, .. } | CtCommand::Count { filter } => filter,
    };
    let maps = context.maps()?;
    let services = model::services(&maps, context.vip_views(), false)?;
    let vip = filter
        .vip
        .as_deref()
        .map(|spec| context.resolve_vip(spec, &services))
        .transpose()?;
    let now_ns = monotonic_ns();
    let flows = counters::flows(&maps)?;
    let rows: Vec<FlowRow> = flows
        .iter()
        .filter(|(_, flow)| vip.is_none_or(|id| flow.vip_id == id))
        .map(|(key, flow)| row(key, flow, &services, now_ns, filter.idle))
        .filter(|row| filter.backend.is_none_or(|b| row.backend == Some(b)))
        .collect();
    match command {
        CtCommand::List { limit, .. } => list(context.format, &rows, *limit),
        CtCommand::Count { .. } => {
            let inserts_total = counters::flow_inserts(&maps)?;
            let table = TableCounts {
                entries: flows.len(),
                inserts_total,
                evictions_total: inserts_total.saturating_sub(flows.len() as u64),
            };
            count(context.format, &rows, table)
        }
    }
}

fn row(key: &FlowKey, flow: &Flow, services: &[Service], now_ns: u64, idle: Duration) -> FlowRow {
    let service = services.iter().find(|s| s.id == flow.vip_id);
    let backend = services
        .iter()
        .flat_map(|s| s.backends.iter())
        .find(|m| m.id == flow.backend_id)
        .map(|m| m.address);
    let idle_ns = now_ns.saturating_sub(flow.last_seen_ns);
    let unspecified = IpAddr::from([0, 0, 0, 0]);
    FlowRow {
        protocol: protocol_name(key.proto),
        client: key_addr_to_ip(&key.src, key.family).unwrap_or(unspecified),
        client_port: u16::from_be(key.sport_be),
        vip: service.map_or_else(|| format!("#{}", flow.vip_id), label),
        vip_address: key_addr_to_ip(&key.dst, key.family).unwrap_or(unspecified),
        vip_port: u16::from_be(key.dport_be),
        backend,
        backend_id: flow.backend_id,
        idle_s: idle_ns / 1_000_000_000,
        state: if u128::from(idle_ns) < idle.as_nanos() {
            "active"
        } else {
            "idle"
        },
    }
}

fn list(format: Format, rows: &[FlowRow], limit: Option<usize>) -> anyhow::Result<()> {
    let rows = &rows[..limit.unwrap_or(rows.len()).min(rows.len())];
    if format == Format::Json {
        return output::json(&rows);
    }
    let mut table = output::table(&["PROTO", "CLIENT", "VIP", "BACKEND", "STATE", "IDLE_S"], 5);
    for r in rows {
        let backend = r
            .backend
            .map_or_else(|| format!("#{}", r.backend_id), |b| b.to_string());
        table.add_row(vec![
            r.protocol.clone(),
            format!("{}:{}", r.client, r.client_port),
            format!("{} ({}:{})", r.vip, r.vip_address, r.vip_port),
            backend,
            r.state.to_owned(),
            r.idle_s.to_string(),
        ]);
    }
    output::print(&table);
    Ok(())
}

#[derive(Serialize)]
struct Counts {
    total: usize,
    by_state: BTreeMap<&'static str, usize>,
    by_protocol: BTreeMap<String, usize>,
    /// The whole table, whatever the filter.
    table: TableCounts,
}

/// The whole `FLOWS` table.
#[derive(Clone, Copy, Serialize)]
struct TableCounts {
    /// Flows tracked now.
    entries: usize,
    /// Flows the XDP program inserted since the maps were created.
    inserts_total: u64,
    /// Flows a full table pushed out: only LRU eviction removes entries,
    /// so inserts minus entries (flows written from user space, by tests,
    /// make this an underestimate).
    evictions_total: u64,
}

fn count(format: Format, rows: &[FlowRow], table_counts: TableCounts) -> anyhow::Result<()> {
    let mut counts = Counts {
        total: rows.len(),
        by_state: BTreeMap::from([("active", 0), ("idle", 0)]),
        by_protocol: BTreeMap::new(),
        table: table_counts,
    };
    for r in rows {
        *counts.by_state.entry(r.state).or_default() += 1;
        *counts.by_protocol.entry(r.protocol.clone()).or_default() += 1;
    }
    if format == Format::Json {
        return output::json(&counts);
    }
    let mut table = output::table(&["BY", "VALUE", "FLOWS"], 2);
    table.add_row(vec![
        "total".to_owned(),
        String::new(),
        counts.total.to_string(),
    ]);
    for (state, n) in &counts.by_state {
        table.add_row(vec!["state".to_owned(), (*state).to_owned(), n.to_string()]);
    }
    for (proto, n) in &counts.by_protocol {
        table.add_row(vec!["protocol".to_owned(), proto.clone(), n.to_string()]);
    }
    let whole = [
        ("entries", table_counts.entries as u64),
        ("inserts", table_counts.inserts_total),
        ("evictions", table_counts.evictions_total),
    ];
    for (what, n) in whole {
        table.add_row(vec!["table".to_owned(), what.to_owned(), n.to_string()]);
    }
    output::print(&table);
    Ok(())
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock `Flow::last_seen_ns` is
/// stamped from (by `bpf_ktime_get_coarse_ns`, which lags it by at most a
/// tick; ages are shown in seconds).
pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only into `now`, a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    secs * 1_000_000_000 + nanos
}
