//! The engine and the forecaster on a simulated clock with synthetic
//! series: a step, a ramp, a daily cycle, a noisy plateau, missing data.

use std::time::{Duration, Instant};

use crate::config::{Actuator, Autoscale, Predictive, ScalePolicy, ScaleSignal, ScaleStep};

use super::{Direction, Engine, Forecaster, Inputs};

const SECOND: Duration = Duration::from_secs(1);

/// Target 10 connections/s per backend, 1..=10 backends, 60 s cooldown,
/// 300 s window, no step limits.
fn policy() -> Autoscale {
    Autoscale {
        interval: 5 * SECOND,
        min: 1,
        max: 10,
        scale_out_cooldown: 60 * SECOND,
        scale_in_stabilization: 300 * SECOND,
        max_step_up: None,
        max_step_down: None,
        policy: ScalePolicy::TargetTracking {
            signal: ScaleSignal::NewConnections,
            target: 10.0,
            tolerance: 0.1,
        },
        predictive: None,
        actuator: Actuator::Standby {
            drain_timeout: 300 * SECOND,
            drain_idle: 10 * SECOND,
        },
    }
}

/// A pool simulated every `interval`: the engine's decision is carried out
/// at once, and the pool's total rate is `rate(t)`, spread over the
/// backends. Returns (seconds, size) after each step.
fn simulate(
    engine: &mut Engine,
    start: Instant,
    seconds: u64,
    rate: impl Fn(u64) -> Option<f64>,
) -> Vec<(u64, u32)> {
    let mut current = 1;
    let mut sizes = Vec::new();
    for t in (0..seconds).step_by(5) {
        let total = rate(t);
        let inputs = Inputs {
            current,
            observed: total.map(|r| r / f64::from(current)),
            actual_rate: total,
            forecast_rate: None,
        };
        current = engine
            .decide(start + Duration::from_secs(t), &inputs)
            .desired;
        sizes.push((t, current));
    }
    sizes
}

fn size_at(sizes: &[(u64, u32)], t: u64) -> u32 {
    sizes
        .iter()
        .rev()
        .find(|(at, _)| *at <= t)
        .map_or(0, |(_, s)| *s)
}

#[test]
fn a_step_in_load_scales_out_at_once_and_in_only_after_the_window() {
    let start = Instant::now();
    let mut engine = Engine::new(policy(), start, 1);
    // 10/s until 100 s, 45/s until 400 s, then 10/s again.
    let rate = |t: u64| Some(if (100..400).contains(&t) { 45.0 } else { 10.0 });
    let sizes = simulate(&mut engine, start, 1200, rate);

    assert_eq!(size_at(&sizes, 95), 1);
    assert_eq!(size_at(&sizes, 100), 5, "ceil(1 x 45 / 10) at the step");
    assert_eq!(size_at(&sizes, 395), 5);
    // The last busy sample was at 395 s; the window keeps 5 until 300 s
    // after it.
    assert_eq!(size_at(&sizes, 690), 5, "{sizes:?}");
    assert_eq!(size_at(&sizes, 695), 1, "{sizes:?}");
}

#[test]
fn a_ramp_scales_out_no_faster_than_the_cooldown() {
    let start = Instant::now();
    let mut policy = policy();
    policy.max = 30;
    let mut engine = Engine::new(policy, start, 1);
    // From 10/s, one more connection per second every second.
    let sizes = simulate(&mut engine, start, 240, |t| Some(10.0 + t as f64));
    let changes: Vec<(u64, u32)> = sizes
        .windows(2)
        .filter(|w| w[0].1 != w[1].1)
        .map(|w| w[1])
        .collect();
    for pair in changes.windows(2) {
        assert!(
            pair[1].0 - pair[0].0 >= 60,
            "two scale-outs within the cooldown: {changes:?}"
        );
    }
    // 245/s at the end asks for 25; the last scale-out, at most 60 s
    // before, saw at least 185/s.
    assert!(
        size_at(&sizes, 235) >= 19,
        "keeps up with the ramp: {sizes:?}"
    );
}

#[test]
fn a_noisy_plateau_inside_the_band_changes_nothing() {
    let start = Instant::now();
    let mut engine = Engine::new(policy(), start, 1);
    let mut current = 4;
    engine = Engine::new(engine.policy().clone(), start, current);
    // 40/s over 4 backends, +-8 % of noise: inside the 10 % band.
    for t in (0..3600).step_by(5) {
        let noise = if (t / 5) % 2 == 0 { 1.08 } else { 0.92 };
        let inputs = Inputs {
            current,
            observed: Some(10.0 * noise),
            ..Inputs::default()
        };
        let decision = engine.decide(start + Duration::from_secs(t), &inputs);
        assert_eq!(
            decision.direction,
            Direction::Hold,
            "at {t} s: {}",
            decision.reason
        );
        current = decision.desired;
    }
}

