//! Log output: human-readable text, or one JSON object per line for log
//! shippers. The level comes from `RUST_LOG` (default `info`).

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-12-03T10:00:00Z  INFO xlb::daemon: reloaded changes=3`.
    #[default]
    Text,
    /// One JSON object per line, fields as keys.
    Json,
}

/// Installs the global subscriber; logs go to stderr (journald takes them
/// from there under systemd).
pub fn init(format: LogFormat) {
    // netlink-packet-route warns about every attribute newer than itself.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,netlink_packet_route=error"));
    // Colour codes only for a person at a terminal: journald and log files
    // would store them as text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // A second init (tests calling twice) is harmless: keep the first.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
