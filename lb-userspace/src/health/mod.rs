//! Active health checks of pool backends, and the routing rules built on
//! them.
//!
//! [`HealthChecker`] probes each backend of each checked pool at its own
//! address (never through the VIP): a TCP connect, or an HTTP GET whose
//! status must be in the expected codes and whose body may have to contain
//! some text. Runs of consecutive results (`rise`, `fall`) flip a backend
//! between up and down; each flip is logged once at info with its reason
//! and counted in [`HealthMetrics`]. The result is a [`HealthView`] on a
//! `watch` channel.
//!
//! The rules over a view are pure functions: [`effective_weight`] (slow
//! start) and [`usable_backends`] (panic mode). [`steer`] applies both to
//! the data plane's desired state.
//!
//! Operator states (ready, drain, maint) come from the config and are not
//! the checker's business: a drained or maintained backend is still probed,
//! so its health is known when it returns.

mod checker;
mod metrics;
mod policy;
mod probe;
mod steer;
mod targets;
mod tracker;
mod view;

#[cfg(test)]
mod tests;

pub use checker::HealthChecker;
pub use metrics::{HealthCounts, HealthMetrics};
pub use policy::{
    PoolMember, RAMP_STEPS, Usable, effective_weight, in_panic, next_ramp_step, ramp_weight,
    usable_backends,
};
pub(crate) use probe::connect;
pub use probe::{BODY_LIMIT, ProbeFailure, ProbeKind, ProbeOutcome, ProbeSpec, probe};
pub use steer::steer;
pub use targets::{CheckPlan, check_plans};
pub use tracker::{HealthState, Tracker, Transition};
pub use view::{BackendHealth, HealthView, PoolPolicy};