#[test]
fn missing_data_holds_the_size_and_does_not_open_the_window() {
    let start = Instant::now();
    let mut engine = Engine::new(policy(), start, 3);
    for t in (0..1000).step_by(5) {
        let inputs = Inputs {
            current: 3,
            ..Inputs::default()
        };
        let decision = engine.decide(start + Duration::from_secs(t), &inputs);
        assert_eq!((decision.desired, decision.direction), (3, Direction::Hold));
        assert!(
            decision.reason.contains("no usable reading"),
            "{}",
            decision.reason
        );
    }
    let nan = Inputs {
        current: 3,
        observed: Some(f64::NAN),
        ..Inputs::default()
    };
    assert_eq!(engine.decide(start + 1000 * SECOND, &nan).desired, 3);
}

#[test]
fn bounds_and_step_limits_cap_each_decision() {
    let start = Instant::now();
    let mut policy = policy();
    (policy.max_step_up, policy.max_step_down, policy.max) = (Some(2), Some(1), 6);
    policy.scale_out_cooldown = SECOND;
    policy.scale_in_stabilization = SECOND;
    let mut engine = Engine::new(policy, start, 1);
    let at = |s: u64| start + Duration::from_secs(s);
    let busy = |current| Inputs {
        current,
        observed: Some(100.0),
        ..Inputs::default()
    };
    assert_eq!(engine.decide(at(10), &busy(1)).desired, 3, "+2 at most");
    assert_eq!(engine.decide(at(20), &busy(3)).desired, 5);
    assert_eq!(engine.decide(at(30), &busy(5)).desired, 6, "max 6");
    let idle = Inputs {
        current: 6,
        observed: Some(0.0),
        ..Inputs::default()
    };
    assert_eq!(engine.decide(at(40), &idle).desired, 5, "-1 at most");
}

#[test]
fn step_scaling_takes_the_step_crossed_furthest() {
    let start = Instant::now();
    let mut policy = policy();
    policy.scale_out_cooldown = SECOND;
    policy.policy = ScalePolicy::StepScaling {
        signal: ScaleSignal::Gpu,
        steps: vec![
            ScaleStep::Above { above: 0.7, add: 1 },
            ScaleStep::Above { above: 0.9, add: 3 },
            ScaleStep::Below {
                below: 0.3,
                remove: 1,
            },
        ],
    };
    let mut engine = Engine::new(policy, start, 2);
    let inputs = |observed| Inputs {
        current: 2,
        observed: Some(observed),
        ..Inputs::default()
    };
    assert_eq!(engine.decide(start + 10 * SECOND, &inputs(0.8)).desired, 3);
    assert_eq!(engine.decide(start + 20 * SECOND, &inputs(0.95)).desired, 5);
    assert_eq!(engine.decide(start + 30 * SECOND, &inputs(0.5)).desired, 2);
}

/// The daily cycle: a rate of 50/s at night rising to 250/s by day,
/// sampled once a minute.
fn daily_rate(t: Duration) -> f64 {
    let day = 86_400.0;
    let phase = (t.as_secs_f64() % day) / day * std::f64::consts::TAU;
    150.0 - 100.0 * phase.cos()
}

fn predictive() -> Predictive {
    Predictive {
        horizon: Duration::from_secs(30 * 60),
        season: Duration::from_secs(86_400),
        bucket: Duration::from_secs(5 * 60),
    }
}

#[test]
fn the_forecast_sees_the_daily_rise_coming() {
    let start = Instant::now();
    let mut forecaster = Forecaster::new(&predictive(), start);
    let minute = Duration::from_secs(60);
    // Three days, then a morning of the fourth up to 05:00.
    let samples = 3 * 1440 + 300;
    for m in 0..samples {
        // Ready once the first bucket of the third season closes.
        assert_eq!(forecaster.ready(), m > 2885, "at minute {m}");
        forecaster.observe(start + minute * m, daily_rate(minute * m));
    }
    let now = minute * samples;
    let forecast = forecaster.forecast().expect("a forecast after three days");
    let actual = daily_rate(now);
    let ahead = daily_rate(now + Duration::from_secs(30 * 60));
    assert!(
        forecast > actual,
        "forecast {forecast:.1} not above actual {actual:.1}"
    );
    assert!(
        (forecast - ahead).abs() < 0.1 * ahead,
        "forecast {forecast:.1}, in 30 min the rate is {ahead:.1}"
    );
}

