//! `cargo xtask soak`: set up, then run the health-check and load-signal
//! soak (`lb-userspace/tests/health_soak.rs`) for as long as asked, its
//! figures (open fds, live tokio tasks, RSS, probes run) printed as it goes.

use anyhow::{Context as _, bail};
use clap::Args;

use crate::{cmd, setup};

/// Options of `cargo xtask soak`.
#[derive(Args)]
pub struct SoakArgs {
    /// How long to soak: seconds, or a number with s, m or h, e.g. `1h`.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub duration: u64,
}

/// Seconds in `text`: `90`, `90s`, `30m` or `1h`.
pub fn parse_duration(text: &str) -> anyhow::Result<u64> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let number: u64 = number
        .parse()
        .with_context(|| format!("{text:?} is not a duration such as 90s, 30m or 1h"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => bail!("{text:?}: the unit must be s, m or h"),
    };
    Ok(number * scale)
}

/// Runs setup (the test crate builds the XDP objects), then the soak.
pub fn run(args: &SoakArgs) -> anyhow::Result<()> {
    setup::run()?;
    cmd::run(
        cmd::cargo()
            .args(["test", "-p", "lb-userspace", "--test", "health_soak"])
            .args(["--", "--nocapture"])
            .env("XLB_SOAK_SECONDS", args.duration.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations_read_as_seconds_with_an_optional_unit() {
        let read = ["90", "90s", "30m", "1h"].map(|t| parse_duration(t).expect(t));
        assert_eq!(read, [90, 90, 1800, 3600]);
        for bad in ["", "h", "1d", "1.5h", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }
}
