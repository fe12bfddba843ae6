//! `xlb-bench`, run by `cargo xtask bench`: ns per packet of `xlb` through
//! `BPF_PROG_TEST_RUN` beside trivial XDP programs, and Maglev table
//! figures. Prints tables and writes `target/bench/results.json`.
//!
//! Needs root (it loads XDP programs). Method and figures: docs/BENCHMARKS.md.

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
mod maglev;
mod measure;
mod report;

use std::time::Instant;

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

    let path = report::write_json(&dataplane, verified_insns, &maglev, &live)?;
    println!(
        "results written to {} ({:.0} s)",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
