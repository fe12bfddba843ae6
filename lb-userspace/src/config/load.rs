//! Validation of a pool's `load_signal`: which metric to read where, and
//! the knobs of the weight it steers.

use std::time::Duration;

use super::pools::{
    DEFAULT_LOAD_INTERVAL, DEFAULT_LOAD_PATH, DEFAULT_LOAD_TIMEOUT, timing, url_path,
};
use super::raw::{At, RawLoadSignal};
use super::types::LoadSignal;
use super::validate::Checker;
use super::values;

/// Load signal defaults: the metric (dcgm-exporter's GPU utilisation, in
/// percent) and its scale.
pub const DEFAULT_LOAD_METRIC: &str = "DCGM_FI_DEV_GPU_UTIL";
/// See [`DEFAULT_LOAD_METRIC`].
pub const DEFAULT_LOAD_SCALE: f64 = 100.0;
/// Port of the metrics endpoint: dcgm-exporter's.
pub const DEFAULT_LOAD_PORT: u16 = 9400;
/// Load above which weights are lowered.
pub const DEFAULT_LOAD_TARGET: f64 = 0.7;
/// Weight of a new reading in the moving average.
pub const DEFAULT_EWMA_ALPHA: f64 = 0.5;
/// Factor bounds on the configured weight.
pub const DEFAULT_MIN_WEIGHT_FACTOR: f64 = 0.1;
/// See [`DEFAULT_MIN_WEIGHT_FACTOR`].
pub const DEFAULT_MAX_WEIGHT_FACTOR: f64 = 1.0;
/// Smallest factor change that rebuilds the tables.
pub const DEFAULT_LOAD_STEP: f64 = 0.1;
/// Shortest time between two load-driven weight changes of a pool.
pub const DEFAULT_LOAD_MIN_INTERVAL: Duration = Duration::from_secs(5);
/// Largest factor change of one backend at one rebuild.
pub const DEFAULT_MAX_MOVED_SHARE: f64 = 0.2;
/// How long the last good weight holds when readings fail.
pub const DEFAULT_LOAD_GRACE: Duration = Duration::from_secs(15);

/// Validates a `load_signal` block at `field`.
pub(super) fn load_signal(check: &mut Checker, raw: &At<RawLoadSignal>, field: &str) -> LoadSignal {
    let at = raw.referenced;
    let raw = &raw.value;
    let defaults = (DEFAULT_LOAD_INTERVAL, DEFAULT_LOAD_TIMEOUT);
    let (interval, timeout) = timing(check, (&raw.interval, &raw.timeout), at, field, defaults);

    let metric = raw
        .metric
        .as_ref()
        .map_or(DEFAULT_LOAD_METRIC.to_owned(), |m| {
            if !is_metric_name(&m.value) {
                let message = format!("{:?} is not a metric name of [a-zA-Z0-9_:]", m.value);
                check.error(m.referenced, &format!("{field}.metric"), message);
            }
            m.value.clone()
        });
    let url_path = match &raw.url_path {
        Some(p) => url_path(check, p, &format!("{field}.url_path")),
        None => DEFAULT_LOAD_PATH.to_owned(),
    };
    let port = raw.port.as_ref().map_or(DEFAULT_LOAD_PORT, |port| {
        if port.value == 0 {
            check.error(port.referenced, &format!("{field}.port"), "must be above 0");
        }
        port.value
    });

    let mut number = |value: &Option<At<f64>>, name: &str, default: f64, low: f64, high: f64| {
        let Some(value) = value else { return default };
        if !(value.value > low && value.value <= high) {
            let message = format!("{} is out of range ({low}, {high}]", value.value);
            check.error(value.referenced, &format!("{field}.{name}"), message);
        }
        value.value
    };
    let scale = number(&raw.scale, "scale", DEFAULT_LOAD_SCALE, 0.0, 1e12);
    let target = number(&raw.target, "target", DEFAULT_LOAD_TARGET, 0.0, 0.99);
    let ewma_alpha = number(&raw.ewma_alpha, "ewma_alpha", DEFAULT_EWMA_ALPHA, 0.0, 1.0);
    let min_factor = &raw.min_weight_factor;
    let min_weight_factor = number(
        min_factor,
        "min_weight_factor",
        DEFAULT_MIN_WEIGHT_FACTOR,
        0.0,
        1.0,
    );
    let max_factor = &raw.max_weight_factor;
    let max_weight_factor = number(
        max_factor,
        "max_weight_factor",
        DEFAULT_MAX_WEIGHT_FACTOR,
        0.0,
        1.0,
    );
    let step = number(&raw.step, "step", DEFAULT_LOAD_STEP, 0.0, 1.0);
    let moved = &raw.max_moved_share;
    let max_moved_share = number(moved, "max_moved_share", DEFAULT_MAX_MOVED_SHARE, 0.0, 1.0);
    if min_weight_factor > max_weight_factor
        && let Some(value) = &raw.max_weight_factor
    {
        let message = format!("{max_weight_factor} is below min_weight_factor {min_weight_factor}");
        check.error(
            value.referenced,
            &format!("{field}.max_weight_factor"),
            message,
        );
    }

    let mut duration = |text: &Option<At<String>>, name: &str, default: Duration| {
        let Some(text) = text else { return default };
        let field = format!("{field}.{name}");
        check
            .parse(text, &field, values::duration)
            .unwrap_or(default)
    };
    let min_interval = duration(&raw.min_interval, "min_interval", DEFAULT_LOAD_MIN_INTERVAL);
    let grace = duration(&raw.grace, "grace", DEFAULT_LOAD_GRACE);

    LoadSignal {
        metric,
        labels: raw.labels.clone(),
        kind: raw.kind,
        scale,
        target,
        port,
        url_path,
        interval,
        timeout,
        ewma_alpha,
        min_weight_factor,
        max_weight_factor,
        step,
        min_interval,
        max_moved_share,
        grace,
    }
}

/// Whether `name` is a Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}
