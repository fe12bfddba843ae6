//! Writing a plan into the maps, in an order that keeps every packet's
//! view consistent, and logging what moved.
//!
//! Order: the `VIP_ADDRS` bits of new VIP addresses (so the kernel never
//! skips a `VIPS` key it could find); backend entries that gain a flag (so
//! a table never names a backend the kernel thinks is unused); then each
//! changed table into its VIP's standby half, followed by the `VIPS` value
//! that flips to it; then address keys; then backend entries that lose
//! flags or go away (after no live table names them); the settings; last
//! the `VIP_ADDRS` bits of removed addresses. A map is written only where
//! its content changes. `VIP_ADDRS` follows `VIPS`, so its writes are not
//! counted as changes.

use std::collections::{BTreeMap, HashMap};

use lb_common::maps::{BACKENDS, SETTINGS, VIPS};
use lb_common::{BACKEND_F_IN_TABLE, BACKEND_F_UP, Backend, Settings, Vip, VipKey};
use serde::{Deserialize, Serialize};
use tracing::info;

use super::DataplaneError;
use super::desired::{DesiredState, Health};
use super::live::{
    Live, LiveBackend, LiveVip, map_error, vip_filter, write_table, write_vip_filter,
};
use super::maps::Maps;
use super::plan::{Plan, PlannedBackend, address_keys, plan};

/// Maglev table swaps of one VIP since this xlbd started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSwaps {
    /// Rebuilt tables swapped in (the first write of a VIP is not one).
    pub swaps_total: u64,
    /// Slots that named another backend after a swap than before, summed.
    pub slots_moved_total: u64,
}

/// Table swaps by VIP name, kept by the owner of the maps across applies.
pub type TableChurn = BTreeMap<String, TableSwaps>;

/// Makes the maps hold `desired`, and returns how many changes it wrote
/// (0 when the maps already matched). Table swaps are added to `churn`.
///
/// # Errors
///
/// When planning fails (nothing is written) or a map write fails (`live`
/// is then read back from the maps, so the next apply starts from the
/// truth).
pub fn apply(
    maps: &mut Maps,
    live: &mut Live,
    desired: &DesiredState,
    health: &Health,
    churn: &mut TableChurn,
) -> Result<usize, DataplaneError> {
    let plan = plan(desired, live, health)?;
    churn.retain(|name, _| plan.vips.values().any(|vip| vip.name == *name));
    let result = execute(maps, live, plan, &desired.settings, churn);
    if result.is_err()
        && let Ok(fresh) = Live::read(maps)
    {
        *live = fresh;
    }
    result
}

fn execute(
    maps: &mut Maps,
    live: &mut Live,
    plan: Plan,
    settings: &Settings,
    churn: &mut TableChurn,
) -> Result<usize, DataplaneError> {
    let mut ids = plan.ids.clone();
    let names: BTreeMap<u32, &str> = plan
        .vips
        .values()
        .map(|vip| (vip.id, vip.name.as_str()))
        .collect();
    let mut changes = 0;

    let both = vip_filter(live.vips.keys().chain(plan.vips.keys()));
    write_vip_filter(maps, live, both)?;

    for (&id, planned) in &plan.backends {
        let old = live.backends.get(&id);
        let gains = old.is_none_or(|old| planned.entry.flags & !old.entry.flags != 0);
        if gains && write_backend(maps, live, id, planned, &names)? {
            changes += 1;
        }
    }

    for (key, planned) in &plan.vips {
        let old = live.vips.get(key);
        let mut value = old.map_or(
            Vip {
                id: planned.id,
                // So that the first write below lands in half 0.
                table_half: 1,
                ..Vip::default()
            },
            |old| old.value,
        );
        if old.is_none_or(|old| old.table != planned.table) {
            let half = 1 - (value.table_half & 1);
            write_table(maps, planned.id, half, &planned.table)?;
            value.table_half = half;
            value.table_size = planned.table_size;
            let swaps = churn.entry(planned.name.clone()).or_default();
            match old {
                None => info!(vip = planned.name, id = planned.id, "vip added"),
                Some(old) => {
                    let moved = slots_moved(&old.table, &planned.table);
                    swaps.swaps_total += 1;
                    swaps.slots_moved_total += moved as u64;
                    info!(
                        vip = planned.name,
                        slots_moved = moved,
                        table_half = half,
                        "maglev table swapped"
                    );
                }
            }
        }
        value.flags = planned.flags;
        if old.is_none_or(|old| old.value != value) {
            maps.vips
                .insert(key, value, 0)
                .map_err(|e| map_error(VIPS, e))?;
            changes += 1;
        }
        let table = planned.table.clone();
        let name = planned.name.clone();
        live.vips.insert(*key, LiveVip { name, value, table });
    }

    let removed: Vec<VipKey> = live
        .vips
        .keys()
        .filter(|key| !plan.vips.contains_key(key))
        .copied()
        .collect();
    for key in &removed {
        maps.vips.remove(key).map_err(|e| map_error(VIPS, e))?;
        if let Some(old) = live.vips.remove(key) {
            info!(vip = old.name, id = old.value.id, "vip removed");
        }
        changes += 1;
    }

    changes += write_address_keys(maps, live)?;

    for (&id, planned) in &plan.backends {
        if write_backend(maps, live, id, planned, &names)? {
            changes += 1;
        }
    }
    let gone: Vec<u32> = live
        .backends
        .keys()
        .filter(|id| !plan.backends.contains_key(id))
        .copied()
        .collect();
    for id in gone {
        // Cleared flags send the flows still tracked to this id elsewhere;
        // only then may the id be given to another backend.
        maps.backends
            .set(id, Backend::default(), 0)
            .map_err(|e| map_error(BACKENDS, e))?;
        if let Some(old) = live.backends.remove(&id) {
            info!(backend = %old.addr, id, vip_id = old.entry.vip_id, "backend removed");
            ids.free_backend(old.entry.vip_id, old.addr);
        }
        changes += 1;
    }
    for key in &removed {
        ids.free_vip(key);
    }
    live.ids = ids;

    if live.settings != *settings {
        maps.settings
            .set(0, settings, 0)
            .map_err(|e| map_error(SETTINGS, e))?;
        live.settings = *settings;
        info!(mtu = settings.mtu, "settings changed");
        changes += 1;
    }

    let remaining = vip_filter(live.vips.keys());
    write_vip_filter(maps, live, remaining)?;
    Ok(changes)
}

