//! Working out, without touching a map, what the maps must become: ids,
//! backend entries, Maglev tables and address keys for a desired state.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{LazyLock, Mutex, PoisonError};

use lb_common::{
    Backend, SourceRule, SourceRuleKey, TenantLimit, VIP_F_NO_FRAGMENTS, VIP_KIND_ADDRESS,
    VIP_KIND_SERVICE, Vip, VipKey,
};

use crate::maglev::{MaglevBackend, TableCache};

use super::DataplaneError;
use super::desired::{AdminState, DesiredState, Health};
use super::ids::Ids;
use super::live::{Live, ip_to_key_addr};
pub use super::policy_plan::TablePolicy;

/// A service as it must be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedVip {
    /// Config name.
    pub name: String,
    /// Its id.
    pub id: u32,
    /// `VIP_F_*` bits.
    pub flags: u32,
    /// Slots.
    pub table_size: u32,
    /// Backend id of every slot.
    pub table: Vec<u32>,
    /// The policy fields of its `Vip` value.
    pub policy: TablePolicy,
}

/// A backend entry as it must be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedBackend {
    /// Its address.
    pub addr: IpAddr,
    /// The `BACKENDS` entry.
    pub entry: Backend,
    /// Weight and state from the config.
    pub config: (u32, AdminState),
}

/// The maps' next content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Ids after this change (freed ids still held until applied).
    pub ids: Ids,
    /// Services by key.
    pub vips: HashMap<VipKey, PlannedVip>,
    /// Backend entries in use, by id.
    pub backends: BTreeMap<u32, PlannedBackend>,
    /// `SOURCE_RULES` entries by (trie prefix length, key).
    pub source_rules: HashMap<(u32, SourceRuleKey), SourceRule>,
    /// `TENANT_LIMITS` entries from class id 0.
    pub tenant_limits: Vec<TenantLimit>,
    /// Extra `VIPS` service keys (port pools) and the table key each names.
    pub port_keys: HashMap<VipKey, VipKey>,
}

/// Gives ids and builds tables for `desired`, starting from `live`.
///
/// # Errors
///
/// When ids run out or a Maglev table cannot be built; nothing has been
/// written then.
pub fn plan(desired: &DesiredState, live: &Live, health: &Health) -> Result<Plan, DataplaneError> {
    let mut plan = Plan {
        ids: live.ids.clone(),
        ..Plan::default()
    };
    // Ids first: a table's policy names other tables by id.
    for vip in &desired.vips {
        plan.ids.vip(vip.key)?;
    }
    let policy = super::policy_plan::policy(desired, &plan.ids);
    plan.source_rules = policy.source_rules;
    plan.tenant_limits = policy.tenant_limits;
    plan.port_keys = policy.port_keys;
    let mut tables = policy.tables;

    // A poisoned lock only means another plan panicked; the cache holds
    // whole entries, each the table its key gives.
    let mut tables_built = TABLES.lock().unwrap_or_else(PoisonError::into_inner);
    for vip in &desired.vips {
        let id = plan.ids.vip(vip.key)?;
        let mut ids = Vec::with_capacity(vip.backends.len());
        let mut candidates = Vec::with_capacity(vip.backends.len());
        for backend in &vip.backends {
            ids.push(plan.ids.backend(id, backend.addr)?);
            let healthy = health.is_up(&vip.pool, backend.addr);
            let weight = if backend.takes_new_flows(healthy) {
                backend.weight
            } else {
                0
            };
            candidates.push(MaglevBackend {
                addr: backend.addr,
                weight,
            });
        }

        let slots = tables_built
            .table(&candidates, vip.table_size)
            .map_err(|source| DataplaneError::Maglev {
                vip: vip.name.clone(),
                source,
            })?;
        let table: Vec<u32> = slots
            .iter()
            .map(|&slot| ids.get(slot as usize).copied().unwrap_or(slot))
            .collect();
        let holding: BTreeSet<u32> = table.iter().copied().collect();

        for (backend, &backend_id) in vip.backends.iter().zip(&ids) {
            let healthy = health.is_up(&vip.pool, backend.addr);
            let (addr, family) = ip_to_key_addr(backend.addr);
            let entry = Backend {
                addr,
                family,
                flags: backend.flags(healthy, holding.contains(&backend_id)),
                vip_id: id,
                ..Backend::default()
            };
            let planned = PlannedBackend {
                addr: backend.addr,
                entry,
                config: (backend.weight, backend.state),
            };
            plan.backends.insert(backend_id, planned);
        }

        let planned = PlannedVip {
            name: vip.name.clone(),
            id,
            flags: vip.flags,
            table_size: vip.table_size,
            table,
            policy: tables.remove(&vip.key).unwrap_or_default(),
        };
        if plan.vips.insert(vip.key, planned).is_some() {
            return Err(DataplaneError::DuplicateVip {
                vip: vip.name.clone(),
            });
        }
    }
    tables_built.end_round();
    Ok(plan)
}

/// Maglev tables of the last plans, reused when a table's backends and
/// weights are unchanged (most tables of most plans).
static TABLES: LazyLock<Mutex<TableCache>> = LazyLock::new(Mutex::default);

