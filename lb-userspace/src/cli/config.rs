//! `xlbctl config push FILE --etcd ENDPOINTS --etcd-key KEY`: validate a
//! config as xlbd would, then write it to the etcd key every xlbd of a
//! fleet watches. An invalid file is never written.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::config::Config;
use crate::dataplane::from_config::desired_state;
use crate::etcd::EtcdClient;

/// Config commands.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Validate FILE and write it to etcd:
    /// `xlbctl config push fleet.yaml --etcd 10.0.0.2:2379 --etcd-key /xlb/config`.
    Push {
        /// The config file.
        file: PathBuf,
        /// etcd endpoints, comma-separated (`host:port`, plain HTTP).
        #[arg(long)]
        etcd: String,
        /// The key xlbd watches (`xlbd run --etcd-key`).
        #[arg(long)]
        etcd_key: String,
    },
}

/// Runs a config command.
///
/// # Errors
///
/// When the file is invalid (nothing is written then) or etcd refuses.
pub fn run(command: &ConfigCommand) -> anyhow::Result<()> {
    let ConfigCommand::Push {
        file,
        etcd,
        etcd_key,
    } = command;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let loaded = Config::from_str(&text, &file.display().to_string())?;
    desired_state(&loaded.config)?;
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    let client = EtcdClient::new(etcd).map_err(anyhow::Error::msg)?;
    let revision = client.put(etcd_key, text.as_bytes())?;
    println!(
        "pushed {} to {etcd_key} (version {}, etcd revision {revision})",
        file.display(),
        loaded.config.version()
    );
    Ok(())
}
