//! Validation of the `predictive` and `actuator` parts of a pool's
//! `autoscale` section.

use std::path::PathBuf;
use std::time::Duration;

use serde_saphyr::Location;

use super::autoscale::positive_duration;
use super::raw::{ActuatorName, At, RawActuator, RawPredictive};
use super::scaling::{Actuator, Predictive};
use super::types::BackendConfig;
use super::validate::Checker;

/// Forecast defaults: horizon, season, bucket.
pub const DEFAULT_HORIZON: Duration = Duration::from_secs(30 * 60);
/// See [`DEFAULT_HORIZON`].
pub const DEFAULT_SEASON: Duration = Duration::from_secs(24 * 3600);
/// See [`DEFAULT_HORIZON`].
pub const DEFAULT_BUCKET: Duration = Duration::from_secs(5 * 60);
/// Accepted forecast horizons.
pub const HORIZON_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(15 * 60)..=Duration::from_secs(60 * 60);
/// Most buckets in one season, which bounds the forecaster's memory and
/// the size of each fit (see `autoscale::forecast`).
pub const MAX_SEASON_BUCKETS: u128 = 1_000;
/// Standby defaults: drain timeout, idle time of a flow.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(300);
/// See [`DEFAULT_DRAIN_TIMEOUT`].
pub const DEFAULT_DRAIN_IDLE: Duration = Duration::from_secs(10);
/// Longest run of one `exec` attempt.
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(30);

/// Validates a `predictive` block at `field`.
pub(super) fn predictive(
    check: &mut Checker,
    raw: &At<RawPredictive>,
    field: &str,
) -> Option<Predictive> {
    let raw = &raw.value;
    let horizon_field = format!("{field}.horizon");
    let horizon = positive_duration(check, &raw.horizon, &horizon_field, DEFAULT_HORIZON);
    if let Some(text) = raw
        .horizon
        .as_ref()
        .filter(|_| !HORIZON_RANGE.contains(&horizon))
    {
        check.error(
            text.referenced,
            &horizon_field,
            format!("{horizon:?} is not 15m to 60m"),
        );
    }
    let season = positive_duration(
        check,
        &raw.season,
        &format!("{field}.season"),
        DEFAULT_SEASON,
    );
    let bucket_field = format!("{field}.bucket");
    let bucket = positive_duration(check, &raw.bucket, &bucket_field, DEFAULT_BUCKET);
    let buckets = season.as_nanos() / bucket.as_nanos().max(1);
    if !(2..=MAX_SEASON_BUCKETS).contains(&buckets) || bucket > horizon {
        let at = raw
            .bucket
            .as_ref()
            .or(raw.season.as_ref())
            .map(|t| t.referenced);
        let message = format!(
            "a season of {season:?} in buckets of {bucket:?} gives {buckets} buckets; \
             2 to {MAX_SEASON_BUCKETS} are supported, each no longer than the horizon"
        );
        check.error(at.unwrap_or(Location::UNKNOWN), &bucket_field, message);
    }
    Some(Predictive {
        horizon,
        season,
        bucket,
    })
}

/// Validates the `actuator` block at `field`; standby when absent.
pub(super) fn actuator(
    check: &mut Checker,
    raw: Option<&At<RawActuator>>,
    field: &str,
) -> Actuator {
    let default_standby = Actuator::Standby {
        drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        drain_idle: DEFAULT_DRAIN_IDLE,
    };
    let Some(raw) = raw else {
        return default_standby;
    };
    let at = raw.referenced;
    let raw = &raw.value;
    let duration = |check: &mut Checker, text: &Option<At<String>>, name: &str, default| {
        positive_duration(check, text, &format!("{field}.{name}"), default)
    };
    match raw.kind {
        ActuatorName::Standby => {
            let exec_only = [
                ("command", raw.command.as_ref()),
                ("timeout", raw.timeout.as_ref()),
            ];
            reject_keys(check, field, "standby", exec_only);
            let drain_timeout = &raw.drain_timeout;
            Actuator::Standby {
                drain_timeout: duration(
                    check,
                    drain_timeout,
                    "drain_timeout",
                    DEFAULT_DRAIN_TIMEOUT,
                ),
                drain_idle: duration(check, &raw.drain_idle, "drain_idle", DEFAULT_DRAIN_IDLE),
            }
        }
        ActuatorName::Exec => {
            let timeout = duration(check, &raw.timeout, "timeout", DEFAULT_EXEC_TIMEOUT);
            let drain = [
                ("drain_timeout", raw.drain_timeout.as_ref()),
                ("drain_idle", raw.drain_idle.as_ref()),
            ];
            reject_keys(check, field, "exec", drain);
            let command_field = format!("{field}.command");
            let command = check.require(&raw.command, at, &command_field).map(|c| {
                if !c.value.starts_with('/') {
                    let message = format!("{:?} is not an absolute path", c.value);
                    check.error(c.referenced, &command_field, message);
                }
                PathBuf::from(&c.value)
            });
            Actuator::Exec {
                command: command.unwrap_or_default(),
                args: raw.args.clone(),
                timeout,
            }
        }
    }
}

/// Errors for keys that belong to another actuator kind.
fn reject_keys<const N: usize>(
    check: &mut Checker,
    field: &str,
    kind: &str,
    keys: [(&str, Option<&At<String>>); N],
) {
    for (name, value) in keys {
        if let Some(value) = value {
            let message = format!("does not apply to the {kind} actuator");
            check.error(value.referenced, &format!("{field}.{name}"), message);
        }
    }
}

/// With the standby actuator, `max` fits the pool, and the pool's
/// backends outside standby are within [min, max].
pub(super) fn check_standby(
    check: &mut Checker,
    backends: &[BackendConfig],
    (at, field): (Location, &str),
    max: u32,
    raw_max: Option<&At<u32>>,
) {
    let total = u32::try_from(backends.len()).unwrap_or(u32::MAX);
    let standby = backends.iter().filter(|b| b.standby).count();
    if max > total {
        let message = format!("{max} is more than the pool's {total} backends");
        let at = raw_max.map_or(at, |m| m.referenced);
        check.error(at, &format!("{field}.max"), message);
    }
    if standby == 0 {
        let message = "no backend of the pool is marked standby: true, so the standby \
                       actuator has nothing to bring in";
        check.warn(at, &format!("{field}.actuator"), message);
    }
}
