//! xlbctl: look at and steer a running xlb.
//!
//! Reads go straight to the pinned maps, so they work while xlbd is down
//! or restarting; names, pools and weights come from xlbd's status file
//! when it is there (without it, VIPs and backends show by id and
//! address). Mutations go to xlbd over its control socket.
//!
//! Exit codes: 0 done; 1 the maps, the status file or xlbd could not be
//! read or refused the request (also a `--wait` that timed out); 2 bad
//! usage (clap's own). `-o json` is the stable interface for scripts.

mod autoscaler;
mod backend;
mod config;
mod context;
mod ct;
mod maglev;
mod model;
mod output;
mod socket;
mod stats;
mod status;
mod svc;
mod vip;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

pub use context::Context;
pub use ct::monotonic_ns;
pub use output::Format;

use crate::daemon::status::DEFAULT_STATUS_FILE;

/// xlbctl shows and steers xlb: services, backends, tracked flows, Maglev
/// tables and counters. Example: `xlbctl svc list`.
#[derive(Debug, Parser)]
#[command(name = "xlbctl", version)]
pub struct Cli {
    /// Output format of read commands; JSON is the stable interface.
    #[arg(short, long, global = true, value_enum, default_value_t)]
    pub output: Format,
    /// xlbd's status file, the source of names and weights.
    #[arg(long, global = true, default_value = DEFAULT_STATUS_FILE)]
    pub status_file: PathBuf,
    /// Pin directory of the maps [default: the status file's, else
    /// /sys/fs/bpf/xlb].
    #[arg(long, global = true)]
    pub pin_path: Option<PathBuf>,
    /// xlbd's control socket [default: the status file's, else
    /// /run/xlb/xlbd.sock].
    #[arg(long, global = true)]
    pub socket: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Services: `xlbctl svc list --stats`.
    #[command(subcommand)]
    Svc(svc::SvcCommand),
    /// VIP routing policy: `xlbctl vip split llm canary=5%`.
    #[command(subcommand)]
    Vip(vip::VipCommand),
    /// Backends: `xlbctl backend drain 10.1.0.7 --wait`.
    #[command(subcommand)]
    Backend(backend::BackendCommand),
    /// Tracked flows: `xlbctl ct count --vip web`.
    #[command(subcommand)]
    Ct(ct::CtCommand),
    /// Maglev tables: `xlbctl maglev show web`.
    #[command(subcommand)]
    Maglev(maglev::MaglevCommand),
    /// Autoscaled pools: `xlbctl autoscaler status`.
    #[command(subcommand)]
    Autoscaler(autoscaler::AutoscalerCommand),
    /// Packets by outcome: `xlbctl stats --watch`.
    Stats(stats::StatsArgs),
    /// The daemon and data plane: `xlbctl status`.
    Status,
    /// A fleet's config in etcd: `xlbctl config push FILE --etcd ... --etcd-key ...`.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Make xlbd reload its config: `xlbctl reload`.
    Reload,
    /// Make xlbd take the data plane down and exit: `xlbctl detach`.
    Detach,
    /// Print shell completions: `xlbctl completions bash > /etc/bash_completion.d/xlbctl`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Parses the arguments, runs the command and maps the result to xlbctl's
/// exit codes.
pub fn main() -> ExitCode {
    // Die quietly on a closed pipe (`xlbctl stats | head`), as Unix tools
    // do, rather than panic in `println!`.
    // SAFETY: setting a signal's disposition to the default touches no memory.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xlbctl: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    if let Command::Completions { shell } = &cli.command {
        let mut command = Cli::command();
        clap_complete::generate(*shell, &mut command, "xlbctl", &mut std::io::stdout());
        return Ok(());
    }
    if let Command::Config(command) = &cli.command {
        return config::run(command);
    }
    let context = Context::new(cli);
    match &cli.command {
        Command::Svc(command) => svc::run(&context, command),
        Command::Vip(command) => vip::run(&context, command),
        Command::Backend(command) => backend::run(&context, command),
        Command::Ct(command) => ct::run(&context, command),
        Command::Maglev(command) => maglev::run(&context, command),
        Command::Autoscaler(command) => autoscaler::run(&context, command),
        Command::Stats(args) => stats::run(&context, args),
        Command::Status => status::run(&context),
        Command::Reload => socket::simple(&context, crate::daemon::control::Request::Reload),
        Command::Detach => socket::simple(&context, crate::daemon::control::Request::Detach),
        Command::Completions { .. } | Command::Config(_) => Ok(()),
    }
}

/// Parses a duration written as a whole number and `ms`, `s`, `m` or `h`.
///
/// # Errors
///
/// When `text` is not such a duration.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{text:?} is not a duration like 500ms, 30s or 5m");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let millis = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(bad()),
    };
    Ok(std::time::Duration::from_millis(
        number.saturating_mul(millis),
    ))
}
