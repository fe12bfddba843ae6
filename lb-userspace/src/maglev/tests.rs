//! Property tests of the table generator; each prints what it measured.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use lb_common::NO_BACKEND;

use super::*;

const M: u32 = 65537;

fn backend(n: u32, weight: u32) -> MaglevBackend {
    let addr = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n));
    MaglevBackend { addr, weight }
}

fn equal(n: u32) -> Vec<MaglevBackend> {
    (1..=n).map(|i| backend(i, 100)).collect()
}

/// The table with each slot naming its backend's address, so tables built
/// from differently ordered slices can be compared.
fn owners(table: &[u32], backends: &[MaglevBackend]) -> Vec<Option<IpAddr>> {
    let owner = |&e: &u32| backends.get(e as usize).map(|b| b.addr);
    table.iter().map(owner).collect()
}

fn worst_deviation(table: &[u32], backends: &[MaglevBackend]) -> f64 {
    let shares = slot_shares(table, backends);
    let worst = shares.iter().map(|s| s.deviation_percent().abs());
    worst.fold(0.0, f64::max)
}

#[test]
fn equal_weights_give_every_backend_its_share_within_one_percent() {
    let backends = equal(100);
    let table = build_table(&backends, M).expect("table builds");

    let worst = worst_deviation(&table, &backends);
    eprintln!("N=100 M={M} equal weights: worst share {worst:.3}% from the mean");
    assert!(worst <= 1.0, "a share is {worst:.3}% from the mean");
    assert!(table.iter().all(|&e| e < 100), "every slot holds a backend");
}

#[test]
fn mixed_weights_are_honoured_within_one_percent() {
    let backends: Vec<_> = (1..=100).map(|i| backend(i, i % 10 + 1)).collect();
    let table = build_table(&backends, M).expect("table builds");

    let worst = worst_deviation(&table, &backends);
    eprintln!("N=100 M={M} weights 1..=10: worst share {worst:.3}% from its weight");
    assert!(worst <= 1.0, "a share is {worst:.3}% from its weight");
}

#[test]
fn very_uneven_weights_give_each_backend_its_ideal_share_within_one_slot() {
    // Percentages mean little for a backend entitled to 4 slots; the
    // credit scheme promises each backend its ideal count, give or take 1.
    let backends = vec![backend(1, 1), backend(2, 10_000), backend(3, 5_000)];
    let table = build_table(&backends, M).expect("table builds");

    let shares = slot_shares(&table, &backends);
    for share in &shares {
        let weight = backends[share.index].weight;
        eprintln!(
            "weight {weight:>5}: {:>6} slots, ideal {:.1}",
            share.slots, share.ideal
        );
        let off = (f64::from(share.slots) - share.ideal).abs();
        assert!(
            off <= 1.0,
            "weight {weight} is {off:.2} slots from its share"
        );
    }
}

#[test]
fn removing_a_backend_moves_its_slots_and_at_most_two_percent_of_others() {
    let before_backends = equal(100);
    let before = build_table(&before_backends, M).expect("table builds");
    let removed = before_backends[42].addr;
    let after_backends: Vec<_> = before_backends
        .iter()
        .copied()
        .filter(|b| b.addr != removed)
        .collect();
    let after = build_table(&after_backends, M).expect("table builds");

    let before = owners(&before, &before_backends);
    let after = owners(&after, &after_backends);
    let mut others_moved = 0;
    for (old, new) in before.iter().zip(&after) {
        assert_ne!(
            *new,
            Some(removed),
            "the removed backend still holds a slot"
        );
        if *old != Some(removed) && old != new {
            others_moved += 1;
        }
    }
    let others = before.iter().filter(|o| **o != Some(removed)).count();
    let moved_percent = others_moved as f64 / others as f64 * 100.0;
    eprintln!(
        "N=100 M={M} remove one: {others_moved} of {others} other slots moved ({moved_percent:.3}%)"
    );
    assert!(
        moved_percent <= 2.0,
        "{moved_percent:.3}% of other slots moved"
    );
}

