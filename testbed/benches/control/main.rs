//! `control`, run by `cargo xtask bench` before `xlb-bench`: the control
//! plane's figures, measured on the namespace testbed with the release
//! xlbd, written to `target/bench/control.json` for `xlb-bench` to print
//! and publish beside the data plane's.
//!
//! - Death to last connection: backends' servers killed while a client
//!   opens new connections to the VIP without pause ([`death`]).
//! - A reload that changes 1 of 1000 VIPs, and xlbd's memory idle with
//!   1000 VIPs x 100 backends ([`scale`]).
//!
//! Needs root. Method and figures: bench/README.md.

mod death;
mod figure;
mod scale;

use std::path::PathBuf;

use anyhow::Context as _;

fn main() {
    if let Err(err) = run() {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        anyhow::bail!("the control-plane bench creates namespaces and runs xlbd: run as root");
    }
    let mut figures = death::run().context("death to last connection")?;
    figures.extend(scale::run().context("1000 VIPs x 100 backends")?);
    for f in &figures {
        println!("{}: {:.1} {} ({})", f.figure, f.value, f.unit, f.method);
    }

    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let dir = target.join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("control.json");
    let text = serde_json::to_string_pretty(&figures).context("encoding the figures")?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    println!("control-plane figures written to {}", path.display());
    Ok(())
}
