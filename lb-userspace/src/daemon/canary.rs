//! Canary shares at run time: what `xlbctl vip split` set, and the
//! automatic rollback to 0 % when the canary pool fails its thresholds.
//!
//! A rollback sets the operator's share to 0 (so it holds across reloads
//! and until an operator sets a share again with `xlbctl vip split`), is
//! logged at warn with the reading, and counted per VIP.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{Rollback, Share};

/// One VIP's canary, as the status file and `xlbctl svc list` show it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryRow {
    /// VIP name.
    pub vip: String,
    /// Canary pool.
    pub pool: String,
    /// Share the config sets, basis points.
    pub configured_bp: u16,
    /// Share the operator (or a rollback) set, basis points, if any.
    pub operator_bp: Option<u16>,
    /// Share in force, basis points.
    pub effective_bp: u16,
    /// Automatic rollbacks since xlbd started.
    pub rollbacks_total: u64,
    /// Why the last rollback happened, if one did.
    pub last_rollback: Option<String>,
}

/// Rollbacks per VIP since xlbd started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rollbacks {
    /// Count by VIP name.
    pub total: BTreeMap<String, u64>,
    /// The reason of the last one, by VIP name.
    pub last: BTreeMap<String, String>,
}

/// What the canary pool looks like now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CanaryReading {
    /// Backends of the pool found down by health checks.
    pub down: usize,
    /// Backends of the pool.
    pub backends: usize,
    /// Mean smoothed load of the pool's backends, if read.
    pub load: Option<f64>,
}

/// Why `reading` crosses a threshold of `rollback`, or `None`.
pub fn rollback_reason(rollback: &Rollback, reading: &CanaryReading) -> Option<String> {
    let ratio = |share: Share| f64::from(share.basis_points()) / 10_000.0;
    if let Some(max) = rollback.max_down_share
        && reading.backends > 0
    {
        let down = reading.down as f64 / reading.backends as f64;
        if down >= ratio(max) {
            return Some(format!(
                "{} of {} backends down ({:.0} %, threshold {:.0} %)",
                reading.down,
                reading.backends,
                down * 100.0,
                ratio(max) * 100.0
            ));
        }
    }
    if let (Some(max), Some(load)) = (rollback.max_load, reading.load)
        && load >= ratio(max)
    {
        return Some(format!(
            "mean load {:.0} % (threshold {:.0} %)",
            load * 100.0,
            ratio(max) * 100.0
        ));
    }
    None
}

/// A share as a percentage with up to two decimals.
pub fn percent(share: Share) -> String {
    let bp = share.basis_points();
    let fraction = format!("{:02}", bp % 100);
    match fraction.trim_end_matches('0') {
        "" => format!("{}%", bp / 100),
        digits => format!("{}.{digits}%", bp / 100),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollback(down_bp: Option<u16>, load_bp: Option<u16>) -> Rollback {
        Rollback {
            max_down_share: down_bp.and_then(Share::from_basis_points),
            max_load: load_bp.and_then(Share::from_basis_points),
        }
    }

    #[test]
    fn shares_print_as_short_percentages() {
        let show = |bp| percent(Share::from_basis_points(bp).unwrap());
        assert_eq!(
            [show(500), show(1250), show(1205), show(0)],
            ["5%", "12.5%", "12.05%", "0%"]
        );
    }

    #[test]
    fn half_the_canary_down_rolls_back_at_a_half_threshold() {
        let reading = CanaryReading {
            down: 1,
            backends: 2,
            load: None,
        };
        let why = rollback_reason(&rollback(Some(5000), None), &reading);
        assert_eq!(
            why.as_deref(),
            Some("1 of 2 backends down (50 %, threshold 50 %)")
        );
        let fewer = CanaryReading { down: 0, ..reading };
        assert_eq!(rollback_reason(&rollback(Some(5000), None), &fewer), None);
    }

    #[test]
    fn a_loaded_canary_rolls_back_only_with_a_reading() {
        let loaded = CanaryReading {
            down: 0,
            backends: 2,
            load: Some(0.95),
        };
        assert!(rollback_reason(&rollback(None, Some(9000)), &loaded).is_some());
        let unread = CanaryReading {
            load: None,
            ..loaded
        };
        assert_eq!(rollback_reason(&rollback(None, Some(9000)), &unread), None);
    }
}