#[test]
fn listing_order_does_not_change_the_table() {
    let mut backends: Vec<_> = (1..=50).map(|i| backend(i, i % 7 + 1)).collect();
    backends.push(MaglevBackend {
        addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
        weight: 3,
    });
    let table = build_table(&backends, 4099).expect("table builds");

    let mut reordered = backends.clone();
    reordered.reverse();
    reordered.rotate_left(17);
    let reordered_table = build_table(&reordered, 4099).expect("table builds");

    assert_eq!(
        owners(&table, &backends),
        owners(&reordered_table, &reordered)
    );
}

#[test]
fn the_same_input_twice_gives_identical_bytes() {
    let backends: Vec<_> = (1..=30).map(|i| backend(i, i * 10)).collect();
    let first = build_table(&backends, 8191).expect("table builds");
    let second = build_table(&backends, 8191).expect("table builds");

    let bytes = |t: &[u32]| t.iter().flat_map(|e| e.to_le_bytes()).collect::<Vec<_>>();
    assert_eq!(bytes(&first), bytes(&second));
}

#[test]
fn a_known_table_keeps_its_contents_across_releases() {
    // Guards the hash and the fill order: a change here moves flows on
    // every node that upgrades, so it must be deliberate.
    let backends = vec![backend(3, 1), backend(1, 2), backend(2, 1)];
    let table = build_table(&backends, 13).expect("table builds");
    assert_eq!(table, [2, 0, 1, 2, 2, 1, 1, 0, 1, 1, 1, 1, 0]);
}

#[test]
fn zero_weight_backends_get_no_slots() {
    let backends = vec![backend(1, 100), backend(2, 0), backend(3, 50)];
    let table = build_table(&backends, 1009).expect("table builds");

    assert!(!table.contains(&1), "the zero-weight backend holds a slot");
    assert!(table.iter().all(|&e| e == 0 || e == 2), "a slot is empty");
}

#[test]
fn a_table_without_weighted_backends_is_all_empty() {
    let backends = vec![backend(1, 0)];
    let table = build_table(&backends, 7).expect("table builds");
    assert_eq!(table, vec![NO_BACKEND; 7]);
    assert_eq!(
        build_table(&[], 7).expect("table builds"),
        vec![NO_BACKEND; 7]
    );
}

#[test]
fn bad_inputs_are_rejected_with_the_reason() {
    let err = build_table(&equal(2), 65536).expect_err("65536 is not prime");
    assert_eq!(err.to_string(), "maglev table size 65536 is not prime");

    let twice = vec![backend(1, 1), backend(2, 1), backend(1, 5)];
    let err = build_table(&twice, 7).expect_err("duplicate address");
    assert_eq!(err.to_string(), "backend 10.0.0.1 is listed twice");

    let err = build_table(&equal(11), 7).expect_err("more backends than slots");
    assert_eq!(
        err.to_string(),
        "maglev table of 7 slots cannot hold 11 backends"
    );
}

#[test]
fn primes_are_told_from_composites() {
    let primes: Vec<u32> = (0..30).filter(|&n| is_prime(n)).collect();
    assert_eq!(primes, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
    assert!(is_prime(65537) && is_prime(4_294_967_291));
    assert!(!is_prime(65536) && !is_prime(65535) && !is_prime(25) && !is_prime(49));
}

#[test]
fn small_tables_are_reported_as_undersized() {
    assert!(is_undersized(997, 10));
    assert!(!is_undersized(1009, 10));
}

#[test]
fn generation_time_for_a_thousand_backends_is_printed() {
    let backends: Vec<_> = (1..=1000).map(|i| backend(i, i % 10 + 1)).collect();
    let start = Instant::now();
    let table = build_table(&backends, M).expect("table builds");
    let elapsed = start.elapsed();

    let shares = slot_shares(&table, &backends);
    let slots_off = |s: &SlotShare| (f64::from(s.slots) - s.ideal).abs();
    let worst_slots = shares.iter().map(slots_off).fold(0.0, f64::max);
    eprintln!(
        "N=1000 M={M} weights 1..=10: built in {elapsed:?}; worst share {worst_slots:.2} slots \
         from its ideal (a weight-1 backend's ideal is about 12 slots)"
    );
    assert!(
        worst_slots <= 1.0,
        "a share is {worst_slots:.2} slots from its ideal"
    );
    assert!(
        table.iter().all(|&e| e < 1000),
        "every slot holds a backend"
    );
}
