//! `cargo xtask`: the project's tasks, one module per command.
//!
//! Runs with only stable Rust and crates.io, so `cargo xtask setup` works on
//! a machine that has nothing else yet.

mod cmd;
mod setup;
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
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Setup => setup::run(),
        Task::Test(args) => test::run(&args),
    };
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
