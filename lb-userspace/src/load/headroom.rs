//! The pure arithmetic of load steering: the headroom factor, the moving
//! average, and the hysteresis that decides when a factor moves.

/// Loads (value / scale) above this are taken as absurd, not as overload:
/// a GPU at 5000 % is a broken exporter.
pub const ABSURD_LOAD: f64 = 10.0;

/// The factor on the configured weight for `load` (0 = idle, 1 = full):
///
/// ```text
/// factor = max                                   when load <= target
/// factor = clamp((1 - load) / (1 - target), min, max)   otherwise
/// ```
///
/// So a backend keeps its weight up to the target, and past it its weight
/// falls in proportion to the headroom left (1 - load) against the
/// headroom the target leaves (1 - target): at target 0.7, load 0.85 gives
/// 0.5 and load 0.95 gives 1/6. `min` keeps a loaded backend in the table.
pub fn headroom_factor(load: f64, target: f64, min: f64, max: f64) -> f64 {
    if load <= target {
        return max;
    }
    ((1.0 - load) / (1.0 - target)).clamp(min, max)
}

/// The exponentially weighted moving average: `alpha` of the new reading,
/// the rest of the previous average (or the reading alone at first).
pub fn ewma(previous: Option<f64>, reading: f64, alpha: f64) -> f64 {
    match previous {
        Some(previous) => alpha * reading + (1.0 - alpha) * previous,
        None => reading,
    }
}

/// Whether a reading makes sense as a load: finite, not negative, at most
/// [`ABSURD_LOAD`].
pub fn plausible(load: f64) -> bool {
    load.is_finite() && (0.0..=ABSURD_LOAD).contains(&load)
}

/// The factor to apply next, given the one `applied` and the one `wanted`,
/// or `None` to leave it (hysteresis).
///
/// A factor moves when it is more than `step` away from the wanted one, or
/// when the wanted one is at a bound (`min` or `max`) the applied one has
/// not reached, so that recovery ends at the full weight. One move goes at
/// most `max_move` toward the wanted factor, which caps the share of table
/// slots one rebuild can hand to other backends.
pub fn next_factor(
    applied: f64,
    wanted: f64,
    bounds: (f64, f64),
    step: f64,
    max_move: f64,
) -> Option<f64> {
    let gap = wanted - applied;
    let at_bound = wanted <= bounds.0 || wanted >= bounds.1;
    let worth_it = gap.abs() > step || (at_bound && gap.abs() > 1e-9);
    if !worth_it {
        return None;
    }
    Some(applied + gap.clamp(-max_move, max_move))
}

/// `weight` scaled by `factor`, rounded, and never 0 for a weight above 0:
/// a loaded backend keeps its place in the table.
pub fn scaled_weight(weight: u32, factor: f64) -> u32 {
    if weight == 0 {
        return 0;
    }
    let scaled = (f64::from(weight) * factor.clamp(0.0, 1.0)).round();
    // In 0..=weight after the clamp, so the cast cannot truncate.
    (scaled as u32).max(1)
}

/// One backend's proposed move in a pool: its configured weight, the
/// factor in force and the one it would move to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProposedMove {
    /// Configured weight.
    pub weight: u32,
    /// Factor in force.
    pub applied: f64,
    /// Factor it would move to.
    pub next: f64,
}

