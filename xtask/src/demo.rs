//! `cargo xtask demo`: set up, build, then run the demo binary
//! (testbed/src/bin/xlb-demo), which builds a namespace testbed, runs
//! xlbd on it with configs/demo.yaml and shows balancing, failover and a
//! weight change on real HTTP traffic.
//!
//! xtask itself depends on neither the xlb library nor the testbed, so it
//! builds before setup has installed the kernel-side toolchain.

use std::os::unix::process::CommandExt as _;
use std::process::Command;

use anyhow::{Context as _, bail};
use clap::Args;

use crate::{cmd, setup};

/// Options of `cargo xtask demo`.
#[derive(Args)]
pub struct DemoArgs {
    /// Show a fleet instead: two LB nodes behind a router running BIRD
    /// with ECMP, config in etcd, connections kept while a node stops.
    #[arg(long)]
    pub fleet: bool,
    /// Arguments passed on to the demo, e.g. `-- --requests 5000`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

/// Runs setup, builds the binaries, then replaces this process with the
/// demo (so Ctrl-C reaches it and it tears its testbed down).
pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    require_root("the demo creates network namespaces and loads XDP programs")?;
    setup::run()?;
    if args.fleet {
        return fleet();
    }
    build_bins()?;

    let demo = cmd::target_dir().join("debug").join("xlb-demo");
    let config = cmd::workspace_root().join("configs").join("demo.yaml");
    let error = Command::new(&demo)
        .arg("--config")
        .arg(&config)
        .args(&args.rest)
        .exec();
    Err(error).with_context(|| format!("cannot run {}", demo.display()))
}

/// The fleet demo is the fleet end-to-end test, narrated: it builds the
/// namespaces, runs etcd, BIRD and two xlbd, and says what happens.
// Limitation: it runs as a test (lb-userspace/tests/fleet_flows.rs), so
// the fleet bed is not duplicated into the testbed crate; a binary of its
// own would need the bed moved into testbed/src.
fn fleet() -> anyhow::Result<()> {
    cmd::run(cmd::cargo().args([
        "test",
        "--package",
        "lb-userspace",
        "--test",
        "fleet_flows",
        "--",
        "--nocapture",
    ]))
}

/// Builds xlbd, xlbctl, xlb-backend and xlb-demo (debug profile).
pub fn build_bins() -> anyhow::Result<()> {
    cmd::run(cmd::cargo().args([
        "build",
        "--package",
        "lb-userspace",
        "--package",
        "xlb-testbed",
        "--bins",
    ]))
}

/// Fails with `why` unless running as root.
pub fn require_root(why: &str) -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("{why}: run as root");
    }
    Ok(())
}
