//! The autoscaler: how many backends each pool with an `autoscale`
//! section needs, and carrying that out.
//!
//! At every `interval` a pool's [`Engine`] turns its signal (new
//! connections per second per backend from the VIPs' counters, or the mean
//! load its `load_signal` reads) into a size. Target tracking asks for
//! `ceil(current x observed / target)` when the signal is outside the
//! tolerance band; step scaling adds or removes by the step crossed. The
//! size is clamped to [min, max] and to the step limits; a scale-out waits
//! out the cooldown after the last one; a scale-in goes only as low as the
//! highest recommendation of the stabilisation window. With `predictive`,
//! a [`Forecaster`] (MSTL with an ETS trend, from augurs; daily season) forecasts the
//! pool's new-connection rate over the horizon, and the size is raised to
//! meet it, never lowered by it.
//!
//! The actuators: [`StandbyPool`] brings the pool's `standby: true`
//! backends in with slow start and drains them out, releasing each once
//! its tracked flows are gone or its drain timeout passed; [`ExecActuator`]
//! runs a command with the pool and count on its own task. Every decision
//! that changes the size is logged at info with its inputs and reason;
//! [`AutoscaleRow`] carries the figures to the metrics and xlbctl.

mod engine;
mod exec;
mod forecast;
mod pool;
mod scaler;
mod standby;
mod status;

#[cfg(test)]
mod tests;

pub use engine::{Decision, Direction, Engine, Inputs};
pub use exec::{ExecActuator, ExecFigures, FIRST_BACKOFF, MAX_BACKOFF};
pub use forecast::Forecaster;
pub use pool::{DRAIN_CHECK, PoolReadings};
pub use scaler::Autoscaler;
pub use standby::{Move, Phase, PhaseName, StandbyPool};
pub use status::{AutoscaleRow, MemberRow};
