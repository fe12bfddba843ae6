//! The benchmark's output: tables on stdout and a JSON file.

use std::path::PathBuf;

use anyhow::Context as _;
use comfy_table::{Table, presets::ASCII_MARKDOWN};
use serde::{Deserialize, Serialize};

use crate::{dataplane::Row, live::LiveRow, machine::Machine, maglev::MaglevRow};

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

/// One figure of the control-plane table (written by the testbed's
/// `control` bench into `target/bench/control.json`, or measured here).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Figure {
    /// What is measured.
    pub figure: String,
    /// The value, in `unit`.
    pub value: f64,
    /// Unit of `value`.
    pub unit: String,
    /// How it was measured, in a few words.
    pub method: String,
}

/// Prints the control-plane table.
pub fn print_figures(title: &str, figures: &[Figure]) {
    let mut table = Table::new();
    table
        .load_preset(ASCII_MARKDOWN)
        .set_header(["figure", "value", "unit", "method"]);
    for f in figures {
        table.add_row([
            f.figure.clone(),
            format!("{:.1}", f.value),
            f.unit.clone(),
            f.method.clone(),
        ]);
    }
    println!("\n{title}\n{table}");
}

/// Prints what the results were measured on.
pub fn print_machine(machine: &Machine) {
    let dirty = if machine.dirty { " (dirty)" } else { "" };
    println!(
        "\n{}, {} cores, Linux {}, commit {}{dirty}, {}",
        machine.cpu_model, machine.cores, machine.kernel, machine.commit, machine.date
    );
}

/// Cargo's target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    )
}

/// The control-plane figures the testbed's `control` bench left in
/// `target/bench/control.json`, if it ran.
pub fn read_control() -> Option<Vec<Figure>> {
    let path = target_dir().join("bench/control.json");
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes `results` to `bench/results/DATE-COMMIT.json` in the workspace
/// and to `target/bench/results.json`; returns the first path.
///
/// # Errors
///
/// Fails when a file cannot be written.
pub fn write_json(machine: &Machine, results: serde_json::Value) -> anyhow::Result<PathBuf> {
    let mut json = serde_json::json!({ "machine": machine });
    if let (Some(all), serde_json::Value::Object(parts)) = (json.as_object_mut(), results) {
        all.extend(parts);
    }
    let text = serde_json::to_string_pretty(&json).context("encoding the results")? + "\n";

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join("bench/results");
    let path = dir.join(machine.file_name());
    let copy = target_dir().join("bench/results.json");
    for file in [&path, &copy] {
        let parent = file.parent().context("results path has no parent")?;
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        std::fs::write(file, &text).with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(path)
}