#[test]
fn the_forecast_scales_out_ahead_but_never_in() {
    let start = Instant::now();
    let mut policy = policy();
    policy.predictive = Some(predictive());
    let mut engine = Engine::new(policy, start, 4);
    // 40/s on 4 backends is on target; 80/s forecast asks for 8.
    let inputs = |forecast| Inputs {
        current: 4,
        observed: Some(10.0),
        actual_rate: Some(40.0),
        forecast_rate: Some(forecast),
    };
    let out = engine.decide(start + 10 * SECOND, &inputs(80.0));
    assert_eq!(
        (out.desired, out.direction),
        (8, Direction::Up),
        "{}",
        out.reason
    );
    assert!(out.reason.contains("forecast"), "{}", out.reason);
    let low = engine.decide(start + 3600 * SECOND, &inputs(5.0));
    assert_eq!(
        low.desired, 4,
        "a low forecast removes nothing: {}",
        low.reason
    );
}

#[test]
fn a_forecaster_with_gaps_in_its_history_still_forecasts() {
    let start = Instant::now();
    let mut forecaster = Forecaster::new(&predictive(), start);
    let minute = Duration::from_secs(60);
    for m in (0..3 * 1440).filter(|m| !(2000..2600).contains(m)) {
        forecaster.observe(start + minute * m, daily_rate(minute * m));
    }
    let forecast = forecaster.forecast().expect("a forecast");
    assert!(forecast.is_finite() && forecast >= 0.0, "{forecast}");
}

mod standby {
    use std::net::IpAddr;
    use std::time::{Duration, Instant};

    use crate::autoscale::{PhaseName, StandbyPool};

    fn pool() -> (StandbyPool, [IpAddr; 2]) {
        let standby = [IpAddr::from([10, 0, 0, 12]), IpAddr::from([10, 0, 0, 13])];
        let timings = (
            Duration::from_secs(10),
            Duration::from_secs(60),
            Duration::from_secs(2),
        );
        (StandbyPool::new(1, &standby, timings), standby)
    }

    fn phases(pool: &StandbyPool) -> Vec<PhaseName> {
        pool.members().map(|(_, phase)| phase).collect()
    }

    #[test]
    fn scale_out_brings_standby_backends_in_config_order_with_slow_start() {
        let (mut pool, _) = pool();
        let start = Instant::now();
        assert_eq!(pool.in_service(), 1);
        let moves = pool.scale_to(2, start);
        assert_eq!(moves.len(), 1);
        assert_eq!(phases(&pool), [PhaseName::Joining, PhaseName::Released]);
        assert_eq!(pool.in_service(), 2);
        pool.advance(start + Duration::from_secs(10), |_| None);
        assert_eq!(phases(&pool), [PhaseName::Active, PhaseName::Released]);
        pool.scale_to(9, start);
        assert_eq!(pool.in_service(), 3, "no more than the pool has");
    }

    #[test]
    fn scale_in_drains_the_last_joined_and_releases_it_once_its_flows_are_gone() {
        let (mut pool, [first, second]) = pool();
        let start = Instant::now();
        pool.scale_to(3, start);
        pool.scale_to(2, start + Duration::from_secs(30));
        assert_eq!(phases(&pool), [PhaseName::Joining, PhaseName::Draining]);
        assert_eq!(pool.draining().collect::<Vec<_>>(), [second]);

        let later = start + Duration::from_secs(40);
        pool.advance(later, |addr| (addr == second).then_some(3));
        assert_eq!(phases(&pool)[1], PhaseName::Draining, "3 flows hold it");
        let moves = pool.advance(later, |addr| (addr == second).then_some(0));
        assert_eq!(phases(&pool)[1], PhaseName::Released, "{moves:?}");
        assert_eq!(pool.in_service(), 2);
        assert!(
            pool.members()
                .any(|(a, p)| a == first && p == PhaseName::Active)
        );
    }

    #[test]
    fn a_drain_that_outlasts_its_timeout_is_released_anyway() {
        let (mut pool, [_, second]) = pool();
        let start = Instant::now();
        pool.scale_to(3, start);
        pool.scale_to(2, start);
        pool.advance(start + Duration::from_secs(59), |_| Some(5));
        assert_eq!(phases(&pool)[1], PhaseName::Draining);
        let moves = pool.advance(start + Duration::from_secs(60), |_| Some(5));
        assert_eq!(moves[0].backend, second);
        assert!(moves[0].reason.contains("timeout"), "{moves:?}");
    }

    #[test]
    fn scaling_out_during_a_drain_takes_the_draining_backend_back_first() {
        let (mut pool, _) = pool();
        let start = Instant::now();
        pool.scale_to(3, start);
        pool.scale_to(2, start);
        pool.scale_to(3, start);
        assert_eq!(
            phases(&pool)[1],
            PhaseName::Active,
            "back at once, no slow start"
        );
    }
}
