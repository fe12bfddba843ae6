//! `xlb-bench`, run by `cargo xtask bench`: ns per packet of `xlb` through
//! `BPF_PROG_TEST_RUN` beside trivial XDP programs, and Maglev table
//! figures, veth throughput and connection-table memory. Prints tables
//! (with the control-plane figures the testbed's `control` bench left in
//! `target/bench/control.json`, if it ran first) and writes them all to
//! `bench/results/DATE-COMMIT.json`.
//!
//! Needs root (it loads XDP programs). Method and figures: bench/README.md.

#[path = "../../tests/common/xlb_checks.rs"]
mod xlb_checks;
#[path = "../../tests/common/xlb_frames.rs"]
mod xlb_frames;
#[path = "../../tests/common/xlb_harness.rs"]
mod xlb_harness;
#[path = "../../tests/common/xlb_world.rs"]
mod xlb_world;

mod dataplane;
mod flows;
mod live;
mod machine;
mod maglev;
mod measure;
mod report;

use std::{path::PathBuf, time::Instant};

fn main() {
    if let Err(err) = run() {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        anyhow::bail!("the benchmark loads XDP programs: run as root");
    }
    let started = Instant::now();
    let machine = machine::Machine::read(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."));

    eprintln!("bench: Maglev tables");
    let maglev = maglev::run()?;
    report::print_maglev(&maglev);

    eprintln!(
        "bench: data plane, {} runs of {} packets per case",
        dataplane::RUNS,
        dataplane::PACKETS
    );
    let verified_insns = dataplane::verified_insns()?;
    let dataplane = dataplane::run()?;
    report::print_dataplane(&dataplane);
    println!("\nxlb: {verified_insns} instructions processed by the verifier");

    eprintln!("bench: throughput over veth with live frames");
    let live = live::run()?;
    report::print_live(&live);

    let (per_entry, memlock) = dataplane::flow_entry_bytes()?;
    let [(small, a), (large, b)] = memlock;
    let mut control = report::read_control().unwrap_or_default();
    control.push(report::Figure {
        figure: "connection-table memory per entry".into(),
        value: per_entry,
        unit: "bytes".into(),
        method: format!("FLOWS memlock {a} B at {small}, {b} B at {large} entries"),
    });
    report::print_figures("Control plane and memory", &control);
    report::print_machine(&machine);

    let results = serde_json::json!({
        "dataplane": dataplane,
        "xlb_verified_insns": verified_insns,
        "maglev": maglev,
        "veth_live_frames": live,
        "control_plane": control,
    });
    let path = report::write_json(&machine, results)?;
    println!(
        "results written to {} ({:.0} s)",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
