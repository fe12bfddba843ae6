//! xlbd, the daemon that owns the maps: its subcommands, the run loop,
//! reloads, readiness and logging.
//!
//! Life of `xlbd run`: load and validate the config; open the maps (adopting
//! pinned ones); write the config into them; attach (adopting pinned links);
//! tell systemd it is ready; then reload on SIGHUP or when the config file
//! changes, until SIGTERM or SIGINT. Exiting leaves the data plane running.

pub mod canary;
pub mod check;
pub mod control;
pub mod detach;
pub mod etcd_source;
pub mod logging;
pub mod overrides;
pub mod reload_cmd;
pub mod run;
mod state;
pub mod status;
mod systemd;
pub mod view;
mod watch;

pub use logging::LogFormat;
pub use state::{ConfigSource, Daemon};
pub use status::{DaemonStatus, ReloadOutcome};
