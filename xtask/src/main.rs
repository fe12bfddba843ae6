//! `cargo xtask`: the project's tasks, one module per command.
//!
//! Runs with only stable Rust and crates.io, so `cargo xtask setup` works on
//! a machine that has nothing else yet.

mod bench;
mod cmd;
mod demo;
mod run;
mod setup;
mod soak;
mod test;

use clap::{Parser, Subcommand};

/// xlb's project tasks.
#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Installs what this machine lacks to build and test xlb (idempotent).
    ///
    /// Example: `cargo xtask setup`
    Setup,
    /// Sets up, then runs every test (unit, packet, daemon, end to end). Needs root.
    ///
    /// Example: `cargo xtask test`
    Test(test::TestArgs),
    /// Sets up, then measures the data plane, Maglev and the control plane, and fuzzes. Needs root.
    ///
    /// Example: `cargo xtask bench` (under 5 minutes), `cargo xtask bench --long`
    Bench(bench::BenchArgs),
    /// Sets up, builds, then shows xlb balancing real traffic in a namespace testbed. Needs root.
    ///
    /// Example: `cargo xtask demo`
    Demo(demo::DemoArgs),
    /// Sets up, builds, then runs xlbd with a config, optionally on another interface. Needs root.
    ///
    /// Example: `cargo xtask run --config configs/minimal.yaml --iface eth1`
    Run(run::RunArgs),
    /// Sets up, then soaks the health checker and load tracker in hostile targets.
    ///
    /// Example: `cargo xtask soak --duration 1h`
    Soak(soak::SoakArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Setup => setup::run(),
        Task::Test(args) => test::run(&args),
        Task::Bench(args) => bench::run(&args),
        Task::Demo(args) => demo::run(&args),
        Task::Run(args) => run::run(&args),
        Task::Soak(args) => soak::run(&args),
    };
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
