//! xlbd, the daemon that owns xlb's maps. `main` only parses and
//! dispatches; each subcommand lives in its own module of the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use xlb::daemon::check::{CheckArgs, check};
use xlb::daemon::detach::{DEFAULT_PIN_PATH, DetachArgs, detach};
use xlb::daemon::reload_cmd::{ReloadArgs, reload};
use xlb::daemon::run::{RunArgs, run};
use xlb::decap::{DecapArgs, decap};

/// xlbd loads xlb's XDP program, writes the config into its maps and keeps
/// them current. Example: `xlbd run --config /etc/xlb/xlb.yaml`.
#[derive(Debug, Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    /// Take the data plane down: the same as `xlbd detach`.
    /// Example: `xlbd --detach --pin-path /sys/fs/bpf/xlb`.
    #[arg(long)]
    detach: bool,
    /// Pin directory for `--detach`.
    #[arg(long, requires = "detach", default_value = DEFAULT_PIN_PATH)]
    pin_path: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: `xlbd run --config /etc/xlb/xlb.yaml`.
    Run(RunArgs),
    /// Validate a config and exit 0 or 1: `xlbd check xlb.yaml`.
    Check(CheckArgs),
    /// Remove the program and all pins: `xlbd detach`.
    Detach(DetachArgs),
    /// Make the running daemon reload, exiting 1 if it refuses the
    /// config: `xlbd reload`.
    Reload(ReloadArgs),
    /// On a backend, attach the decapsulating program:
    /// `xlbd decap --iface eth0 --addr 10.0.0.2`.
    Decap(DecapArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match (&cli.command, cli.detach) {
        (_, true) => detach(&DetachArgs {
            pin_path: cli.pin_path.clone(),
        }),
        (Some(Command::Run(args)), false) => run(args),
        (Some(Command::Check(args)), false) => check(args),
        (Some(Command::Detach(args)), false) => detach(args),
        (Some(Command::Reload(args)), false) => reload(args),
        (Some(Command::Decap(args)), false) => decap(args),
        (None, false) => Err(anyhow::anyhow!("no command given; see `xlbd --help`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xlbd: {error:#}");
            ExitCode::FAILURE
        }
    }
}
