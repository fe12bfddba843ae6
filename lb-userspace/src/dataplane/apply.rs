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

use aya::maps::lpm_trie::Key as LpmKey;
use lb_common::maps::{BACKENDS, POOL_TABLES, SETTINGS, SOURCE_RULES, TENANT_LIMITS, VIPS};
use lb_common::{
    BACKEND_F_IN_TABLE, BACKEND_F_UP, Backend, Settings, SourceRule, SourceRuleKey, TenantLimit,
    VIP_KIND_SERVICE, Vip, VipKey,
};
use serde::{Deserialize, Serialize};
use tracing::info;

use super::DataplaneError;
use super::desired::{DesiredState, Health};
use super::live::{
    Live, LiveBackend, LiveVip, map_error, vip_filter, write_table, write_vip_filter,
};
use super::maps::Maps;
use super::plan::{Plan, PlannedBackend, PlannedVip, address_keys, plan};

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
    adopt_port_tables(maps, live, desired)?;
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

/// Gives a table that serves port pools the id and live table its first
/// port key holds, when xlbd has not seen the table yet (after a
/// restart), so it keeps its id and its live Maglev half.
///
/// Limitation: tables reached only by source rules, the canary or a
/// fallback have no `VIPS` key to be found by, so after a restart they
/// get ids afresh; flows tracked in them are re-steered by the kernel's
/// owner check. Keeping their names in the status file would fix that.
fn adopt_port_tables(
    maps: &Maps,
    live: &mut Live,
    desired: &DesiredState,
) -> Result<(), DataplaneError> {
    for vip in desired.vips.iter().filter(|v| v.owner.is_some()) {
        let Some(&port) = vip.ports.first() else {
            continue;
        };
        if live.vips.contains_key(&vip.key) {
            continue;
        }
        let port_key = VipKey {
            port_be: port.to_be(),
            kind: VIP_KIND_SERVICE,
            _pad: [0; 3],
            ..vip.key
        };
        let Some(&value) = live.port_keys.get(&port_key) else {
            continue;
        };
        if live.ids.get_vip(&vip.key).is_some() {
            continue;
        }
        live.ids.adopt_vip_if_free(vip.key, value.id);
        if live.ids.get_vip(&vip.key) == Some(value.id) {
            let table = super::live::read_table(maps, &value)?;
            let name = vip.name.clone();
            live.vips.insert(vip.key, LiveVip { name, value, table });
        }
    }
    Ok(())
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

    changes += write_tenant_limits(maps, live, &plan.tenant_limits)?;
    // Tables other than a VIP's own first: the own tables' values (and
    // the source rules) name them by id.
    let (others, own): (Vec<_>, Vec<_>) = plan
        .vips
        .iter()
        .partition(|(key, _)| key.kind != VIP_KIND_SERVICE);
    for (key, planned) in others {
        changes += write_planned_table(maps, live, key, planned, churn)?;
    }
    changes += write_source_rules(maps, live, &plan.source_rules, false)?;
    for (key, planned) in own {
        changes += write_planned_table(maps, live, key, planned, churn)?;
    }

    let removed: Vec<VipKey> = live
        .vips
        .keys()
        .filter(|key| !plan.vips.contains_key(key))
        .copied()
        .collect();
    for key in &removed {
        if key.kind == VIP_KIND_SERVICE {
            maps.vips.remove(key).map_err(|e| map_error(VIPS, e))?;
        }
        if let Some(old) = live.vips.remove(key) {
            // A freed id holds no table until it is given again.
            maps.pool_tables
                .set(old.value.id, Vip::default(), 0)
                .map_err(|e| map_error(POOL_TABLES, e))?;
            info!(vip = old.name, id = old.value.id, "vip removed");
        }
        changes += 1;
    }

    changes += write_port_keys(maps, live, &plan.port_keys)?;
    changes += write_address_keys(maps, live)?;
    changes += write_source_rules(maps, live, &plan.source_rules, true)?;

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

/// Writes one table: a changed Maglev table into the standby half, then
/// its value in `POOL_TABLES`, then (for a VIP's own table) in `VIPS`.
/// Returns the map writes counted as changes.
fn write_planned_table(
    maps: &mut Maps,
    live: &mut Live,
    key: &VipKey,
    planned: &PlannedVip,
    churn: &mut TableChurn,
) -> Result<usize, DataplaneError> {
    let mut changes = 0;
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
    let policy = planned.policy;
    value.flags = planned.flags | policy.flags;
    value.canary_id = policy.canary_id;
    value.canary_share = policy.canary_share;
    value.fallback_id = policy.fallback_id;
    value.owner_id = policy.owner_id;
    if old.is_none_or(|old| old.value != value) {
        maps.pool_tables
            .set(planned.id, value, 0)
            .map_err(|e| map_error(POOL_TABLES, e))?;
        if key.kind == VIP_KIND_SERVICE {
            maps.vips
                .insert(key, value, 0)
                .map_err(|e| map_error(VIPS, e))?;
        }
        changes += 1;
    }
    let table = planned.table.clone();
    let name = planned.name.clone();
    live.vips.insert(*key, LiveVip { name, value, table });
    Ok(changes)
}

/// Writes the `TENANT_LIMITS` entries that differ from what is live;
/// classes no longer used are zeroed (no limit).
fn write_tenant_limits(
    maps: &mut Maps,
    live: &mut Live,
    wanted: &[TenantLimit],
) -> Result<usize, DataplaneError> {
    let mut changes = 0;
    let len = wanted.len().max(live.tenant_limits.len());
    for class in 0..len {
        let want = wanted.get(class).copied().unwrap_or_default();
        if live.tenant_limits.get(class) != Some(&want) {
            maps.tenant_limits
                .set(class as u32, want, 0)
                .map_err(|e| map_error(TENANT_LIMITS, e))?;
            changes += 1;
        }
    }
    live.tenant_limits = wanted.to_vec();
    Ok(changes)
}

/// Inserts the wanted source rules that are new or changed (`remove`
/// false), or removes the live ones no longer wanted (`remove` true).
fn write_source_rules(
    maps: &mut Maps,
    live: &mut Live,
    wanted: &HashMap<(u32, SourceRuleKey), SourceRule>,
    remove: bool,
) -> Result<usize, DataplaneError> {
    let mut changes = 0;
    if remove {
        let gone: Vec<(u32, SourceRuleKey)> = live
            .source_rules
            .keys()
            .filter(|key| !wanted.contains_key(key))
            .copied()
            .collect();
        for (len, key) in gone {
            maps.source_rules
                .remove(&LpmKey::new(len, key))
                .map_err(|e| map_error(SOURCE_RULES, e))?;
            live.source_rules.remove(&(len, key));
            changes += 1;
        }
        return Ok(changes);
    }
    for (&(len, key), rule) in wanted {
        if live.source_rules.get(&(len, key)) != Some(rule) {
            maps.source_rules
                .insert(&LpmKey::new(len, key), rule, 0)
                .map_err(|e| map_error(SOURCE_RULES, e))?;
            live.source_rules.insert((len, key), *rule);
            changes += 1;
        }
    }
    Ok(changes)
}

/// Brings the port-pool service keys in line with the live tables.
fn write_port_keys(
    maps: &mut Maps,
    live: &mut Live,
    wanted: &HashMap<VipKey, VipKey>,
) -> Result<usize, DataplaneError> {
    let mut changes = 0;
    let mut next = HashMap::new();
    for (port_key, table_key) in wanted {
        let Some(table) = live.vips.get(table_key) else {
            continue;
        };
        if live.port_keys.get(port_key) != Some(&table.value) {
            maps.vips
                .insert(port_key, table.value, 0)
                .map_err(|e| map_error(VIPS, e))?;
            changes += 1;
        }
        next.insert(*port_key, table.value);
    }
    for key in live.port_keys.keys() {
        if !next.contains_key(key) {
            maps.vips.remove(key).map_err(|e| map_error(VIPS, e))?;
            changes += 1;
        }
    }
    live.port_keys = next;
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
    let own = live
        .vips
        .iter()
        .filter(|(key, _)| key.kind == VIP_KIND_SERVICE);
    let services: HashMap<VipKey, Vip> = own
        .map(|(key, vip)| (*key, vip.value))
        .chain(live.port_keys.iter().map(|(key, value)| (*key, *value)))
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