/// Writes one backend entry if it differs from what is live, and records
/// the weight and state it stands for; returns whether it wrote.
fn write_backend(
    maps: &mut Maps,
    live: &mut Live,
    id: u32,
    planned: &PlannedBackend,
    names: &BTreeMap<u32, &str>,
) -> Result<bool, DataplaneError> {
    let old = live.backends.get(&id);
    let config = Some(planned.config);
    if old.is_some_and(|old| old.entry == planned.entry && old.config == config) {
        return Ok(false);
    }
    let write = old.is_none_or(|old| old.entry != planned.entry);
    if write {
        maps.backends
            .set(id, planned.entry, 0)
            .map_err(|e| map_error(BACKENDS, e))?;
    }

    let vip = names.get(&planned.entry.vip_id).copied().unwrap_or("?");
    let (weight, state) = planned.config;
    let flags = planned.entry.flags;
    let (up, in_table) = (flags & BACKEND_F_UP != 0, flags & BACKEND_F_IN_TABLE != 0);
    match old.and_then(|old| old.config) {
        None if old.is_none() => {
            info!(vip, backend = %planned.addr, id, weight, ?state, up, in_table, "backend added")
        }
        Some((old_weight, old_state)) if (old_weight, old_state) != (weight, state) => info!(
            vip, backend = %planned.addr, old_weight, weight, ?old_state, ?state, up, in_table,
            "backend changed"
        ),
        _ if old.is_some_and(|old| old.entry.flags != flags) => {
            info!(vip, backend = %planned.addr, up, in_table, "backend flags changed")
        }
        _ => {}
    }
    let backend = LiveBackend {
        addr: planned.addr,
        entry: planned.entry,
        config,
    };
    live.backends.insert(id, backend);
    Ok(write)
}

/// Brings the address keys in line with the live services.
fn write_address_keys(maps: &mut Maps, live: &mut Live) -> Result<usize, DataplaneError> {
    let services: HashMap<VipKey, Vip> = live
        .vips
        .iter()
        .map(|(key, vip)| (*key, vip.value))
        .collect();
    let wanted = address_keys(&services);
    let mut changes = 0;
    for (key, value) in &wanted {
        if live.address_keys.get(key) != Some(value) {
            maps.vips
                .insert(key, value, 0)
                .map_err(|e| map_error(VIPS, e))?;
            changes += 1;
        }
    }
    for key in live.address_keys.keys() {
        if !wanted.contains_key(key) {
            maps.vips.remove(key).map_err(|e| map_error(VIPS, e))?;
            changes += 1;
        }
    }
    live.address_keys = wanted;
    Ok(changes)
}

/// How many slots point elsewhere in `new` than in `old`.
pub fn slots_moved(old: &[u32], new: &[u32]) -> usize {
    let common = old.len().min(new.len());
    let changed = old.iter().zip(new).filter(|(a, b)| a != b).count();
    changed + new.len() - common
}

#[cfg(test)]
mod tests {
    use super::slots_moved;

    #[test]
    fn slots_moved_counts_changed_and_added_slots() {
        assert_eq!(slots_moved(&[1, 2, 3], &[1, 2, 3]), 0);
        assert_eq!(slots_moved(&[1, 2, 3], &[1, 9, 3]), 1);
        assert_eq!(slots_moved(&[1, 2], &[1, 2, 5, 6, 7]), 3);
    }
}
