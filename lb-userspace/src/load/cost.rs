//! Cost-aware weights: a pool with `cost_aware` sends new flows to its
//! cheapest backends first and spills over to dearer ones only under load.
//!
//! Backends are grouped in tiers by their `cost` label, cheapest first. The
//! first tier that has a usable backend (ready, weighted, up) is in
//! service; while the mean load (load signal, 1 = full) of a tier in
//! service passes `spill_load`, the next tier joins it. Backends of tiers
//! not in service keep their tracked flows but take no new ones (weight 0),
//! as a drained backend. A tier with no reading yet counts as not loaded.
//! When no tier is usable, nothing changes: health and panic mode decide.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::config::CostAware;
use crate::dataplane::{DesiredState, Health};

use super::view::LoadView;

/// The backends of `cost`, grouped by equal cost, cheapest tier first;
/// addresses in each tier in order.
pub fn cost_tiers(cost: &BTreeMap<IpAddr, f64>) -> Vec<Vec<IpAddr>> {
    let mut by_cost: Vec<(f64, IpAddr)> = cost.iter().map(|(&addr, &c)| (c, addr)).collect();
    by_cost.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut tiers: Vec<(f64, Vec<IpAddr>)> = Vec::new();
    for (cost, addr) in by_cost {
        match tiers.last_mut() {
            Some((last, members)) if *last == cost => members.push(addr),
            _ => tiers.push((cost, vec![addr])),
        }
    }
    tiers.into_iter().map(|(_, members)| members).collect()
}

/// The backends that take new flows: the cheapest usable tier, plus each
/// next tier while the mean load of the tiers before it passes
/// `spill_load`. `usable` says whether a backend could take new flows;
/// `load` gives its smoothed load, if read. `None` when no tier is usable.
pub fn serving_backends(
    tiers: &[Vec<IpAddr>],
    spill_load: f64,
    usable: impl Fn(IpAddr) -> bool,
    load: impl Fn(IpAddr) -> Option<f64>,
) -> Option<BTreeSet<IpAddr>> {
    let mut serving = BTreeSet::new();
    for tier in tiers {
        let members: Vec<IpAddr> = tier.iter().copied().filter(|&a| usable(a)).collect();
        if members.is_empty() {
            continue;
        }
        serving.extend(members.iter().copied());
        let loads: Vec<f64> = members.iter().filter_map(|&a| load(a)).collect();
        let mean = (!loads.is_empty()).then(|| loads.iter().sum::<f64>() / loads.len() as f64);
        if mean.is_none_or(|mean| mean <= spill_load) {
            return Some(serving);
        }
    }
    (!serving.is_empty()).then_some(serving)
}

