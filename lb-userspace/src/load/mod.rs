//! Effective weights driven by the load backends report about themselves.
//!
//! For each pool with a `load_signal`, [`LoadTracker`] scrapes every
//! backend's Prometheus-text endpoint (its own address, the signal's port
//! and path) on an interval, within a timeout, the body capped at
//! [`SCRAPE_BODY_LIMIT`]. The configured metric (dcgm-exporter's
//! `DCGM_FI_DEV_GPU_UTIL`, vLLM's `vllm:kv_cache_usage_perc` or
//! `vllm:num_requests_waiting`, node_exporter's `node_cpu_seconds_total`
//! as a rate, or any gauge) is read from the samples matching its labels:
//! a gauge's mean, or a counter sum's per-second increase, divided by
//! `scale` to give a load where 1 is full.
//!
//! The load is smoothed (EWMA) and turned into a factor on the configured
//! weight by [`headroom_factor`]: full weight up to `target`, then falling
//! with the headroom left, clamped to `[min_weight_factor,
//! max_weight_factor]`. A factor only moves when it is more than `step`
//! off ([`next_factor`]), a pool's factors move at most once per
//! `min_interval`, and one move shifts at most `max_moved_share` of the
//! pool's weight ([`cap_pool_move`]), which bounds the share of table
//! slots a rebuild moves. Each move is logged at info with the reading
//! behind it.
//!
//! A read that fails (timeout, refused, HTTP error, too large, not
//! exposition text, metric missing, or a value that is NaN, infinite,
//! negative or more than [`ABSURD_LOAD`] times the scale) is counted by
//! its outcome; the last good factor then holds for `grace`, after which
//! the configured weight returns. [`steer`] applies the factors to the
//! data plane's desired state, after the health rules.

mod cost;
mod exposition;
mod headroom;
mod metrics;
mod reading;
mod scrape;
mod tracker;
mod view;

pub use cost::{cost_tiers, serving_backends, steer_cost};
pub use exposition::{ExpositionError, Selector, select};
pub use headroom::{
    ABSURD_LOAD, ProposedMove, cap_pool_move, ewma, headroom_factor, next_factor, plausible,
    scaled_weight,
};
pub use metrics::{LoadFigures, LoadMetrics};
pub use reading::{Reading, ScrapeResult};
pub use scrape::{SCRAPE_BODY_LIMIT, ScrapeFailure, ScrapeOutcome, fetch};
pub use tracker::LoadTracker;
pub use view::{LoadView, steer};