/// The address keys for a set of service values: for each (address,
/// protocol, family), the port-0 VIP if there is one, else the only VIP,
/// else a value that tells the kernel fragments cannot be placed.
pub fn address_keys(services: &HashMap<VipKey, Vip>) -> HashMap<VipKey, Vip> {
    let mut groups: HashMap<VipKey, Vec<(&VipKey, &Vip)>> = HashMap::new();
    for (key, value) in services {
        debug_assert_eq!(key.kind, VIP_KIND_SERVICE);
        let address_key = VipKey {
            port_be: 0,
            kind: VIP_KIND_ADDRESS,
            ..*key
        };
        groups.entry(address_key).or_default().push((key, value));
    }

    groups
        .into_iter()
        .map(|(address_key, members)| {
            let any_port = members.iter().find(|(key, _)| key.port_be == 0);
            let value = match (any_port, members.as_slice()) {
                (Some((_, value)), _) => **value,
                (None, [(_, value)]) => **value,
                (None, _) => {
                    let lowest = members
                        .iter()
                        .map(|(_, value)| **value)
                        .min_by_key(|v| v.id);
                    let mut value = lowest.unwrap_or_default();
                    value.flags |= VIP_F_NO_FRAGMENTS;
                    value
                }
            };
            (address_key, value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use lb_common::{BACKEND_F_IN_TABLE, BACKEND_F_UP, NO_BACKEND, PROTO_TCP, v4_key_addr};

    use super::super::desired::{DesiredBackend, DesiredVip};
    use super::*;

    fn desired(states: [AdminState; 3]) -> DesiredState {
        let backends = states
            .iter()
            .enumerate()
            .map(|(i, &state)| DesiredBackend {
                addr: IpAddr::from([10, 1, 0, i as u8 + 1]),
                weight: 1,
                state,
            })
            .collect();
        let vip = DesiredVip {
            name: "web".to_owned(),
            key: service(80, 0).0,
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

    fn flags_by_address(plan: &Plan) -> Vec<u32> {
        plan.backends.values().map(|b| b.entry.flags).collect()
    }

    #[test]
    fn drained_backends_stay_up_without_slots_and_maint_ones_go_down() {
        let states = [AdminState::Ready, AdminState::Drain, AdminState::Maint];
        let plan = plan(&desired(states), &Live::default(), &Health::default()).unwrap();
        let both = BACKEND_F_UP | BACKEND_F_IN_TABLE;
        assert_eq!(flags_by_address(&plan), [both, BACKEND_F_UP, 0]);
        let table = &plan.vips.values().next().unwrap().table;
        assert!(
            table.iter().all(|&id| id == 0),
            "only the ready backend: {table:?}"
        );
    }

    #[test]
    fn a_backend_down_by_health_gets_no_slots_and_no_flags() {
        let mut health = Health::default();
        health.set("web", IpAddr::from([10, 1, 0, 2]), false);
        let plan = plan(&desired([AdminState::Ready; 3]), &Live::default(), &health).unwrap();
        let both = BACKEND_F_UP | BACKEND_F_IN_TABLE;
        assert_eq!(flags_by_address(&plan), [both, 0, both]);
        let table = &plan.vips.values().next().unwrap().table;
        assert!(!table.contains(&1) && !table.contains(&NO_BACKEND));
    }

    #[test]
    fn a_vip_without_usable_backends_gets_an_empty_table() {
        let states = [AdminState::Maint; 3];
        let plan = plan(&desired(states), &Live::default(), &Health::default()).unwrap();
        let table = &plan.vips.values().next().unwrap().table;
        assert!(table.iter().all(|&id| id == NO_BACKEND));
    }

    fn service(port: u16, id: u32) -> (VipKey, Vip) {
        let key = VipKey {
            addr: v4_key_addr([10, 0, 0, 1]),
            port_be: port.to_be(),
            proto: PROTO_TCP,
            family: lb_common::FAMILY_V4,
            ..VipKey::default()
        };
        let value = Vip {
            id,
            table_size: 7,
            ..Vip::default()
        };
        (key, value)
    }

    #[test]
    fn a_sole_port_vip_owns_its_address_key() {
        let services = HashMap::from([service(80, 3)]);
        let keys = address_keys(&services);
        assert_eq!(keys.len(), 1);
        let (key, value) = keys.iter().next().unwrap();
        assert_eq!(
            (key.port_be, key.kind, value.id, value.flags),
            (0, VIP_KIND_ADDRESS, 3, 0)
        );
    }

    #[test]
    fn two_port_vips_on_one_address_refuse_fragments() {
        let services = HashMap::from([service(80, 3), service(443, 1)]);
        let keys = address_keys(&services);
        let value = keys.values().next().unwrap();
        assert_eq!(value.id, 1);
        assert_eq!(value.flags & VIP_F_NO_FRAGMENTS, VIP_F_NO_FRAGMENTS);
    }

    #[test]
    fn a_port_zero_vip_takes_the_fragments_of_its_address() {
        let services = HashMap::from([service(80, 3), service(0, 5)]);
        let value = *address_keys(&services).values().next().unwrap();
        assert_eq!((value.id, value.flags), (5, 0));
    }
}
