//! Unit tests of the pure rules: slow start, panic mode, and steering the
//! desired state.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use lb_common::VipKey;

use crate::config::Share;
use crate::dataplane::{AdminState, DesiredBackend, DesiredState, DesiredVip};

use super::*;

fn addr(last: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, last])
}

/// A view of pool "web" with backends .1 to .`count`, those in `down` down,
/// and .1 ramping since `ramp_from`.
fn view(count: u8, down: &[u8], policy: PoolPolicy, ramp_from: Option<Instant>) -> HealthView {
    let mut view = HealthView::default();
    view.pools.insert("web".to_owned(), policy);
    for last in 1..=count {
        let state = if down.contains(&last) {
            HealthState::Down
        } else {
            HealthState::Up
        };
        let backend = BackendHealth {
            state,
            since: Instant::now(),
            reason: "test".to_owned(),
            ramp_from: ramp_from.filter(|_| last == 1),
        };
        view.backends
            .insert(("web".to_owned(), addr(last)), backend);
    }
    view
}

fn share(basis_points: u16) -> Share {
    Share::from_basis_points(basis_points).expect("a share")
}

fn members(count: u8) -> Vec<PoolMember> {
    (1..=count)
        .map(|last| PoolMember {
            addr: addr(last),
            eligible: true,
        })
        .collect()
}

#[test]
fn slow_start_ramps_from_a_tenth_to_the_full_weight_over_the_window() {
    let from = Instant::now();
    let window = Duration::from_secs(100);
    let at = |secs| ramp_weight(1000, from, window, from + Duration::from_secs(secs));
    assert_eq!(at(0), 100);
    assert_eq!(at(19), 100);
    assert_eq!(at(20), 200);
    assert_eq!(at(55), 500);
    assert_eq!(at(99), 900);
    assert_eq!(at(100), 1000);
    assert_eq!(at(5000), 1000);
    assert_eq!(ramp_weight(3, from, window, from), 1, "never 0");
    assert_eq!(ramp_weight(0, from, window, from), 0);
    assert_eq!(ramp_weight(70, from, Duration::ZERO, from), 70, "off");
}

#[test]
fn the_next_ramp_step_is_where_the_weight_changes() {
    let from = Instant::now();
    let window = Duration::from_secs(100);
    let next = |secs| next_ramp_step(from, window, from + Duration::from_secs(secs));
    assert_eq!(next(0), Some(from + Duration::from_secs(20)));
    assert_eq!(next(20), Some(from + Duration::from_secs(30)));
    assert_eq!(next(95), Some(from + Duration::from_secs(100)));
    assert_eq!(next(100), None);
    assert_eq!(next_ramp_step(from, Duration::ZERO, from), None);
}

#[test]
fn effective_weight_ramps_only_backends_that_came_up_and_only_with_slow_start() {
    let now = Instant::now();
    let ramping = PoolPolicy {
        slow_start: Duration::from_secs(10),
        ..PoolPolicy::default()
    };
    let view_ramping = view(2, &[], ramping, Some(now));
    assert_eq!(
        effective_weight(&view_ramping, "web", addr(1), 100, now),
        10
    );
    assert_eq!(
        effective_weight(&view_ramping, "web", addr(2), 100, now),
        100
    );
    let later = now + Duration::from_secs(10);
    assert_eq!(
        effective_weight(&view_ramping, "web", addr(1), 100, later),
        100
    );
    assert_eq!(view_ramping.next_weight_change(later), None);
    assert_eq!(
        view_ramping.next_weight_change(now),
        Some(now + Duration::from_secs(2))
    );

    let view_off = view(2, &[], PoolPolicy::default(), Some(now));
    assert_eq!(effective_weight(&view_off, "web", addr(1), 100, now), 100);
    assert_eq!(view_off.next_weight_change(now), None);
}

#[test]
fn without_panic_mode_only_healthy_backends_are_usable() {
    let view = view(4, &[1, 2, 3], PoolPolicy::default(), None);
    let usable = usable_backends(&view, "web", &members(4));
    assert!(!usable.panic);
    assert_eq!(usable.backends, [addr(4)].into());
}

#[test]
fn below_the_panic_threshold_every_eligible_backend_is_usable() {
    let policy = PoolPolicy {
        panic_threshold: share(5000),
        ..PoolPolicy::default()
    };
    let mut pool = members(4);
    pool[3].eligible = false; // drained: never counted, never used

    // 1 of 3 eligible healthy: below half, so all three take flows.
    let usable = usable_backends(&view(4, &[1, 2], policy, None), "web", &pool);
    assert!(usable.panic);
    assert_eq!((usable.healthy, usable.eligible), (1, 3));
    assert_eq!(usable.backends, [addr(1), addr(2), addr(3)].into());

    // 2 of 3 healthy: at or above half, the down one stays out.
    let usable = usable_backends(&view(4, &[1], policy, None), "web", &pool);
    assert!(!usable.panic);
    assert_eq!(usable.backends, [addr(2), addr(3)].into());
}

#[test]
fn panic_compares_exact_shares() {
    assert!(!in_panic(Share::ZERO, 0, 10), "off");
    assert!(
        !in_panic(share(5000), 5, 10),
        "exactly half is not below half"
    );
    assert!(in_panic(share(5000), 4, 10));
    assert!(in_panic(Share::ONE, 9, 10));
    assert!(!in_panic(Share::ONE, 0, 0), "nothing eligible");
}

fn desired(states: [AdminState; 3]) -> DesiredState {
    let backends = states
        .iter()
        .enumerate()
        .map(|(i, &state)| DesiredBackend {
            addr: addr(i as u8 + 1),
            weight: 100,
            state,
        })
        .collect();
    let vip = DesiredVip {
        name: "web".to_owned(),
        key: VipKey::default(),
        flags: 0,
        table_size: 13,
        pool: "web".to_owned(),
        backends,
        owner: None,
        ports: Vec::new(),
    };
    DesiredState {
        vips: vec![vip],
        ..DesiredState::default()
    }
}

#[test]
fn steering_marks_down_backends_down_and_ramps_weights() {
    let now = Instant::now();
    let policy = PoolPolicy {
        slow_start: Duration::from_secs(10),
        ..PoolPolicy::default()
    };
    let view = view(3, &[2], policy, Some(now));
    let mut desired = desired([AdminState::Ready; 3]);
    let health = steer(&view, &mut desired, now);

    assert!(health.is_up("web", addr(1)) && health.is_up("web", addr(3)));
    assert!(!health.is_up("web", addr(2)));
    let weights: Vec<u32> = desired.vips[0].backends.iter().map(|b| b.weight).collect();
    assert_eq!(weights, [10, 100, 100]);
}

#[test]
fn steering_in_panic_keeps_down_backends_up_but_not_drained_down_ones() {
    let policy = PoolPolicy {
        panic_threshold: share(9000),
        ..PoolPolicy::default()
    };
    let view = view(3, &[2, 3], policy, None);
    let states = [AdminState::Ready, AdminState::Ready, AdminState::Drain];
    let health = steer(&view, &mut desired(states), Instant::now());
    assert!(health.is_up("web", addr(2)), "panic puts it back");
    assert!(
        !health.is_up("web", addr(3)),
        "drained and down: re-steered"
    );
}
