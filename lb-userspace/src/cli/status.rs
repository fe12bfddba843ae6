//! `xlbctl status`: the daemon (from its status file) and the data plane
//! (from the maps): attach mode, program ids, tables, config version,
//! uptime.

use serde::Serialize;

use crate::daemon::DaemonStatus;

use super::Context;
use super::model::{self, label};
use super::output::{self, Format};

#[derive(Serialize)]
struct Report<'a> {
    /// Whether the status file names a live process.
    daemon_running: bool,
    /// Seconds since xlbd started, when it runs.
    uptime_s: Option<u64>,
    daemon: Option<&'a DaemonStatus>,
    tables: Vec<Table>,
}

#[derive(Serialize)]
struct Table {
    vip: String,
    vip_id: u32,
    table_size: u32,
    /// Live half: flips each time the table is swapped.
    table_half: u32,
}

/// Runs `status`.
///
/// # Errors
///
/// When neither the status file nor the maps can be read.
pub fn run(context: &Context) -> anyhow::Result<()> {
    let status = context.status.as_ref();
    let running = status.is_some_and(|s| process_alive(s.pid));
    let uptime_s = status
        .filter(|_| running)
        .map(|s| unix_now_s().saturating_sub(s.started_unix_s));
    let tables = match context.maps() {
        Ok(maps) => model::services(&maps, context.vip_views(), false)?
            .iter()
            .map(|s| Table {
                vip: label(s),
                vip_id: s.id,
                table_size: s.table_size,
                table_half: s.table_half,
            })
            .collect(),
        Err(error) if status.is_none() => return Err(error),
        Err(_) => Vec::new(),
    };
    let report = Report {
        daemon_running: running,
        uptime_s,
        daemon: status,
        tables,
    };
    if context.format == Format::Json {
        return output::json(&report);
    }
    print_text(&report);
    Ok(())
}

fn print_text(report: &Report) {
    match report.daemon {
        Some(s) => {
            let state = if report.daemon_running {
                "running"
            } else {
                "not running"
            };
            println!("xlbd:            {state} (pid {})", s.pid);
            println!(
                "uptime:          {}",
                output::opt(report.uptime_s.map(|u| format!("{u}s")))
            );
            println!(
                "config:          {} (version {})",
                s.config.display(),
                s.config_version
            );
            println!("pin path:        {}", s.pin_path.display());
            println!(
                "reloads:         {} ok, {} failed",
                s.reloads_succeeded_total, s.reloads_failed_total
            );
            for i in &s.interfaces {
                println!(
                    "attached:        {} prog {} mode {}",
                    i.name, i.prog_id, i.mode
                );
            }
        }
        None => println!("xlbd:            no status file (reading the maps only)"),
    }
    let mut table = output::table(&["VIP", "ID", "TABLE_SIZE", "LIVE_HALF"], 1);
    for t in &report.tables {
        table.add_row(vec![
            t.vip.clone(),
            t.vip_id.to_string(),
            t.table_size.to_string(),
            t.table_half.to_string(),
        ]);
    }
    output::print(&table);
}

fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

fn unix_now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
