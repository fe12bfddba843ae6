//! `xlbd check`: validate a config without touching the data plane.

use std::path::PathBuf;

use crate::config;
use crate::dataplane::from_config::desired_state;

/// Arguments of `xlbd check`.
#[derive(Clone, Debug, clap::Args)]
pub struct CheckArgs {
    /// The config file to validate, e.g. `xlbd check /etc/xlb/xlb.yaml`.
    pub config: PathBuf,
}

/// Loads and validates the config as a reload would, including building
/// its Maglev tables' inputs.
///
/// # Errors
///
/// The first problem, naming the file, line and field.
pub fn check(args: &CheckArgs) -> anyhow::Result<()> {
    let report = config::check(&args.config)?;
    desired_state(&report.config)?;
    println!("{report}");
    Ok(())
}