/// Shortens every move of a pool alike so that together they shift at most
/// `cap` of the pool's configured weight. Maglev gives each backend a share
/// of slots in proportion to its weight and moves close to the minimum, so
/// this caps the share of table slots one rebuild hands to other backends.
/// `pool_weight` is the sum of the configured weights of the whole pool.
pub fn cap_pool_move(moves: &mut [ProposedMove], pool_weight: u32, cap: f64) {
    if pool_weight == 0 {
        return;
    }
    let shifted: f64 = moves
        .iter()
        .map(|m| (m.next - m.applied).abs() * f64::from(m.weight))
        .sum::<f64>()
        / f64::from(pool_weight);
    if shifted <= cap {
        return;
    }
    let keep = cap / shifted;
    for m in moves {
        m.next = m.applied + (m.next - m.applied) * keep;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn headroom_keeps_full_weight_up_to_the_target() {
        assert_eq!(headroom_factor(0.0, 0.7, 0.1, 1.0), 1.0);
        assert_eq!(headroom_factor(0.7, 0.7, 0.1, 1.0), 1.0);
    }

    #[test]
    fn headroom_falls_with_the_headroom_left_past_the_target() {
        assert!(close(headroom_factor(0.85, 0.7, 0.1, 1.0), 0.5));
        assert!(close(headroom_factor(0.95, 0.7, 0.1, 1.0), 1.0 / 6.0));
    }

    #[test]
    fn headroom_is_clamped_to_min_and_max() {
        assert_eq!(headroom_factor(1.0, 0.7, 0.1, 1.0), 0.1);
        assert_eq!(headroom_factor(3.0, 0.7, 0.1, 1.0), 0.1);
        assert_eq!(headroom_factor(0.2, 0.7, 0.1, 0.8), 0.8);
    }

    #[test]
    fn ewma_starts_at_the_first_reading_and_weighs_new_ones_by_alpha() {
        assert_eq!(ewma(None, 0.9, 0.5), 0.9);
        assert!(close(ewma(Some(0.9), 0.1, 0.5), 0.5));
        assert!(close(ewma(Some(0.9), 0.1, 0.25), 0.7));
    }

    #[test]
    fn absurd_readings_are_not_plausible() {
        for bad in [f64::NAN, f64::INFINITY, -0.01, 11.0, 1e300] {
            assert!(!plausible(bad), "{bad} was taken");
        }
        assert!(plausible(0.0) && plausible(1.0) && plausible(2.5));
    }

    #[test]
    fn small_changes_stay_inside_the_step() {
        assert_eq!(next_factor(0.5, 0.55, (0.1, 1.0), 0.1, 1.0), None);
        assert_eq!(next_factor(0.5, 0.45, (0.1, 1.0), 0.1, 1.0), None);
    }

    #[test]
    fn changes_past_the_step_move_at_most_the_cap() {
        assert_eq!(next_factor(1.0, 0.5, (0.1, 1.0), 0.1, 1.0), Some(0.5));
        let moved = next_factor(1.0, 0.5, (0.1, 1.0), 0.1, 0.2).expect("moves");
        assert!(close(moved, 0.8));
    }

    #[test]
    fn recovery_reaches_the_bound_even_within_the_step() {
        assert_eq!(next_factor(0.95, 1.0, (0.1, 1.0), 0.1, 0.2), Some(1.0));
        assert_eq!(next_factor(0.15, 0.1, (0.1, 1.0), 0.1, 0.2), Some(0.1));
        assert_eq!(next_factor(1.0, 1.0, (0.1, 1.0), 0.1, 0.2), None);
    }

    #[test]
    fn scaled_weights_round_and_keep_loaded_backends_in_the_table() {
        assert_eq!(scaled_weight(100, 1.0 / 6.0), 17);
        assert_eq!(scaled_weight(100, 1.0), 100);
        assert_eq!(scaled_weight(3, 0.1), 1);
        assert_eq!(scaled_weight(0, 0.5), 0);
    }

    #[test]
    fn a_pool_move_is_shortened_until_its_slots_moved_fit_the_cap() {
        use crate::maglev::{MaglevBackend, build_table};

        let addr = |i: u8| std::net::IpAddr::from([10, 0, 0, i]);
        let weights = |factors: &[f64]| -> Vec<MaglevBackend> {
            factors
                .iter()
                .enumerate()
                .map(|(i, f)| MaglevBackend {
                    addr: addr(i as u8 + 1),
                    weight: scaled_weight(100, *f),
                })
                .collect()
        };
        // Ten backends of weight 100; five would drop from 1.0 to 0.8.
        let before = [1.0; 10];
        let mut moves: Vec<ProposedMove> = (0..10)
            .map(|i| ProposedMove {
                weight: 100,
                applied: 1.0,
                next: if i < 5 { 0.8 } else { 1.0 },
            })
            .collect();
        cap_pool_move(&mut moves, 1000, 0.05);
        for m in &moves[..5] {
            assert!((m.next - 0.9).abs() < 1e-9, "{m:?}");
        }
        let after: Vec<f64> = moves.iter().map(|m| m.next).collect();

        let size = 65_537;
        let old = build_table(&weights(&before), size).unwrap();
        let new = build_table(&weights(&after), size).unwrap();
        let moved = old.iter().zip(&new).filter(|(a, b)| a != b).count();
        let share = moved as f64 / f64::from(size);
        assert!(share <= 0.05 + 0.01, "{share} of the slots moved");
        assert!(share >= 0.02, "{share}: the shortened move still moves");

        let mut small = [ProposedMove {
            weight: 100,
            applied: 1.0,
            next: 0.9,
        }];
        cap_pool_move(&mut small, 1000, 0.05);
        assert!(
            (small[0].next - 0.9).abs() < 1e-9,
            "under the cap: untouched"
        );
    }
}
