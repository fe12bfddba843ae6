//! Validation of a pool's `autoscale` section: bounds, timings, the
//! policy and its signal (checked against the pool's load signal); the
//! forecast and the actuator are in `actuator`.

use std::time::Duration;

use serde_saphyr::Location;

use super::actuator::{actuator, check_standby, predictive};
use super::raw::{At, RawAutoscale, RawStep, RawStepScaling, RawTargetTracking, SignalName};
use super::scaling::{Actuator, Autoscale, ScalePolicy, ScaleSignal, ScaleStep};
use super::types::{BackendConfig, LoadSignal};
use super::validate::Checker;
use super::values;

/// Autoscale defaults: decision interval, cooldown, stabilisation window.
pub const DEFAULT_SCALE_INTERVAL: Duration = Duration::from_secs(5);
/// See [`DEFAULT_SCALE_INTERVAL`].
pub const DEFAULT_SCALE_OUT_COOLDOWN: Duration = Duration::from_secs(60);
/// See [`DEFAULT_SCALE_INTERVAL`].
pub const DEFAULT_SCALE_IN_STABILIZATION: Duration = Duration::from_secs(300);
/// Relative band around a target where nothing changes.
pub const DEFAULT_TOLERANCE: f64 = 0.1;

/// What the validation of `autoscale` needs to know about its pool.
pub(super) struct PoolFacts<'a> {
    pub backends: &'a [BackendConfig],
    pub load_signal: Option<&'a LoadSignal>,
}

/// Validates an `autoscale` block at `field`.
pub(super) fn autoscale(
    check: &mut Checker,
    raw: &At<RawAutoscale>,
    field: &str,
    pool: &PoolFacts,
) -> Option<Autoscale> {
    let at = raw.referenced;
    let raw = &raw.value;
    let mut duration = |text: &Option<At<String>>, name: &str, default: Duration| {
        positive_duration(check, text, &format!("{field}.{name}"), default)
    };
    let interval = duration(&raw.interval, "interval", DEFAULT_SCALE_INTERVAL);
    let cooldown = &raw.scale_out_cooldown;
    let scale_out_cooldown = duration(cooldown, "scale_out_cooldown", DEFAULT_SCALE_OUT_COOLDOWN);
    let window = &raw.scale_in_stabilization;
    let scale_in_stabilization = duration(
        window,
        "scale_in_stabilization",
        DEFAULT_SCALE_IN_STABILIZATION,
    );

    let (min, max) = bounds(check, raw, at, field)?;
    let mut step_limit = |value: &Option<At<u32>>, name: &str| {
        let value = value.as_ref()?;
        if value.value == 0 {
            check.error(
                value.referenced,
                &format!("{field}.{name}"),
                "must be above 0",
            );
        }
        Some(value.value)
    };
    let max_step_up = step_limit(&raw.max_step_up, "max_step_up");
    let max_step_down = step_limit(&raw.max_step_down, "max_step_down");

    let policy = policy(check, raw, at, field, pool.load_signal)?;
    let predictive = raw
        .predictive
        .as_ref()
        .and_then(|p| predictive(check, p, &format!("{field}.predictive")));
    let actuator = actuator(check, raw.actuator.as_ref(), &format!("{field}.actuator"));
    if let Actuator::Standby { .. } = actuator {
        check_standby(check, pool.backends, (at, field), max, raw.max.as_ref());
    }
    Some(Autoscale {
        interval,
        min,
        max,
        scale_out_cooldown,
        scale_in_stabilization,
        max_step_up,
        max_step_down,
        policy,
        predictive,
        actuator,
    })
}

/// `min` (default 1, at least 1) and `max` (required, at least `min`).
fn bounds(
    check: &mut Checker,
    raw: &RawAutoscale,
    at: Location,
    field: &str,
) -> Option<(u32, u32)> {
    let min = raw.min.as_ref().map_or(1, |min| {
        if min.value == 0 {
            check.error(
                min.referenced,
                &format!("{field}.min"),
                "must be at least 1",
            );
        }
        min.value
    });
    let max = check.require(&raw.max, at, &format!("{field}.max"))?;
    if max.value < min {
        let message = format!("{} is below min {min}", max.value);
        check.error(max.referenced, &format!("{field}.max"), message);
    }
    Some((min, max.value))
}

/// Exactly one of `target_tracking` and `step_scaling`.
fn policy(
    check: &mut Checker,
    raw: &RawAutoscale,
    at: Location,
    field: &str,
    load: Option<&LoadSignal>,
) -> Option<ScalePolicy> {
    match (&raw.target_tracking, &raw.step_scaling) {
        (Some(tracking), None) => {
            target_tracking(check, tracking, &format!("{field}.target_tracking"), load)
        }
        (None, Some(steps)) => step_scaling(check, steps, &format!("{field}.step_scaling"), load),
        (Some(_), Some(steps)) => {
            let message = "give target_tracking or step_scaling, not both";
            check.error(steps.referenced, &format!("{field}.step_scaling"), message);
            None
        }
        (None, None) => {
            let message = "missing; give target_tracking or step_scaling";
            check.error(at, &format!("{field}.target_tracking"), message);
            None
        }
    }
}

