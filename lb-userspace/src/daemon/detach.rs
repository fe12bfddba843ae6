//! `xlbd detach`: take the data plane down on purpose.

use std::path::PathBuf;

use crate::dataplane::{self, PinDir};

pub use crate::config::DEFAULT_PIN_PATH;

/// Arguments of `xlbd detach`.
#[derive(Clone, Debug, clap::Args)]
pub struct DetachArgs {
    /// The pin directory of the data plane to remove, e.g.
    /// `xlbd detach --pin-path /sys/fs/bpf/xlb`.
    #[arg(long, default_value = DEFAULT_PIN_PATH)]
    pub pin_path: PathBuf,
}

/// Removes every link and map pin under the pin directory. Run it with
/// xlbd stopped: a running xlbd holds its links open.
///
/// # Errors
///
/// When a pin cannot be removed.
pub fn detach(args: &DetachArgs) -> anyhow::Result<()> {
    dataplane::detach(&PinDir::new(&args.pin_path))?;
    Ok(())
}