/// Sets the weight of every backend of a cost-aware pool outside the
/// serving tiers to 0. Runs after the health rules (`health` is what they
/// returned) and the load factors.
pub fn steer_cost(
    pools: &BTreeMap<String, CostAware>,
    view: &LoadView,
    health: &Health,
    desired: &mut DesiredState,
) {
    for vip in &mut desired.vips {
        let Some(cost) = pools.get(&vip.pool) else {
            continue;
        };
        let tiers = cost_tiers(&cost.cost);
        let usable = |addr: IpAddr| {
            let backend = vip.backends.iter().find(|b| b.addr == addr);
            backend.is_some_and(|b| b.takes_new_flows(health.is_up(&vip.pool, addr)))
        };
        let load = |addr: IpAddr| view.load(&vip.pool, addr);
        let Some(serving) = serving_backends(&tiers, cost.spill_load, usable, load) else {
            continue;
        };
        // Only usable backends change: the others take no new flows anyway.
        let held: Vec<IpAddr> = (vip.backends.iter())
            .map(|b| b.addr)
            .filter(|&addr| cost.cost.contains_key(&addr) && !serving.contains(&addr))
            .filter(|&addr| usable(addr))
            .collect();
        for backend in vip.backends.iter_mut().filter(|b| held.contains(&b.addr)) {
            backend.weight = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn tiers() -> Vec<Vec<IpAddr>> {
        let cost = BTreeMap::from([
            (addr(1), 1.0),
            (addr(2), 1.0),
            (addr(3), 2.5),
            (addr(4), 4.0),
        ]);
        cost_tiers(&cost)
    }

    #[test]
    fn tiers_group_equal_costs_cheapest_first() {
        assert_eq!(
            tiers(),
            [vec![addr(1), addr(2)], vec![addr(3)], vec![addr(4)]]
        );
    }

    #[test]
    fn the_cheapest_tier_takes_every_new_flow_below_the_spill_load() {
        let serving = serving_backends(&tiers(), 0.8, |_| true, |_| Some(0.5));
        assert_eq!(serving, Some(BTreeSet::from([addr(1), addr(2)])));
    }

    #[test]
    fn a_loaded_tier_spills_over_to_the_next_one_only() {
        let load = |a: IpAddr| {
            Some(if a == addr(1) || a == addr(2) {
                0.9
            } else {
                0.1
            })
        };
        let serving = serving_backends(&tiers(), 0.8, |_| true, load);
        assert_eq!(serving, Some(BTreeSet::from([addr(1), addr(2), addr(3)])));
    }

    #[test]
    fn the_spill_goes_by_the_tier_mean_not_one_backend() {
        let load = |a: IpAddr| Some(if a == addr(1) { 0.95 } else { 0.5 });
        let serving = serving_backends(&tiers(), 0.8, |_| true, load);
        assert_eq!(serving, Some(BTreeSet::from([addr(1), addr(2)])));
    }

    #[test]
    fn a_tier_without_usable_backends_is_skipped() {
        let usable = |a: IpAddr| a != addr(1) && a != addr(2);
        let serving = serving_backends(&tiers(), 0.8, usable, |_| None);
        assert_eq!(serving, Some(BTreeSet::from([addr(3)])));
    }

    #[test]
    fn every_tier_loaded_serves_with_all_of_them() {
        let serving = serving_backends(&tiers(), 0.8, |_| true, |_| Some(0.99));
        assert_eq!(serving.map(|s| s.len()), Some(4));
    }

    #[test]
    fn no_usable_tier_changes_nothing() {
        assert_eq!(serving_backends(&tiers(), 0.8, |_| false, |_| None), None);
    }
}

#[cfg(test)]
mod steer_tests {
    use lb_common::VipKey;

    use super::*;
    use crate::dataplane::{AdminState, DesiredBackend, DesiredVip};

    fn desired() -> DesiredState {
        let backend = |last: u8| DesiredBackend {
            addr: IpAddr::from([10, 0, 0, last]),
            weight: 100,
            state: AdminState::Ready,
        };
        let vip = DesiredVip {
            name: "llm".to_owned(),
            key: VipKey::default(),
            flags: 0,
            table_size: 13,
            pool: "gpu".to_owned(),
            backends: vec![backend(1), backend(2), backend(3)],
            owner: None,
            ports: Vec::new(),
        };
        DesiredState {
            vips: vec![vip],
            ..DesiredState::default()
        }
    }

    fn pools() -> BTreeMap<String, CostAware> {
        let cost = BTreeMap::from([
            (IpAddr::from([10, 0, 0, 1]), 1.0),
            (IpAddr::from([10, 0, 0, 2]), 1.0),
            (IpAddr::from([10, 0, 0, 3]), 3.0),
        ]);
        let aware = CostAware {
            spill_load: 0.8,
            cost,
        };
        BTreeMap::from([("gpu".to_owned(), aware)])
    }

    fn weights(desired: &DesiredState) -> Vec<u32> {
        desired.vips[0].backends.iter().map(|b| b.weight).collect()
    }

    #[test]
    fn the_dear_backend_takes_no_new_flows_until_the_cheap_ones_are_loaded() {
        let mut idle = desired();
        steer_cost(
            &pools(),
            &LoadView::default(),
            &Health::default(),
            &mut idle,
        );
        assert_eq!(weights(&idle), [100, 100, 0]);

        let mut health = Health::default();
        health.set("gpu", IpAddr::from([10, 0, 0, 1]), false);
        health.set("gpu", IpAddr::from([10, 0, 0, 2]), false);
        let mut down = desired();
        steer_cost(&pools(), &LoadView::default(), &health, &mut down);
        assert_eq!(
            weights(&down),
            [100, 100, 100],
            "the dear tier serves alone"
        );

        let loads = [(1, 90), (2, 85), (3, 10)];
        let view = LoadView {
            factors: BTreeMap::new(),
            loads_percent: loads
                .iter()
                .map(|&(last, load)| (("gpu".to_owned(), IpAddr::from([10, 0, 0, last])), load))
                .collect(),
        };
        let mut loaded = desired();
        steer_cost(&pools(), &view, &Health::default(), &mut loaded);
        assert_eq!(
            weights(&loaded),
            [100, 100, 100],
            "the cheap tier spills over"
        );
    }
}
