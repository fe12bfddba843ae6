//! The benchmark's output: tables on stdout and a JSON file.

use std::path::PathBuf;

use anyhow::Context as _;
use comfy_table::{Table, presets::ASCII_MARKDOWN};

use crate::{dataplane::Row, live::LiveRow, maglev::MaglevRow};

/// Prints the data-plane table.
pub fn print_dataplane(rows: &[Row]) {
    let mut table = Table::new();
    table.load_preset(ASCII_MARKDOWN).set_header([
        "case",
        "live flows",
        "method",
        "xlb ns/pkt",
        "baseline",
        "baseline ns/pkt",
        "ratio",
        "xlb - baseline ns",
        "path checked",
    ]);
    for r in rows {
        table.add_row([
            r.case.clone(),
            r.live_flows.to_string(),
            r.method.to_string(),
            format!("{:.0}", r.xlb_ns),
            r.baseline.to_string(),
            format!("{:.0}", r.baseline_ns),
            format!("{:.1}", r.ratio),
            format!("{:.0}", r.extra_ns),
            r.path.to_string(),
        ]);
    }
    println!("\nData plane (median of runs, kernel-measured ns per packet)\n{table}");
}

/// Prints the Maglev table.
pub fn print_maglev(rows: &[MaglevRow]) {
    let mut table = Table::new();
    table.load_preset(ASCII_MARKDOWN).set_header([
        "backends",
        "table size",
        "build ms",
        "balance (max/mean)",
        "moved: one leaves",
        "(its share)",
        "moved: one weight +10%",
    ]);
    for r in rows {
        table.add_row([
            r.backends.to_string(),
            r.table_size.to_string(),
            format!("{:.1}", r.build_ms),
            format!("{:.4}", r.balance),
            percent(r.moved_on_removal),
            percent(r.removal_ideal),
            percent(r.moved_on_weight_change),
        ]);
    }
    println!("\nMaglev\n{table}");
}

/// Prints the veth throughput table.
pub fn print_live(rows: &[LiveRow]) {
    let mut table = Table::new();
    table.load_preset(ASCII_MARKDOWN).set_header([
        "program on the receiving veth",
        "Mpps (median)",
        "runs",
    ]);
    for r in rows {
        let runs: Vec<String> = r.runs_mpps.iter().map(|m| format!("{m:.2}")).collect();
        table.add_row([
            r.program.to_string(),
            format!("{:.2}", r.mpps),
            runs.join(" "),
        ]);
    }
    println!("\nThroughput over veth (frames injected with live-frame test runs)\n{table}");
}

fn percent(share: f64) -> String {
    format!("{:.3}%", share * 100.0)
}

/// Writes the reports to `target/bench/results.json`; returns the path.
///
/// # Errors
///
/// Fails when the file cannot be written.
pub fn write_json(
    dataplane: &[Row],
    verified_insns: u32,
    maglev: &[MaglevRow],
    live: &[LiveRow],
) -> anyhow::Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let dir = target.join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("results.json");
    let json = serde_json::json!({
        "kernel": kernel_release(),
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "dataplane": dataplane,
        "xlb_verified_insns": verified_insns,
        "maglev": maglev,
        "veth_live_frames": live,
    });
    let text = serde_json::to_string_pretty(&json).context("encoding the results")?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".into(), |s| s.trim().to_string())
}