fn target_tracking(
    check: &mut Checker,
    raw: &At<RawTargetTracking>,
    field: &str,
    load: Option<&LoadSignal>,
) -> Option<ScalePolicy> {
    let at = raw.referenced;
    let raw = &raw.value;
    let signal = signal(check, (&raw.signal, &raw.metric), at, field, load);
    let target = check.require(&raw.target, at, &format!("{field}.target"));
    let target = target.map(|target| {
        if !(target.value > 0.0 && target.value < 1e12) {
            let message = format!("{} is out of range (0, 1e12)", target.value);
            check.error(target.referenced, &format!("{field}.target"), message);
        }
        target.value
    });
    let tolerance = raw.tolerance.as_ref().map_or(DEFAULT_TOLERANCE, |t| {
        if !(0.0..1.0).contains(&t.value) {
            let message = format!("{} is out of range [0, 1)", t.value);
            check.error(t.referenced, &format!("{field}.tolerance"), message);
        }
        t.value
    });
    Some(ScalePolicy::TargetTracking {
        signal: signal?,
        target: target?,
        tolerance,
    })
}

fn step_scaling(
    check: &mut Checker,
    raw: &At<RawStepScaling>,
    field: &str,
    load: Option<&LoadSignal>,
) -> Option<ScalePolicy> {
    let at = raw.referenced;
    let raw = &raw.value;
    let signal = signal(check, (&raw.signal, &raw.metric), at, field, load);
    let list = check.require(&raw.steps, at, &format!("{field}.steps"))?;
    if list.value.is_empty() {
        check.error(
            list.referenced,
            &format!("{field}.steps"),
            "list at least one step",
        );
    }
    let steps: Vec<ScaleStep> = (list.value.iter().enumerate())
        .filter_map(|(i, item)| step(check, item, &format!("{field}.steps[{i}]")))
        .collect();
    Some(ScalePolicy::StepScaling {
        signal: signal?,
        steps,
    })
}

/// One step: `above` with `add`, or `below` with `remove`.
fn step(check: &mut Checker, item: &At<RawStep>, field: &str) -> Option<ScaleStep> {
    let raw = &item.value;
    let count = |check: &mut Checker, value: &At<u32>, name: &str| {
        if value.value == 0 {
            check.error(
                value.referenced,
                &format!("{field}.{name}"),
                "must be above 0",
            );
        }
        value.value
    };
    match (&raw.above, &raw.add, &raw.below, &raw.remove) {
        (Some(above), Some(add), None, None) => Some(ScaleStep::Above {
            above: above.value,
            add: count(check, add, "add"),
        }),
        (None, None, Some(below), Some(remove)) => Some(ScaleStep::Below {
            below: below.value,
            remove: count(check, remove, "remove"),
        }),
        _ => {
            let message = "write {above: X, add: N} or {below: X, remove: N}";
            check.error(item.referenced, field, message);
            None
        }
    }
}

/// The signal, checked against the load signal it reads (all but
/// `new_connections` read the pool's `load_signal`).
fn signal(
    check: &mut Checker,
    (name, metric): (&Option<At<SignalName>>, &Option<At<String>>),
    at: Location,
    field: &str,
    load: Option<&LoadSignal>,
) -> Option<ScaleSignal> {
    let signal_field = format!("{field}.signal");
    let name = check.require(name, at, &signal_field)?;
    let (signal, wanted) = match name.value {
        SignalName::NewConnections => (ScaleSignal::NewConnections, None),
        SignalName::Gpu => (ScaleSignal::Gpu, Some("DCGM_FI_DEV_GPU_UTIL")),
        SignalName::Cpu => (ScaleSignal::Cpu, Some("node_cpu_seconds_total")),
        SignalName::VllmWaiting => (ScaleSignal::VllmWaiting, Some("vllm:num_requests_waiting")),
        SignalName::Gauge => {
            let metric = check.require(metric, at, &format!("{field}.metric"))?;
            (ScaleSignal::Gauge(metric.value.clone()), None)
        }
    };
    if let (Some(metric), false) = (metric, matches!(signal, ScaleSignal::Gauge(_))) {
        check.error(
            metric.referenced,
            &format!("{field}.metric"),
            "applies to signal gauge only",
        );
    }
    if signal == ScaleSignal::NewConnections {
        return Some(signal);
    }
    let Some(load) = load else {
        let message = format!(
            "signal {} reads the pool's load_signal, which this pool does not have",
            signal.name()
        );
        check.error(name.referenced, &signal_field, message);
        return None;
    };
    let wanted = wanted.unwrap_or(signal.name());
    if load.metric != wanted {
        let message = format!(
            "signal {} needs the pool's load_signal to read {wanted}, not {}",
            signal.name(),
            load.metric
        );
        check.error(name.referenced, &signal_field, message);
    }
    Some(signal)
}

/// A duration above 0, or `default` when not written.
pub(super) fn positive_duration(
    check: &mut Checker,
    text: &Option<At<String>>,
    field: &str,
    default: Duration,
) -> Duration {
    let Some(text) = text else { return default };
    let value = check
        .parse(text, field, values::duration)
        .unwrap_or(default);
    if value.is_zero() {
        check.error(text.referenced, field, "must be longer than 0");
    }
    value
}
