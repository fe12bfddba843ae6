//! The decision engine: a pure function of the policy, the pool's size,
//! what was observed and forecast, and the time the caller gives it. It
//! holds the scale-out cooldown and the scale-in stabilisation window
//! itself, so tests drive it with a simulated clock.

use std::collections::VecDeque;
use std::time::Instant;

use crate::config::{Autoscale, ScalePolicy, ScaleStep};

/// Which way a decision moved the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// More backends.
    Up,
    /// Fewer backends.
    Down,
    /// No change.
    Hold,
}

impl Direction {
    /// Lowercase name, as in logs and the `direction` label.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
            Direction::Hold => "hold",
        }
    }
}

/// What the engine is told at one evaluation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Inputs {
    /// Backends in service now.
    pub current: u32,
    /// The policy's signal; `None` when there is no usable reading.
    pub observed: Option<f64>,
    /// The pool's new connections per second now, for the forecast's
    /// ratio; `None` without a reading.
    pub actual_rate: Option<f64>,
    /// The forecast rate at the horizon; `None` without a forecast.
    pub forecast_rate: Option<f64>,
}

/// One decision, with what it was made from.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// Backends the pool should have.
    pub desired: u32,
    /// `desired` against the current size.
    pub direction: Direction,
    /// What the policy alone recommended, before the forecast, bounds,
    /// step limits, cooldown and window.
    pub recommended: u32,
    /// Why, in a few words: "observed 42.0 is 68 % above target 25.0".
    pub reason: String,
}

/// The engine of one pool: its policy and the memory of past decisions.
#[derive(Clone, Debug)]
pub struct Engine {
    policy: Autoscale,
    last_scale_out: Option<Instant>,
    // (when, recommendation), oldest first, spanning the stabilisation
    // window; seeded with the size at start so scale-in waits a window.
    recommendations: VecDeque<(Instant, u32)>,
}

impl Engine {
    /// An engine for `policy` starting at `now` with `current` backends.
    pub fn new(policy: Autoscale, now: Instant, current: u32) -> Self {
        Self {
            policy,
            last_scale_out: None,
            recommendations: VecDeque::from([(now, current)]),
        }
    }

    /// The policy it runs.
    pub fn policy(&self) -> &Autoscale {
        &self.policy
    }

    /// Decides the size at `now` from `inputs`.
    pub fn decide(&mut self, now: Instant, inputs: &Inputs) -> Decision {
        let current = inputs.current;
        let Some(observed) = inputs.observed.filter(|v| v.is_finite() && *v >= 0.0) else {
            // Missing data: the size holds, and the window learns nothing.
            let desired = self.clamp(current);
            let reason = "no usable reading of the signal; holding".to_owned();
            return finish(current, desired, current, reason);
        };
        let (raw, mut reason) = recommend(&self.policy.policy, current, observed);
        let mut recommended = raw.ceil().clamp(0.0, f64::from(u32::MAX)) as u32;

        // Ahead of the forecast: out only, never in on a forecast alone.
        if let Some(ahead) = self.ahead_of_forecast(raw, inputs)
            && ahead > recommended
        {
            reason = format!("{reason}; forecast asks for {ahead}");
            recommended = ahead;
        }

        let bounded = self.clamp(recommended);
        self.remember(now, bounded);
        let desired = if bounded > current {
            self.scale_out(now, current, bounded, &mut reason)
        } else if bounded < current {
            self.scale_in(current, &mut reason)
        } else {
            current
        };
        finish(current, desired, recommended, reason)
    }

    /// `ceil(raw x forecast / actual)` when the forecast is above the
    /// actual rate.
    fn ahead_of_forecast(&self, raw: f64, inputs: &Inputs) -> Option<u32> {
        self.policy.predictive?;
        let (forecast, actual) = (inputs.forecast_rate?, inputs.actual_rate?);
        if !(forecast.is_finite() && actual > 0.0 && forecast > actual) {
            return None;
        }
        let base = raw.max(f64::from(inputs.current.max(1)));
        Some((base * forecast / actual).ceil().min(f64::from(u32::MAX)) as u32)
    }

