//! `xlbctl autoscaler status`: each autoscaled pool's size, signal,
//! forecast and last decision, asked of xlbd over its control socket.

use crate::autoscale::AutoscaleRow;
use crate::daemon::control::Request;

use super::output::{self, Format, opt};
use super::{Context, socket};

/// `xlbctl autoscaler ...`.
#[derive(Debug, clap::Subcommand)]
pub enum AutoscalerCommand {
    /// Each autoscaled pool: `xlbctl autoscaler status -o json`.
    Status,
}

/// Runs `autoscaler`.
///
/// # Errors
///
/// When xlbd cannot be reached or refuses.
pub fn run(context: &Context, command: &AutoscalerCommand) -> anyhow::Result<()> {
    match command {
        AutoscalerCommand::Status => status(context),
    }
}

fn status(context: &Context) -> anyhow::Result<()> {
    let response = socket::send(context, &Request::AutoscalerStatus)?;
    let rows = response.autoscaler;
    if context.format == Format::Json {
        return output::json(&rows);
    }
    if rows.is_empty() {
        println!("no pool is autoscaled");
        return Ok(());
    }
    let header = [
        "POOL",
        "SIGNAL",
        "ACTUATOR",
        "CURRENT",
        "DESIRED",
        "MIN",
        "MAX",
        "OBSERVED",
        "RATE/S",
        "FORECAST/S",
    ];
    let mut table = output::table(&header, 3);
    for row in &rows {
        table.add_row(vec![
            row.pool.clone(),
            row.signal.clone(),
            row.actuator.clone(),
            row.current.to_string(),
            row.desired.to_string(),
            row.min.to_string(),
            row.max.to_string(),
            thousandths(row.observed_milli),
            thousandths(row.actual_rate_milli),
            thousandths(row.forecast_rate_milli),
        ]);
    }
    output::print(&table);
    for row in &rows {
        details(row);
    }
    Ok(())
}

/// The last decision's reason and the standby backends of `row`.
fn details(row: &AutoscaleRow) {
    println!("\n{}: {}", row.pool, opt(row.reason.as_deref()));
    for member in &row.standby {
        println!("  standby {} {:?}", member.backend, member.phase);
    }
    if row.actuator == "exec" {
        println!(
            "  command runs: {} ok, {} failed; last error: {}",
            row.exec_succeeded_total,
            row.exec_failed_total,
            opt(row.exec_last_error.as_deref())
        );
    }
}

fn thousandths(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{:.3}", v as f64 / 1000.0))
}
