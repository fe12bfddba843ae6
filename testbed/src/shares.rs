//! Comparing how requests spread over backends with their weights.

use std::fmt::Write as _;

use anyhow::{Result, bail};

use crate::client::RequestStats;

/// One backend's weight and the share of answers it got.
#[derive(Clone, Debug, PartialEq)]
pub struct Share {
    /// Backend name as it answers ("b1").
    pub backend: String,
    /// Its configured weight.
    pub weight: u32,
    /// weight / sum of weights, in percent.
    pub expected_pct: f64,
    /// Answers it gave.
    pub answers: usize,
    /// answers / all answers, in percent.
    pub measured_pct: f64,
}

/// The share of each of `weights` (backend name, weight) in `stats`.
/// Answers from backends not listed are left out of the rows but count in
/// the total.
pub fn shares(stats: &RequestStats, weights: &[(String, u32)]) -> Vec<Share> {
    let total_weight: u32 = weights.iter().map(|(_, w)| w).sum();
    let answered = stats.answered().max(1) as f64;
    weights
        .iter()
        .map(|(backend, weight)| {
            let answers = stats.per_backend.get(backend).copied().unwrap_or(0);
            Share {
                backend: backend.clone(),
                weight: *weight,
                expected_pct: 100.0 * f64::from(*weight) / f64::from(total_weight.max(1)),
                answers,
                measured_pct: 100.0 * answers as f64 / answered,
            }
        })
        .collect()
}

/// Checks every share is within `tolerance_points` percentage points of
/// its weight's share, and that no request failed.
///
/// # Errors
/// When one is off or requests failed; the message carries the table.
pub fn check_shares(
    stats: &RequestStats,
    weights: &[(String, u32)],
    tolerance_points: f64,
) -> Result<()> {
    let rows = shares(stats, weights);
    let off: Vec<&Share> = rows
        .iter()
        .filter(|s| (s.measured_pct - s.expected_pct).abs() > tolerance_points)
        .collect();
    if stats.failures > 0 || !off.is_empty() {
        bail!(
            "shares are not within ±{tolerance_points} points of the weights, or requests \
             failed ({} failures, first errors {:?}):\n{}",
            stats.failures,
            stats.errors,
            format_shares(&rows)
        );
    }
    Ok(())
}

/// A small table: backend, weight, expected %, answers, measured %.
pub fn format_shares(rows: &[Share]) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "  {:<8} {:>6} {:>9} {:>8} {:>9}",
        "backend", "weight", "expected", "answers", "measured"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "  {:<8} {:>6} {:>8.1}% {:>8} {:>8.1}%",
            row.backend, row.weight, row.expected_pct, row.answers, row.measured_pct
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(counts: &[(&str, usize)]) -> RequestStats {
        let mut stats = RequestStats::default();
        for (name, n) in counts {
            stats.per_backend.insert((*name).to_owned(), *n);
        }
        stats
    }

    #[test]
    fn shares_follow_weights_and_answers() {
        let weights = [("b1".to_owned(), 1), ("b2".to_owned(), 3)];
        let rows = shares(&stats(&[("b1", 30), ("b2", 70)]), &weights);
        assert_eq!(rows[0].expected_pct, 25.0);
        assert_eq!(rows[1].measured_pct, 70.0);
    }

    #[test]
    fn a_share_off_by_more_than_the_tolerance_fails_the_check() {
        let weights = [("b1".to_owned(), 1), ("b2".to_owned(), 1)];
        assert!(check_shares(&stats(&[("b1", 52), ("b2", 48)]), &weights, 5.0).is_ok());
        let err = check_shares(&stats(&[("b1", 60), ("b2", 40)]), &weights, 5.0)
            .expect_err("10 points off");
        assert!(format!("{err:#}").contains("b1"), "{err:#}");
    }
}