    fn scale_out(&mut self, now: Instant, current: u32, bounded: u32, reason: &mut String) -> u32 {
        let cooldown = self.policy.scale_out_cooldown;
        if let Some(last) = self.last_scale_out
            && now.saturating_duration_since(last) < cooldown
        {
            let left = cooldown - now.saturating_duration_since(last);
            *reason = format!("{reason}; scale-out cooldown has {} s left", left.as_secs());
            return current;
        }
        let step = self.policy.max_step_up.unwrap_or(u32::MAX);
        let desired = bounded.min(current.saturating_add(step));
        self.last_scale_out = Some(now);
        desired
    }

    fn scale_in(&self, current: u32, reason: &mut String) -> u32 {
        // The highest recommendation of the window: a short dip removes
        // nothing, and at start nothing is removed for a whole window.
        let window_max = self.recommendations.iter().map(|(_, r)| *r).max();
        let stabilised = window_max.unwrap_or(current).min(current);
        if stabilised >= current {
            let window = self.policy.scale_in_stabilization;
            *reason = format!(
                "{reason}; the last {} s asked for {current}",
                window.as_secs()
            );
            return current;
        }
        let step = self.policy.max_step_down.unwrap_or(u32::MAX);
        stabilised.max(current.saturating_sub(step))
    }

    fn remember(&mut self, now: Instant, recommendation: u32) {
        let window = self.policy.scale_in_stabilization;
        while let Some(&(at, _)) = self.recommendations.front() {
            if now.saturating_duration_since(at) < window {
                break;
            }
            self.recommendations.pop_front();
        }
        self.recommendations.push_back((now, recommendation));
    }

    fn clamp(&self, count: u32) -> u32 {
        count.clamp(self.policy.min, self.policy.max)
    }
}

/// The decision to move from `current` to `desired`.
fn finish(current: u32, desired: u32, recommended: u32, reason: String) -> Decision {
    let direction = match desired.cmp(&current) {
        std::cmp::Ordering::Greater => Direction::Up,
        std::cmp::Ordering::Less => Direction::Down,
        std::cmp::Ordering::Equal => Direction::Hold,
    };
    Decision {
        desired,
        direction,
        recommended,
        reason,
    }
}

/// What the policy alone asks for, unrounded, and why.
fn recommend(policy: &ScalePolicy, current: u32, observed: f64) -> (f64, String) {
    let current_f = f64::from(current);
    match policy {
        ScalePolicy::TargetTracking {
            target, tolerance, ..
        } => {
            let ratio = observed / target;
            let off = (ratio - 1.0) * 100.0;
            if (ratio - 1.0).abs() <= *tolerance {
                let reason = format!("observed {observed:.3} is within the band of {target}");
                return (current_f, reason);
            }
            let side = if off > 0.0 { "above" } else { "below" };
            let reason = format!(
                "observed {observed:.3} is {:.0} % {side} target {target}",
                off.abs()
            );
            // An empty pool cannot scale by a ratio; one backend starts it.
            (current_f.max(1.0) * ratio, reason)
        }
        ScalePolicy::StepScaling { steps, .. } => step_change(steps, current, observed),
    }
}

/// The step whose threshold `observed` crosses furthest: the highest
/// `above` under it, else the lowest `below` over it.
fn step_change(steps: &[ScaleStep], current: u32, observed: f64) -> (f64, String) {
    let up = steps
        .iter()
        .filter_map(|s| match *s {
            ScaleStep::Above { above, add } if observed > above => Some((above, add)),
            _ => None,
        })
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((above, add)) = up {
        let reason = format!("observed {observed:.3} is above {above}: add {add}");
        return (f64::from(current.saturating_add(add)), reason);
    }
    let down = steps
        .iter()
        .filter_map(|s| match *s {
            ScaleStep::Below { below, remove } if observed < below => Some((below, remove)),
            _ => None,
        })
        .min_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((below, remove)) = down {
        let reason = format!("observed {observed:.3} is below {below}: remove {remove}");
        return (f64::from(current.saturating_sub(remove)), reason);
    }
    let reason = format!("observed {observed:.3} crosses no step");
    (f64::from(current), reason)
}
