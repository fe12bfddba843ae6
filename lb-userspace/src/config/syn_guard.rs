//! Validation of `syn_guard`: each CPU's budget of new flows that SYNs may
//! enter in the connection table (see lb-ebpf's `syn_guard`).

use serde::Serialize;

use super::raw::{At, RawSynGuard};
use super::validate::Checker;

/// Default `syn_guard.new_flows_per_second`, per CPU. A busy node takes a
/// few thousand connections a second per core; 20 000 leaves ten times
/// that, yet bounds a flood to 20 000 evictions a second per core, so a
/// table of the default 262 144 flows holds its idlest established flow
/// for seconds rather than milliseconds.
pub const DEFAULT_NEW_FLOWS_PER_SECOND: u32 = 20_000;
/// Default `syn_guard.burst`, per CPU: a tenth of a second at the default
/// rate, enough for a reconnect storm after a backend restart.
pub const DEFAULT_BURST: u32 = 2_000;
/// Accepted `syn_guard.new_flows_per_second`; 0 turns the guard off.
pub const NEW_FLOWS_PER_SECOND_RANGE: std::ops::RangeInclusive<u32> = 0..=100_000_000;
/// Accepted `syn_guard.burst`.
pub const BURST_RANGE: std::ops::RangeInclusive<u32> = 1..=10_000_000;

/// How many new flows SYNs may enter per CPU. SYNs beyond the budget are
/// still forwarded, by the Maglev table alone, and enter no flow, so a SYN
/// flood cannot evict established flows from a full table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SynGuard {
    /// New flows per second, per CPU; 0 turns the guard off. Default
    /// [`DEFAULT_NEW_FLOWS_PER_SECOND`].
    pub new_flows_per_second: u32,
    /// New flows a CPU may take at once after a quiet spell, at least 1.
    /// Default [`DEFAULT_BURST`].
    pub burst: u32,
}

impl Default for SynGuard {
    fn default() -> Self {
        Self {
            new_flows_per_second: DEFAULT_NEW_FLOWS_PER_SECOND,
            burst: DEFAULT_BURST,
        }
    }
}

/// Validates the `syn_guard` block; the defaults when it is absent.
pub(super) fn syn_guard(check: &mut Checker, raw: Option<&At<RawSynGuard>>) -> SynGuard {
    let Some(raw) = raw else {
        return SynGuard::default();
    };
    let mut guard = SynGuard::default();
    if let Some(rate) = &raw.value.new_flows_per_second {
        if !NEW_FLOWS_PER_SECOND_RANGE.contains(&rate.value) {
            let message = format!(
                "{} is outside {NEW_FLOWS_PER_SECOND_RANGE:?} new flows per second",
                rate.value
            );
            check.error(rate.referenced, "syn_guard.new_flows_per_second", message);
        }
        guard.new_flows_per_second = rate.value;
    }
    if let Some(burst) = &raw.value.burst {
        if !BURST_RANGE.contains(&burst.value) {
            let message = format!("{} is outside {BURST_RANGE:?} new flows", burst.value);
            check.error(burst.referenced, "syn_guard.burst", message);
        }
        guard.burst = burst.value;
    }
    guard
}
